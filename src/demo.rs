//! The demo data behind the embedded default: users, orders, payments and ledger entries,
//! realistic enough that every demo query returns rows, generated from a seed so tests can
//! load the very same rows into SQLite, PostgreSQL and MariaDB.

use std::path::{Path, PathBuf};

use sqlx::{MySqlPool, PgPool, SqlitePool};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// Bumped when the generated data changes, so materialised demos are rebuilt.
pub const DATA_VERSION: u32 = 1;

/// A connection to one of the three engines the demo data loads into.
pub enum DemoDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

const TABLES: &[&str] = &[
    "CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE, name VARCHAR(255) NOT NULL, status VARCHAR(32) NOT NULL, created_at {ts} NOT NULL)",
    "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL REFERENCES users(id), total_cents BIGINT NOT NULL, currency VARCHAR(3) NOT NULL, status VARCHAR(32) NOT NULL, created_at {ts} NOT NULL)",
    "CREATE TABLE payments (id VARCHAR(32) PRIMARY KEY, order_id BIGINT NOT NULL REFERENCES orders(id), user_id BIGINT NOT NULL, amount_cents BIGINT NOT NULL, currency VARCHAR(3) NOT NULL, status VARCHAR(32) NOT NULL, failure_reason VARCHAR(255), created_at {ts} NOT NULL)",
    "CREATE TABLE ledger_entries (id BIGINT PRIMARY KEY, payment_id VARCHAR(32) NOT NULL REFERENCES payments(id), account VARCHAR(64) NOT NULL, direction VARCHAR(6) NOT NULL, amount_cents BIGINT NOT NULL, created_at {ts} NOT NULL)",
];

const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor", "walter", "yara",
];
const LAST: &[&str] =
    &["smith", "jones", "garcia", "chen", "okafor", "novak", "silva", "kim", "murphy", "rossi", "haddad", "larsen"];
const REASONS: &[&str] =
    &["card_declined", "insufficient_funds", "expired_card", "processing_error", "fraud_suspected"];
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP"];

/// splitmix64: tiny, seedable, good enough for demo rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub status: &'static str,
    pub created_at: PrimitiveDateTime,
}

pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub total_cents: i64,
    pub currency: String,
    pub status: &'static str,
    pub created_at: PrimitiveDateTime,
}

pub struct Payment {
    pub id: String,
    pub order_id: i64,
    pub user_id: i64,
    pub amount_cents: i64,
    pub currency: String,
    pub status: &'static str,
    pub failure_reason: Option<String>,
    pub created_at: PrimitiveDateTime,
}

pub struct Entry {
    pub id: i64,
    pub payment_id: String,
    pub account: &'static str,
    pub direction: &'static str,
    pub amount_cents: i64,
    pub created_at: PrimitiveDateTime,
}

pub struct Data {
    pub users: Vec<User>,
    pub orders: Vec<Order>,
    pub payments: Vec<Payment>,
    pub entries: Vec<Entry>,
}

fn at(now: OffsetDateTime, minutes_ago: i64) -> PrimitiveDateTime {
    let t = now - Duration::minutes(minutes_ago);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    PrimitiveDateTime::new(t.date(), t.time())
}

