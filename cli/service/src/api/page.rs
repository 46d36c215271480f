//! `GET /status`: the inventory as a small server-rendered HTML page, for a person with a
//! browser — every cluster, its intermediate's expiry on a common timeline, the roots it
//! holds and whether its istiod has loaded them, its last report and last
//! error; the rotation's phase and what it waits for. No
//! JavaScript, no external resources (a strict Content-Security-Policy says so).
//!
//! The page is the admin inventory, so it takes the admin token: as `Authorization: Bearer`,
//! or as the password of HTTP Basic authentication (any user name), which makes a browser
//! ask for it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_SECURITY_POLICY, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use meshtrust_issuer::server::api::{ClusterEntry, ClusterList, ClusterState, Waiting};
use meshtrust_issuer::server::wire;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::state::Service;
use crate::store::AuditEvent;

/// Serves the page; without the admin token, a 401 that makes a browser ask for it.
pub async fn status(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let Some(admin) = service.admin.as_ref() else {
        return (
            StatusCode::FORBIDDEN,
            "this service has no admin token configured (admin_token_file)\n",
        )
            .into_response();
    };
    let presented = credential(headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()));
    if !presented.is_some_and(|token| admin.matches(&token)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Basic realm=\"meshtrust serve\", charset=\"UTF-8\"")],
            "the status page takes the admin token: as the password (any user name), or as `Authorization: Bearer`\n",
        )
            .into_response();
    }
    let unavailable = |what: String| (StatusCode::SERVICE_UNAVAILABLE, what).into_response();
    let list = match super::admin::inventory(&service).await {
        Ok(list) => list,
        Err(e) => return unavailable(format!("{}\n", e.message)),
    };
    let (phase, roots) = match crate::api::rotation::roots_now(&service).await {
        Ok((phase, roots)) => (
            phase,
            roots.iter().map(wire::fingerprint).collect::<Vec<_>>(),
        ),
        Err(e) => return unavailable(format!("{}\n", e.message)),
    };
    let waiting = match crate::api::rotation::status(&service).await {
        Ok(status) => status.map(|s| s.waiting_for).unwrap_or_default(),
        Err(e) => return unavailable(format!("{}\n", e.message)),
    };
    let errors = match service.store.audit(RECENT_EVENTS).await {
        Ok(events) => last_errors(events),
        Err(e) => return unavailable(format!("{e}\n")),
    };
    // The phase as the trust-bundle route names it.
    let phase = serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let page = render(
        &list,
        &Facts {
            roots: &roots,
            phase: &phase,
            waiting: &waiting,
            errors: &errors,
        },
        service.clock.now(),
    );
    ([(CONTENT_SECURITY_POLICY, CSP)], Html(page)).into_response()
}

/// How many of the newest audit events the page looks through for each cluster's last error.
const RECENT_EVENTS: i64 = 2000;

/// Each cluster's newest refusal or error among `events` (newest first), unless the
/// cluster succeeded since.
pub fn last_errors(events: Vec<AuditEvent>) -> HashMap<String, AuditEvent> {
    let mut seen = HashSet::new();
    let mut errors = HashMap::new();
    for event in events {
        let Some(cluster) = event.cluster.clone() else {
            continue;
        };
        if !seen.insert(cluster.clone()) {
            continue;
        }
        if event.result != AuditEvent::OK {
            errors.insert(cluster, event);
        }
    }
    errors
}

/// What the page shows besides the inventory.
#[derive(Debug)]
pub struct Facts<'a> {
    /// The roots every cluster must trust now (fingerprints).
    pub roots: &'a [String],
    /// The rotation phase, as the trust-bundle route names it.
    pub phase: &'a str,
    /// What the rotation waits for.
    pub waiting: &'a [Waiting],
    /// Each cluster's last error.
    pub errors: &'a HashMap<String, AuditEvent>,
}

/// The page's Content-Security-Policy: its own inline style, nothing else.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'";

/// The admin token of a request: a Bearer token, or the password of Basic authentication.
pub fn credential(authorization: Option<&str>) -> Option<String> {
    let value = authorization?.trim();
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

/// Whether istiod in a cluster has loaded the roots its `cacerts` holds, by its last report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// istiod publishes exactly the roots `cacerts` holds.
    Loaded,
    /// istiod publishes other roots (it has not reloaded `cacerts` yet).
    Pending,
    /// No report, or no `istio-ca-root-cert` reported.
    Unknown,
}

impl Loaded {
    /// For `entry`, by its last report.
    pub fn of(entry: &ClusterEntry) -> Loaded {
        match entry
            .reported
            .as_ref()
            .and_then(|r| r.report.istiod_loaded())
        {
            None => Loaded::Unknown,
            Some(true) => Loaded::Loaded,
            Some(false) => Loaded::Pending,
        }
    }

    /// As shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Loaded::Loaded => "loaded",
            Loaded::Pending => "pending",
            Loaded::Unknown => "unknown",
        }
    }
}

