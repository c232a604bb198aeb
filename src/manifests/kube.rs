//! The Kubernetes checks a rendered manifest must pass before it is shown: the fields the API
//! server would refuse it without, for the two kinds lazyops prepares (Job, Deployment).
//! No cluster is contacted; these are the schema's rules, written out.

use super::yaml::Node;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Job,
    Deployment,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Job => "Job",
            Kind::Deployment => "Deployment",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Kind::Job => "batch/v1",
            Kind::Deployment => "apps/v1",
        }
    }
}

/// What the reply says about a valid manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    pub namespace: Option<String>,
    /// `name image` of every container, in order.
    pub images: Vec<String>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum KubeError {
    #[error("`{path}` is missing")]
    Missing { path: String },
    #[error("`{path}` must be {want}, not {got}")]
    Type { path: String, want: &'static str, got: &'static str },
    #[error("kind `{0}` is not one lazyops prepares; use Job or Deployment")]
    Kind(String),
    #[error("kind {kind} needs apiVersion {want}, not `{got}`")]
    ApiVersion { kind: &'static str, want: &'static str, got: String },
    #[error(
        "`{path}` is `{value}`, which is not a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)"
    )]
    NotALabel { path: String, value: String },
    #[error("`{path}` must name at least one container")]
    NoContainers { path: String },
    #[error("`{path}` must be an image reference without spaces, not `{value}`")]
    Image { path: String, value: String },
    #[error("`{path}` of a Job must be Never or OnFailure, not `{value}`")]
    RestartPolicy { path: String, value: String },
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| ok(c) || c == '-')
        && s.chars().next().is_some_and(ok)
        && s.chars().last().is_some_and(ok)
}

/// Checks one object and tells what it is.
pub fn validate(root: &Node) -> Result<Object, KubeError> {
    map(root, "")?;
    let kind_text = string(root, "", "kind")?;
    let kind = match kind_text {
        "Job" => Kind::Job,
        "Deployment" => Kind::Deployment,
        other => return Err(KubeError::Kind(other.to_string())),
    };
    let api = string(root, "", "apiVersion")?;
    if api != kind.api_version() {
        return Err(KubeError::ApiVersion { kind: kind.name(), want: kind.api_version(), got: api.to_string() });
    }
    let metadata = field(root, "", "metadata")?;
    map(metadata, "metadata")?;
    let name = label(metadata, "metadata", "name")?;
    let namespace = match metadata.get("namespace") {
        None => None,
        Some(_) => Some(label(metadata, "metadata", "namespace")?),
    };
    let spec = field(root, "", "spec")?;
    map(spec, "spec")?;
    if kind == Kind::Deployment {
        map(field(spec, "spec", "selector")?, "spec.selector")?;
    }
    let template = field(spec, "spec", "template")?;
    map(template, "spec.template")?;
    let pod = field(template, "spec.template", "spec")?;
    map(pod, "spec.template.spec")?;
    if kind == Kind::Job {
        let policy = string(pod, "spec.template.spec", "restartPolicy")?;
        if policy != "Never" && policy != "OnFailure" {
            return Err(KubeError::RestartPolicy {
                path: "spec.template.spec.restartPolicy".into(),
                value: policy.to_string(),
            });
        }
    }
    let mut images = Vec::new();
    for list in ["initContainers", "containers"] {
        let path = format!("spec.template.spec.{list}");
        let containers = match pod.get(list) {
            None if list == "initContainers" => continue,
            None => return Err(KubeError::NoContainers { path }),
            Some(Node::Seq(items)) => items,
            Some(other) => return Err(KubeError::Type { path, want: "a list", got: other.kind() }),
        };
        if containers.is_empty() && list == "containers" {
            return Err(KubeError::NoContainers { path });
        }
        for (i, c) in containers.iter().enumerate() {
            let at = format!("{path}[{i}]");
            images.push(container(c, &at)?);
        }
    }
    Ok(Object { kind, name: name.to_string(), namespace: namespace.map(str::to_string), images })
}

