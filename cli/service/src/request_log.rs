//! The request log (`serve --request-log FILE`): every request the API received, one JSON
//! line — time, method, path, status and the body as text. It exists so that what the
//! service was sent can be proved (the agent suites assert on it that no intermediate key
//! ever reached the service). Headers are never written: credentials (enrollment tokens,
//! ServiceAccount tokens, the admin token) travel in `Authorization`, and no request body
//! of the API holds one.

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use time::OffsetDateTime;

/// Where request lines go.
pub struct RequestLog {
    sink: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestLog")
    }
}

#[derive(Serialize)]
struct Line<'a> {
    at: String,
    method: &'a str,
    path: &'a str,
    status: u16,
    body: &'a str,
}

impl RequestLog {
    /// Lines go to `sink`, flushed one by one.
    pub fn new(sink: Box<dyn Write + Send>) -> RequestLog {
        RequestLog {
            sink: Mutex::new(sink),
        }
    }

    /// Writes one request. A failing sink is logged, never fails the request.
    pub fn write(&self, at: OffsetDateTime, method: &str, path: &str, status: u16, body: &[u8]) {
        let body = String::from_utf8_lossy(body);
        let line = Line {
            at: meshtrust_issuer::server::wire::time(at),
            method,
            path,
            status,
            body: &body,
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = sink.write_all(text.as_bytes()).and_then(|()| sink.flush()) {
            tracing::error!("the request log cannot be written: {e}");
        }
    }
}
