//! Opening the store: the SQLite file (created 0600, WAL journal, `synchronous=FULL`), the
//! connection pool, and the schema migrations, all through sqlx's `Any` driver.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, SqlSafeStr};

use super::address::{Backend, StoreAddress};
use super::failure::{connect_hint, explain, explain_migration};
use crate::Result;

/// How long connecting (or waiting for a pooled connection) may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long SQLite waits for another writer before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// The schema migrations, in `cli/service/migrations/`, embedded in the binary.
///
/// Listed here rather than by `sqlx::migrate!`, which needs sqlx's `macros` feature (and
/// its proc-macro build). The checksums are the same as `migrate!` would compute, so the
/// two are interchangeable on an existing database. A test checks the list against the
/// directory.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "reports",
        include_str!("../../migrations/0002_reports.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Connects, brings the schema up to date and returns the pool.
pub(super) async fn connect(address: &StoreAddress) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    if let Backend::Sqlite { path } = address.backend() {
        create_file(address, path).await?;
    }
    // One connection first: its failure is reported as it is (the pool would retry a
    // refused connection until its timeout and then say only "timed out"), and the
    // journal mode is switched while nothing else holds the file.
    let mut first = first_connection(address).await?;
    migrator().run(&mut first).await.map_err(|e| {
        address.error(format!(
            "cannot prepare the schema ({})",
            explain_migration(&e)
        ))
    })?;
    // Closing is a courtesy; the schema is committed either way.
    let _ = first.close().await;
    let sqlite = address.is_sqlite();
    AnyPoolOptions::new()
        .max_connections(if sqlite { 8 } else { 10 })
        .acquire_timeout(CONNECT_TIMEOUT)
        // A pooled SQLite connection is a thread of this process: it cannot go stale the
        // way a network connection can, so checking it before each use (a round trip to
        // that thread per read) buys nothing.
        .test_before_acquire(!sqlite)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    prepare_sqlite(conn).await?;
                }
                Ok(())
            })
        })
        .connect_lazy(address.url())
        .map_err(|e| address.error(format!("cannot connect ({})", explain(&e))))
}

async fn first_connection(address: &StoreAddress) -> Result<AnyConnection> {
    let sqlite = address.is_sqlite();
    let cannot = |e: sqlx::Error| {
        address.error(format!(
            "cannot connect ({}){}",
            explain(&e),
            connect_hint(&e, sqlite)
        ))
    };
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(address.url()))
        .await
        .map_err(|_| cannot(sqlx::Error::PoolTimedOut))?
        .map_err(cannot)?;
    if sqlite {
        prepare_sqlite(&mut conn).await.map_err(cannot)?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&mut conn)
            .await
            .map_err(cannot)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(address.error(format!(
                "cannot switch the journal to WAL (SQLite kept `{mode}`); is the file on a \
                 file system without shared memory, such as a network share?"
            )));
        }
    }
    Ok(conn)
}

/// Per-connection SQLite settings: a committed transaction is on disk before `COMMIT`
/// returns (`synchronous = FULL`, also in WAL mode), and writers queue for each other
/// instead of failing at once.
async fn prepare_sqlite(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA synchronous = FULL")
        .execute(&mut *conn)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Creates the database file with mode 0600 if it does not exist yet (SQLite gives its
/// `-wal` and `-shm` files the same mode), and warns when an existing one is readable by
/// others.
async fn create_file(address: &StoreAddress, path: &Path) -> Result<()> {
    let created = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = tokio::fs::metadata(path).await
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    store = address.shown(),
                    "the database file is readable by other users; chmod 600 it"
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(address.error(format!(
            "cannot create {} (its directory does not exist); create the directory first",
            path.display()
        ))),
        Err(e) => Err(address.error(format!("cannot create {} ({e})", path.display()))),
    }
}
