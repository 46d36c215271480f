use std::os::unix::fs::PermissionsExt;

use time::Duration;

use super::fixture::{
    Fixture, T0, event, issuance, new_token, on_both_backends, renewal, service_account, token,
};
use super::*;

on_both_backends!(
    a_token_enrolls_once,
    a_used_token_stays_used_after_a_restart,
    fifty_racing_requests_on_one_token_have_one_winner,
    refused_tokens_leave_only_audit_lines,
    another_key_is_refused_until_the_cluster_is_revoked,
    renewal_moves_only_from_the_current_certificate,
    the_audit_log_reads_newest_first,
    a_retry_with_the_same_key_is_answered_with_the_first_certificate,
);

/// The first answer was lost and the client sends the same token with the same key: the
/// store names the certificate issued then, writes nothing but an `ok` audit line for it,
/// and refuses the retry once the cluster was revoked.
async fn a_retry_with_the_same_key_is_answered_with_the_first_certificate(f: Fixture) {
    let store = &f.store;
    store.create_token(&new_token("t1", "east")).await.unwrap();
    let first = issuance("east", token("t1"), "key-a", "01");
    assert_eq!(store.commit(first).await.unwrap(), Committed::Recorded);

    let retry = issuance("east", token("t1"), "key-a", "02");
    assert_eq!(
        store.commit(retry).await.unwrap(),
        Committed::Retried {
            serial: "01".into()
        }
    );
    assert_eq!(store.certificate("02").await.unwrap(), None);
    assert_eq!(f.count("certificates").await, 1);
    let east = store.cluster("east").await.unwrap().unwrap();
    assert_eq!(east.current_serial, "01");
    let line = &store.audit(1).await.unwrap()[0];
    assert_eq!(line.result, AuditEvent::OK);
    assert_eq!(line.serial.as_deref(), Some("01"));
    assert_eq!(line.reason, AuditEvent::RETRY);

    store.revoke("east", T0, "admin").await.unwrap();
    let after_revoke = issuance("east", token("t1"), "key-a", "03");
    assert_eq!(
        store.commit(after_revoke).await.unwrap(),
        Committed::Refused(Refusal::TokenUsed)
    );
}

async fn a_token_enrolls_once(f: Fixture) {
    let store = &f.store;
    store.create_token(&new_token("t1", "east")).await.unwrap();

    let first = issuance("east", token("t1"), "key-a", "01");
    assert_eq!(store.commit(first).await.unwrap(), Committed::Recorded);
    let other_key = issuance("east", token("t1"), "key-b", "02");
    assert_eq!(
        store.commit(other_key).await.unwrap(),
        Committed::Refused(Refusal::TokenUsed)
    );

    let used = store.token("t1").await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(T0));
    assert_eq!(used.used_by_key.as_deref(), Some("key-a"));
    let east = store.cluster("east").await.unwrap().unwrap();
    assert_eq!(
        east,
        ClusterRecord {
            name: "east".into(),
            state: ClusterState::Enrolled,
            key_fingerprint: "key-a".into(),
            current_serial: "01".into(),
            not_after: T0 + Duration::days(90),
            enrolled_at: T0,
            last_seen: T0,
            roots: vec!["aa11".into(), "bb22".into()],
        }
    );
    let certificate = store.certificate("01").await.unwrap().unwrap();
    assert_eq!(certificate.cluster, "east");
    assert!(!certificate.revoked);
    assert!(certificate.certificate_pem.contains("01"));
    assert_eq!(store.certificate("02").await.unwrap(), None);
    assert_eq!(f.count("certificates").await, 1);
}

async fn a_used_token_stays_used_after_a_restart(f: Fixture) {
    f.store
        .create_token(&new_token("t1", "east"))
        .await
        .unwrap();
    let first = issuance("east", token("t1"), "key-a", "01");
    assert_eq!(f.store.commit(first).await.unwrap(), Committed::Recorded);
    f.store.close().await;

    let restarted = f.open_again().await;
    let replay = issuance("east", token("t1"), "key-b", "02");
    assert_eq!(
        restarted.commit(replay).await.unwrap(),
        Committed::Refused(Refusal::TokenUsed)
    );
    let east = restarted.cluster("east").await.unwrap().unwrap();
    assert_eq!(east.key_fingerprint, "key-a");
    assert_eq!(restarted.clusters().await.unwrap().len(), 1);
}

