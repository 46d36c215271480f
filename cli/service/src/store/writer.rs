//! Group commit: one writer task per [`Store`](super::Store) takes every queued issuance
//! and audit line (up to [`MAX_BATCH`]), decides them in turn inside ONE transaction,
//! commits once — one fsync for the lot — and only then answers every caller. If the
//! transaction fails, every caller of the batch gets the error and nothing of it is kept;
//! the writer goes on with the next batch. A batch of first enrollments is decided in
//! three set-wise statements ([`super::bulk`]), any other one request by request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::address::StoreAddress;
use super::audit_rows;
use super::bulk::{self, Bulk};
use super::decide::{Isolation, Outcome, decide_issuance};
use super::failure::{concerns_statement, explain, is_transient, reach_hint};
use super::records::{AuditEvent, Authority, Committed, Issuance};
use crate::Result;

/// The most requests one transaction decides.
pub(super) const MAX_BATCH: usize = 256;

/// Requests waiting for the writer before callers wait to queue.
const QUEUE: usize = 4 * MAX_BATCH;

/// How often a batch is tried when it fails on a deadlock or a busy database.
const ATTEMPTS: u32 = 3;

/// What the writer is asked to write.
pub(super) enum Work {
    /// Decide and record an issuance (with its audit line).
    Issue(Box<Issuance>),
    /// Append an audit line.
    Audit(AuditEvent),
}

/// The writer's connection, kept between batches.
type Held = Option<PoolConnection<Any>>;

/// A request to the writer and where to send its answer.
pub(super) struct Job {
    pub(super) work: Work,
    pub(super) reply: oneshot::Sender<Result<Committed>>,
}

/// Starts the writer; it runs until every sender of the returned queue is dropped.
pub(super) fn spawn(
    pool: AnyPool,
    address: StoreAddress,
    batches: Arc<AtomicU64>,
) -> mpsc::Sender<Job> {
    let (sender, receiver) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, address, batches, receiver));
    sender
}

async fn run(
    pool: AnyPool,
    address: StoreAddress,
    batches: Arc<AtomicU64>,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The writer keeps its connection from batch to batch (an acquire per batch cost a
    // round trip to the connection's thread, and for PostgreSQL a ping), and gives it back
    // when a batch fails or the pool is closing.
    let mut held: Held = None;
    loop {
        let received = tokio::select! {
            received = queue.recv_many(&mut batch, MAX_BATCH) => received,
            () = pool.close_event(), if held.is_some() => {
                held = None;
                continue;
            }
        };
        if received == 0 {
            break;
        }
        batch.sort_by(|a, b| lock_order(&a.work).cmp(&lock_order(&b.work)));
        let work: Vec<&Work> = batch.iter().map(|job| &job.work).collect();
        match commit_batch(&pool, &mut held, address.is_sqlite(), &work).await {
            Ok(outcomes) => {
                batches.fetch_add(1, Ordering::Relaxed);
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    // A caller that stopped waiting still had its request decided.
                    let _ = job.reply.send(answer(&address, &job.work, outcome));
                }
            }
            Err(e) => {
                let reason = format!(
                    "the transaction recording this request failed and was rolled back \
                     ({}){}",
                    explain(&e),
                    reach_hint(&e, address.is_sqlite())
                );
                tracing::warn!(store = address.shown(), requests = batch.len(), %reason);
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(address.error(reason.clone())));
                }
            }
        }
    }
}

/// Where a request comes in its batch: by the rows its statements lock, in the order they
/// lock them (its token's, then its cluster's). Every writer — several replicas on one
/// PostgreSQL too — then takes the rows of its batch in one global order, so concurrent
/// batches wait for each other instead of deadlocking (which PostgreSQL detects only after
/// `deadlock_timeout`, 1 s by default, and ends by aborting one of them). Audit lines lock
/// only the counter, which every transaction takes last. Two different tokens of one
/// cluster, in two batches, can still deadlock; the retry settles that.
fn lock_order(work: &Work) -> Option<(&str, &str)> {
    let Work::Issue(issuance) = work else {
        return None;
    };
    let token = match &issuance.authority {
        Authority::Token { hash } => hash.as_str(),
        Authority::ServiceAccount { .. } | Authority::Renewal { .. } => "",
    };
    Some((issuance.cluster.as_str(), token))
}