/// The page for `list` and `facts`, at `now`.
pub fn render(list: &ClusterList, facts: &Facts<'_>, now: OffsetDateTime) -> String {
    let (roots, phase) = (facts.roots, facts.phase);
    let horizon = list
        .clusters
        .iter()
        .filter_map(|c| parse(&c.not_after))
        .map(|t| t - now)
        .max()
        .unwrap_or(time::Duration::ZERO);
    let mut html = String::from(HEAD);
    let _ = write!(
        html,
        "<h1>meshtrust serve</h1>\n<p id=\"summary\">{} clusters · rotation phase <b>{}</b> · at {}</p>\n",
        list.clusters.len(),
        escape(phase),
        escape(&stamp(now)),
    );
    html.push_str("<h2>Roots every cluster must trust</h2>\n<ul id=\"roots\">\n");
    for root in roots {
        let _ = writeln!(html, "<li><code>{}</code></li>", escape(root));
    }
    html.push_str("</ul>\n");
    if !facts.waiting.is_empty() {
        html.push_str("<h2>The rotation waits for</h2>\n<ul id=\"waiting\">\n");
        for w in facts.waiting {
            let _ = writeln!(
                html,
                "<li data-reason=\"{}\">{}</li>",
                escape(&w.reason),
                escape(&w.message)
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<h2>Clusters</h2>\n");
    if list.clusters.is_empty() {
        html.push_str("<p id=\"empty\">No cluster has enrolled yet.</p>\n");
    } else {
        html.push_str(TABLE_HEAD);
        for entry in &list.clusters {
            let error = facts.errors.get(&entry.name);
            row(&mut html, entry, error, (horizon, now));
        }
        html.push_str("</tbody></table>\n");
    }
    html.push_str("</body></html>\n");
    html
}

fn row(
    html: &mut String,
    entry: &ClusterEntry,
    error: Option<&AuditEvent>,
    (horizon, now): (time::Duration, OffsetDateTime),
) {
    let left = parse(&entry.not_after).map(|t| t - now);
    let (width, until) = match left {
        Some(left) if left > time::Duration::ZERO && horizon > time::Duration::ZERO => (
            (left.as_seconds_f64() / horizon.as_seconds_f64() * 100.0).clamp(1.0, 100.0),
            format!("expires in {}", meshtrust_ca::duration::human(left)),
        ),
        Some(_) => (0.0, "expired".to_string()),
        None => (0.0, "unknown".to_string()),
    };
    let state = match entry.state {
        ClusterState::Enrolled => "enrolled",
        ClusterState::Revoked => "revoked",
    };
    let loaded = Loaded::of(entry);
    let held = entry
        .reported
        .as_ref()
        .map_or(&entry.roots, |r| &r.report.cacerts_roots);
    let reported = entry
        .reported
        .as_ref()
        .map_or_else(|| "never".to_string(), |r| ago(parse(&r.at), now));
    let _ = writeln!(
        html,
        "<tr data-cluster=\"{name}\"><td class=\"name\">{name}</td><td class=\"state {state}\">{state}</td>\
<td><code>{serial}</code></td>\
<td class=\"timeline\"><div class=\"bar\" style=\"width:{width:.1}%\"></div><span>{until}</span><br><small>{not_after}</small></td>\
<td class=\"roots\">{held}</td><td class=\"istiod {loaded}\">{loaded}</td><td class=\"reported\">{reported}</td>\
<td class=\"error\">{error}</td></tr>",
        name = escape(&entry.name),
        serial = escape(&entry.serial),
        until = escape(&until),
        not_after = escape(&entry.not_after),
        held = held
            .iter()
            .map(|r| format!(
                "<code title=\"{0}\">{1}</code>",
                escape(r),
                escape(short(r))
            ))
            .collect::<Vec<_>>()
            .join(" "),
        loaded = loaded.as_str(),
        reported = escape(&reported),
        error = error.map_or_else(String::new, |e| escape(&format!(
            "{} {} ({}): {}",
            e.action,
            e.result,
            ago(Some(e.at), now),
            e.reason
        ))),
    );
}

fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

fn stamp(t: OffsetDateTime) -> String {
    meshtrust_issuer::server::wire::time(t)
}

fn ago(at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match at {
        Some(at) if at <= now => format!("{} ago", meshtrust_ca::duration::human(now - at)),
        Some(at) => stamp(at),
        None => "unknown".to_string(),
    }
}

fn short(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(12)]
}

/// `text` safe inside HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>meshtrust serve — clusters</title>\n<style>\
body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4em .6em;text-align:left;vertical-align:top}\
.timeline{min-width:16em}.bar{height:.6em;background:#2a7;border-radius:.3em;margin-bottom:.2em}\
.revoked,.pending{color:#b60}.loaded{color:#070}.unknown{color:#888}code{font-size:.85em}\
</style></head><body>\n";

const TABLE_HEAD: &str = "<table id=\"clusters\"><thead><tr><th>cluster</th><th>state</th><th>serial</th>\
<th>intermediate expiry</th><th>roots held</th><th>istiod</th><th>last report</th><th>last error</th></tr></thead><tbody>\n";

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
