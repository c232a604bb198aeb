use super::*;

fn check(sql: &str, dialect: Dialect) -> Result<(), String> {
    let allow = ["team_udf".to_string(), "reports.monthly".to_string()];
    let deny = ["my_udf".to_string(), "upper".to_string()];
    check_sql(sql, dialect, Functions { allow: &allow, deny: &deny }).map_err(|e| e.to_string())
}

fn all(sql: &str) -> Vec<Result<(), String>> {
    [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql].map(|d| check(sql, d)).to_vec()
}

fn refused_everywhere(sql: &str, says: &str) {
    for (i, r) in all(sql).into_iter().enumerate() {
        let err = r.err().unwrap_or_else(|| panic!("dialect {i} let through {sql}"));
        assert!(err.contains(says), "dialect {i}, {sql}: {err}");
    }
}

#[test]
fn read_only_statements_pass() {
    for sql in [
        "SELECT id FROM users WHERE id = 1",
        "WITH recent AS (SELECT * FROM users) SELECT count(*) FROM recent",
        "SELECT a FROM t UNION SELECT b FROM u",
        "VALUES (1), (2)",
        "EXPLAIN SELECT 1",
        "SELECT lower(email), COUNT(*), coalesce(max(id), 0) FROM users GROUP BY 1",
        "SELECT row_number() OVER (ORDER BY id), LAG(id) OVER (ORDER BY id) FROM users",
        "SELECT CAST(id AS TEXT), round(abs(-1.5)), substr(email, 1, 3) FROM users",
        "SELECT team_udf(id) FROM users",
        "SELECT 1 /* a plain comment */ -- and another\n",
    ] {
        assert!(all(sql).iter().all(Result::is_ok), "{sql}: {:?}", all(sql));
    }
}

#[test]
fn writes_are_refused_in_every_dialect() {
    for sql in [
        "DELETE FROM users",
        "UPDATE users SET email = 'x'",
        "INSERT INTO users VALUES (1)",
        "DROP TABLE users",
        "TRUNCATE users",
        "ALTER TABLE users ADD COLUMN x int",
        "GRANT ALL ON users TO public",
        "CALL do_things()",
        "SELECT 1; DELETE FROM users",
        "SELECT 1; -- harmless\nDROP TABLE users",
        "SELECT 1 /* ; */ ; UPDATE users SET id = 1",
    ] {
        for (i, r) in all(sql).into_iter().enumerate() {
            assert!(r.is_err(), "dialect {i} let through {sql}");
        }
    }
}

#[test]
fn postgres_specific_writes_are_refused() {
    let pg = |sql| check(sql, Dialect::Postgres);
    assert!(pg("WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone").unwrap_err().contains("read-only"));
    assert_eq!(pg("SELECT * INTO backup FROM users").unwrap_err(), "`SELECT … INTO` writes a table and is not allowed");
    assert!(pg("SELECT * FROM users FOR UPDATE").unwrap_err().contains("row locks"));
    assert!(pg("COPY users TO '/tmp/x'").is_err());
    assert!(pg("SELECT pg_sleep(10)").unwrap_err().contains("`pg_sleep` is not on the PostgreSQL allow-list"));
    assert!(pg("SELECT pg_catalog.pg_terminate_backend(1)").unwrap_err().contains("pg_catalog.pg_terminate_backend"));
    assert!(pg("SELECT * FROM dblink('x', 'select 1') AS t(a int)").unwrap_err().contains("dblink"));
    assert!(pg("SELECT my_udf(1)").unwrap_err().contains("`my_udf` is on the config's `deny_functions`"));
}

#[test]
fn mysql_specific_calls_are_refused() {
    let my = |sql| check(sql, Dialect::Mysql);
    assert!(my("SELECT SLEEP(5)").unwrap_err().contains("`sleep`"));
    assert!(my("SELECT BENCHMARK(1000000, MD5('x'))").unwrap_err().contains("benchmark"));
    assert!(my("SELECT LOAD_FILE('/etc/passwd')").unwrap_err().contains("load_file"));
    assert!(my("SELECT * FROM users INTO OUTFILE '/tmp/x'").is_err());
}

#[test]
fn issue_17_executable_comments_are_refused_not_read_as_comments() {
    for sql in [
        "SELECT 1 /*M!, SLEEP(3) */",
        "SELECT id FROM users /*M! INTO OUTFILE '/tmp/x' */",
        "SELECT 1 /*M!100000 , LOAD_FILE('/etc/hostname') */",
        "/*M!SET STATEMENT max_statement_time=0 FOR*/ SELECT id FROM users",
        "SELECT 1 /*m!, SLEEP(3) */",
        "SELECT 1\n  /*M!, SLEEP(3) */",
    ] {
        refused_everywhere(sql, "is not a comment to MySQL and MariaDB");
    }
    // The MySQL tokenizer expands `/*! … */` as the server does, so what it holds is checked
    // like the rest; the other dialects refuse the comment.
    for sql in ["SELECT 1 /*!50000 , SLEEP(3) */", "SELECT 1 /*!, SLEEP(3) */"] {
        let [lite, pg, my] = [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql].map(|d| check(sql, d));
        assert!(lite.unwrap_err().contains("is not a comment"), "{sql}");
        assert!(pg.unwrap_err().contains("is not a comment"), "{sql}");
        assert!(my.unwrap_err().contains("`sleep` is not on the MySQL/MariaDB allow-list"), "{sql}");
    }
    assert!(check("SELECT id FROM users /*!50000 INTO OUTFILE '/tmp/x' */", Dialect::Mysql).is_err());
    let err = check_sql("SELECT 1\n\n /*M!100000 , SLEEP(3) */", Dialect::Mysql, Functions::NONE).unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert!(err.to_string().starts_with("`/*M!… */`"), "{err}");
    // The same text inside a string is data, not a comment.
    assert!(all("SELECT '/*M!, SLEEP(3) */' AS note").iter().all(Result::is_ok));
}

