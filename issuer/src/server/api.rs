//! The wire format of `meshtrust serve`'s `/v1` API: one set of types for the service (which
//! serves them and, with feature `openapi`, describes them in its OpenAPI document) and for
//! the client in this crate. JSON field names are snake_case; times are RFC 3339 in UTC;
//! certificates are PEM; fingerprints are SHA-256 of the DER, lowercase hex.

use serde::{Deserialize, Serialize};

/// The version prefix every route lives under.
pub const PREFIX: &str = "/v1";

/// The audience a Kubernetes projected ServiceAccount token must carry to enroll.
pub const SERVICE_ACCOUNT_AUDIENCE: &str = "meshtrust";

/// The prefix of every one-time enrollment token (`mtenroll_` + 43 base64url characters:
/// 256 random bits). The prefix lets a secret scanner recognise a leaked token.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "mtenroll_";

/// The first line of the message a cluster signs with its current intermediate key to renew
/// (see [`RenewRequest`]); the rest is built by `meshtrust_ca::possession_message`.
pub const RENEW_PROOF_CONTEXT: &str = "meshtrust renew v1";

/// The first line of the message a cluster's agent signs with its current intermediate key
/// to report what the cluster holds (see [`ReportRequest`]); the rest is built by
/// `meshtrust_ca::possession_message_over` over the report's JSON text.
pub const REPORT_PROOF_CONTEXT: &str = "meshtrust report v1";

/// `GET /v1/trust-bundle`: what every cluster must trust now. No authentication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrustBundleResponse {
    /// The roots, in the order of `trust_bundle_pem`.
    pub roots: Vec<RootInfo>,
    /// Every root, PEM, concatenated: the `root-cert.pem` a cluster holds.
    pub trust_bundle_pem: String,
    /// Where a root rotation stands (`steady`: one root, nothing in flight).
    pub rotation_phase: RotationPhase,
    /// What the service puts in every intermediate, so a client builds a CSR it accepts.
    pub policy: PolicyInfo,
}

/// One root of the trust bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RootInfo {
    /// SHA-256 of the certificate's DER, lowercase hex (what a client pins).
    pub fingerprint_sha256: String,
    /// The subject, as `openssl x509 -subject` shows it.
    pub subject: String,
    /// Its notAfter.
    pub not_after: String,
}

/// The phase of a root rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RotationPhase {
    /// One root; no rotation in flight.
    Steady,
    /// Phase 1: every cluster's trust becomes old+new; intermediates are unchanged.
    AddNewRoot,
    /// Phase 2: intermediates are reissued by the new root; trust stays old+new.
    ReissueIntermediates,
    /// Phase 3: every cluster's trust becomes the new root alone.
    RemoveOldRoot,
    /// Every cluster holds only the new root, is issued by it, and its istiod has loaded it:
    /// make the new root the service's issuer and drop `rotation` from its configuration.
    Complete,
    /// The clusters hold a state the rotation does not guess its way out of (a cluster
    /// trusting neither root, a new root used too early): `waiting_for` names the cluster and
    /// the fix.
    Blocked,
}

/// Where a root rotation driven by the service stands (`GET /v1/admin/rotation`; clusters
/// see only the phase, and what they themselves should hold).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotationStatus {
    /// The phase: the one whose writes the clusters are carrying out.
    pub phase: RotationPhase,
    /// The root being retired (fingerprint).
    pub from_root: String,
    /// The root being introduced (fingerprint).
    pub to_root: String,
    /// Whether the phase's writes are handed out; when not, `waiting_for` says why.
    pub open: bool,
    /// What the next step waits for, one entry per cluster (or none): a cluster whose
    /// istiod has not loaded the roots, a cluster that never reported, the preflight, the
    /// hold before the old root goes; with the phase open, each cluster that has yet to
    /// carry out its write.
    pub waiting_for: Vec<Waiting>,
    /// When the old root may be dropped (the newest intermediate's issuance plus the hold),
    /// once every intermediate is issued by the new root (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<String>,
}

