//! Whether the controller is ready, and how the last reconcile went: shared by the
//! reconciler (which records) and the HTTP server (which answers `/readyz`).

use std::sync::{PoisonError, RwLock};

use time::OffsetDateTime;

/// Why a new [`Health`] is not ready.
pub(crate) const NOT_SYNCED: &str = "the controller has not synced its caches yet";

/// What the controller shares with the endpoints: whether it is ready, and how the last
/// reconcile went.
#[derive(Debug)]
pub struct Health {
    not_ready: RwLock<Option<String>>,
    last_reconcile: RwLock<Option<LastReconcile>>,
}

/// When the last reconcile finished and whether it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastReconcile {
    /// When it finished.
    pub finished: OffsetDateTime,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<String>,
}

impl Default for Health {
    /// Not ready: the controller has not synced yet; no reconcile so far.
    fn default() -> Self {
        Health {
            not_ready: RwLock::new(Some(NOT_SYNCED.to_string())),
            last_reconcile: RwLock::new(None),
        }
    }
}

impl Health {
    /// Marks the controller ready (its caches have synced): `/readyz` answers 200.
    pub fn set_ready(&self) {
        *self
            .not_ready
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Marks the controller not ready: `/readyz` answers 503 with `reason`.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        *self
            .not_ready
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason.into());
    }

    /// `Ok` when ready, otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        match &*self
            .not_ready
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }

    /// Remembers how the latest reconcile went.
    pub fn record_reconcile(&self, reconcile: LastReconcile) {
        *self
            .last_reconcile
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(reconcile);
    }

    /// How the latest reconcile went, if there was one.
    pub fn last_reconcile(&self) -> Option<LastReconcile> {
        self.last_reconcile
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
