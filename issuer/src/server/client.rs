//! A typed client for every route of `meshtrust serve`'s `/v1` API.
//!
//! Every call has the client's timeout (connection and TLS handshake included), follows no
//! redirect (a bearer token goes to the service and nowhere else) and turns every failure
//! into one of the crate's errors: the service's refusal with its status, code and message
//! ([`Error::ServiceRefused`]), a transport failure in words
//! ([`Error::ServiceUnreachable`]), a pinned certificate missing from the service's chain
//! ([`Error::UntrustedService`]), or an answer that is not the API's
//! ([`Error::BadAnswer`]).

use std::fmt;
use std::time::Duration;

use meshtrust_ca::ClusterName;
use reqwest::{RequestBuilder, Url};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::server::api::{
    ClusterEntry, ClusterList, EnrollRequest, IssuedResponse, PREFIX, RenewRequest, ReportRequest,
    ReportResponse, RotationStatus, TokenRequest, TokenResponse, TrustBundleResponse,
};
use crate::server::failure;
use crate::server::trust::ServerTrust;

/// A connection to one `meshtrust serve`. Cheap to clone; clones share connections. It
/// holds no credential: each call that needs one is given it.
#[derive(Clone)]
pub struct ServiceClient {
    http: reqwest::Client,
    /// The service's URL, without a trailing slash.
    base: String,
    timeout: Duration,
}

impl fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("url", &self.base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ServiceClient {
    /// A client for the service at `url` (`https://host[:port][/path]`), trusting its
    /// certificate as `trust` says, giving each call at most `timeout`.
    pub fn new(url: &str, trust: &ServerTrust, timeout: Duration) -> Result<ServiceClient> {
        let base = base_url(url, false)?;
        let tls = trust.client_config(&base)?;
        ServiceClient::build(base, tls, true, timeout)
    }

    /// A client for a service at a plain `http://` URL, for development only: nothing
    /// authenticates the service, and tokens and certificates travel in clear.
    pub fn new_plaintext(url: &str, timeout: Duration) -> Result<ServiceClient> {
        let base = base_url(url, true)?;
        // reqwest wants a TLS configuration even when it never uses it.
        let tls = rustls_config_without_roots()?;
        ServiceClient::build(base, tls, false, timeout)
    }

    fn build(
        base: String,
        tls: rustls::ClientConfig,
        https_only: bool,
        timeout: Duration,
    ) -> Result<ServiceClient> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(https_only)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("meshtrust/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal {
                reason: format!("the HTTP client for {base} cannot be built: {e}"),
            })?;
        Ok(ServiceClient {
            http,
            base,
            timeout,
        })
    }

    /// The service's URL, as given (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `meshtrust serve at https://…`, for messages.
    pub fn describe(&self) -> String {
        format!("meshtrust serve at {}", self.base)
    }

    /// `GET /v1/trust-bundle`: the roots every cluster must trust now, and the policy.
    pub async fn trust_bundle(&self) -> Result<TrustBundleResponse> {
        let request = self.http.get(self.route("/trust-bundle"));
        self.call("fetching the trust bundle", request).await
    }

    /// `POST /v1/clusters/{cluster}/enroll`: signs the intermediate of `csr_pem`, on the
    /// strength of `credential` (a one-time enrollment token or a ServiceAccount token).
    pub async fn enroll(
        &self,
        cluster: &ClusterName,
        csr_pem: &str,
        credential: &Zeroizing<String>,
    ) -> Result<IssuedResponse> {
        let body = EnrollRequest {
            csr: csr_pem.to_string(),
        };
        let request = self
            .http
            .post(self.route(&format!("/clusters/{cluster}/enroll")))
            .bearer_auth(credential.as_str())
            .json(&body);
        self.call(&format!("enrolling cluster {cluster}"), request)
            .await
    }

    /// `POST /v1/clusters/{cluster}/renew`: signs a new intermediate on the strength of a
    /// proof of possession of the current one (see [`RenewRequest::signed`]).
    pub async fn renew(
        &self,
        cluster: &ClusterName,
        request: &RenewRequest,
    ) -> Result<IssuedResponse> {
        let request = self
            .http
            .post(self.route(&format!("/clusters/{cluster}/renew")))
            .json(request);
        self.call(&format!("renewing cluster {cluster}"), request)
            .await
    }

    /// `POST /v1/clusters/{cluster}/report`: tells the service what the cluster holds (see
    /// [`ReportRequest::signed`]) and learns what it should hold.
    pub async fn report(
        &self,
        cluster: &ClusterName,
        request: &ReportRequest,
    ) -> Result<ReportResponse> {
        let request = self
            .http
            .post(self.route(&format!("/clusters/{cluster}/report")))
            .json(request);
        self.call(&format!("reporting cluster {cluster}"), request)
            .await
    }

    /// `GET /v1/admin/clusters`: every cluster that ever enrolled.
    pub async fn clusters(&self, admin_token: &Zeroizing<String>) -> Result<ClusterList> {
        let request = self
            .http
            .get(self.route("/admin/clusters"))
            .bearer_auth(admin_token.as_str());
        self.call("listing the clusters", request).await
    }

    /// `GET /v1/admin/rotation`: the root rotation in flight, `None` when there is none.
    pub async fn rotation(
        &self,
        admin_token: &Zeroizing<String>,
    ) -> Result<Option<RotationStatus>> {
        let request = self
            .http
            .get(self.route("/admin/rotation"))
            .bearer_auth(admin_token.as_str());
        self.call("reading the root rotation", request).await
    }

    /// `POST /v1/admin/clusters/{cluster}/revoke`: the cluster may no longer renew.
    pub async fn revoke(
        &self,
        cluster: &ClusterName,
        admin_token: &Zeroizing<String>,
    ) -> Result<ClusterEntry> {
        let request = self
            .http
            .post(self.route(&format!("/admin/clusters/{cluster}/revoke")))
            .bearer_auth(admin_token.as_str());
        self.call(&format!("revoking cluster {cluster}"), request)
            .await
    }

    /// `POST /v1/admin/tokens`: a one-time enrollment token for `cluster`, valid for `ttl`.
    pub async fn create_token(
        &self,
        cluster: &ClusterName,
        ttl: time::Duration,
        admin_token: &Zeroizing<String>,
    ) -> Result<TokenResponse> {
        let body = TokenRequest {
            cluster: cluster.to_string(),
            ttl_seconds: ttl.whole_seconds(),
        };
        let request = self
            .http
            .post(self.route("/admin/tokens"))
            .bearer_auth(admin_token.as_str())
            .json(&body);
        self.call(&format!("creating a token for cluster {cluster}"), request)
            .await
    }

    fn route(&self, path: &str) -> String {
        format!("{}{PREFIX}{path}", self.base)
    }

    /// Sends `request` and decodes a 2xx answer as `T`; `action` (`enrolling cluster
    /// east`) names the call in messages.
    async fn call<T: DeserializeOwned>(&self, action: &str, request: RequestBuilder) -> Result<T> {
        let service = self.describe();
        let fail = |e: reqwest::Error| failure::transport(&service, action, self.timeout, &e);
        let response = request.send().await.map_err(fail)?;
        let status = response.status();
        let body = response.bytes().await.map_err(fail)?;
        if !status.is_success() {
            return Err(failure::refusal(&service, action, status.as_u16(), &body));
        }
        serde_json::from_slice(&body).map_err(|e| Error::BadAnswer {
            service: service.clone(),
            action: action.to_string(),
            reason: format!(
                "the body is not the JSON the API defines ({e}); check that the URL names a meshtrust serve of a compatible version"
            ),
        })
    }
}

