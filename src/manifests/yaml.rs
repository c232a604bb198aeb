//! An ordered YAML tree: what a template is parsed into and what a rendered manifest is
//! serialized from. Keys stay in the order the template author wrote them, and only string
//! keys exist, which is all Kubernetes objects use.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// What a node is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

/// Why a YAML text was refused, with its 1-based line when the parser knows it.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub line: Option<usize>,
    pub message: String,
}

/// Bounds a template or a rendered manifest can never need; a hostile file hits them first.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_anchors: 50,
            max_depth: 64,
            max_nodes: 20_000,
        },
    }
}

/// Parses exactly one YAML document.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|e| {
        let line = e.location().map(|l| l.line() as usize).filter(|l| *l > 0);
        let message = e.without_snippet().to_string();
        let message = message.lines().next().unwrap_or_default().trim_start_matches("error: ");
        // The position is reported separately; keep the message itself short.
        let message = match message.split_once(": ") {
            Some((at, rest)) if at.starts_with("line ") => rest,
            _ => message,
        };
        YamlError { line, message: message.to_string() }
    })
}

/// The YAML text of a tree, produced by the serializer so every string is quoted or escaped
/// as YAML requires.
pub fn to_text(node: &Node) -> Result<String, YamlError> {
    serde_saphyr::to_string(node).map_err(|e| YamlError { line: None, message: e.to_string() })
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Int(i) => s.serialize_i64(*i),
            Node::Float(f) => s.serialize_f64(*f),
            Node::Str(v) => s.serialize_str(v),
            Node::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v).map(Node::Int).map_err(|_| E::custom(format!("the number {v} is too large")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let Node::Str(key) = key else {
                return Err(de::Error::custom(format!("mapping keys must be strings, not {}", key.kind())));
            };
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &str) {
        let tree = Node::Map(vec![("value".into(), Node::Str(value.into()))]);
        let text = to_text(&tree).unwrap();
        assert_eq!(parse(&text), Ok(tree), "{value:?} became {text:?}");
    }

    #[test]
    fn strings_that_look_like_yaml_survive_a_round_trip_as_strings() {
        for v in [
            "plain",
            "42",
            "true",
            "null",
            "~",
            "a\nb",
            "a\nb\n",
            "---",
            "a\n---\nkind: Secret",
            "...",
            "&anchor x",
            "*alias",
            "{{ email }}",
            "it's \"quoted\"",
            "key: value",
            "# comment",
            " leading",
            "trailing ",
            "- item",
            "[a, b]",
            "{a: b}",
            "!!binary aGk=",
            "%TAG ! x",
            "\t\r\u{1b}[31m",
            "@here <!channel>",
        ] {
            check(v);
        }
    }

    #[test]
    fn key_order_is_kept() {
        let tree = parse("kind: Job\napiVersion: batch/v1\nmetadata: {name: x}\n").unwrap();
        let Node::Map(entries) = &tree else { panic!("not a map") };
        assert_eq!(entries.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["kind", "apiVersion", "metadata"]);
        assert_eq!(to_text(&tree).unwrap(), "kind: Job\napiVersion: batch/v1\nmetadata:\n  name: x\n");
    }

    #[test]
    fn a_second_document_and_broken_yaml_are_refused_with_a_line() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(e.line, Some(3), "{e:?}");
        assert!(e.message.contains("multiple YAML documents"), "{e:?}");
        let e = parse("a: 1\n  b: [\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e:?}");
        assert!(parse("? [a]\n: 1\n").unwrap_err().message.contains("keys must be strings"));
    }
}
