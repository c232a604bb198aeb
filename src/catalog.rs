//! The catalog: the names a command may use (environments, services, queries, suites,
//! templates), with aliases, built once from the workspace. The grammar resolves names through
//! it, so an alias never survives into a `Command`.

use std::collections::BTreeMap;

use crate::param::ParamSpec;
use crate::queries::file::QueryFile;

#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    pub aliases: Vec<String>,
}

/// A manifest template's signature, as far as the grammar needs it.
#[derive(Clone, Debug)]
pub struct TemplateSig {
    pub name: String,
    pub description: String,
    pub params: Vec<ParamSpec>,
    /// Sentences that ask for this template (`# example:` lines), `{param}` standing for values.
    pub examples: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub envs: Vec<Named>,
    pub default_env: String,
    pub services: Vec<Named>,
    pub queries: BTreeMap<String, QueryFile>,
    pub suites: Vec<String>,
    pub templates: BTreeMap<String, TemplateSig>,
    /// Target databases (`[databases]`), for `db sql`.
    pub databases: Vec<String>,
    /// The identities the config names (team and role members, approvers), sorted: who a bare
    /// name such as "bob" can mean. Wildcards (`local:*`) and `role:` references are left out.
    pub people: Vec<String>,
}

/// A name that did not resolve, with the closest known one if any is close.
#[derive(Debug, PartialEq)]
pub struct Unknown {
    pub hint: Option<String>,
}

impl Catalog {
    pub fn resolve_env(&self, given: &str) -> Result<String, Unknown> {
        resolve(&self.envs, given)
    }

    pub fn resolve_service(&self, given: &str) -> Result<String, Unknown> {
        resolve(&self.services, given)
    }

    pub fn resolve_query(&self, given: &str) -> Result<&QueryFile, Unknown> {
        let lower = given.to_ascii_lowercase();
        self.queries
            .get(&lower)
            .ok_or_else(|| Unknown { hint: closest(self.queries.keys().map(String::as_str), given) })
    }

    pub fn resolve_suite(&self, given: &str) -> Result<String, Unknown> {
        let lower = given.to_ascii_lowercase();
        if self.suites.contains(&lower) {
            return Ok(lower);
        }
        Err(Unknown { hint: closest(self.suites.iter().map(String::as_str), given) })
    }

    pub fn resolve_database(&self, given: &str) -> Result<String, Unknown> {
        match self.databases.iter().find(|d| d.eq_ignore_ascii_case(given)) {
            Some(d) => Ok(d.clone()),
            None => Err(Unknown { hint: closest(self.databases.iter().map(String::as_str), given) }),
        }
    }

    pub fn resolve_template(&self, given: &str) -> Result<&TemplateSig, Unknown> {
        let lower = given.to_ascii_lowercase();
        self.templates
            .get(&lower)
            .ok_or_else(|| Unknown { hint: closest(self.templates.keys().map(String::as_str), given) })
    }

    /// `prod, staging or dev`: for questions and errors.
    pub fn env_choices(&self) -> String {
        or_list(self.envs.iter().map(|n| n.name.as_str()))
    }

    pub fn service_choices(&self) -> String {
        or_list(self.services.iter().map(|n| n.name.as_str()))
    }

    /// The identity a word in a message names: `slack:U0123` as written, a Slack mention
    /// (`<@U0123>`, `<@U0123|bob>`) as its `slack:` identity, or a bare name (`bob`, `@bob`) as
    /// the one known person of that name. `Err` holds the people a bare name could mean: two
    /// or more when it is ambiguous, none when nobody has that name.
    pub fn resolve_person(&self, word: &str) -> Result<String, Vec<&str>> {
        let word = word.trim().trim_end_matches(['.', ',', '!', '?']);
        if let Some(inner) = word.strip_prefix("<@").and_then(|w| w.strip_suffix('>')) {
            let id = inner.split('|').next().unwrap_or_default();
            if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Ok(format!("slack:{id}"));
            }
            return Err(Vec::new());
        }
        let identity_like =
            |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "@._+-:/".contains(c));
        if word.contains(':') && !word.ends_with(':') && !word.starts_with(':') && identity_like(word) {
            return Ok(word.to_string());
        }
        let name = word.trim_start_matches('@');
        if name.is_empty() {
            return Err(Vec::new());
        }
        let matching: Vec<&str> = self
            .people
            .iter()
            .map(String::as_str)
            .filter(|p| p.split_once(':').is_some_and(|(_, n)| n.eq_ignore_ascii_case(name)))
            .collect();
        match matching.as_slice() {
            [one] => Ok(one.to_string()),
            _ => Err(matching),
        }
    }
}

fn resolve(list: &[Named], given: &str) -> Result<String, Unknown> {
    // Compared without allocating: this runs for every service and environment parsed.
    for n in list {
        if n.name.eq_ignore_ascii_case(given) || n.aliases.iter().any(|a| a.eq_ignore_ascii_case(given)) {
            return Ok(n.name.clone());
        }
    }
    let all = list.iter().flat_map(|n| std::iter::once(n.name.as_str()).chain(n.aliases.iter().map(String::as_str)));
    let hint = closest(all, given).map(|h| {
        // Suggest the configured name, not the alias that happened to be closest.
        list.iter().find(|n| n.name == h || n.aliases.contains(&h)).map_or(h, |n| n.name.clone())
    });
    Err(Unknown { hint })
}

/// The most similar candidate, if it is similar enough to be worth suggesting.
pub fn closest<'a>(candidates: impl Iterator<Item = &'a str>, given: &str) -> Option<String> {
    let given = given.to_lowercase();
    candidates
        .map(|c| (strsim::normalized_damerau_levenshtein(&c.to_lowercase(), &given), c))
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

/// `a, b or c`
pub fn or_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs() -> Vec<Named> {
        vec![
            Named { name: "prod".into(), aliases: vec!["production".into(), "live".into()] },
            Named { name: "staging".into(), aliases: vec!["stg".into()] },
        ]
    }

    #[test]
    fn aliases_resolve_to_the_configured_name() {
        assert_eq!(resolve(&envs(), "LIVE"), Ok("prod".into()));
        assert_eq!(resolve(&envs(), "stg"), Ok("staging".into()));
    }

    #[test]
    fn unknown_names_suggest_the_closest_configured_name() {
        assert_eq!(resolve(&envs(), "prodution"), Err(Unknown { hint: Some("prod".into()) }));
        assert_eq!(resolve(&envs(), "stagign"), Err(Unknown { hint: Some("staging".into()) }));
        assert_eq!(resolve(&envs(), "qa"), Err(Unknown { hint: None }));
    }

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(or_list(["prod", "staging", "dev"].into_iter()), "prod, staging or dev");
    }
}