/// Two stores on one database (two replicas, each with its own writer), 25 requests each,
/// all presenting the same token with different keys: exactly one enrolls.
async fn fifty_racing_requests_on_one_token_have_one_winner(f: Fixture) {
    f.store
        .create_token(&new_token("t1", "east"))
        .await
        .unwrap();
    let replica = f.open_again().await;
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let store = if i % 2 == 0 {
                f.store.clone()
            } else {
                replica.clone()
            };
            let request = issuance("east", token("t1"), &format!("key-{i}"), &format!("{i:02}"));
            tokio::spawn(async move { store.commit(request).await })
        })
        .collect();
    let mut recorded = 0;
    for racer in racers {
        match racer.await.unwrap().unwrap() {
            Committed::Recorded => recorded += 1,
            Committed::Refused(refusal) => assert_eq!(refusal, Refusal::TokenUsed),
            Committed::Retried { serial } => panic!("every racer has its own key: {serial}"),
        }
    }
    assert_eq!(recorded, 1);
    assert_eq!(f.count("certificates").await, 1);
    assert_eq!(f.count("clusters").await, 1);
    assert_eq!(f.count("audit").await, 50);
    let winner = f.store.token("t1").await.unwrap().unwrap().used_by_key;
    let east = f.store.cluster("east").await.unwrap().unwrap();
    assert_eq!(winner.as_deref(), Some(east.key_fingerprint.as_str()));
}

async fn refused_tokens_leave_only_audit_lines(f: Fixture) {
    let store = &f.store;
    let expired = NewToken {
        expires_at: T0,
        ..new_token("expired", "east")
    };
    store.create_token(&expired).await.unwrap();
    store
        .create_token(&new_token("for-west", "west"))
        .await
        .unwrap();
    let cases = [
        (
            "a token that expires at the request's instant",
            "expired",
            Refusal::TokenExpired,
        ),
        (
            "a token made for another cluster",
            "for-west",
            Refusal::TokenForOtherCluster {
                bound_to: "west".into(),
            },
        ),
        ("a token nobody made", "unknown", Refusal::TokenUnknown),
    ];
    for (name, hash, refusal) in &cases {
        let request = issuance("east", token(hash), "key-a", &format!("serial-{hash}"));
        let outcome = store.commit(request).await.unwrap();
        assert_eq!(outcome, Committed::Refused(refusal.clone()), "{name}");
    }

    assert_eq!(f.count("clusters").await, 0);
    assert_eq!(f.count("certificates").await, 0);
    for hash in ["expired", "for-west"] {
        assert_eq!(store.token(hash).await.unwrap().unwrap().used_at, None);
    }
    let audit = store.audit(10).await.unwrap();
    assert_eq!(audit.len(), 3);
    for (line, (_, _, refusal)) in audit.iter().rev().zip(&cases) {
        assert_eq!(line.result, "refused");
        assert_eq!(line.reason, refusal.to_string());
        assert_eq!(line.action, "enroll");
    }
}

async fn another_key_is_refused_until_the_cluster_is_revoked(f: Fixture) {
    let store = &f.store;
    let enroll = |key: &str, serial: &str| issuance("east", service_account(), key, serial);
    assert_eq!(
        store.commit(enroll("key-a", "01")).await.unwrap(),
        Committed::Recorded
    );
    assert_eq!(
        store.commit(enroll("key-b", "02")).await.unwrap(),
        Committed::Refused(Refusal::AlreadyEnrolled {
            key_fingerprint: "key-a".into()
        })
    );
    // A retry with the same key is an enrollment like the first.
    assert_eq!(
        store.commit(enroll("key-a", "03")).await.unwrap(),
        Committed::Recorded
    );
    assert_eq!(
        store.cluster("east").await.unwrap().unwrap().current_serial,
        "03"
    );

    let revoked_at = T0 + Duration::hours(1);
    let revoked = store.revoke("east", revoked_at, "admin").await.unwrap();
    assert_eq!(revoked.unwrap().state, ClusterState::Revoked);
    assert!(store.certificate("01").await.unwrap().unwrap().revoked);
    assert!(store.certificate("03").await.unwrap().unwrap().revoked);
    assert_eq!(
        store.revoke("nowhere", revoked_at, "admin").await.unwrap(),
        None
    );

    assert_eq!(
        store.commit(enroll("key-b", "04")).await.unwrap(),
        Committed::Recorded
    );
    let east = store.cluster("east").await.unwrap().unwrap();
    assert_eq!(east.state, ClusterState::Enrolled);
    assert_eq!(east.key_fingerprint, "key-b");
    assert_eq!(east.current_serial, "04");
    assert!(!store.certificate("04").await.unwrap().unwrap().revoked);
    assert!(store.certificate("03").await.unwrap().unwrap().revoked);
    assert_eq!(f.count("certificates").await, 3);
}

