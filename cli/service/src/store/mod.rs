//! The store: enrollments, issued certificates, token hashes and the audit log — the
//! service's durable state. Never an intermediate key.
//!
//! One [`Store`] type over two databases, through sqlx's `Any` driver and one portable
//! schema (`cli/service/migrations/`, applied at [`Store::open`]):
//!
//! - **SQLite** (`sqlite:///var/lib/meshtrust/meshtrust.db`, the default): the file is
//!   created with mode 0600, journals in WAL mode with `synchronous = FULL` (a committed
//!   transaction survives a crash or a power cut), and writers wait for each other up to
//!   a busy timeout.
//! - **PostgreSQL** (`postgres://meshtrust@db:5432/meshtrust`): several service replicas
//!   may share one database.
//!
//! Every write that decides something goes through [`Store::commit`]: the issuance is
//! decided by conditional SQL inside a transaction (a token is consumed at most once, a
//! cluster enrolled with one key cannot be taken over with another, a renewal moves only
//! from the current certificate), so two concurrent requests — on two replicas too —
//! never both win. Commits are grouped: one writer task per `Store` decides everything
//! queued in one transaction and one fsync, and answers each caller once it is durable.
//!
//! Instants are stored as unix seconds: sub-second precision is not kept.
//!
//! ```no_run
//! # async fn example() -> meshtrust_service::Result<()> {
//! use meshtrust_service::store::Store;
//!
//! let store = Store::open("sqlite:///var/lib/meshtrust/meshtrust.db").await?;
//! store.ping().await?;
//! for cluster in store.clusters().await? {
//!     println!("{} {:?} {}", cluster.name, cluster.state, cluster.current_serial);
//! }
//! # Ok(())
//! # }
//! ```

mod address;
mod audit_rows;
mod bulk;
mod connect;
mod decide;
mod failure;
mod queries;
mod records;
mod reports;
mod writer;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::AnyPool;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

pub use records::{
    AuditEvent, Authority, CertificateRecord, ClusterRecord, ClusterState, Committed, Issuance,
    NewToken, Refusal, TokenRecord,
};

use address::StoreAddress;
use failure::{explain, reach_hint};
use writer::{Job, Work};

use crate::{Error, Result};

/// The service's durable state, on SQLite or PostgreSQL. Cheap to clone; clones share
/// one connection pool and one writer. `Debug` shows the store without credentials.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    address: StoreAddress,
    pool: AnyPool,
    writer: mpsc::Sender<Job>,
    batches: Arc<AtomicU64>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("store", &self.describe())
            .finish()
    }
}

impl Store {
    /// Opens the store at `url` (`sqlite:///path/meshtrust.db` or
    /// `postgres://user:password@host:port/database`), creating the SQLite file if
    /// needed, and brings its schema up to date. Must be called within a tokio runtime:
    /// it starts the store's writer task.
    pub async fn open(url: &str) -> Result<Store> {
        let address = StoreAddress::parse(url)?;
        let pool = connect::connect(&address).await?;
        let batches = Arc::new(AtomicU64::new(0));
        let writer = writer::spawn(pool.clone(), address.clone(), batches.clone());
        tracing::info!(store = address.shown(), "store open");
        Ok(Store {
            inner: Arc::new(Inner {
                address,
                pool,
                writer,
                batches,
            }),
        })
    }

    /// The store, without credentials: `postgres://user@host:port/db`, `sqlite:///p.db`.
    pub fn describe(&self) -> &str {
        self.inner.address.shown()
    }

    /// Readiness: the store answers a query and takes writes. A PostgreSQL database that
    /// answers but is read-only (a standby after a failover, or
    /// `default_transaction_read_only`) fails every issuance, so it is not ready either.
    pub async fn ping(&self) -> Result<()> {
        let sqlite = self.inner.address.is_sqlite();
        let query = if sqlite {
            "SELECT 'off'"
        } else {
            "SELECT current_setting('transaction_read_only')"
        };
        let read_only: String = sqlx::query_scalar(query)
            .fetch_one(&self.inner.pool)
            .await
            .map_err(|e| {
                let hint = reach_hint(&e, sqlite);
                self.fail("is not answering", e, hint)
            })?;
        if read_only == "on" {
            return Err(self.inner.address.error(
                "is read-only: it answers queries but refuses writes (a standby after a \
                 failover?); point the store at the primary",
            ));
        }
        Ok(())
    }

    /// Remembers an enrollment token (by hash). Fails if one with the same hash exists.
    pub async fn create_token(&self, token: &NewToken) -> Result<()> {
        queries::create_token(&self.inner.pool, token)
            .await
            .map_err(|e| {
                let what = format!("cannot store the token for cluster {}", token.cluster);
                self.fail(&what, e, "")
            })
    }

    /// The token with this hash, if any.
    pub async fn token(&self, hash: &str) -> Result<Option<TokenRecord>> {
        queries::token(&self.inner.pool, hash)
            .await
            .map_err(|e| self.fail("cannot read a token", e, ""))
    }

