//! The audit rows of a batch: one per request, numbered from the `audit` counter, which
//! each transaction reserves last so that the counter row is held only while the
//! transaction commits; the ids are then gap-free and in commit order even with several
//! writers. Written in two statements ([`append`]), or, on SQLite, as the tail of the
//! fast path's one script ([`script`], [`bind_script`]).

use sqlx::{Any, AssertSqlSafe, Transaction};

use super::decide::Outcome;
use super::queries::Bound;
use super::records::AuditEvent;
use super::writer::Work;

/// Bound parameters per audit row, besides its id: at, principal, action, cluster,
/// serial, result, reason.
const COLUMNS: usize = 7;

/// Reserves ids for `work` from the counter and inserts one row per request, `outcomes`
/// giving each its result.
pub(super) async fn append(
    tx: &mut Transaction<'_, Any>,
    work: &[&Work],
    outcomes: &[Outcome],
) -> Result<(), sqlx::Error> {
    let count = i64::try_from(work.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar(
        "UPDATE counters SET value = value + $1 WHERE name = 'audit' RETURNING value",
    )
    .bind(count)
    .fetch_one(&mut **tx)
    .await?;
    // Row r: $(8r+1) its id, then its seven columns.
    let sql = insert(work.len(), |row| {
        let n = row * (COLUMNS + 1) + 1;
        (format!("${n}"), n + 1)
    });
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for ((item, outcome), id) in work.iter().zip(outcomes).zip(last - count + 1..) {
        query = bind_row(query.bind(id), item, outcome);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The same two statements as one SQLite script, parameters numbered from `first`: the
/// counter moves by `$first`, and row r's id is the moved counter minus `$first` plus
/// r + 1. Changes `1 + work.len()` rows.
pub(super) fn script(rows: usize, first: usize) -> String {
    let reserve = format!("UPDATE counters SET value = value + ${first} WHERE name = 'audit'");
    let insert = insert(rows, |row| {
        (
            format!(
                "(SELECT value FROM counters WHERE name = 'audit') - ${first} + {}",
                row + 1
            ),
            first + 1 + row * COLUMNS,
        )
    });
    format!("{reserve}; {insert}")
}

/// Binds [`script`]'s parameters, in its order.
pub(super) fn bind_script<'q>(
    query: Bound<'q>,
    work: &[&'q Work],
    outcomes: &'q [Outcome],
) -> Bound<'q> {
    let count = i64::try_from(work.len()).unwrap_or(i64::MAX);
    let mut query = query.bind(count);
    for (item, outcome) in work.iter().zip(outcomes) {
        query = bind_row(query, item, outcome);
    }
    query
}

/// `INSERT INTO audit … VALUES (…), (…)` for `rows` rows; `row_start(r)` gives row r's id
/// expression and the number of its first column parameter. (sqlx's `QueryBuilder`
/// writes `?` placeholders for `Any`, which PostgreSQL does not take.)
fn insert(rows: usize, row_start: impl Fn(usize) -> (String, usize)) -> String {
    let mut sql = String::from(
        "INSERT INTO audit (id, at, principal, action, cluster, serial, result, reason) VALUES ",
    );
    for row in 0..rows {
        let (id, first) = row_start(row);
        let columns: Vec<String> = (first..first + COLUMNS).map(|n| format!("${n}")).collect();
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("({id}, {})", columns.join(", ")));
    }
    sql
}

fn bind_row<'q>(query: Bound<'q>, work: &'q Work, outcome: &'q Outcome) -> Bound<'q> {
    let (event, result, reason) = line(work, outcome);
    let serial = match outcome {
        Outcome::Retried { serial } => Some(serial),
        _ => event.serial.as_ref(),
    };
    query
        .bind(event.at.unix_timestamp())
        .bind(&event.principal)
        .bind(&event.action)
        .bind(&event.cluster)
        .bind(serial)
        .bind(result)
        .bind(reason)
}

/// The audit line of a request: the event as given, with the result the store decided.
/// (A retry's line names the certificate answered, [`Outcome::Retried`]'s serial.)
fn line<'a>(work: &'a Work, outcome: &'a Outcome) -> (&'a AuditEvent, &'a str, String) {
    match (work, outcome) {
        (Work::Audit(event), _) => (event, &event.result, event.reason.clone()),
        (Work::Issue(issuance), Outcome::Recorded) => (
            &issuance.audit,
            AuditEvent::OK,
            issuance.audit.reason.clone(),
        ),
        (Work::Issue(issuance), Outcome::Refused(refusal)) => {
            (&issuance.audit, AuditEvent::REFUSED, refusal.to_string())
        }
        (Work::Issue(issuance), Outcome::Retried { .. }) => (
            &issuance.audit,
            AuditEvent::OK,
            AuditEvent::RETRY.to_string(),
        ),
        (Work::Issue(issuance), Outcome::Failed(reason)) => {
            (&issuance.audit, AuditEvent::ERROR, reason.clone())
        }
    }
}
