//! Deciding a whole batch of first enrollments in three statements instead of three per
//! request: the common case of an enrollment storm, where every request is a new cluster
//! with its own credential. Each statement is a round trip to the database (for SQLite,
//! to the connection's thread), and the writer's batches are decided one after the other,
//! so statements per request bound the store's throughput.
//!
//! The same rules as [`super::decide`], as set-wise statements: tokens are consumed only
//! if unused, unexpired at the request's instant and bound to its cluster; clusters are
//! inserted only if absent; then the certificates. The fast path is taken only when it
//! cannot differ from deciding the requests one by one (clusters and tokens pairwise
//! distinct, no renewal), and only if every request of the batch is recorded: if a token
//! is not consumed or a cluster exists already, it answers [`Bulk::Deviated`] and the
//! writer rolls the transaction back and decides the batch one request at a time, which
//! explains each refusal.

use std::collections::HashSet;

use sqlx::{Any, AssertSqlSafe, Transaction};

use super::decide::{bind_certificate_row, bind_cluster_row};
use super::records::{Authority, Issuance};
use super::writer::Work;

/// How the fast path ended.
pub(super) enum Bulk {
    /// Not a batch for it; nothing was written.
    NotEligible,
    /// A request would not be recorded as is; what was written must be rolled back.
    Deviated,
    /// Every request of the batch is recorded (once the transaction commits).
    Recorded,
}

/// The issuances of `work` if the fast path may decide them: two or more first
/// enrollments, clusters and tokens pairwise distinct.
fn eligible<'a>(work: &[&'a Work]) -> Option<Vec<&'a Issuance>> {
    let issuances: Vec<&Issuance> = work
        .iter()
        .filter_map(|w| match w {
            Work::Issue(issuance) => Some(&**issuance),
            Work::Audit(_) => None,
        })
        .collect();
    let mut clusters = HashSet::new();
    let mut tokens = HashSet::new();
    let distinct = issuances.iter().all(|i| {
        let token_ok = match &i.authority {
            Authority::Token { hash } => tokens.insert(hash.as_str()),
            Authority::ServiceAccount { .. } => true,
            Authority::Renewal { .. } => false,
        };
        token_ok && clusters.insert(i.cluster.as_str())
    });
    (distinct && issuances.len() >= 2).then_some(issuances)
}

/// Decides every issuance of `work` at once, inside `tx`.
pub(super) async fn decide_all(
    tx: &mut Transaction<'_, Any>,
    work: &[&Work],
) -> Result<Bulk, sqlx::Error> {
    let Some(issuances) = eligible(work) else {
        return Ok(Bulk::NotEligible);
    };
    if !consume_tokens(tx, &issuances).await? || !insert_clusters(tx, &issuances).await? {
        return Ok(Bulk::Deviated);
    }
    insert_certificates(tx, &issuances).await?;
    Ok(Bulk::Recorded)
}

/// `$a, $b, …` for `count` parameters from number `first`.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Consumes every token of the batch; true if each one was.
async fn consume_tokens(
    tx: &mut Transaction<'_, Any>,
    issuances: &[&Issuance],
) -> Result<bool, sqlx::Error> {
    let with_token: Vec<(&Issuance, &str)> = issuances
        .iter()
        .filter_map(|i| match &i.authority {
            Authority::Token { hash } => Some((*i, hash.as_str())),
            _ => None,
        })
        .collect();
    if with_token.is_empty() {
        return Ok(true);
    }
    // Per token: $n hash, $n+1 instant, $n+2 key fingerprint, $n+3 cluster.
    let (mut used_at, mut used_by, mut matches) = (String::new(), String::new(), Vec::new());
    for row in 0..with_token.len() {
        let n = row * 4 + 1;
        used_at.push_str(&format!(" WHEN ${n} THEN ${}", n + 1));
        used_by.push_str(&format!(" WHEN ${n} THEN ${}", n + 2));
        matches.push(format!(
            "(hash = ${n} AND cluster = ${} AND expires_at > ${})",
            n + 3,
            n + 1
        ));
    }
    let sql = format!(
        "UPDATE tokens SET used_at = CASE hash{used_at} END, used_by_key = CASE hash{used_by} END \
         WHERE used_at IS NULL AND ({}) RETURNING hash",
        matches.join(" OR ")
    );
    let mut update = sqlx::query(AssertSqlSafe(sql));
    for (issuance, hash) in &with_token {
        update = update
            .bind(*hash)
            .bind(issuance.at.unix_timestamp())
            .bind(&issuance.key_fingerprint)
            .bind(&issuance.cluster);
    }
    let consumed = update.fetch_all(&mut **tx).await?;
    Ok(consumed.len() == with_token.len())
}

/// Inserts every cluster of the batch; true if none existed.
async fn insert_clusters(
    tx: &mut Transaction<'_, Any>,
    issuances: &[&Issuance],
) -> Result<bool, sqlx::Error> {
    let rows: Vec<String> = (0..issuances.len())
        .map(|row| {
            let n = row * 6 + 1;
            format!(
                "(${n}, 'enrolled', ${}, ${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 4,
                n + 5
            )
        })
        .collect();
    let sql = format!(
        "INSERT INTO clusters (name, state, key_fingerprint, current_serial, not_after, \
         enrolled_at, last_seen, roots) VALUES {} ON CONFLICT (name) DO NOTHING RETURNING name",
        rows.join(", ")
    );
    let mut insert = sqlx::query(AssertSqlSafe(sql));
    for issuance in issuances {
        insert = bind_cluster_row(insert, issuance);
    }
    let inserted = insert.fetch_all(&mut **tx).await?;
    Ok(inserted.len() == issuances.len())
}

/// Inserts every certificate of the batch.
async fn insert_certificates(
    tx: &mut Transaction<'_, Any>,
    issuances: &[&Issuance],
) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 8;
    let rows: Vec<String> = (0..issuances.len())
        .map(|row| format!("({})", placeholders(row * COLUMNS + 1, COLUMNS)))
        .collect();
    let sql = format!(
        "INSERT INTO certificates (serial, cluster, key_fingerprint, not_after, issued_at, \
         certificate_pem, chain_pem, kind) VALUES {}",
        rows.join(", ")
    );
    let mut insert = sqlx::query(AssertSqlSafe(sql));
    for issuance in issuances {
        insert = bind_certificate_row(insert, issuance);
    }
    insert.execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod tests;