/// What the caller of one request is told once its batch committed.
fn answer(address: &StoreAddress, work: &Work, outcome: Outcome) -> Result<Committed> {
    match outcome {
        Outcome::Recorded => Ok(Committed::Recorded),
        Outcome::Refused(refusal) => Ok(Committed::Refused(refusal)),
        Outcome::Retried { serial } => Ok(Committed::Retried { serial }),
        Outcome::Failed(reason) => Err(address.error(match work {
            Work::Issue(issuance) => format!(
                "cannot record certificate {} of cluster {} ({reason})",
                issuance.serial, issuance.cluster
            ),
            Work::Audit(_) => format!("cannot record the audit line ({reason})"),
        })),
    }
}

/// Runs the batch in one transaction. If a statement failed, runs it again with one
/// savepoint per issuance, so that only the issuance at fault fails; on a deadlock or a
/// busy database, runs it again as it was. A failed attempt left nothing behind, so every
/// decision is made afresh.
async fn commit_batch(
    pool: &AnyPool,
    held: &mut Held,
    sqlite: bool,
    work: &[&Work],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut isolation = Isolation::Shared;
    let mut attempt = 1;
    loop {
        let attempted = attempt_batch(pool, held, sqlite, work, isolation).await;
        if attempted.is_err() {
            // Rolled back; a connection that failed is not trusted with the next attempt.
            *held = None;
        }
        match attempted {
            Err(e) if isolation == Isolation::Shared && concerns_statement(&e) => {
                tracing::debug!(error = %explain(&e), "batch run again with savepoints");
                isolation = Isolation::Savepoint;
            }
            Err(e) if is_transient(&e) && attempt < ATTEMPTS => {
                tracing::debug!(attempt, error = %explain(&e), "batch retried");
                attempt += 1;
            }
            done => return done,
        }
    }
}

async fn attempt_batch(
    pool: &AnyPool,
    held: &mut Held,
    sqlite: bool,
    work: &[&Work],
    isolation: Isolation,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(pool.acquire().await?),
    };
    let mut tx = begin(conn, sqlite).await?;
    let bulk = match isolation {
        Isolation::Shared => bulk::decide_all(&mut tx, work, sqlite).await?,
        Isolation::Savepoint => Bulk::NotEligible,
    };
    let outcomes = match bulk {
        Bulk::RecordedWithAudit => {
            tx.commit().await?;
            return Ok(vec![Outcome::Recorded; work.len()]);
        }
        Bulk::Recorded => vec![Outcome::Recorded; work.len()],
        Bulk::NotEligible => decide_each(&mut tx, work, isolation).await?,
        Bulk::Deviated => {
            // Someone's authority did not hold: decide again one by one, which explains it.
            tx.rollback().await?;
            tx = begin(conn, sqlite).await?;
            decide_each(&mut tx, work, isolation).await?
        }
    };
    audit_rows::append(&mut tx, work, &outcomes).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Begins the batch's transaction; as `queries::begin_write`, on SQLite it takes the
/// write lock at once.
async fn begin(
    conn: &mut AnyConnection,
    sqlite: bool,
) -> Result<Transaction<'_, Any>, sqlx::Error> {
    conn.begin_with(super::queries::begin_statement(sqlite))
        .await
}

/// Decides the requests of a batch one after the other.
async fn decide_each(
    tx: &mut Transaction<'_, Any>,
    work: &[&Work],
    isolation: Isolation,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut outcomes = Vec::with_capacity(work.len());
    for item in work {
        outcomes.push(match item {
            Work::Issue(issuance) => decide_issuance(tx, issuance, isolation).await?,
            Work::Audit(_) => Outcome::Recorded,
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
