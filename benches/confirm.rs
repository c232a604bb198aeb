//! Create + confirm of one confirmation in the state store (targets: ≤ 1 ms on SQLite,
//! ≤ 2 ms on PostgreSQL), and the audit row written before a command runs.
//!
//! LAZYOPS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench confirm

use lazyops::store::Store;
use lazyops::store::audit::{AuditStart, Completion};
use lazyops::store::confirm::{Answer, NewConfirmation};

fn main() {
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn round_trip(rt: &tokio::runtime::Runtime, store: &Store) {
    rt.block_on(async {
        let new = NewConfirmation {
            requester: "local:bench",
            place: "local:terminal",
            command: "test run smoke staging",
            tier: "grammar",
            intent: None,
            confidence: 1.0,
            ttl_ms: 600_000,
        };
        let now = lazyops::store::now_ms();
        let p = store.create_confirmation(&new, now).await.expect("create");
        store.resolve_id(&p.id, "local:bench", "local:terminal", Answer::Confirm, now + 1).await.expect("confirm");
    });
}

#[divan::bench]
fn sqlite_create_and_confirm(bencher: divan::Bencher) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(Store::open(&format!("sqlite://{}/bench.db", dir.path().display()))).expect("open");
    bencher.bench_local(|| round_trip(&rt, &store));
}

#[divan::bench]
fn postgres_create_and_confirm(bencher: divan::Bencher) {
    let Ok(url) = std::env::var("LAZYOPS_TEST_POSTGRES_URL") else {
        eprintln!("skipping: LAZYOPS_TEST_POSTGRES_URL is not set");
        return;
    };
    let rt = runtime();
    let store = rt.block_on(Store::open(&url)).expect("open");
    bencher.bench_local(|| round_trip(&rt, &store));
}

#[divan::bench]
fn sqlite_audit_row(bencher: divan::Bencher) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(Store::open(&format!("sqlite://{}/bench.db", dir.path().display()))).expect("open");
    bencher.bench_local(|| {
        rt.block_on(async {
            let row = AuditStart {
                id: uuid::Uuid::new_v4().to_string(),
                at: lazyops::store::now_ms(),
                who: "local:bench".into(),
                transport: "local".into(),
                place: "local:terminal".into(),
                text: "help".into(),
                decision: "allowed".into(),
                ..AuditStart::default()
            };
            let id = row.id.clone();
            store.audit_start(row).await.expect("audit");
            store
                .audit_finish(&id, Completion { outcome: "ok".into(), duration_ms: 1, error: None })
                .await
                .expect("finish");
        })
    });
}
