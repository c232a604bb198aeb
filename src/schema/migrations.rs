//! A service's migration files: sqlx's `NNNN_name.sql` (or `NNNN_name.up.sql`), or the
//! `*.up.sql` of golang-migrate and friends, in version order. Down files never run.

use std::path::{Path, PathBuf};

use crate::config::MigrationFiles;

#[derive(Clone, Debug, PartialEq)]
pub struct Migration {
    pub version: i64,
    pub file: String,
    pub sql: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MigrationsError {
    #[error("the migrations directory `{0}` does not exist")]
    Missing(PathBuf),
    #[error("the migrations directory `{0}` holds no migration files (NNNN_name.sql or NNNN_name.up.sql)")]
    Empty(PathBuf),
    #[error("migration file `{0}` does not start with a version number (like 0001_create_users.sql)")]
    BadName(String),
    #[error("migration files `{0}` and `{1}` have the same version {2}")]
    Duplicate(String, String, i64),
    #[error("migration file `{0}` cannot be read: {1}")]
    Unreadable(String, String),
}

/// The files to apply, oldest first.
pub fn load(dir: &Path, style: MigrationFiles) -> Result<Vec<Migration>, MigrationsError> {
    let entries = std::fs::read_dir(dir).map_err(|_| MigrationsError::Missing(dir.to_path_buf()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    let up_only = match style {
        MigrationFiles::Up => true,
        MigrationFiles::Sqlx => false,
        MigrationFiles::Auto => names.iter().any(|n| n.ends_with(".up.sql")),
    };
    let mut out: Vec<Migration> = Vec::new();
    for name in names {
        if name.ends_with(".down.sql") || (up_only && !name.ends_with(".up.sql")) {
            continue;
        }
        let version = version_of(&name).ok_or_else(|| MigrationsError::BadName(name.clone()))?;
        let sql = std::fs::read_to_string(dir.join(&name))
            .map_err(|e| MigrationsError::Unreadable(name.clone(), e.to_string()))?;
        if let Some(other) = out.iter().find(|m| m.version == version) {
            return Err(MigrationsError::Duplicate(other.file.clone(), name, version));
        }
        out.push(Migration { version, file: name, sql });
    }
    if out.is_empty() {
        return Err(MigrationsError::Empty(dir.to_path_buf()));
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

/// The leading digits of `0003_add_index.sql` (3), when followed by `_`, `.` or `-`.
fn version_of(name: &str) -> Option<i64> {
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    let rest = &name[digits.len()..];
    if digits.is_empty() || !(rest.starts_with('_') || rest.starts_with('.') || rest.starts_with('-')) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(d.path().join(f), "SELECT 1;").unwrap();
        }
        d
    }

    fn check(files: &[&str], style: MigrationFiles, want: Result<Vec<&str>, &str>) {
        let d = dir(files);
        let got = load(d.path(), style).map(|ms| ms.into_iter().map(|m| m.file).collect::<Vec<_>>());
        match want {
            Ok(names) => assert_eq!(got.unwrap(), names),
            Err(msg) => assert!(got.as_ref().unwrap_err().to_string().contains(msg), "{got:?}"),
        }
    }

    #[test]
    fn sqlx_files_run_in_version_order() {
        check(
            &["0002_b.sql", "0001_a.sql", "10_c.sql", "README.md"],
            MigrationFiles::Auto,
            Ok(vec!["0001_a.sql", "0002_b.sql", "10_c.sql"]),
        );
    }

    #[test]
    fn up_files_are_picked_and_down_files_skipped() {
        check(
            &["1_a.up.sql", "1_a.down.sql", "2_b.up.sql"],
            MigrationFiles::Auto,
            Ok(vec!["1_a.up.sql", "2_b.up.sql"]),
        );
    }

    #[test]
    fn bad_names_duplicates_and_empty_directories_are_errors() {
        check(&["init.sql"], MigrationFiles::Sqlx, Err("`init.sql` does not start with a version number"));
        check(&["1_a.sql", "0001_b.sql"], MigrationFiles::Sqlx, Err("have the same version 1"));
        check(&[], MigrationFiles::Auto, Err("holds no migration files"));
        let missing = load(Path::new("/nonexistent/migrations"), MigrationFiles::Auto).unwrap_err();
        assert_eq!(missing.to_string(), "the migrations directory `/nonexistent/migrations` does not exist");
    }
}
