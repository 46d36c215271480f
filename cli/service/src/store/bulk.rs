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
//!
//! On PostgreSQL the three statements are three round trips. On SQLite they run as one
//! script, with the batch's audit rows, in one round trip to the connection's thread: a
//! round trip there costs a wake-up of that thread, which on a loaded machine waits for a
//! core, and the writer's batches wait for each other. The script's verdict is the sum
//! of the rows it changed, which reaches its expected value only if every statement
//! changed every row it could.

use std::collections::HashSet;

use sqlx::{Any, AssertSqlSafe, Transaction};

use super::audit_rows;
use super::decide::{Outcome, bind_certificate_row, bind_cluster_row};
use super::queries::Bound;
use super::records::{Authority, Issuance};
use super::writer::Work;

/// How the fast path ended.
pub(super) enum Bulk {
    /// Not a batch for it; nothing was written.
    NotEligible,
    /// A request would not be recorded as is; what was written must be rolled back.
    Deviated,
    /// Every request of the batch is recorded (once the transaction commits); the audit
    /// rows are still to be written.
    Recorded,
    /// Every request of the batch is recorded, and so are its audit rows (SQLite).
    RecordedWithAudit,
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

/// Decides every issuance of `work` at once, inside `tx`; on SQLite (`sqlite`), with the
/// batch's audit rows.
pub(super) async fn decide_all(
    tx: &mut Transaction<'_, Any>,
    work: &[&Work],
    sqlite: bool,
) -> Result<Bulk, sqlx::Error> {
    let Some(issuances) = eligible(work) else {
        return Ok(Bulk::NotEligible);
    };
    let tokens = with_token(&issuances);
    if sqlite {
        return run_script(tx, work, &issuances, &tokens).await;
    }
    let (n, t) = (issuances.len() as u64, tokens.len() as u64);
    let consumed = match tokens.is_empty() {
        true => 0,
        false => run(tx, bind_tokens(query(tokens_sql(&tokens, 1)), &tokens)).await?,
    };
    if consumed != t {
        return Ok(Bulk::Deviated);
    }
    let clusters = query(clusters_sql(issuances.len(), 1));
    if run(tx, bind_clusters(clusters, &issuances)).await? != n {
        return Ok(Bulk::Deviated);
    }
    let certificates = query(certificates_sql(issuances.len(), 1));
    run(tx, bind_certificates(certificates, &issuances)).await?;
    Ok(Bulk::Recorded)
}

/// The SQLite script: tokens, clusters, certificates, then the audit rows (as if every
/// request were recorded: if one is not, the caller rolls it all back).
async fn run_script(
    tx: &mut Transaction<'_, Any>,
    work: &[&Work],
    issuances: &[&Issuance],
    tokens: &[(&Issuance, &str)],
) -> Result<Bulk, sqlx::Error> {
    let n = issuances.len();
    let mut statements = Vec::new();
    let mut next = 1;
    if !tokens.is_empty() {
        statements.push(tokens_sql(tokens, next));
        next += tokens.len() * TOKEN_PARAMS;
    }
    statements.push(clusters_sql(n, next));
    next += n * CLUSTER_PARAMS;
    statements.push(certificates_sql(n, next));
    next += n * CERTIFICATE_PARAMS;
    statements.push(audit_rows::script(work.len(), next));
    let outcomes = vec![Outcome::Recorded; work.len()];
    let mut script = query(statements.join("; "));
    if !tokens.is_empty() {
        script = bind_tokens(script, tokens);
    }
    script = bind_certificates(bind_clusters(script, issuances), issuances);
    script = audit_rows::bind_script(script, work, &outcomes);
    let expected = tokens.len() + 2 * n + 1 + work.len();
    Ok(if run(tx, script).await? == expected as u64 {
        Bulk::RecordedWithAudit
    } else {
        Bulk::Deviated
    })
}

fn query<'q>(sql: String) -> Bound<'q> {
    sqlx::query(AssertSqlSafe(sql))
}

/// Runs `statement`; the rows it changed (summed over a script's statements).
async fn run(tx: &mut Transaction<'_, Any>, statement: Bound<'_>) -> Result<u64, sqlx::Error> {
    Ok(statement.execute(&mut **tx).await?.rows_affected())
}

/// The issuances presenting an enrollment token, with its hash.
fn with_token<'a>(issuances: &[&'a Issuance]) -> Vec<(&'a Issuance, &'a str)> {
    issuances
        .iter()
        .filter_map(|i| match &i.authority {
            Authority::Token { hash } => Some((*i, hash.as_str())),
            _ => None,
        })
        .collect()
}

const TOKEN_PARAMS: usize = 4;
const CLUSTER_PARAMS: usize = 6;
const CERTIFICATE_PARAMS: usize = 8;

/// Consumes each token of `tokens` if unused, unexpired and bound to its cluster.
/// Per token, from parameter `first`: hash, instant, key fingerprint, cluster.
fn tokens_sql(tokens: &[(&Issuance, &str)], first: usize) -> String {
    let (mut used_at, mut used_by, mut matches) = (String::new(), String::new(), Vec::new());
    for row in 0..tokens.len() {
        let n = first + row * TOKEN_PARAMS;
        used_at.push_str(&format!(" WHEN ${n} THEN ${}", n + 1));
        used_by.push_str(&format!(" WHEN ${n} THEN ${}", n + 2));
        matches.push(format!(
            "(hash = ${n} AND cluster = ${} AND expires_at > ${})",
            n + 3,
            n + 1
        ));
    }
    format!(
        "UPDATE tokens SET used_at = CASE hash{used_at} END, used_by_key = CASE hash{used_by} END \
         WHERE used_at IS NULL AND ({})",
        matches.join(" OR ")
    )
}

fn bind_tokens<'q>(mut query: Bound<'q>, tokens: &[(&'q Issuance, &'q str)]) -> Bound<'q> {
    for (issuance, hash) in tokens {
        query = query
            .bind(*hash)
            .bind(issuance.at.unix_timestamp())
            .bind(&issuance.key_fingerprint)
            .bind(&issuance.cluster);
    }
    query
}

/// Inserts `rows` clusters unless they exist, parameters from `first` as
/// [`bind_cluster_row`] binds them.
fn clusters_sql(rows: usize, first: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let n = first + row * CLUSTER_PARAMS;
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
    format!(
        "INSERT INTO clusters (name, state, key_fingerprint, current_serial, not_after, \
         enrolled_at, last_seen, roots) VALUES {} ON CONFLICT (name) DO NOTHING",
        values.join(", ")
    )
}

fn bind_clusters<'q>(mut query: Bound<'q>, issuances: &[&'q Issuance]) -> Bound<'q> {
    for issuance in issuances {
        query = bind_cluster_row(query, issuance);
    }
    query
}

/// Inserts `rows` certificates, parameters from `first` as [`bind_certificate_row`]
/// binds them.
fn certificates_sql(rows: usize, first: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let n = first + row * CERTIFICATE_PARAMS;
            let columns: Vec<String> = (n..n + CERTIFICATE_PARAMS)
                .map(|p| format!("${p}"))
                .collect();
            format!("({})", columns.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO certificates (serial, cluster, key_fingerprint, not_after, issued_at, \
         certificate_pem, chain_pem, kind) VALUES {}",
        values.join(", ")
    )
}

fn bind_certificates<'q>(mut query: Bound<'q>, issuances: &[&'q Issuance]) -> Bound<'q> {
    for issuance in issuances {
        query = bind_certificate_row(query, issuance);
    }
    query
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod tests;
