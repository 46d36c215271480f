//! Deciding one issuance inside the writer's transaction. Every rule is a conditional
//! statement whose `rows_affected` is the verdict (a token is consumed only if unused,
//! unexpired and bound to the cluster; a cluster is replaced only if revoked or enrolled
//! with the same key; a renewal moves only the current serial), so that two writers —
//! two service replicas on one PostgreSQL — can never both win: the database serialises
//! the rows, not the writer task.
//!
//! A refusal writes nothing: the one write that can precede it (consuming the token
//! before the cluster refuses) is undone by the next statement, on the row the
//! transaction still holds. So issuances need no savepoint of their own unless a
//! statement fails; the writer then runs the batch again with one savepoint per issuance
//! ([`Isolation::Savepoint`]) to confine the failure to its issuance.

use sqlx::{Any, AnyConnection, Connection, Row, Transaction};

use super::failure::{concerns_statement, explain};
use super::queries::Bound;
use super::queries::join_roots;
use super::records::{Authority, Issuance, Refusal};

/// How issuances of a batch are kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Isolation {
    /// Directly in the batch's transaction; a failing statement fails the batch.
    Shared,
    /// Each in a savepoint, rolled back if one of its statements fails.
    Savepoint,
}

/// How one issuance ended inside a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Recorded (durable once the batch commits).
    Recorded,
    /// Refused; only its audit line is written.
    Refused(Refusal),
    /// A retry: the token was spent by this very key, which the cluster is enrolled with
    /// (the first answer was lost). Nothing is written but the audit line; the caller is
    /// answered with the certificate `serial` issued then.
    Retried {
        /// The cluster's current certificate, issued for this token and key.
        serial: String,
    },
    /// A statement of its own failed (a constraint, bad data); rolled back to its
    /// savepoint, the rest of the batch goes on. The phrase says what failed.
    Failed(String),
}

/// Decides `issuance` inside `tx`. With [`Isolation::Savepoint`], a failure of its own
/// statements is rolled back to its savepoint and becomes [`Outcome::Failed`]; `Err` is
/// then left for failures of the whole transaction (connection lost, deadlock).
pub(super) async fn decide_issuance(
    tx: &mut Transaction<'_, Any>,
    issuance: &Issuance,
    isolation: Isolation,
) -> Result<Outcome, sqlx::Error> {
    if isolation == Isolation::Shared {
        return decide(tx, issuance).await;
    }
    let mut savepoint = tx.begin().await?;
    match decide(&mut savepoint, issuance).await {
        Ok(Outcome::Recorded) => {
            savepoint.commit().await?;
            Ok(Outcome::Recorded)
        }
        Ok(other) => {
            savepoint.rollback().await?;
            Ok(other)
        }
        Err(e) if concerns_statement(&e) => {
            savepoint.rollback().await?;
            Ok(Outcome::Failed(explain(&e)))
        }
        Err(e) => Err(e),
    }
}

/// The rules in order: [`Outcome::Recorded`] when every rule held (the certificate row is
/// then written), else the first that did not.
async fn decide(conn: &mut AnyConnection, issuance: &Issuance) -> Result<Outcome, sqlx::Error> {
    let refusal = match &issuance.authority {
        Authority::Token { hash } => match consume_token(conn, hash, issuance).await? {
            Some(outcome) => return Ok(outcome),
            None => {
                let refusal = enroll(conn, issuance).await?;
                if refusal.is_some() {
                    release_token(conn, hash).await?;
                }
                refusal
            }
        },
        Authority::ServiceAccount { .. } => enroll(conn, issuance).await?,
        Authority::Renewal { previous_serial } => renew(conn, previous_serial, issuance).await?,
    };
    match refusal {
        Some(refusal) => Ok(Outcome::Refused(refusal)),
        None => {
            insert_certificate(conn, issuance).await?;
            Ok(Outcome::Recorded)
        }
    }
}

/// Consumes the token (`None`), or says why not: refused, or a retry of the enrollment
/// that spent it.
async fn consume_token(
    conn: &mut AnyConnection,
    hash: &str,
    issuance: &Issuance,
) -> Result<Option<Outcome>, sqlx::Error> {
    let at = issuance.at.unix_timestamp();
    let consumed = sqlx::query(
        "UPDATE tokens SET used_at = $1, used_by_key = $2 \
         WHERE hash = $3 AND cluster = $4 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(at)
    .bind(&issuance.key_fingerprint)
    .bind(hash)
    .bind(&issuance.cluster)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if consumed == 1 {
        return Ok(None);
    }
    // Refused: say why. The update above already settled it; this only explains.
    let row =
        sqlx::query("SELECT cluster, expires_at, used_at, used_by_key FROM tokens WHERE hash = $1")
            .bind(hash)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else {
        return Ok(Some(Outcome::Refused(Refusal::TokenUnknown)));
    };
    let bound_to: String = row.try_get("cluster")?;
    let used_at: Option<i64> = row.try_get("used_at")?;
    let used_by_key: Option<String> = row.try_get("used_by_key")?;
    let expires_at: i64 = row.try_get("expires_at")?;
    let refusal = if bound_to != issuance.cluster {
        Refusal::TokenForOtherCluster { bound_to }
    } else if used_at.is_some() {
        if used_by_key.as_deref() == Some(issuance.key_fingerprint.as_str())
            && let Some(serial) = enrolled_serial(conn, issuance).await?
        {
            return Ok(Some(Outcome::Retried { serial }));
        }
        Refusal::TokenUsed
    } else if expires_at <= at {
        Refusal::TokenExpired
    } else {
        Refusal::TokenUsed
    };
    Ok(Some(Outcome::Refused(refusal)))
}

/// The current serial of the issuance's cluster if it is enrolled with the issuance's key.
async fn enrolled_serial(
    conn: &mut AnyConnection,
    issuance: &Issuance,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT current_serial FROM clusters \
         WHERE name = $1 AND state = 'enrolled' AND key_fingerprint = $2",
    )
    .bind(&issuance.cluster)
    .bind(&issuance.key_fingerprint)
    .fetch_optional(&mut *conn)
    .await
}

