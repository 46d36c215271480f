use meshtrust_issuer::Clock;

use crate::store::fixture::{
    Fixture, event, issuance, new_token, on_both_backends, service_account, token,
};
use crate::store::{AuditEvent, Committed, Store};

on_both_backends!(
    five_hundred_concurrent_commits_share_transactions,
    a_failed_batch_keeps_nothing_and_the_writer_goes_on,
    one_failing_request_does_not_fail_its_batch,
    a_closed_store_says_so,
);

async fn five_hundred_concurrent_commits_share_transactions(f: Fixture) {
    let clock = Clock::system();
    let started = clock.instant();
    let commits: Vec<_> = (0..500)
        .map(|i| {
            let store = f.store.clone();
            let request = issuance(
                &format!("cluster-{i:03}"),
                service_account(),
                &format!("key-{i}"),
                &format!("serial-{i}"),
            );
            tokio::spawn(async move { store.commit(request).await })
        })
        .collect();
    for commit in commits {
        assert_eq!(commit.await.unwrap().unwrap(), Committed::Recorded);
    }
    let elapsed = clock.elapsed(started);
    let batches = f.store.batches_committed();
    eprintln!(
        "{}: 500 concurrent commits in {elapsed:.2?} ({:.0}/s), {batches} transactions",
        f.backend,
        500.0 / elapsed.as_secs_f64()
    );
    assert!(batches < 500, "{batches} transactions for 500 commits");
    assert_eq!(f.count("certificates").await, 500);
    assert_eq!(f.count("audit").await, 500);
    assert_eq!(f.store.clusters().await.unwrap().len(), 500);
}

/// Every audit insert fails (a trigger), so every batch fails after its issuances were
/// written inside the transaction: each caller gets the error, nothing is kept, and the
/// writer serves the next batch once the database works again.
async fn a_failed_batch_keeps_nothing_and_the_writer_goes_on(f: Fixture) {
    let store = &f.store;
    store.create_token(&new_token("t1", "east")).await.unwrap();
    let (break_it, repair) = if f.backend == "sqlite" {
        (
            "CREATE TRIGGER audit_fails BEFORE INSERT ON audit \
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
            "DROP TRIGGER audit_fails",
        )
    } else {
        (
            "CREATE FUNCTION audit_fails() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$; \
             CREATE TRIGGER audit_fails BEFORE INSERT ON audit \
             FOR EACH ROW EXECUTE FUNCTION audit_fails();",
            "DROP TRIGGER audit_fails ON audit",
        )
    };
    f.execute(break_it).await;

    let east = spawn_commit(store, issuance("east", token("t1"), "key-a", "01"));
    let west = spawn_commit(store, issuance("west", service_account(), "key-w", "02"));
    let line = {
        let store = store.clone();
        tokio::spawn(async move { store.record(event("admin", "token.create", "east")).await })
    };
    let expected = format!(
        "store {}: the transaction recording this request failed and was rolled back \
         (disk on fire)",
        store.describe()
    );
    for error in [
        east.await.unwrap().unwrap_err(),
        west.await.unwrap().unwrap_err(),
        line.await.unwrap().unwrap_err(),
    ] {
        assert_eq!(error.to_string(), expected);
    }
    assert_eq!(f.count("clusters").await, 0);
    assert_eq!(f.count("certificates").await, 0);
    assert_eq!(f.count("audit").await, 0);
    assert_eq!(store.token("t1").await.unwrap().unwrap().used_at, None);
    let failed_batches = store.batches_committed();

    f.execute(repair).await;
    let retry = issuance("east", token("t1"), "key-a", "01");
    assert_eq!(store.commit(retry).await.unwrap(), Committed::Recorded);
    assert_eq!(store.batches_committed(), failed_batches + 1);
    assert_eq!(f.count("audit").await, 1);
}

/// A request whose own statement fails (here: a serial issued twice) is rolled back to
/// its savepoint and answered with the error; the others of its batch are recorded.
async fn one_failing_request_does_not_fail_its_batch(f: Fixture) {
    let store = &f.store;
    let first = issuance("east", service_account(), "key-e", "01");
    assert_eq!(store.commit(first).await.unwrap(), Committed::Recorded);

    let duplicate = spawn_commit(store, issuance("west", service_account(), "key-w", "01"));
    let fine = spawn_commit(store, issuance("north", service_account(), "key-n", "02"));
    let error = duplicate.await.unwrap().unwrap_err().to_string();
    assert_eq!(fine.await.unwrap().unwrap(), Committed::Recorded);

    let prefix = format!(
        "store {}: cannot record certificate 01 of cluster west (",
        store.describe()
    );
    assert!(error.starts_with(&prefix), "{error}");
    assert!(
        error.contains("unique") || error.contains("UNIQUE"),
        "{error}"
    );
    assert_eq!(store.cluster("west").await.unwrap(), None);
    assert!(store.cluster("north").await.unwrap().is_some());
    let audit = store.audit(10).await.unwrap();
    let west = audit
        .iter()
        .find(|line| line.cluster.as_deref() == Some("west"))
        .unwrap();
    assert_eq!(west.result, AuditEvent::ERROR);
    assert_eq!(f.count("certificates").await, 2);
}

async fn a_closed_store_says_so(f: Fixture) {
    f.store.close().await;
    let request = issuance("east", service_account(), "key-a", "01");
    let error = f.store.commit(request).await.unwrap_err().to_string();
    assert_eq!(
        error,
        format!("store {}: the store is closed", f.store.describe())
    );
    let error = f.store.ping().await.unwrap_err().to_string();
    assert!(
        error.ends_with("is not answering (the store is closed)"),
        "{error}"
    );
}

fn spawn_commit(
    store: &Store,
    request: crate::store::Issuance,
) -> tokio::task::JoinHandle<crate::Result<Committed>> {
    let store = store.clone();
    tokio::spawn(async move { store.commit(request).await })
}
