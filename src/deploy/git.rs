//! Versions from git tags: the newest tag matching a pattern, read with the `git` program
//! (argv, never a shell) so that any repository git can read works, bare or not.

use std::path::Path;

use super::{Deployed, VersionError, parse_time};

/// The part of the pattern that every matching tag starts with and that the version leaves
/// out: up to the last `/` before the first `*` (`payments/prod/` of `payments/prod/*`).
fn prefix(pattern: &str) -> &str {
    let fixed = &pattern[..pattern.find(['*', '?', '[']).unwrap_or(pattern.len())];
    &fixed[..fixed.rfind('/').map_or(0, |at| at + 1)]
}

pub async fn read(repo: &Path, shown: &str, pattern: &str) -> Result<Deployed, VersionError> {
    if !repo.exists() {
        return Err(VersionError::Git(format!("the repository `{shown}` does not exist")));
    }
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "for-each-ref",
            "--sort=-v:refname",
            "--sort=-creatordate",
            "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(creatordate:iso-strict)",
        ])
        .arg(format!("refs/tags/{pattern}"))
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VersionError::GitMissing,
            _ => VersionError::Git(format!("cannot run git: {e}")),
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(VersionError::Git(format!("git could not read `{shown}`: {}", err.trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let tags: Vec<(&str, &str, Option<&str>)> = text
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\0');
            let (tag, obj, peeled, date) = (f.next()?, f.next()?, f.next()?, f.next()?);
            let commit = if peeled.is_empty() { obj } else { peeled };
            Some((tag, commit, Some(date).filter(|d| !d.is_empty())))
        })
        .collect();
    let Some((tag, commit, date)) = tags.first() else {
        return Err(VersionError::NoTags { pattern: pattern.to_string(), repo: shown.to_string() });
    };
    let strip = prefix(pattern);
    let version = |t: &str| t.strip_prefix(strip).unwrap_or(t).to_string();
    Ok(Deployed {
        version: version(tag),
        source: format!("git tag {tag} in {shown}"),
        commit: Some(commit.chars().take(12).collect()),
        deployed_at: date.and_then(parse_time),
        history: tags.iter().rev().map(|(t, _, _)| version(t)).collect(),
        detail: None,
    })
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn the_prefix_ends_at_the_last_slash_before_a_wildcard() {
        assert_eq!(prefix("payments/prod/*"), "payments/prod/");
        assert_eq!(prefix("v*"), "");
        assert_eq!(prefix("deploy/prod/v[0-9]*"), "deploy/prod/");
        assert_eq!(prefix("exact/tag"), "exact/");
    }
}
