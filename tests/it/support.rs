//! Shared fixtures: a fresh demo workspace per test, the binary, and the database servers.

#![allow(dead_code)] // each test module uses its own subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A demo workspace written by `lazyops init` into a temporary directory.
pub struct Ws {
    pub dir: tempfile::TempDir,
}

impl Ws {
    pub fn new() -> Ws {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(bin()).arg("init").arg(dir.path()).output().expect("run lazyops init");
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        Ws { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("lazyops.toml")
    }

    /// Replaces text in a workspace file (config, queries, ...).
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.dir.path().join(file);
        let text = std::fs::read_to_string(&path).expect("read workspace file");
        assert!(text.contains(from), "{file} does not contain {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write workspace file");
    }

    pub fn write(&self, file: &str, text: &str) {
        let path = self.dir.path().join(file);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    /// `lazyops --config <ws> --as <who> <args>`
    pub fn cmd(&self, who: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.path())
            .env_remove("LAZYOPS_CONFIG")
            .env_remove("LAZYOPS_STATE_URL")
            .arg("--config")
            .arg(self.config())
            .arg("--as")
            .arg(who)
            .args(args);
        c
    }

    pub fn run(&self, who: &str, args: &[&str]) -> Run {
        Run::from(self.cmd(who, args).output().expect("run lazyops"))
    }

    pub fn run_stdin(&self, who: &str, args: &[&str], stdin: &[u8]) -> Run {
        let mut child = self
            .cmd(who, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
        Run::from(child.wait_with_output().expect("wait"))
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_lazyops")
}

/// The PostgreSQL server of SERVICES.md, or `None` with a printed notice (CI always sets it).
pub fn postgres_url() -> Option<String> {
    server_url("LAZYOPS_TEST_POSTGRES_URL")
}

pub fn mysql_url() -> Option<String> {
    server_url("LAZYOPS_TEST_MYSQL_URL")
}

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var_os("LAZYOPS_REQUIRE_SERVERS").is_none(),
                "{var} must be set when LAZYOPS_REQUIRE_SERVERS is"
            );
            eprintln!("skipping: {var} is not set");
            None
        }
    }
}

/// A unique name for a per-test database or schema.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh PostgreSQL database for one test, dropped when the value is.
pub struct PgDb {
    admin: String,
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub fn new(admin: &str) -> PgDb {
        let name = unique_name("lazyops_t");
        pg_admin(admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        PgDb { admin: admin.to_string(), url: format!("{base}/{name}"), name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        pg_admin(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// Runs one admin statement on its own thread and runtime, so it works from sync and async tests.
pub fn pg_admin(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        use sqlx::Connection;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect to the test PostgreSQL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(&mut conn).await.expect("admin statement");
        });
    })
    .join()
    .expect("admin thread");
}