/// The demo rows for `users` users, relative to `now` so "recent" queries find rows.
pub fn generate(now: OffsetDateTime, seed: u64, users: usize) -> Data {
    let now = now.to_offset(time::UtcOffset::UTC);
    let mut rng = Rng(seed);
    let mut data = Data { users: Vec::new(), orders: Vec::new(), payments: Vec::new(), entries: Vec::new() };
    for i in 0..users {
        let id = i as i64 + 1;
        let first = FIRST[i % FIRST.len()];
        let last = rng.pick(LAST);
        // The first users get the short addresses that examples use (alice@example.com).
        let email =
            if i < FIRST.len() { format!("{first}@example.com") } else { format!("{first}.{last}{id}@example.com") };
        // Most signed up over the last year; every tenth in the last week.
        let minutes = if i % 10 == 3 { rng.below(7 * 24 * 60) } else { rng.below(400 * 24 * 60) + 8 * 24 * 60 } as i64;
        let status = match rng.below(20) {
            0 => "suspended",
            1 => "deleted",
            _ => "active",
        };
        data.users.push(User {
            id,
            email,
            name: format!("{}{} {}{}", &first[..1].to_uppercase(), &first[1..], &last[..1].to_uppercase(), &last[1..]),
            status,
            created_at: at(now, minutes),
        });
        for _ in 0..(1 + rng.below(4)) {
            let order_id = data.orders.len() as i64 + 1001;
            let minutes = rng.below(90 * 24 * 60) as i64;
            let currency = rng.pick(CURRENCIES).to_string();
            let total = 500 + rng.below(25_000) as i64;
            let failed = rng.below(8) == 0;
            let order_status = if failed {
                "cancelled"
            } else {
                ["paid", "shipped", "shipped", "placed", "refunded"][rng.below(5) as usize]
            };
            data.orders.push(Order {
                id: order_id,
                user_id: id,
                total_cents: total,
                currency: currency.clone(),
                status: order_status,
                created_at: at(now, minutes),
            });
            let pay_id = if data.payments.is_empty() {
                "pay_8f3k2".to_string()
            } else {
                format!("pay_{}", base36(rng.next(), 5))
            };
            let (status, reason) = match (failed, order_status) {
                (true, _) => ("failed", Some(rng.pick(REASONS).to_string())),
                (false, "placed") => ("pending", None),
                (false, "refunded") => ("refunded", None),
                _ => ("succeeded", None),
            };
            let paid_at = at(now, (minutes - 2).max(0));
            if status == "succeeded" {
                for (account, direction) in [("customer_funds", "debit"), ("revenue", "credit")] {
                    let entry_id = data.entries.len() as i64 + 1;
                    data.entries.push(Entry {
                        id: entry_id,
                        payment_id: pay_id.clone(),
                        account,
                        direction,
                        amount_cents: total,
                        created_at: paid_at,
                    });
                }
            }
            data.payments.push(Payment {
                id: pay_id,
                order_id,
                user_id: id,
                amount_cents: total,
                currency,
                status,
                failure_reason: reason,
                created_at: paid_at,
            });
        }
    }
    data
}

fn base36(mut n: u64, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..len)
        .map(|_| {
            let d = DIGITS[(n % 36) as usize] as char;
            n /= 36;
            d
        })
        .collect()
}

/// SQLite stores timestamps as text; this is the form its date functions compare with.
fn sqlite_ts(t: &PrimitiveDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(fmt).unwrap_or_default()
}

/// Inserts rows one statement per row inside one transaction; the same SQL, bound per driver.
macro_rules! load {
    ($pool:expr, $data:expr, $ts:expr, $style:expr) => {{
        let mut tx = $pool.begin().await?;
        let sql = |s: &str| -> Result<String, sqlx::Error> {
            crate::queries::file::rewrite_placeholders(s, $style).map(|p| p.sql).map_err(sqlx::Error::Protocol)
        };
        let users = sql("INSERT INTO users (id, email, name, status, created_at) VALUES (:a, :b, :c, :d, :e)")?;
        for u in &$data.users {
            sqlx::query(sqlx::AssertSqlSafe(users.clone()))
                .bind(u.id).bind(&u.email).bind(&u.name).bind(u.status).bind($ts(&u.created_at))
                .execute(&mut *tx).await?;
        }
        let orders = sql("INSERT INTO orders (id, user_id, total_cents, currency, status, created_at) VALUES (:a, :b, :c, :d, :e, :f)")?;
        for o in &$data.orders {
            sqlx::query(sqlx::AssertSqlSafe(orders.clone()))
                .bind(o.id).bind(o.user_id).bind(o.total_cents).bind(&o.currency).bind(o.status).bind($ts(&o.created_at))
                .execute(&mut *tx).await?;
        }
        let payments = sql("INSERT INTO payments (id, order_id, user_id, amount_cents, currency, status, failure_reason, created_at) VALUES (:a, :b, :c, :d, :e, :f, :g, :h)")?;
        for p in &$data.payments {
            sqlx::query(sqlx::AssertSqlSafe(payments.clone()))
                .bind(&p.id).bind(p.order_id).bind(p.user_id).bind(p.amount_cents).bind(&p.currency).bind(p.status)
                .bind(p.failure_reason.as_deref()).bind($ts(&p.created_at))
                .execute(&mut *tx).await?;
        }
        let entries = sql("INSERT INTO ledger_entries (id, payment_id, account, direction, amount_cents, created_at) VALUES (:a, :b, :c, :d, :e, :f)")?;
        for e in &$data.entries {
            sqlx::query(sqlx::AssertSqlSafe(entries.clone()))
                .bind(e.id).bind(&e.payment_id).bind(e.account).bind(e.direction).bind(e.amount_cents).bind($ts(&e.created_at))
                .execute(&mut *tx).await?;
        }
        tx.commit().await
    }};
}

