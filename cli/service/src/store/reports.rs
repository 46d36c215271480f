//! Cluster reports: the last one of each cluster, replaced by the next, written with the
//! cluster's `last_seen` in one transaction.

use std::collections::HashMap;

use sqlx::{AnyPool, Row};
use time::OffsetDateTime;

use super::queries::{begin_write, instant};

/// Records `report` (JSON text) as `cluster`'s last, received `at`; `false` if the
/// cluster never enrolled.
pub(super) async fn record(
    pool: &AnyPool,
    sqlite: bool,
    cluster: &str,
    at: OffsetDateTime,
    report: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = begin_write(pool, sqlite).await?;
    let seen = sqlx::query("UPDATE clusters SET last_seen = $2 WHERE name = $1")
        .bind(cluster)
        .bind(at.unix_timestamp())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if seen == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO cluster_reports (cluster, received_at, report) VALUES ($1, $2, $3) \
         ON CONFLICT (cluster) DO UPDATE SET received_at = $2, report = $3",
    )
    .bind(cluster)
    .bind(at.unix_timestamp())
    .bind(report)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Every cluster's last report: when it was received, and its JSON text.
pub(super) async fn all(
    pool: &AnyPool,
) -> Result<HashMap<String, (OffsetDateTime, String)>, sqlx::Error> {
    let rows = sqlx::query("SELECT cluster, received_at, report FROM cluster_reports")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("cluster")?,
                (instant(row, "received_at")?, row.try_get("report")?),
            ))
        })
        .collect()
}

/// `cluster`'s last report: when it was received, and its JSON text.
pub(super) async fn one(
    pool: &AnyPool,
    cluster: &str,
) -> Result<Option<(OffsetDateTime, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT received_at, report FROM cluster_reports WHERE cluster = $1")
        .bind(cluster)
        .fetch_optional(pool)
        .await?;
    row.map(|row| Ok((instant(&row, "received_at")?, row.try_get("report")?)))
        .transpose()
}
