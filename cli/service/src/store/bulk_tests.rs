use super::{Bulk, decide_all};
use crate::store::fixture::{
    Fixture, T0, event, issuance, new_token, on_both_backends, renewal, service_account, token,
};
use crate::store::writer::Work;
use crate::store::{AuditEvent, Committed, Refusal};

on_both_backends!(
    first_enrollments_with_fresh_tokens_are_recorded_together,
    a_token_that_does_not_hold_sends_the_batch_back_with_nothing_kept,
    an_enrolled_cluster_sends_the_batch_back_with_nothing_kept,
    batches_the_fast_path_cannot_decide_are_left_alone,
    a_batch_sent_back_is_decided_one_by_one,
);

fn issue(cluster: &str, authority: crate::store::Authority, key: &str, serial: &str) -> Work {
    Work::Issue(Box::new(issuance(cluster, authority, key, serial)))
}

/// Runs the fast path on `work` in a transaction, and commits it only if it recorded all.
async fn run(f: &Fixture, work: &[Work]) -> &'static str {
    let refs: Vec<&Work> = work.iter().collect();
    let mut tx = f.store.inner.pool.begin().await.expect("begin");
    let sqlite = f.backend == "sqlite";
    let verdict = match decide_all(&mut tx, &refs, sqlite)
        .await
        .expect("statements run")
    {
        Bulk::Recorded => "recorded",
        Bulk::RecordedWithAudit => "recorded with audit",
        Bulk::Deviated => "deviated",
        Bulk::NotEligible => "not eligible",
    };
    if verdict.starts_with("recorded") {
        tx.commit().await.expect("commit");
    } else {
        tx.rollback().await.expect("rollback");
    }
    verdict
}

async fn first_enrollments_with_fresh_tokens_are_recorded_together(f: Fixture) {
    let store = &f.store;
    store.create_token(&new_token("t1", "east")).await.unwrap();
    store.create_token(&new_token("t2", "west")).await.unwrap();
    let work = [
        issue("east", token("t1"), "key-e", "01"),
        issue("west", token("t2"), "key-w", "02"),
        issue("north", service_account(), "key-n", "03"),
        Work::Audit(event("admin", "token.create", "south")),
    ];
    let sqlite = f.backend == "sqlite";
    let expected = match sqlite {
        true => "recorded with audit",
        false => "recorded",
    };
    assert_eq!(run(&f, &work).await, expected);
    if sqlite {
        // The script wrote the audit rows too: ids 1…4 in batch order, the counter at 4.
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit ORDER BY id")
            .fetch_all(&store.inner.pool)
            .await
            .unwrap();
        assert_eq!(ids, [1, 2, 3, 4]);
        let counter: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'audit'")
            .fetch_one(&store.inner.pool)
            .await
            .unwrap();
        assert_eq!(counter, 4);
        let lines = store.audit(10).await.unwrap();
        let serials: Vec<Option<&str>> = lines.iter().map(|l| l.serial.as_deref()).collect();
        assert_eq!(serials, [None, Some("03"), Some("02"), Some("01")]);
        assert!(lines.iter().all(|l| l.result == AuditEvent::OK));
        assert_eq!(lines[0].action, "token.create");
    }
    let east = store.token("t1").await.unwrap().unwrap();
    assert_eq!(east.used_at, Some(T0));
    assert_eq!(east.used_by_key.as_deref(), Some("key-e"));
    let west = store.token("t2").await.unwrap().unwrap();
    assert_eq!(west.used_by_key.as_deref(), Some("key-w"));
    for (cluster, key, serial) in [("east", "key-e", "01"), ("north", "key-n", "03")] {
        let record = store.cluster(cluster).await.unwrap().unwrap();
        assert_eq!(record.key_fingerprint, key);
        assert_eq!(record.current_serial, serial);
        assert_eq!(record.roots, ["aa11", "bb22"]);
        assert_eq!(record.enrolled_at, T0);
        let certificate = store.certificate(serial).await.unwrap().unwrap();
        assert_eq!(certificate.cluster, cluster);
        assert!(!certificate.revoked);
    }
    assert_eq!(f.count("certificates").await, 3);
}