/// Creates the demo tables and loads the rows.
pub async fn seed(db: &DemoDb, data: &Data) -> Result<(), sqlx::Error> {
    use crate::queries::file::Dialect;
    let ts_type = match db {
        DemoDb::Mysql(_) => "DATETIME",
        _ => "TIMESTAMP",
    };
    for ddl in TABLES {
        let ddl = sqlx::AssertSqlSafe(ddl.replace("{ts}", ts_type));
        match db {
            DemoDb::Sqlite(p) => sqlx::query(ddl).execute(p).await.map(drop)?,
            DemoDb::Postgres(p) => sqlx::query(ddl).execute(p).await.map(drop)?,
            DemoDb::Mysql(p) => sqlx::query(ddl).execute(p).await.map(drop)?,
        }
    }
    match db {
        DemoDb::Sqlite(p) => load!(p, data, sqlite_ts, Dialect::Sqlite),
        DemoDb::Postgres(p) => load!(p, data, |t: &PrimitiveDateTime| *t, Dialect::Postgres),
        DemoDb::Mysql(p) => load!(p, data, |t: &PrimitiveDateTime| *t, Dialect::Mysql),
    }
}

/// The demo's SQLite databases, one per environment, with different amounts of data.
pub async fn create_databases(dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for (file, seed, users) in [("users.db", 42, 120), ("users-staging.db", 7, 40), ("users-dev.db", 3, 15)] {
        let path = dir.join(file);
        if path.exists() {
            if !overwrite {
                continue;
            }
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.map_err(|e| format!("{}: {e}", path.display()))?;
        let data = generate(OffsetDateTime::now_utc(), seed, users);
        seed_db(&pool, &data).await.map_err(|e| format!("{}: {e}", path.display()))?;
        pool.close().await;
        written.push(path);
    }
    Ok(written)
}

async fn seed_db(pool: &SqlitePool, data: &Data) -> Result<(), sqlx::Error> {
    seed(&DemoDb::Sqlite(pool.clone()), data).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_examples_talk_about_exist() {
        let d = generate(OffsetDateTime::now_utc(), 42, 120);
        assert!(d.users.iter().any(|u| u.id == 42));
        assert!(d.users.iter().any(|u| u.email == "alice@example.com"));
        assert!(d.payments.iter().any(|p| p.id == "pay_8f3k2"));
        assert!(d.payments.iter().filter(|p| p.status == "failed").count() >= 5);
        let week_ago = at(OffsetDateTime::now_utc(), 7 * 24 * 60);
        assert!(d.users.iter().filter(|u| u.created_at > week_ago).count() >= 5);
        let mut ids: Vec<&str> = d.payments.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), d.payments.len(), "payment ids are unique");
    }
}

/// The demo's release history: (tag, days ago). Releases are commits; an environment's
/// deployments are tags `<service>/<env>/<version>` on them, as a deploy script might push.
const RELEASES: &[(&str, &str, i64)] = &[
    ("payments", "v1.0.0", 40),
    ("payments", "v1.1.0", 30),
    ("payments", "v1.2.0", 20),
    ("payments", "v1.3.0", 10),
    ("payments", "v1.4.0", 3),
    ("payments", "v1.5.0-rc.1", 1),
    ("users", "v2.3.0", 25),
    ("users", "v2.3.1", 12),
    ("ledger", "v0.9.0", 35),
    ("ledger", "v0.9.2", 6),
];