    /// The cluster of this name, if it ever enrolled.
    pub async fn cluster(&self, name: &str) -> Result<Option<ClusterRecord>> {
        queries::cluster(&self.inner.pool, name)
            .await
            .map_err(|e| self.fail(&format!("cannot read cluster {name}"), e, ""))
    }

    /// Every cluster that ever enrolled, by name.
    pub async fn clusters(&self) -> Result<Vec<ClusterRecord>> {
        queries::clusters(&self.inner.pool)
            .await
            .map_err(|e| self.fail("cannot list the clusters", e, ""))
    }

    /// The certificate with this serial, if the service issued it.
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>> {
        queries::certificate(&self.inner.pool, serial)
            .await
            .map_err(|e| self.fail(&format!("cannot read certificate {serial}"), e, ""))
    }

    /// Decides and records an issuance, atomically, with its audit line.
    ///
    /// - [`Authority::Token`]: the token is consumed only if unused, unexpired at
    ///   `issuance.at` and bound to the cluster;
    /// - a token or ServiceAccount enrollment inserts the cluster, or replaces it if it
    ///   is revoked or enrolled with the same key (a retry); another key is refused
    ///   [`Refusal::AlreadyEnrolled`];
    /// - [`Authority::Renewal`]: only from the cluster's current certificate, while it is
    ///   enrolled.
    ///
    /// `Ok(Committed::Recorded)` comes only once the transaction is durable; on a refusal
    /// only the audit line (result `refused`) is written. On `Err` nothing of the request
    /// was kept. Once queued, a request is decided even if the caller stops waiting.
    pub async fn commit(&self, issuance: Issuance) -> Result<Committed> {
        if let Some(root) = issuance.roots.iter().find(|root| root.contains(',')) {
            return Err(Error::Internal {
                reason: format!("root fingerprint `{root}` contains a comma"),
            });
        }
        self.submit(Work::Issue(Box::new(issuance))).await
    }

    /// Revokes a cluster and every certificate issued to it; `None` if it never enrolled.
    /// It may enroll again afterwards (with a new credential). Revoking it again keeps
    /// the first revocation.
    pub async fn revoke(
        &self,
        cluster: &str,
        at: OffsetDateTime,
        by: &str,
    ) -> Result<Option<ClusterRecord>> {
        let sqlite = self.inner.address.is_sqlite();
        queries::revoke(&self.inner.pool, sqlite, cluster, at, by)
            .await
            .map_err(|e| self.fail(&format!("cannot revoke cluster {cluster}"), e, ""))
    }

    /// Records `report` (its JSON text) as `cluster`'s last report, received `at`, and marks
    /// the cluster seen; `false` if it never enrolled.
    pub async fn record_report(
        &self,
        cluster: &str,
        at: OffsetDateTime,
        report: &str,
    ) -> Result<bool> {
        let sqlite = self.inner.address.is_sqlite();
        reports::record(&self.inner.pool, sqlite, cluster, at, report)
            .await
            .map_err(|e| self.fail(&format!("cannot record cluster {cluster}'s report"), e, ""))
    }

    /// Every cluster's last report (received at, JSON text), by cluster.
    pub async fn reports(&self) -> Result<HashMap<String, (OffsetDateTime, String)>> {
        reports::all(&self.inner.pool)
            .await
            .map_err(|e| self.fail("cannot read the cluster reports", e, ""))
    }

    /// `cluster`'s last report (received at, JSON text), if any.
    pub async fn report(&self, cluster: &str) -> Result<Option<(OffsetDateTime, String)>> {
        reports::one(&self.inner.pool, cluster)
            .await
            .map_err(|e| self.fail(&format!("cannot read cluster {cluster}'s report"), e, ""))
    }

    /// Appends a line to the audit log (refusals before a commit, admin actions), through
    /// the writer: it is durable when this returns.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        if !event.has_known_result() {
            return Err(Error::Internal {
                reason: format!(
                    "audit result `{}` is not ok, refused or error",
                    event.result
                ),
            });
        }
        self.submit(Work::Audit(event)).await.map(drop)
    }

    /// The latest `limit` lines of the audit log, newest first.
    pub async fn audit(&self, limit: i64) -> Result<Vec<AuditEvent>> {
        queries::audit(&self.inner.pool, limit)
            .await
            .map_err(|e| self.fail("cannot read the audit log", e, ""))
    }

    /// How many group-commit transactions this `Store`'s writer committed (a metric:
    /// requests recorded per batch = requests / batches).
    pub fn batches_committed(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }

    /// Closes the store's connections, waiting for those in use. Requests still queued
    /// or made afterwards fail ("the store is closed").
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    async fn submit(&self, work: Work) -> Result<Committed> {
        let stopped = || {
            self.inner
                .address
                .error("the store's writer has stopped; restart meshtrust serve")
        };
        if self.inner.pool.is_closed() {
            return Err(self.inner.address.error("the store is closed"));
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Job { work, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn fail(&self, what: &str, error: sqlx::Error, hint: &str) -> Error {
        self.inner
            .address
            .error(format!("{what} ({}){hint}", explain(&error)))
    }
}

#[cfg(test)]
#[path = "fixture_tests.rs"]
mod fixture;

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