#[test]
fn issue_17_mysql_optimizer_hints_and_session_assignments_are_refused() {
    let my = |sql| check(sql, Dialect::Mysql).unwrap_err();
    assert!(my("SELECT /*+ SET_VAR(max_execution_time=0) */ id FROM users").contains("optimizer hints"));
    assert!(my("SELECT @n := id FROM users").contains("session variable"));
}

#[test]
fn issue_17_unicode_escaped_identifiers_are_refused() {
    let pg = |sql| check(sql, Dialect::Postgres).unwrap_err();
    for sql in [
        r#"SELECT U&"pg\005fsleep"(3)"#,
        r#"SELECT U&"pg\005fread\005ffile"('/etc/hostname')"#,
        r#"SELECT U&"pg\005fterminate\005fbackend"(pid) FROM pg_stat_activity"#,
        r#"SELECT u&"set\005fconfig"('a.b', 'c', false)"#,
        r#"SELECT id FROM U&"us\0065rs""#,
    ] {
        assert!(pg(sql).contains("unicode-escaped identifiers"), "{sql}: {}", pg(sql));
    }
    // A column named u, bitwise-and a quoted column, is not an escape.
    assert!(check(r#"SELECT u & "flags" FROM t"#, Dialect::Postgres).is_ok());
    assert!(check("SELECT U&'d\\0061t\\+000061' AS s", Dialect::Postgres).is_ok());
}

#[test]
fn issue_17_names_are_compared_as_the_server_resolves_them() {
    let pg = |sql| check(sql, Dialect::Postgres);
    // Quoting keeps case on PostgreSQL: "LOWER" is not lower.
    assert!(pg(r#"SELECT "lower"(email) FROM users"#).is_ok());
    assert!(pg(r#"SELECT "LOWER"(email) FROM users"#).unwrap_err().contains("`LOWER`"));
    assert!(pg(r#"SELECT "pg_sleep"(1)"#).unwrap_err().contains("`pg_sleep`"));
    assert!(pg("SELECT PG_SLEEP(1)").unwrap_err().contains("`pg_sleep`"));
    // Only pg_catalog qualifies a built-in; any other schema may hold anything.
    assert!(pg("SELECT pg_catalog.lower(email) FROM users").is_ok());
    assert!(pg("SELECT public.lower(email) FROM users").unwrap_err().contains("`public.lower`"));
    assert!(pg("SELECT reports.monthly(1)").is_ok());
    // MySQL and SQLite function names are case-insensitive, quoted or not.
    assert!(check("SELECT `SLEEP`(1)", Dialect::Mysql).unwrap_err().contains("`sleep`"));
    assert!(check("SELECT mydb.lower(email) FROM users", Dialect::Mysql).unwrap_err().contains("`mydb.lower`"));
    // A denial wins over the built-in list.
    refused_everywhere("SELECT UPPER(email) FROM users", "`upper` is on the config's `deny_functions`");
}

#[test]
fn issue_17_functions_with_lasting_effects_are_refused_by_the_allow_list() {
    let pg = |sql| check(sql, Dialect::Postgres).unwrap_err();
    for (sql, name) in [
        ("SELECT pg_stat_reset()", "pg_stat_reset"),
        ("SELECT pg_try_advisory_lock_shared(42)", "pg_try_advisory_lock_shared"),
        ("SELECT pg_log_backend_memory_contexts(pg_backend_pid())", "pg_log_backend_memory_contexts"),
        ("SELECT current_setting('lazyops.secret')", "current_setting"),
        ("SELECT * FROM pg_ls_dir('.') AS f", "pg_ls_dir"),
        ("SELECT id FROM users ORDER BY pg_sleep(1)", "pg_sleep"),
        ("SELECT id FROM users, LATERAL pg_sleep(1)", "pg_sleep"),
    ] {
        assert!(pg(sql).contains(&format!("`{name}`")), "{sql}: {}", pg(sql));
    }
    let my = |sql| check(sql, Dialect::Mysql).unwrap_err();
    assert!(my("SELECT MASTER_GTID_WAIT('0-1-100', 2)").contains("`master_gtid_wait`"));
    assert!(my("SELECT GET_LOCK('x', 1)").contains("`get_lock`"));
    assert!(my("SELECT LAST_INSERT_ID(5)").contains("`last_insert_id`"));
    let lite = |sql| check(sql, Dialect::Sqlite).unwrap_err();
    assert!(lite("SELECT load_extension('x')").contains("`load_extension`"));
    assert!(lite("SELECT writefile('/tmp/x', 'y')").contains("`writefile`"));
}

#[test]
fn a_refused_function_names_its_line() {
    let err =
        check_sql("SELECT id,\n  email\nFROM users\nWHERE pg_sleep(1) IS NULL", Dialect::Postgres, Functions::NONE)
            .unwrap_err();
    assert_eq!(err.line(), Some(4), "{err}");
}
