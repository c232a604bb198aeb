use super::*;
use crate::manifests::yaml;

const DEMO: &str = include_str!("../../../examples/manifests/update-user-email.yaml");

fn demo() -> Template {
    Template::parse(DEMO, Path::new("manifests/update-user-email.yaml")).unwrap()
}

fn params(user_id: i64, email: &str) -> Params {
    vec![("user_id".into(), ParamValue::Int(user_id)), ("email".into(), ParamValue::Text(email.into()))]
}

/// The env value the rendered Job will hand the container, read back with a YAML parser.
fn env_value(rendered: &Rendered, var: &str) -> String {
    let tree = yaml::parse(&rendered.yaml).unwrap();
    let containers =
        tree.get("spec").and_then(|s| s.get("template")).and_then(|t| t.get("spec")).and_then(|s| s.get("containers"));
    let Some(Node::Seq(cs)) = containers else { panic!("no containers in {}", rendered.yaml) };
    let Some(Node::Seq(env)) = cs[0].get("env") else { panic!("no env") };
    let var = env.iter().find(|e| e.get("name").and_then(Node::as_str) == Some(var)).expect("env var");
    var.get("value").and_then(Node::as_str).expect("string value").to_string()
}

fn problems(text: &str) -> Vec<String> {
    Template::parse(text, Path::new("t.yaml")).unwrap_err().iter().map(ToString::to_string).collect()
}

#[test]
fn the_demo_template_declares_its_typed_params() {
    let t = demo();
    assert_eq!(t.name, "update-user-email");
    let sig: Vec<(String, &str)> = t.params.iter().map(|p| (p.name.clone(), p.ty.name())).collect();
    assert_eq!(sig, [("user_id".to_string(), "int"), ("email".to_string(), "text")]);
}

#[test]
fn the_demo_renders_a_job_that_round_trips() {
    let r = demo().render(&params(42, "new@example.com")).unwrap();
    assert_eq!(r.object.kind, kube::Kind::Job);
    assert_eq!(r.object.name, "update-user-email-42");
    assert_eq!(r.object.namespace.as_deref(), Some("users"));
    assert_eq!(env_value(&r, "USER_ID"), "42");
    assert_eq!(env_value(&r, "NEW_EMAIL"), "new@example.com");
    insta::assert_snapshot!(r.yaml);
}

#[test]
fn hostile_values_stay_inert_strings() {
    for email in [
        "a@example.com\n---\napiVersion: v1\nkind: Secret",
        "x\"\n  - name: EVIL\n    value: y",
        "{{ user_id }}",
        "&anchor a@example.com",
        "*anchor",
        "<<: *anchor",
        "--- a@example.com",
        "a@example.com # not a comment",
        "'single' \"double\" \\back",
        "!!binary aGk=",
        "true",
        "null",
        "\t\u{7f}\u{1b}[31m",
    ] {
        let r = demo().render(&params(7, email)).unwrap();
        assert_eq!(env_value(&r, "NEW_EMAIL"), email, "rendered:\n{}", r.yaml);
        // A document separator or a top-level key would only count at the start of a line.
        assert!(!r.yaml.lines().any(|l| l.starts_with("---") || l.starts_with("kind: Secret")), "{}", r.yaml);
    }
}

#[test]
fn a_value_that_breaks_the_object_is_refused() {
    let t = Template::parse(&DEMO.replace("update-user-email-{{ user_id }}", "fix-{{ email }}"), Path::new("t.yaml"))
        .unwrap();
    let e = t.render(&params(1, "Not A Label")).unwrap_err();
    assert!(matches!(e, RenderError::Kube(KubeError::NotALabel { .. })), "{e}");
    let e = t.render(&params(1, "a\n---\nb")).unwrap_err();
    assert!(matches!(e, RenderError::Kube(KubeError::NotALabel { .. })), "{e}");
}

#[test]
fn placeholders_must_be_declared_and_used() {
    let text = DEMO.replace("# param: email text \"the new email address\"\n", "# param: note text\n");
    let got = problems(&text);
    assert!(got.iter().any(|p| p.starts_with("t.yaml:4: param `note` is declared but")), "{got:?}");
    assert!(got.iter().any(|p| p.contains("placeholder `{{ email }}` has no `# param: email <type>` line")), "{got:?}");
    let line = DEMO.lines().position(|l| l.contains("{{ email }}")).unwrap() + 1;
    assert!(got.iter().any(|p| p.starts_with(&format!("t.yaml:{line}:"))), "{got:?}");
}

#[test]
fn header_and_yaml_problems_name_their_line() {
    let got = problems("# name: Bad Name\n# colour: blue\n# param: x integer-ish\nkind: [\n");
    assert!(got.iter().any(|p| p.starts_with("t.yaml:1: manifest name")), "{got:?}");
    assert!(got.iter().any(|p| p.starts_with("t.yaml:2: unknown header `colour`")), "{got:?}");
    assert!(got.iter().any(|p| p.starts_with("t.yaml:3: param `x` has unknown type")), "{got:?}");
    assert!(
        got.iter().any(|p| p.starts_with("t.yaml:5: not valid YAML") || p.starts_with("t.yaml:4: not valid YAML")),
        "{got:?}"
    );
    let got = problems("# name: x\nkind: Job\n---\nkind: Job\n");
    assert!(got.iter().any(|p| p.contains("multiple YAML documents")), "{got:?}");
    let got = problems("# name: x\n# param: a text\nkind: Job\n\"{{ a }}\": v\n");
    assert!(got.iter().any(|p| p.contains("values only, not in keys")), "{got:?}");
    let got = problems("# name: x\nkind: \"{{ not closed\"\n");
    assert!(got.iter().any(|p| p.starts_with("t.yaml:2: `{{` without a matching `}}`")), "{got:?}");
}

#[test]
fn a_template_that_cannot_make_a_valid_object_is_refused_at_load() {
    let got = problems(&DEMO.replace("kind: Job", "kind: Secret"));
    let line = DEMO.lines().position(|l| l.starts_with("kind: Job")).expect("the demo is a Job") + 1;
    let expected = format!(
        "t.yaml:{line}: with sample values, the rendered manifest is not a valid Kubernetes object: kind `Secret`"
    );
    assert!(got.iter().any(|p| p.starts_with(&expected)), "{got:?}");
}

#[test]
fn example_lines_are_kept_for_the_intent_layer() {
    let t = demo();
    assert!(t.examples.len() >= 10, "{:?}", t.examples);
    assert_eq!(t.examples[0], "change the email of user {user_id} to {email}");
    assert_eq!(t.sig().examples, t.examples);
    let got = problems("# name: x\n# examp1e: y\nkind: Job\n");
    assert!(got.iter().any(|p| p.contains("use name, description, param or example")), "{got:?}");
}