async fn renewal_moves_only_from_the_current_certificate(f: Fixture) {
    let store = &f.store;
    let enroll = issuance("east", service_account(), "key-a", "01");
    assert_eq!(store.commit(enroll).await.unwrap(), Committed::Recorded);

    let mut renew = issuance("east", renewal("01"), "key-a2", "02");
    renew.at = T0 + Duration::days(60);
    renew.roots = vec!["cc33".into()];
    assert_eq!(store.commit(renew).await.unwrap(), Committed::Recorded);
    let east = store.cluster("east").await.unwrap().unwrap();
    assert_eq!(
        (east.current_serial.as_str(), east.key_fingerprint.as_str()),
        ("02", "key-a2")
    );
    assert_eq!(east.last_seen, T0 + Duration::days(60));
    assert_eq!(east.enrolled_at, T0);
    assert_eq!(east.roots, vec!["cc33".to_owned()]);

    let stale = issuance("east", renewal("01"), "key-a", "03");
    assert_eq!(
        store.commit(stale).await.unwrap(),
        Committed::Refused(Refusal::NotCurrent {
            current_serial: "02".into()
        })
    );
    let stranger = issuance("north", renewal("01"), "key-n", "04");
    assert_eq!(
        store.commit(stranger).await.unwrap(),
        Committed::Refused(Refusal::UnknownCluster)
    );
    store.revoke("east", T0, "admin").await.unwrap();
    let after_revocation = issuance("east", renewal("02"), "key-a2", "05");
    assert_eq!(
        store.commit(after_revocation).await.unwrap(),
        Committed::Refused(Refusal::Revoked)
    );
    assert_eq!(f.count("certificates").await, 2);
}

async fn the_audit_log_reads_newest_first(f: Fixture) {
    let store = &f.store;
    for (i, action) in ["token.create", "cluster.revoke", "token.create"]
        .iter()
        .enumerate()
    {
        let mut line = event("admin", action, "east");
        line.at = T0 + Duration::seconds(i as i64);
        store.record(line).await.unwrap();
    }
    let refused = AuditEvent {
        result: AuditEvent::REFUSED.into(),
        reason: "bad credential".into(),
        ..event("anonymous", "enroll", "west")
    };
    store.record(refused.clone()).await.unwrap();

    let audit = store.audit(3).await.unwrap();
    assert_eq!(audit.len(), 3);
    assert_eq!(audit[0], refused);
    assert_eq!(audit[1].at, T0 + Duration::seconds(2));
    assert_eq!(audit[2].action, "cluster.revoke");
    let unknown = AuditEvent {
        result: "maybe".into(),
        ..event("admin", "x", "east")
    };
    let error = store.record(unknown).await.unwrap_err().to_string();
    assert!(error.contains("not ok, refused or error"), "{error}");
    assert_eq!(f.count("audit").await, 4);
}

#[tokio::test]
async fn a_new_sqlite_file_is_private_journaled_and_synchronous() {
    let f = Fixture::sqlite().await;
    let path = f.url.trim_start_matches("sqlite://").to_owned();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{path} has mode {mode:o}");
    f.store.record(event("admin", "x", "east")).await.unwrap();
    let wal = std::fs::metadata(format!("{path}-wal")).unwrap();
    assert_eq!(wal.permissions().mode() & 0o777, 0o600);

    let mut conn = f.store.inner.pool.acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!((journal.as_str(), synchronous, busy), ("wal", 2, 5000));
}

#[tokio::test]
async fn a_sqlite_file_in_a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/absent/meshtrust.db", dir.path().display());
    let error = Store::open(&url).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("store {url}: cannot create ")),
        "{error}"
    );
    assert!(error.contains("create the directory first"), "{error}");
}

#[tokio::test]
async fn an_unreachable_postgres_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = "postgres://meshtrust:s3cret-pw@127.0.0.1:1/meshtrust?sslmode=disable";
    let error = Store::open(url).await.unwrap_err().to_string();
    assert_eq!(
        error,
        "store postgres://meshtrust@127.0.0.1:1/meshtrust: cannot connect (connection \
         refused); is PostgreSQL running?"
    );
}

#[tokio::test]
async fn debug_shows_only_the_redacted_store() {
    let f = Fixture::sqlite().await;
    assert_eq!(
        format!("{:?}", f.store),
        format!("Store {{ store: {:?} }}", f.url)
    );
    assert_eq!(f.store.describe(), f.url);
    f.store.ping().await.unwrap();
}

#[test]
fn the_embedded_migrations_are_the_migrations_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    on_disk.sort();
    let embedded: Vec<(String, String)> = connect::MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            (
                format!("{version:04}_{}.sql", description.replace(' ', "_")),
                (*sql).to_owned(),
            )
        })
        .collect();
    assert_eq!(embedded, on_disk);
}
