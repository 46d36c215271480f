//! Database failures in words: sqlx's errors turned into the sentences the store's
//! messages are made of, and which of them are worth retrying.

use std::io;

use sqlx::migrate::MigrateError;

/// What went wrong, as a lowercase phrase with no Rust debug text
/// ("connection refused", "database is locked").
pub(super) fn explain(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Io(e) => explain_io(e),
        sqlx::Error::Database(e) => e.message().to_owned(),
        sqlx::Error::Tls(e) => format!("TLS failed: {e}"),
        sqlx::Error::Protocol(e) => format!("unexpected reply from the database: {e}"),
        sqlx::Error::Configuration(e) => format!("the store URL is unusable: {e}"),
        sqlx::Error::PoolTimedOut => {
            "no database connection became available in time (the database is unreachable \
             or overloaded)"
                .into()
        }
        sqlx::Error::PoolClosed => "the store is closed".into(),
        sqlx::Error::WorkerCrashed => "the SQLite worker thread stopped".into(),
        sqlx::Error::Migrate(e) => explain_migration(e),
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => format!(
            "the store holds data this meshtrust cannot read ({error}); was it written by \
             a newer version?"
        ),
        other => other.to_string(),
    }
}

fn explain_io(error: &io::Error) -> String {
    // The kind reads best ("connection refused"); a kind without a name of its own
    // ("other error", "uncategorized error") says less than the error itself.
    let kind = error.kind().to_string();
    if kind.ends_with(" error") {
        error.to_string()
    } else {
        kind
    }
}

/// A failed migration, as a phrase (see [`explain`]).
pub(super) fn explain_migration(error: &MigrateError) -> String {
    match error {
        MigrateError::Execute(e) => format!("a schema migration failed: {}", explain(e)),
        MigrateError::ExecuteMigration(e, version) => {
            format!("schema migration {version} failed: {}", explain(e))
        }
        MigrateError::VersionMissing(version) => format!(
            "the database was migrated by a newer meshtrust (migration {version} is unknown \
             to this one); run the newer version"
        ),
        MigrateError::VersionMismatch(version) => format!(
            "schema migration {version} applied to this database differs from this \
             meshtrust's; the database belongs to another build"
        ),
        MigrateError::Dirty(version) => format!(
            "schema migration {version} was left half-applied; restore the database from \
             a backup"
        ),
        other => format!("schema migration failed: {other}"),
    }
}

/// A hint for a failure to connect, or "" (starts with "; " when not empty).
pub(super) fn connect_hint(error: &sqlx::Error, sqlite: bool) -> &'static str {
    match (error, sqlite) {
        (sqlx::Error::Database(e), false) => match e.code().as_deref() {
            Some("28P01" | "28000") => "; check the user and password",
            Some("3D000") => "; create the database first (createdb)",
            _ => "",
        },
        (sqlx::Error::Database(_), true) => {
            "; check that the file is a meshtrust SQLite database and that its directory \
             is writable"
        }
        _ => reach_hint(error, sqlite),
    }
}

/// A hint for a database that cannot be reached, or "" (starts with "; " when not empty).
pub(super) fn reach_hint(error: &sqlx::Error, sqlite: bool) -> &'static str {
    match error {
        _ if sqlite => "",
        sqlx::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            "; is PostgreSQL running?"
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => "; is PostgreSQL running and reachable?",
        _ => "",
    }
}

/// Whether a failed transaction may succeed if run again: a deadlock or serialization
/// failure on PostgreSQL, a busy or locked database on SQLite.
pub(super) fn is_transient(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(e) = error else {
        return false;
    };
    matches!(
        e.code().as_deref(),
        // PostgreSQL: deadlock_detected, serialization_failure.
        Some("40P01" | "40001")
        // SQLite: BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT.
        | Some("5" | "6" | "261" | "517")
    )
}

/// Whether the failure concerns one statement only (a constraint, bad data) rather than
/// the connection or the transaction as a whole.
pub(super) fn concerns_statement(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_)) && !is_transient(error)
}