/// Why a rotation does not go on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Waiting {
    /// The cluster, when one holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// A stable code: `not_reported`, `istiod_not_loaded`, `to_write`,
    /// `multiroot_mesh_off`, `hold`, `blocked`.
    pub reason: String,
    /// What is wrong and what fixes it.
    pub message: String,
}

/// What the service expects one cluster's `cacerts` to hold now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DesiredCacerts {
    /// The trust file (`root-cert.pem`) to hold, byte for byte: istiod takes a new root
    /// bundle only when one byte-contains the other, so it is written exactly as given.
    pub trust_bundle_pem: String,
    /// Renew now: the intermediate is to be issued by another root (the agent renews, the
    /// service signs with the root the rotation's phase issues from).
    pub reissue: bool,
}

/// The intermediate profile the service applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyInfo {
    /// Subject O of every intermediate.
    pub organization: String,
    /// Subject CN of every intermediate (subject L is the cluster's name).
    pub common_name: String,
    /// The DNS SANs of every intermediate.
    pub dns_names: Vec<String>,
    /// The key types a CSR may carry (`ecdsa-p256`, …).
    pub key_types: Vec<String>,
    /// basicConstraints pathLenConstraint of every intermediate.
    pub path_len: u8,
    /// Lifetime of an intermediate, in seconds (cut to the issuer's expiry).
    pub validity_seconds: i64,
}

/// `POST /v1/clusters/{name}/enroll` body. The credential travels in the `Authorization:
/// Bearer` header: a one-time enrollment token, or a projected ServiceAccount token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// PKCS#10 request (PEM), signed by the new intermediate key. Only its public key is
    /// used; its subject and SANs must be the policy's for this cluster.
    pub csr: String,
}

/// `POST /v1/clusters/{name}/renew` body: a new CSR and proof of possession of the cluster's
/// current intermediate key. No bearer credential: the proof is the credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenewRequest {
    /// PKCS#10 request (PEM) for the new intermediate key.
    pub csr: String,
    /// The cluster's current intermediate certificate (PEM), as issued by this service.
    pub certificate: String,
    /// When the proof was made (RFC 3339 in UTC, to the second: the precision of the signed
    /// message); the service accepts five minutes either way.
    pub signed_at: String,
    /// Signature by the current intermediate key over
    /// `meshtrust_ca::possession_message(RENEW_PROOF_CONTEXT, cluster, signed_at, csr)`,
    /// base64url without padding (built by `RenewRequest::signed`).
    pub signature: String,
}

/// `POST /v1/clusters/{name}/report` body: what the cluster holds, signed with its current
/// intermediate key. No bearer credential: the signature is the credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportRequest {
    /// The cluster's current intermediate certificate (PEM), as issued by this service.
    pub certificate: String,
    /// A [`ClusterReport`] as JSON text. It is signed exactly as sent, and parsed only once
    /// the signature verifies.
    pub report: String,
    /// When the report was signed (RFC 3339 in UTC, to the second); the service accepts
    /// five minutes either way.
    pub signed_at: String,
    /// Signature by the current intermediate key over
    /// `meshtrust_ca::possession_message_over(REPORT_PROOF_CONTEXT, cluster, signed_at,
    /// report)`, base64url without padding (built by `ReportRequest::signed`).
    pub signature: String,
}

/// What a member cluster holds, as its agent read it from the cluster's API server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterReport {
    /// Serial of the intermediate in `cacerts` (`ca-cert.pem`), lowercase hex.
    pub cacerts_serial: String,
    /// Fingerprints of the roots in `cacerts` (`root-cert.pem`).
    pub cacerts_roots: Vec<String>,
    /// Fingerprints of the roots istiod publishes in the `istio-ca-root-cert` ConfigMap of
    /// its namespace: the roots istiod has loaded. Absent when that ConfigMap is missing
    /// (istiod not installed, or not started yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istiod_roots: Option<Vec<String>>,
    /// istiod's settings that root rotation depends on. Absent when the istiod Deployment
    /// was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istiod: Option<IstiodSettings>,
    /// `cacerts`' public files (every file but the key), exactly as the Secret holds them:
    /// the service plans a rotation's byte-exact trust files from them.
    #[serde(default)]
    pub cacerts_files: std::collections::BTreeMap<String, String>,
    /// The agent's version.
    pub agent_version: String,
    /// When the agent read the cluster (RFC 3339).
    pub observed_at: String,
}

