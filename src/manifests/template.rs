//! Manifest template files (`manifests/*.yaml`): a comment header (name, description, typed
//! params) and one YAML document whose string values may hold `{{ param }}` placeholders.
//!
//! ```yaml
//! # name: update-user-email
//! # description: Change one user's email address
//! # param: user_id int "the user's numeric id"
//! apiVersion: batch/v1
//! kind: Job
//! metadata:
//!   name: update-user-email-{{ user_id }}
//! ```
//!
//! Placeholders are found in the parsed tree, never in the text, so a value can only ever
//! become (part of) the string it was placed in.

use std::path::{Path, PathBuf};

use super::kube::{self, KubeError, Object};
use super::yaml::{self, Node, YamlError};
use crate::catalog::TemplateSig;
use crate::command::Params;
use crate::config::{Problem, line_of};
use crate::param::{ParamSpec, ParamType, ParamValue};
use crate::queries::file::{is_name, parse_param};

#[derive(Clone, Debug)]
pub struct Template {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamSpec>,
    /// `# example:` lines: sentences that ask for this template, for the intent layer.
    pub examples: Vec<String>,
    pub path: PathBuf,
    tree: Node,
}

/// A manifest ready to show: its YAML text and what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub yaml: String,
    pub object: Object,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error("manifest `{template}` needs a value for `{param}`")]
    Missing { template: String, param: String },
    #[error("the rendered manifest is not valid YAML ({0}); nothing is shown")]
    Yaml(YamlError),
    #[error("the rendered manifest does not read back as what was rendered; nothing is shown")]
    RoundTrip,
    #[error("the rendered manifest is not a valid Kubernetes object: {0}")]
    Kube(KubeError),
}

impl Template {
    /// Parses a template file; every problem found is returned, each with its line.
    pub fn parse(text: &str, path: &Path) -> Result<Template, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut t = Template {
            name: String::new(),
            description: String::new(),
            params: Vec::new(),
            examples: Vec::new(),
            path: path.to_path_buf(),
            tree: Node::Null,
        };
        let mut param_lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let Some(comment) = trimmed.strip_prefix('#') else { break };
            let Some((key, value)) = comment.split_once(':') else { continue };
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            match t.header(key, value.trim()) {
                Ok(()) if key == "param" => param_lines.push(i + 1),
                Ok(()) => {}
                Err(msg) => problems.push(Problem::new(path, Some(i + 1), msg)),
            }
        }
        if t.name.is_empty() {
            problems.push(Problem::new(path, Some(1), "missing `# name:` header line"));
        }
        match yaml::parse(text) {
            Ok(tree) => t.tree = tree,
            Err(e) => {
                problems.push(Problem::new(path, e.line, format!("not valid YAML: {}", e.message)));
                return Err(problems);
            }
        }
        let mut used = Vec::new();
        let mut placeholder_problems = Vec::new();
        walk(&t.tree, &mut |s, is_key| match placeholders(s) {
            Ok(found) if is_key && !found.is_empty() => {
                placeholder_problems.push((s.to_string(), "placeholders may stand in values only, not in keys".into()))
            }
            Ok(found) => used.extend(found.into_iter().map(|(_, n)| n)),
            Err(msg) => placeholder_problems.push((s.to_string(), msg)),
        });
        for (s, msg) in placeholder_problems {
            problems.push(Problem::new(path, line_of(text, s.lines().next().unwrap_or_default()), msg));
        }
        for name in &used {
            if !t.params.iter().any(|p| p.name == *name) {
                let at = line_of(text, &format!("{{{{ {name} }}}}")).or_else(|| line_of(text, name));
                problems.push(Problem::new(
                    path,
                    at,
                    format!("placeholder `{{{{ {name} }}}}` has no `# param: {name} <type>` line"),
                ));
            }
        }
        for (p, line) in t.params.iter().zip(&param_lines) {
            if !used.contains(&p.name) {
                problems.push(Problem::new(
                    path,
                    Some(*line),
                    format!("param `{}` is declared but the manifest never uses `{{{{ {} }}}}`", p.name, p.name),
                ));
            }
        }
        if problems.is_empty() {
            // A template that cannot produce a valid object is refused at load, not at 3 a.m.
            let sample: Params = t.params.iter().map(|p| (p.name.clone(), sample(p))).collect();
            if let Err(e) = t.render(&sample) {
                let line = line_of(text, "\nkind:").map(|l| l + 1);
                problems.push(Problem::new(path, line, format!("with sample values, {e}")));
            }
        }
        if problems.is_empty() { Ok(t) } else { Err(problems) }
    }

    fn header(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "name" => {
                if !is_name(value) {
                    return Err(format!(
                        "manifest name `{value}` must be lower-case letters, digits and dashes, starting with a letter"
                    ));
                }
                self.name = value.to_string();
            }
            "description" => self.description = value.to_string(),
            "example" if !value.is_empty() => self.examples.push(value.to_string()),
            "param" => {
                let p = parse_param(value)?;
                if self.params.iter().any(|q| q.name == p.name) {
                    return Err(format!("param `{}` is declared twice", p.name));
                }
                self.params.push(p);
            }
            other => return Err(format!("unknown header `{other}`: use name, description, param or example")),
        }
        Ok(())
    }

    /// What the grammar needs to know to check a `manifest` command.
    pub fn sig(&self) -> TemplateSig {
        TemplateSig {
            name: self.name.clone(),
            description: self.description.clone(),
            params: self.params.clone(),
            examples: self.examples.clone(),
        }
    }

    /// Places the values into the tree, serializes it, reads the text back and checks that it
    /// is the same tree and a valid Kubernetes object. Params left out take their defaults.
    pub fn render(&self, given: &Params) -> Result<Rendered, RenderError> {
        let mut values: Vec<(&str, String)> = Vec::new();
        for p in &self.params {
            let v = given
                .iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, v)| v)
                .or(p.default.as_ref())
                .ok_or_else(|| RenderError::Missing { template: self.name.clone(), param: p.name.clone() })?;
            values.push((&p.name, v.to_string()));
        }
        let tree = fill(&self.tree, &values);
        let text = yaml::to_text(&tree).map_err(RenderError::Yaml)?;
        let back = yaml::parse(&text).map_err(RenderError::Yaml)?;
        if back != tree {
            return Err(RenderError::RoundTrip);
        }
        let object = kube::validate(&back).map_err(RenderError::Kube)?;
        Ok(Rendered { yaml: text, object })
    }
}