/// Checks a container; returns `name image`.
fn container(c: &Node, at: &str) -> Result<String, KubeError> {
    map(c, at)?;
    let name = label(c, at, "name")?;
    let image = string(c, at, "image")?;
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return Err(KubeError::Image { path: format!("{at}.image"), value: image.to_string() });
    }
    if let Some(env) = c.get("env") {
        let path = format!("{at}.env");
        let Node::Seq(vars) = env else {
            return Err(KubeError::Type { path, want: "a list", got: env.kind() });
        };
        for (j, var) in vars.iter().enumerate() {
            let at = format!("{path}[{j}]");
            map(var, &at)?;
            string(var, &at, "name")?;
            // The API server refuses numbers and booleans here: env values are strings.
            if var.get("value").is_some() {
                string(var, &at, "value")?;
            }
        }
    }
    Ok(format!("{name} {image}"))
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

fn field<'n>(node: &'n Node, parent: &str, key: &str) -> Result<&'n Node, KubeError> {
    node.get(key).ok_or_else(|| KubeError::Missing { path: join(parent, key) })
}

fn map(node: &Node, path: &str) -> Result<(), KubeError> {
    match node {
        Node::Map(_) => Ok(()),
        other => Err(KubeError::Type {
            path: if path.is_empty() { "the document".into() } else { path.to_string() },
            want: "a mapping",
            got: other.kind(),
        }),
    }
}

fn string<'n>(node: &'n Node, parent: &str, key: &str) -> Result<&'n str, KubeError> {
    let v = field(node, parent, key)?;
    v.as_str().ok_or_else(|| KubeError::Type { path: join(parent, key), want: "a string", got: v.kind() })
}

fn label<'n>(node: &'n Node, parent: &str, key: &str) -> Result<&'n str, KubeError> {
    let v = string(node, parent, key)?;
    if is_dns_label(v) { Ok(v) } else { Err(KubeError::NotALabel { path: join(parent, key), value: v.to_string() }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::yaml::parse;

    const JOB: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: fix-42\n  namespace: users\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: fix\n          image: registry.example.com/users:1.4.2\n          env:\n            - name: USER_ID\n              value: \"42\"\n";

    fn check(yaml: &str, expected: Result<&str, &str>) {
        let got = validate(&parse(yaml).unwrap()).map(|o| format!("{} {}", o.kind.name(), o.name));
        match expected {
            Ok(want) => assert_eq!(got.as_deref(), Ok(want)),
            Err(want) => assert_eq!(got.map_err(|e| e.to_string()), Err(want.to_string())),
        }
    }

    #[test]
    fn a_complete_job_passes() {
        check(JOB, Ok("Job fix-42"));
        let o = validate(&parse(JOB).unwrap()).unwrap();
        assert_eq!(o.namespace.as_deref(), Some("users"));
        assert_eq!(o.images, ["fix registry.example.com/users:1.4.2"]);
    }

    #[test]
    fn what_the_api_server_would_refuse_is_refused() {
        check(
            &JOB.replace("kind: Job", "kind: Secret"),
            Err("kind `Secret` is not one lazyops prepares; use Job or Deployment"),
        );
        check(&JOB.replace("batch/v1", "v1"), Err("kind Job needs apiVersion batch/v1, not `v1`"));
        check(
            &JOB.replace("name: fix-42", "name: Fix_42"),
            Err(
                "`metadata.name` is `Fix_42`, which is not a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)",
            ),
        );
        check(
            &JOB.replace("          image: registry.example.com/users:1.4.2\n", ""),
            Err("`spec.template.spec.containers[0].image` is missing"),
        );
        check(
            &JOB.replace("image: registry", "image: \"registry x\" #"),
            Err("`spec.template.spec.containers[0].image` must be an image reference without spaces, not `registry x`"),
        );
        check(
            &JOB.replace("value: \"42\"", "value: 42"),
            Err("`spec.template.spec.containers[0].env[0].value` must be a string, not a number"),
        );
        check(
            &JOB.replace("Never", "Always"),
            Err("`spec.template.spec.restartPolicy` of a Job must be Never or OnFailure, not `Always`"),
        );
        check("just text", Err("`the document` must be a mapping, not a string"));
    }

    #[test]
    fn dns_labels() {
        for ok in ["a", "fix-42", "a1", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64), "a\nb"] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }
}
