//! OIDC discovery of an issuer's keys: the discovery document, then its `jwks_uri`, over
//! https verified against the configured CA bundle only (rustls with the ring provider,
//! built here: nothing process-wide is installed), plain http only to loopback addresses.
//! Every request has a [`FETCH_TIMEOUT`]; bodies are limited to [`MAX_BODY_BYTES`];
//! redirects are not followed.

use std::error::Error as StdError;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::jwks::KeySet;

/// The longest a discovery or JWKS request may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest discovery document or JWKS read (an issuer's JWKS is a few KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// `raw` as a URL keys may be fetched from: https, or plain http to a loopback address.
pub(super) fn fetch_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{url} is plain http, which is allowed only to a loopback address: use https"
        )),
        _ => Err(format!("{url} is not an https URL")),
    }
}

fn is_loopback(url: &Url) -> bool {
    url.host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|host| host.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

/// Fetches one issuer's keys by OIDC discovery.
pub(super) struct Discovery {
    client: reqwest::Client,
    document: Url,
    issuer: String,
    /// Whether a CA bundle was given (without one, https cannot be verified).
    has_roots: bool,
}

impl Discovery {
    /// Reads `ca_file` and builds the HTTP client for `document`.
    pub async fn new(
        document: Url,
        ca_file: Option<&Path>,
        issuer: &str,
    ) -> Result<Discovery, String> {
        let roots = match ca_file {
            Some(path) => Some(read_roots(path).await?),
            None => None,
        };
        let has_roots = roots.is_some();
        let client = http_client(roots.unwrap_or_else(RootCertStore::empty), &document)?;
        Ok(Discovery {
            client,
            document,
            issuer: issuer.to_string(),
            has_roots,
        })
    }

    /// The discovery document, then the JWKS it points to.
    pub async fn fetch(&self) -> Result<KeySet, String> {
        let document = self.get_json(&self.document).await?;
        let issuer = document.get("issuer").and_then(|i| i.as_str());
        if issuer != Some(self.issuer.as_str()) {
            return Err(format!(
                "the discovery document at {} names issuer {}, not {}: point discovery_url \
                 at this cluster's issuer",
                self.document,
                issuer.unwrap_or("(none)"),
                self.issuer
            ));
        }
        let Some(jwks_uri) = document.get("jwks_uri").and_then(|u| u.as_str()) else {
            return Err(format!(
                "the discovery document at {} has no jwks_uri",
                self.document
            ));
        };
        let jwks_url =
            fetch_url(jwks_uri).map_err(|e| format!("its jwks_uri cannot be used: {e}"))?;
        let jwks = self.get_json(&jwks_url).await?;
        KeySet::from_jwks(&jwks).map_err(|e| format!("{jwks_url}: {e}"))
    }

    async fn get_json(&self, url: &Url) -> Result<serde_json::Value, String> {
        if url.scheme() == "https" && !self.has_roots {
            return Err(format!(
                "{url} is https and no ca_file is configured to verify it: set ca_file"
            ));
        }
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url} failed: {}", error_chain(&e.without_url())))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "GET {url} answered {status}: redirects are not followed, configure the \
                 address it redirects to"
            ));
        }
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}"));
        }
        let too_large = || format!("{url} sent more than {MAX_BODY_BYTES} bytes");
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading {url} failed: {}", error_chain(&e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} did not send JSON: {e}"))
    }
}

async fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let shown = path.display();
    let pem = tokio::fs::read(path)
        .await
        .map_err(|e| format!("ca_file {shown} cannot be read: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("ca_file {shown} is not a PEM bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("ca_file {shown} holds a certificate rustls rejects: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("ca_file {shown} holds no certificate"));
    }
    Ok(roots)
}

fn http_client(roots: RootCertStore, document: &Url) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if is_loopback(document) {
        // A proxy from the environment must not intercept a loopback fetch.
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| format!("the HTTP client cannot be built: {}", error_chain(&e)))
}

/// An error and its causes, joined by ": " (reqwest's own message omits the cause).
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
mod tests;
