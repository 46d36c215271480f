//! Why a call to `meshtrust serve` failed, in sentences: the service's own refusal
//! ([`ErrorResponse`]), or what went wrong on the way (connection, TLS, timeout). reqwest's
//! top-level message ("error sending request") says little; the reason is in its chain of
//! sources, which hyper, tokio-rustls and rustls each add a link to.

use std::error::Error as StdError;
use std::time::Duration;

use rustls::CertificateError;

use crate::error::Error;
use crate::server::api::ErrorResponse;
use crate::server::trust::PinMismatch;

/// The longest excerpt of an unexpected body quoted in a message.
const EXCERPT_CHARS: usize = 200;

/// The error for a non-2xx answer with `body`: the service's code and message when the
/// body is an [`ErrorResponse`], else an excerpt of what came back.
pub(crate) fn refusal(service: &str, action: &str, status: u16, body: &[u8]) -> Error {
    let (code, message) = match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(answer) => (answer.error, answer.message),
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => (
            String::new(),
            "the answer has no body; check that the URL names a meshtrust serve".to_string(),
        ),
        Err(_) => (
            String::new(),
            format!(
                "the answer is not a meshtrust error (it starts with \"{}\"); check that the URL names a meshtrust serve and not a proxy in front of it",
                excerpt(body)
            ),
        ),
    };
    Error::ServiceRefused {
        service: service.to_string(),
        action: action.to_string(),
        status,
        code,
        message,
    }
}

/// The error for a request that got no usable answer.
pub(crate) fn transport(
    service: &str,
    action: &str,
    timeout: Duration,
    err: &reqwest::Error,
) -> Error {
    if let Some(pin) = sources(err).find_map(tls_error).and_then(pin_mismatch) {
        return Error::UntrustedService {
            url: pin.url.clone(),
            fingerprint: pin.fingerprint.clone(),
            presented: pin.presented.clone(),
        };
    }
    Error::ServiceUnreachable {
        service: service.to_string(),
        action: action.to_string(),
        reason: transport_reason(err, timeout),
    }
}

/// What went wrong on the way, with what to check.
fn transport_reason(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!(
            "no answer within {}; check that the service runs and is reachable from here",
            seconds(timeout)
        );
    }
    if let Some(tls) = sources(err).find_map(tls_error) {
        return format!("the TLS handshake failed: {}", describe_tls(tls));
    }
    let chain = readable_chain(err);
    if err.is_connect() {
        format!(
            "could not connect ({chain}); check that the service runs and listens at that address"
        )
    } else if err.is_body() || err.is_decode() {
        format!("the answer could not be read ({chain})")
    } else {
        chain
    }
}

/// A rustls error in words (rustls prints some of its reasons as Rust identifiers).
pub(crate) fn describe_tls(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(cert) => describe_certificate_error(cert),
        rustls::Error::NoCertificatesPresented => "the service presented no certificate".into(),
        rustls::Error::AlertReceived(alert) => format!(
            "the service ended the handshake with the alert \"{}\"",
            words(&format!("{alert:?}"))
        ),
        other => identifier_words(other),
    }
}

/// `other`'s message, with a bare Rust identifier (rustls prints some reasons so) in words.
fn identifier_words(other: &dyn std::fmt::Display) -> String {
    let text = other.to_string();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric()) {
        words(&text)
    } else {
        text
    }
}

fn describe_certificate_error(err: &CertificateError) -> String {
    match err {
        CertificateError::UnknownIssuer => {
            "the service's certificate is not issued by a CA this client trusts (check the CA bundle, or pin the service's root by its fingerprint)".into()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<String> = presented.iter().map(|n| san_text(n)).collect();
            let valid_for = if names.is_empty() {
                "names no host".to_string()
            } else {
                format!("is valid for {}", names.join(", "))
            };
            format!(
                "the service's certificate is not valid for the host of the URL: it {valid_for}, not {}; use a URL with a name its certificate was issued for",
                expected.to_str()
            )
        }
        CertificateError::NotValidForName => {
            "the service's certificate is not valid for the host of the URL; use a URL with a name its certificate was issued for".into()
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the service's certificate expired on {} (it is {} here); the service must renew it",
            unix_time(*not_after),
            unix_time(*time)
        ),
        CertificateError::Expired => {
            "the service's certificate has expired; the service must renew it".into()
        }
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the service's certificate is valid only from {} (it is {} here); check the clocks",
            unix_time(*not_before),
            unix_time(*time)
        ),
        CertificateError::NotValidYet => {
            "the service's certificate is not valid yet; check the clocks".into()
        }
        CertificateError::BadSignature => {
            "the signature on the service's certificate does not verify with the trusted CA's key (it was issued by another CA of the same name)".into()
        }
        CertificateError::Other(other) => other.to_string(),
        other => format!("the service's certificate is unusable ({})", identifier_words(other)),
    }
}

/// The rustls error `err` is, or carries (tokio-rustls wraps it in an `io::Error`, whose
/// `source()` skips it).
fn tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    err.downcast_ref::<rustls::Error>().or_else(|| {
        err.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// The pinning failure a rustls error carries, if it is one (rustls errors have no
/// `source()`: the reason is inside the variant).
fn pin_mismatch(err: &rustls::Error) -> Option<&PinMismatch> {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            other.0.downcast_ref::<PinMismatch>()
        }
        _ => None,
    }
}

/// `err` and every error below it, also looking inside `io::Error`s.
fn sources<'a>(err: &'a reqwest::Error) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let top: &(dyn StdError + 'static) = err;
    std::iter::successors(Some(top), |&e: &&'a (dyn StdError + 'static)| {
        e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn StdError + 'static))
            .or_else(|| e.source())
    })
}

/// The messages of the sources below reqwest's own, skipping hyper's wrappers (which print
/// a Rust identifier) and links that only repeat the next one.
fn readable_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in sources(err).skip(1) {
        let text = e.to_string();
        if text.starts_with("client error (") || text.is_empty() {
            continue;
        }
        if parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    if parts.is_empty() {
        return err.to_string();
    }
    parts.join(": ")
}

/// A subjectAltName as webpki presents it (`DnsName("a.example")`, `IpAddress(10.0.0.1)`),
/// without the Rust around it.
fn san_text(presented: &str) -> String {
    let inner = presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(presented);
    inner.trim_matches('"').to_string()
}

/// `BadCertificate` → `bad certificate`.
fn words(identifier: &str) -> String {
    let mut out = String::new();
    for (i, c) in identifier.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A rustls time for messages: `2026-11-26 09:30:00 UTC`.
fn unix_time(t: rustls_pki_types::UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or_else(
            || format!("{} s after 1970", t.as_secs()),
            meshtrust_ca::fmt_time,
        )
}

/// A duration for messages: `30 s`, `1.5 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// The first characters of `body`, on one line.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[path = "failure_tests.rs"]
mod tests;