/// A rustls configuration that trusts nothing (for a client that never speaks TLS).
fn rustls_config_without_roots() -> Result<rustls::ClientConfig> {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| {
        b.with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    })
    .map_err(|e| Error::Internal {
        reason: format!("the ring TLS provider offers no protocol version: {e}"),
    })
}

/// Checks a service URL and returns it without a trailing slash: `https` (or `http` when
/// `plaintext`), a host, no credentials, no query.
fn base_url(url: &str, plaintext: bool) -> Result<String> {
    let invalid = |reason: String| Error::Config {
        location: "the service URL".to_string(),
        reason,
    };
    let parsed = Url::parse(url.trim()).map_err(|e| {
        invalid(format!(
            "`{url}` is not a URL ({e}); give it as https://host[:port]"
        ))
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "carries a user name or password; give credentials as tokens, never in the URL"
                .to_string(),
        ));
    }
    let shown = parsed.as_str().trim_end_matches('/').to_string();
    match (parsed.scheme(), plaintext) {
        ("https", false) | ("http", true) => {}
        ("http", false) => {
            return Err(invalid(format!(
                "{shown} is plain HTTP: the service would not be authenticated and tokens and certificates would travel in clear; use an https:// URL (plain HTTP is for development only and must be allowed explicitly)"
            )));
        }
        (scheme, _) => {
            let expected = if plaintext { "http" } else { "https" };
            return Err(invalid(format!(
                "{shown} has the scheme {scheme}; use an {expected}:// URL"
            )));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("{shown} names no host")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(format!(
            "{shown} has a query or a fragment; give the service's base URL"
        )));
    }
    Ok(shown)
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