/// Calls `f` on every string in the tree: keys with `true`, values with `false`.
fn walk(node: &Node, f: &mut dyn FnMut(&str, bool)) {
    match node {
        Node::Str(s) => f(s, false),
        Node::Seq(items) => items.iter().for_each(|i| walk(i, f)),
        Node::Map(entries) => {
            for (k, v) in entries {
                f(k, true);
                walk(v, f);
            }
        }
        Node::Null | Node::Bool(_) | Node::Int(_) | Node::Float(_) => {}
    }
}

/// The `{{ name }}` placeholders in a string: their byte ranges and names.
fn placeholders(s: &str) -> Result<Vec<(std::ops::Range<usize>, String)>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = s[from..].find("{{").map(|i| from + i) {
        let close = s[open..].find("}}").map(|i| open + i).ok_or("`{{` without a matching `}}`")?;
        let name = s[open + 2..close].trim();
        if !is_name(name) || name.contains('-') {
            return Err(format!("`{}` is not a placeholder: write `{{{{ param_name }}}}`", &s[open..close + 2]));
        }
        out.push((open..close + 2, name.to_string()));
        from = close + 2;
    }
    Ok(out)
}

/// A copy of the tree with each placeholder replaced by its value's text. Replaced text is
/// never scanned again, so a value holding `{{ x }}` stays those characters.
fn fill(node: &Node, values: &[(&str, String)]) -> Node {
    match node {
        Node::Str(s) => {
            let Ok(found) = placeholders(s) else { return node.clone() };
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for (range, name) in found {
                out.push_str(&s[last..range.start]);
                if let Some((_, v)) = values.iter().find(|(n, _)| *n == name) {
                    out.push_str(v);
                }
                last = range.end;
            }
            out.push_str(&s[last..]);
            Node::Str(out)
        }
        Node::Seq(items) => Node::Seq(items.iter().map(|i| fill(i, values)).collect()),
        Node::Map(entries) => Node::Map(entries.iter().map(|(k, v)| (k.clone(), fill(v, values))).collect()),
        other => other.clone(),
    }
}

/// A plausible value of a param, for checking a template at load.
fn sample(p: &ParamSpec) -> ParamValue {
    if let Some(d) = &p.default {
        return d.clone();
    }
    if let Some(v) = p.values.first().and_then(|v| ParamValue::parse(p.ty, v).ok()) {
        return v;
    }
    match p.ty {
        ParamType::Int => ParamValue::Int(1),
        ParamType::Text => ParamValue::Text("example".into()),
        ParamType::Date => ParamValue::Date(time::macros::date!(2026 - 01 - 01)),
        ParamType::Timestamp => ParamValue::Timestamp(time::macros::datetime!(2026-01-01 0:00 UTC)),
        ParamType::Bool => ParamValue::Bool(true),
        ParamType::Decimal => ParamValue::Decimal("1".into()),
        ParamType::Uuid => ParamValue::Uuid(uuid::Uuid::nil()),
    }
}

#[cfg(test)]
mod tests;
