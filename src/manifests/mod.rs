//! Manifest templates: a YAML file with a comment header naming typed parameters, rendered
//! into one Kubernetes Job or Deployment for a human to apply. lazyops never applies it.
//!
//! Invariant: a value never becomes YAML syntax. Templates are parsed into a tree first,
//! values are placed into string scalars of that tree, the YAML text is produced by a
//! serializer, and the text is parsed back and compared with the tree before anyone sees it.

pub mod kube;
pub mod template;
pub mod yaml;
