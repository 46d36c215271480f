//! The audit log: every issuance, renewal, refusal and admin action as one JSON line (who,
//! which cluster, serial, result, reason), written to the sink the binary gives (stdout or a
//! file), and as a row of the store. An issuance's row is committed in the same transaction
//! as the certificate it records.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

use crate::store::AuditEvent;

/// Where audit lines go.
pub struct AuditLog {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

#[derive(Serialize)]
struct Line<'a> {
    at: String,
    principal: &'a str,
    action: &'a str,
    cluster: Option<&'a str>,
    serial: Option<&'a str>,
    result: &'a str,
    reason: &'a str,
}

impl AuditLog {
    /// Lines go to `sink`, one per event, flushed at once.
    pub fn new(sink: Box<dyn Write + Send>) -> AuditLog {
        AuditLog {
            sink: Mutex::new(sink),
        }
    }

    /// Lines are dropped (the store still has every event).
    pub fn discard() -> AuditLog {
        AuditLog::new(Box::new(std::io::sink()))
    }

    /// Writes `event` as one JSON line. A failing sink is reported in the service's log
    /// and does not fail the request: the store holds the event.
    pub fn write(&self, event: &AuditEvent) {
        let line = Line {
            at: meshtrust_ca::fmt_time(event.at),
            principal: &event.principal,
            action: &event.action,
            cluster: event.cluster.as_deref(),
            serial: event.serial.as_deref(),
            result: &event.result,
            reason: &event.reason,
        };
        let mut text = serde_json::to_string(&line).expect("an audit line serialises");
        text.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = sink.write_all(text.as_bytes()).and_then(|()| sink.flush()) {
            tracing::error!("the audit log cannot be written: {e}");
        }
    }
}