/// istiod's environment, as set on the `discovery` container of its Deployment (`None`:
/// not set, so istiod's default applies).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IstiodSettings {
    /// `ISTIO_MULTIROOT_MESH`: `true` lets istiod trust several roots at once, which a root
    /// rotation needs (Helm: `pilot.env.ISTIO_MULTIROOT_MESH=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiroot_mesh: Option<String>,
    /// `PROXY_CONFIG_XDS_AGENT`: `true` lets proxies take new roots over xDS without a
    /// restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_config_xds_agent: Option<String>,
}

/// The answer to a report: what the service expects the cluster to hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportResponse {
    /// The cluster's current intermediate at the service, lowercase hex.
    pub current_serial: String,
    /// When to renew it (RFC 3339).
    pub renew_at: String,
    /// Fingerprints of the roots every cluster must trust now: a cluster whose `cacerts`
    /// holds other roots renews to get them.
    pub root_fingerprints: Vec<String>,
    /// The rotation phase.
    pub rotation_phase: RotationPhase,
    /// What this cluster's `cacerts` should hold now.
    pub desired: DesiredCacerts,
}

/// The answer to an enrollment or a renewal: everything a `cacerts` bundle needs but the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedResponse {
    /// The cluster.
    pub cluster: String,
    /// Serial of the new intermediate, lowercase hex.
    pub serial: String,
    /// The intermediate certificate (PEM): `ca-cert.pem`.
    pub certificate: String,
    /// Its issuers up to and including the root (PEM, in order).
    pub chain: String,
    /// The roots the cluster must trust (PEM): `root-cert.pem`.
    pub trust_bundle: String,
    /// Fingerprints of those roots.
    pub root_fingerprints: Vec<String>,
    /// notAfter of the intermediate.
    pub not_after: String,
    /// When to renew (RFC 3339).
    pub renew_at: String,
    /// Adjustments worth knowing (validity cut to the root's expiry, …).
    pub notices: Vec<String>,
}

/// Every non-2xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// A stable, machine-readable code (`token_used`, `csr_key_type`, …).
    pub error: String,
    /// What was wrong and what to do, for a person.
    pub message: String,
}

/// `GET /v1/admin/clusters`: the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterList {
    /// Every cluster that ever enrolled, by name.
    pub clusters: Vec<ClusterEntry>,
}

/// One cluster of the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClusterEntry {
    /// The cluster's name.
    pub name: String,
    /// `enrolled` or `revoked`.
    pub state: ClusterState,
    /// Serial of its current intermediate.
    pub serial: String,
    /// notAfter of its current intermediate.
    pub not_after: String,
    /// Last time the cluster enrolled or renewed.
    pub last_seen: String,
    /// Fingerprints of the roots it was given with its current intermediate.
    pub roots: Vec<String>,
    /// SHA-256 of its intermediate's public key.
    pub key_fingerprint: String,
    /// What the cluster's agent last reported, if it ever did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<Reported>,
}

/// A cluster's last report, as the service recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reported {
    /// When the service received it (RFC 3339).
    pub at: String,
    /// The report.
    pub report: ClusterReport,
}

/// Whether a cluster's enrollment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// It holds an intermediate and may renew it.
    Enrolled,
    /// An admin revoked it: it may not renew, and may enroll again (with a new credential).
    Revoked,
}

/// `POST /v1/admin/tokens` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// The only cluster the token may enroll.
    pub cluster: String,
    /// How long it stays valid, in seconds (at most 7 days).
    pub ttl_seconds: i64,
}

/// A new one-time enrollment token. The service keeps only its hash: this is the only time
/// it is shown. `Debug` leaves the token out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The token (`mtenroll_…`).
    pub token: String,
    /// The cluster it is bound to.
    pub cluster: String,
    /// When it stops being accepted.
    pub expires_at: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token", &"<redacted>")
            .field("cluster", &self.cluster)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