async fn a_token_that_does_not_hold_sends_the_batch_back_with_nothing_kept(f: Fixture) {
    let store = &f.store;
    for (hash, cluster) in [("spent", "east"), ("fresh", "west"), ("other", "south")] {
        store.create_token(&new_token(hash, cluster)).await.unwrap();
    }
    let first = issuance("east", token("spent"), "key-e", "01");
    assert_eq!(store.commit(first).await.unwrap(), Committed::Recorded);
    let mut late = issuance("north", token("other"), "key-n", "03");
    late.cluster = "south".into();
    late.at = T0 + time::Duration::hours(2);
    let cases = [
        ("spent", issue("north", token("spent"), "key-n", "03")),
        (
            "bound to another cluster",
            issue("north", token("other"), "key-n", "03"),
        ),
        ("expired", Work::Issue(Box::new(late))),
    ];
    for (case, odd_one) in cases {
        let work = [issue("west", token("fresh"), "key-w", "02"), odd_one];
        assert_eq!(run(&f, &work).await, "deviated", "{case}");
        assert_eq!(store.token("fresh").await.unwrap().unwrap().used_at, None);
        assert_eq!(store.cluster("west").await.unwrap(), None);
    }
}

async fn an_enrolled_cluster_sends_the_batch_back_with_nothing_kept(f: Fixture) {
    let store = &f.store;
    store.create_token(&new_token("t2", "west")).await.unwrap();
    let first = issuance("east", service_account(), "key-e", "01");
    assert_eq!(store.commit(first).await.unwrap(), Committed::Recorded);
    let work = [
        issue("west", token("t2"), "key-w", "02"),
        issue("east", service_account(), "key-other", "03"),
    ];
    assert_eq!(run(&f, &work).await, "deviated");
    assert_eq!(store.token("t2").await.unwrap().unwrap().used_at, None);
    let east = store.cluster("east").await.unwrap().unwrap();
    assert_eq!(east.key_fingerprint, "key-e");
    assert_eq!(f.count("certificates").await, 1);
}

async fn batches_the_fast_path_cannot_decide_are_left_alone(f: Fixture) {
    let cases: [(&str, Vec<Work>); 4] = [
        (
            "a single request",
            vec![issue("east", service_account(), "k1", "01")],
        ),
        (
            "a renewal",
            vec![
                issue("east", service_account(), "k1", "01"),
                issue("west", renewal("00"), "k2", "02"),
            ],
        ),
        (
            "one cluster twice",
            vec![
                issue("east", service_account(), "k1", "01"),
                issue("east", service_account(), "k2", "02"),
            ],
        ),
        (
            "one token twice",
            vec![
                issue("east", token("t1"), "k1", "01"),
                issue("west", token("t1"), "k2", "02"),
            ],
        ),
    ];
    for (case, work) in cases {
        assert_eq!(run(&f, &work).await, "not eligible", "{case}");
    }
    assert_eq!(f.count("clusters").await, 0, "nothing was written");
}

/// Through the writer: whichever way the requests fall into batches, each is decided as
/// if alone, and a refusal is explained.
async fn a_batch_sent_back_is_decided_one_by_one(f: Fixture) {
    let store = &f.store;
    for (hash, cluster) in [("t1", "east"), ("t2", "west"), ("t3", "north")] {
        store.create_token(&new_token(hash, cluster)).await.unwrap();
    }
    let first = issuance("east", token("t1"), "key-e", "01");
    assert_eq!(store.commit(first).await.unwrap(), Committed::Recorded);
    let requests = [
        issuance("west", token("t2"), "key-w", "02"),
        issuance("east", token("t1"), "key-x", "03"),
        issuance("north", token("t3"), "key-n", "04"),
    ];
    let answers = futures::future::join_all(requests.map(|r| store.commit(r))).await;
    let answers: Vec<Committed> = answers.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        answers,
        [
            Committed::Recorded,
            Committed::Refused(Refusal::TokenUsed),
            Committed::Recorded
        ]
    );
    let audit = store.audit(10).await.unwrap();
    let refused: Vec<&AuditEvent> = audit.iter().filter(|a| a.result == "refused").collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].serial.as_deref(), Some("03"));
    assert_eq!(f.count("certificates").await, 3);
}
