//! The store's reads, and the writes that do not go through the group-commit writer
//! (token creation and revocation: rare admin actions, each its own transaction).
//! Portable SQL only: `$n` placeholders, BIGINT unix seconds, TEXT.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};
use time::OffsetDateTime;

use super::records::{
    AuditEvent, CertificateRecord, ClusterRecord, ClusterState, NewToken, TokenRecord,
};

/// A statement with its parameters bound, ready to run.
pub(super) type Bound<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>;

/// The statement that begins a transaction that writes: on SQLite `BEGIN IMMEDIATE`, see
/// [`begin_write`].
pub(super) fn begin_statement(sqlite: bool) -> &'static str {
    if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" }
}

/// Begins a transaction that writes. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`, waiting out the busy timeout), so that it can never fail later on
/// a snapshot another writer moved; PostgreSQL's `BEGIN` needs no such thing.
pub(super) async fn begin_write(
    pool: &AnyPool,
    sqlite: bool,
) -> Result<Transaction<'static, Any>, sqlx::Error> {
    pool.begin_with(begin_statement(sqlite)).await
}

pub(super) async fn create_token(pool: &AnyPool, token: &NewToken) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tokens (hash, cluster, expires_at, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token.hash)
    .bind(&token.cluster)
    .bind(token.expires_at.unix_timestamp())
    .bind(token.created_at.unix_timestamp())
    .bind(&token.created_by)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn token(pool: &AnyPool, hash: &str) -> Result<Option<TokenRecord>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT hash, cluster, expires_at, used_at, used_by_key FROM tokens WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(TokenRecord {
            hash: row.try_get("hash")?,
            cluster: row.try_get("cluster")?,
            expires_at: instant(&row, "expires_at")?,
            used_at: optional_instant(&row, "used_at")?,
            used_by_key: row.try_get("used_by_key")?,
        })
    })
    .transpose()
}

const CLUSTER_COLUMNS: &str = "SELECT name, state, key_fingerprint, current_serial, not_after, \
     enrolled_at, last_seen, roots FROM clusters";

pub(super) async fn cluster(
    conn: impl sqlx::Executor<'_, Database = Any>,
    name: &str,
) -> Result<Option<ClusterRecord>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!("{CLUSTER_COLUMNS} WHERE name = $1"));
    let row = sqlx::query(sql).bind(name).fetch_optional(conn).await?;
    row.as_ref().map(cluster_from).transpose()
}

pub(super) async fn clusters(pool: &AnyPool) -> Result<Vec<ClusterRecord>, sqlx::Error> {
    let rows = sqlx::query(CLUSTER_COLUMNS).fetch_all(pool).await?;
    let mut clusters = rows
        .iter()
        .map(cluster_from)
        .collect::<Result<Vec<_>, _>>()?;
    // Byte order, the same on every database (PostgreSQL would sort by its collation).
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(clusters)
}

fn cluster_from(row: &AnyRow) -> Result<ClusterRecord, sqlx::Error> {
    let state = match row.try_get::<String, _>("state")?.as_str() {
        "enrolled" => ClusterState::Enrolled,
        "revoked" => ClusterState::Revoked,
        other => {
            return Err(sqlx::Error::Decode(
                format!("cluster state `{other}` is neither enrolled nor revoked").into(),
            ));
        }
    };
    let roots: String = row.try_get("roots")?;
    Ok(ClusterRecord {
        name: row.try_get("name")?,
        state,
        key_fingerprint: row.try_get("key_fingerprint")?,
        current_serial: row.try_get("current_serial")?,
        not_after: instant(row, "not_after")?,
        enrolled_at: instant(row, "enrolled_at")?,
        last_seen: instant(row, "last_seen")?,
        roots: split_roots(&roots),
    })
}

pub(super) async fn certificate(
    pool: &AnyPool,
    serial: &str,
) -> Result<Option<CertificateRecord>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT serial, cluster, key_fingerprint, not_after, issued_at, revoked, \
         certificate_pem, chain_pem FROM certificates WHERE serial = $1",
    )
    .bind(serial)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(CertificateRecord {
            serial: row.try_get("serial")?,
            cluster: row.try_get("cluster")?,
            key_fingerprint: row.try_get("key_fingerprint")?,
            not_after: instant(&row, "not_after")?,
            issued_at: instant(&row, "issued_at")?,
            revoked: row.try_get::<i64, _>("revoked")? != 0,
            certificate_pem: row.try_get("certificate_pem")?,
            chain_pem: row.try_get("chain_pem")?,
        })
    })
    .transpose()
}

/// Marks the cluster and every certificate it was issued revoked, in one transaction.
/// Revoking a revoked cluster keeps its first revocation's time and author.
pub(super) async fn revoke(
    pool: &AnyPool,
    sqlite: bool,
    name: &str,
    at: OffsetDateTime,
    by: &str,
) -> Result<Option<ClusterRecord>, sqlx::Error> {
    let mut tx = begin_write(pool, sqlite).await?;
    sqlx::query(
        "UPDATE clusters SET state = 'revoked', revoked_at = $2, revoked_by = $3 \
         WHERE name = $1 AND state = 'enrolled'",
    )
    .bind(name)
    .bind(at.unix_timestamp())
    .bind(by)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE certificates SET revoked = 1 WHERE cluster = $1 AND revoked = 0")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let record = cluster(&mut *tx, name).await?;
    tx.commit().await?;
    Ok(record)
}

pub(super) async fn audit(pool: &AnyPool, limit: i64) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at, principal, action, cluster, serial, result, reason FROM audit \
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditEvent {
                at: instant(row, "at")?,
                principal: row.try_get("principal")?,
                action: row.try_get("action")?,
                cluster: row.try_get("cluster")?,
                serial: row.try_get("serial")?,
                result: row.try_get("result")?,
                reason: row.try_get("reason")?,
            })
        })
        .collect()
}

/// Roots as the `clusters.roots` column holds them: comma-separated fingerprints.
pub(super) fn join_roots(roots: &[String]) -> String {
    roots.join(",")
}

fn split_roots(column: &str) -> Vec<String> {
    column
        .split(',')
        .filter(|root| !root.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn instant(row: &AnyRow, column: &str) -> Result<OffsetDateTime, sqlx::Error> {
    from_unix(row.try_get(column)?)
}

fn optional_instant(row: &AnyRow, column: &str) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    row.try_get::<Option<i64>, _>(column)?
        .map(from_unix)
        .transpose()
}

fn from_unix(seconds: i64) -> Result<OffsetDateTime, sqlx::Error> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| sqlx::Error::Decode(e.into()))
}