/// Undoes [`consume_token`] within the transaction: the token was unused before it.
async fn release_token(conn: &mut AnyConnection, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE tokens SET used_at = NULL, used_by_key = NULL WHERE hash = $1")
        .bind(hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A first enrollment inserts the cluster; a revoked cluster, or one enrolled with the
/// same key (a retry), is replaced; one enrolled with another key is refused.
async fn enroll(
    conn: &mut AnyConnection,
    issuance: &Issuance,
) -> Result<Option<Refusal>, sqlx::Error> {
    let inserted = bind_cluster_row(
        sqlx::query(
            "INSERT INTO clusters \
         (name, state, key_fingerprint, current_serial, not_after, enrolled_at, last_seen, roots) \
         VALUES ($1, 'enrolled', $2, $3, $4, $5, $5, $6) ON CONFLICT (name) DO NOTHING",
        ),
        issuance,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    let replaced = bind_cluster_row(
        sqlx::query(
            "UPDATE clusters SET state = 'enrolled', key_fingerprint = $2, current_serial = $3, \
         not_after = $4, enrolled_at = $5, last_seen = $5, roots = $6, \
         revoked_at = NULL, revoked_by = NULL \
         WHERE name = $1 AND (state = 'revoked' OR key_fingerprint = $2)",
        ),
        issuance,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if replaced == 1 {
        return Ok(None);
    }
    let key_fingerprint: String =
        sqlx::query_scalar("SELECT key_fingerprint FROM clusters WHERE name = $1")
            .bind(&issuance.cluster)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Some(Refusal::AlreadyEnrolled { key_fingerprint }))
}

/// Binds $1…$6 of a statement that writes a cluster's row: name, key fingerprint, serial,
/// not-after, the time (enrolled and last seen), roots.
pub(super) fn bind_cluster_row<'q>(query: Bound<'q>, issuance: &'q Issuance) -> Bound<'q> {
    query
        .bind(&issuance.cluster)
        .bind(&issuance.key_fingerprint)
        .bind(&issuance.serial)
        .bind(issuance.not_after.unix_timestamp())
        .bind(issuance.at.unix_timestamp())
        .bind(join_roots(&issuance.roots))
}

/// Binds the eight values of a certificate's row, in the order serial, cluster, key
/// fingerprint, not-after, issued at, certificate, chain, kind.
pub(super) fn bind_certificate_row<'q>(query: Bound<'q>, issuance: &'q Issuance) -> Bound<'q> {
    query
        .bind(&issuance.serial)
        .bind(&issuance.cluster)
        .bind(&issuance.key_fingerprint)
        .bind(issuance.not_after.unix_timestamp())
        .bind(issuance.at.unix_timestamp())
        .bind(&issuance.certificate_pem)
        .bind(&issuance.chain_pem)
        .bind(issuance.kind())
}

/// A renewal moves the cluster to the new certificate only from its current one.
async fn renew(
    conn: &mut AnyConnection,
    previous_serial: &str,
    issuance: &Issuance,
) -> Result<Option<Refusal>, sqlx::Error> {
    let renewed = sqlx::query(
        "UPDATE clusters SET current_serial = $2, not_after = $3, last_seen = $4, roots = $5, \
         key_fingerprint = $6 \
         WHERE name = $1 AND state = 'enrolled' AND current_serial = $7",
    )
    .bind(&issuance.cluster)
    .bind(&issuance.serial)
    .bind(issuance.not_after.unix_timestamp())
    .bind(issuance.at.unix_timestamp())
    .bind(join_roots(&issuance.roots))
    .bind(&issuance.key_fingerprint)
    .bind(previous_serial)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if renewed == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT state, current_serial FROM clusters WHERE name = $1")
        .bind(&issuance.cluster)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(Some(Refusal::UnknownCluster));
    };
    if row.try_get::<String, _>("state")? == "revoked" {
        return Ok(Some(Refusal::Revoked));
    }
    Ok(Some(Refusal::NotCurrent {
        current_serial: row.try_get("current_serial")?,
    }))
}

async fn insert_certificate(
    conn: &mut AnyConnection,
    issuance: &Issuance,
) -> Result<(), sqlx::Error> {
    let insert = sqlx::query(
        "INSERT INTO certificates (serial, cluster, key_fingerprint, not_after, issued_at, \
         revoked, certificate_pem, chain_pem, kind) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
    );
    bind_certificate_row(insert, issuance)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
