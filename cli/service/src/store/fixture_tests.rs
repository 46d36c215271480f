//! Test fixture: a fresh store on SQLite (a temporary directory) or on PostgreSQL (a
//! fresh database on the server named by `MESHTRUST_TEST_POSTGRES_URL`), and builders for
//! the values the store is asked to record.

use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use time::OffsetDateTime;
use time::macros::datetime;

use super::{AuditEvent, Authority, Issuance, NewToken, Store};

/// The variable naming a PostgreSQL server to run the suite against (an admin URL such as
/// `postgres://meshtrust@127.0.0.1:5432/postgres`; each test creates its own database).
pub(crate) const POSTGRES_URL_VAR: &str = "MESHTRUST_TEST_POSTGRES_URL";

/// The instant the tests happen at.
pub(crate) const T0: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);

/// A store under test, and how to reach its database again.
pub(crate) struct Fixture {
    pub(crate) store: Store,
    pub(crate) url: String,
    pub(crate) backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// A store in a new SQLite file.
    pub(crate) async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}/meshtrust.db", dir.path().display());
        let store = Store::open(&url).await.expect("open the SQLite store");
        Fixture {
            store,
            url,
            backend: "sqlite",
            _dir: Some(dir),
        }
    }

    /// A store in a new PostgreSQL database, or `None` (with a note) without a server; with
    /// what drops that database once the case has run.
    pub(crate) async fn postgres(case: &str) -> Option<(Fixture, DropDatabase)> {
        let Ok(admin) = std::env::var(POSTGRES_URL_VAR) else {
            eprintln!("{case}: skipped on PostgreSQL; set {POSTGRES_URL_VAR} to run it");
            return None;
        };
        static DATABASES: AtomicU32 = AtomicU32::new(0);
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name: String = format!("mt_{}_{n}_{case}", std::process::id())
            .chars()
            .take(63)
            .collect();
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(&admin)
            .await
            .expect("connect to the PostgreSQL server of MESHTRUST_TEST_POSTGRES_URL");
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("create a test database");
        }
        let _ = conn.close().await;
        let mut url = AnyConnectOptions::from_str(&admin)
            .expect("admin URL")
            .database_url;
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        let store = Store::open(&url).await.expect("open the PostgreSQL store");
        let fixture = Fixture {
            store,
            url,
            backend: "postgres",
            _dir: None,
        };
        Some((fixture, DropDatabase { admin, name }))
    }

    /// Another `Store` on the same database: a second replica, or the service restarted.
    pub(crate) async fn open_again(&self) -> Store {
        Store::open(&self.url).await.expect("open the store again")
    }

    /// How many rows `table` holds.
    pub(crate) async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.store.inner.pool)
            .await
            .expect("count rows")
    }

    /// Runs SQL (several statements allowed) on the store's database.
    pub(crate) async fn execute(&self, sql: &str) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&self.store.inner.pool)
            .await
            .expect("run SQL");
    }
}

/// An audit event for `action` by `principal`, as a caller would pass it.
pub(crate) fn event(principal: &str, action: &str, cluster: &str) -> AuditEvent {
    AuditEvent {
        at: T0,
        principal: principal.into(),
        action: action.into(),
        cluster: Some(cluster.into()),
        serial: None,
        result: AuditEvent::OK.into(),
        reason: String::new(),
    }
}

/// An issuance of certificate `serial` with key `key` to `cluster`, on `authority`.
pub(crate) fn issuance(cluster: &str, authority: Authority, key: &str, serial: &str) -> Issuance {
    let action = match authority {
        Authority::Renewal { .. } => "renew",
        _ => "enroll",
    };
    Issuance {
        cluster: cluster.into(),
        authority,
        key_fingerprint: key.into(),
        serial: serial.into(),
        not_after: T0 + time::Duration::days(90),
        certificate_pem: format!("-----BEGIN CERTIFICATE-----\n{serial}\n"),
        chain_pem: "-----BEGIN CERTIFICATE-----\nroot\n".into(),
        roots: vec!["aa11".into(), "bb22".into()],
        at: T0,
        audit: AuditEvent {
            serial: Some(serial.into()),
            ..event("tester", action, cluster)
        },
    }
}

/// Enrollment on a token.
pub(crate) fn token(hash: &str) -> Authority {
    Authority::Token { hash: hash.into() }
}

/// Enrollment on a ServiceAccount token.
pub(crate) fn service_account() -> Authority {
    Authority::ServiceAccount {
        subject: "system:serviceaccount:istio-system:meshtrust".into(),
    }
}

/// Renewal from certificate `previous`.
pub(crate) fn renewal(previous: &str) -> Authority {
    Authority::Renewal {
        previous_serial: previous.into(),
    }
}

/// A token for `cluster`, valid for an hour from [`T0`].
pub(crate) fn new_token(hash: &str, cluster: &str) -> NewToken {
    NewToken {
        hash: hash.into(),
        cluster: cluster.into(),
        expires_at: T0 + time::Duration::hours(1),
        created_at: T0 - time::Duration::minutes(5),
        created_by: "admin".into(),
    }
}

/// A test database to drop once its case has run (a case that fails leaves its database
/// for a look, on a server the test command throws away).
pub(crate) struct DropDatabase {
    admin: String,
    name: String,
}

impl DropDatabase {
    /// Drops the database, ending the connections its stores still hold.
    pub(crate) async fn run(self) {
        let mut conn = AnyConnection::connect(&self.admin)
            .await
            .expect("connect to the PostgreSQL server of MESHTRUST_TEST_POSTGRES_URL");
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("drop the test database");
        let _ = conn.close().await;
    }
}

/// Runs each named `async fn(Fixture)` of the calling module on SQLite, and on PostgreSQL
/// when [`POSTGRES_URL_VAR`] is set.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => { $(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case(super::Fixture::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some((fixture, database)) =
                    super::Fixture::postgres(stringify!($case)).await
                {
                    super::$case(fixture).await;
                    database.run().await;
                }
            }
        }
    )* };
}
pub(crate) use on_both_backends;