const DEPLOYS: &[(&str, &str, &str, i64)] = &[
    ("payments", "prod", "v1.0.0", 39),
    ("payments", "prod", "v1.1.0", 28),
    ("payments", "prod", "v1.2.0", 18),
    ("payments", "staging", "v1.1.0", 29),
    ("payments", "staging", "v1.2.0", 19),
    ("payments", "staging", "v1.3.0", 9),
    ("payments", "staging", "v1.4.0", 2),
    ("payments", "dev", "v1.4.0", 3),
    ("payments", "dev", "v1.5.0-rc.1", 1),
    ("users", "prod", "v2.3.0", 24),
    ("users", "prod", "v2.3.1", 11),
    ("users", "staging", "v2.3.1", 12),
    ("ledger", "prod", "v0.9.0", 34),
    ("ledger", "staging", "v0.9.2", 5),
];

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(
        "the `git` program is not installed or not on PATH, so the demo has no release repository; `deploy version` will say so"
    )]
    GitMissing,
    #[error("git {args} failed in {dir}: {stderr}")]
    Git { args: String, dir: String, stderr: String },
    #[error("cannot prepare {0}: {1}")]
    Io(String, std::io::Error),
}

/// Runs one git command in `dir` with a fixed identity and date, ignoring the user's git config
/// (a global `commit.gpgsign` must not break the demo).
fn git(dir: &Path, args: &[&str], when: OffsetDateTime) -> Result<String, RepoError> {
    let date = format!("{} +0000", when.unix_timestamp());
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "lazyops demo")
        .env("GIT_AUTHOR_EMAIL", "demo@lazyops.invalid")
        .env("GIT_COMMITTER_NAME", "lazyops demo")
        .env("GIT_COMMITTER_EMAIL", "demo@lazyops.invalid")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RepoError::GitMissing,
            _ => RepoError::Io("git".into(), e),
        })?;
    if !out.status.success() {
        return Err(RepoError::Git {
            args: args.join(" "),
            dir: dir.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The local git repository `deploy version` reads in the demo: one commit per release and
/// annotated tags per environment, dated in the past relative to `now`. Kept when it exists
/// and `overwrite` is false.
pub fn create_release_repo(dir: &Path, overwrite: bool, now: OffsetDateTime) -> Result<Option<PathBuf>, RepoError> {
    if dir.exists() {
        if !overwrite {
            return Ok(None);
        }
        std::fs::remove_dir_all(dir).map_err(|e| RepoError::Io(dir.display().to_string(), e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| RepoError::Io(dir.display().to_string(), e))?;
    let ago = |days: i64| now - Duration::days(days);
    git(dir, &["init", "-q"], ago(41))?;
    let mut commits = std::collections::BTreeMap::new();
    let mut releases: Vec<&(&str, &str, i64)> = RELEASES.iter().collect();
    releases.sort_by_key(|r| -r.2);
    for (service, version, days) in releases {
        let file = dir.join(format!("{service}.version"));
        std::fs::write(&file, format!("{version}\n")).map_err(|e| RepoError::Io(file.display().to_string(), e))?;
        git(dir, &["add", "-A"], ago(*days))?;
        git(dir, &["commit", "-q", "-m", &format!("{service} {version}")], ago(*days))?;
        let sha = git(dir, &["rev-parse", "HEAD"], ago(*days))?;
        commits.insert((*service, *version), sha);
    }
    for (service, env, version, days) in DEPLOYS {
        let Some(sha) = commits.get(&(*service, *version)) else { continue };
        let tag = format!("{service}/{env}/{version}");
        git(dir, &["tag", "-a", &tag, sha, "-m", &format!("deploy {service} {version} to {env}")], ago(*days))?;
    }
    Ok(Some(dir.to_path_buf()))
}
