//! The verifier: every configured cluster's expected claims and keys, and the refreshing of
//! discovered keys.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};
use meshtrust_issuer::Clock;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::claims::{Expected, UnverifiedToken, accepted_algorithm, check_claims, check_issuer};
use super::config::{KeySource, ServiceAccountIssuer};
use super::fetch::Discovery;
use super::jwks::{KeySet, Lookup};
use super::refusal::Refusal;
use super::{KEY_REFRESH_INTERVAL, KEY_TTL};
use crate::{Error, Result};

/// A ServiceAccount token that verified: the cluster it enrolls, and what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedServiceAccount {
    /// The cluster the token was presented for, and verified against.
    pub cluster: String,
    /// The token's `sub` (`system:serviceaccount:<namespace>:<name>`).
    pub subject: String,
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `exp`.
    pub expires_at: OffsetDateTime,
}

/// Verifies projected ServiceAccount tokens offline against each configured cluster's
/// issuer keys. Cheap to share behind an `Arc`; verifications run concurrently, and at most
/// one fetch of a cluster's keys is in flight.
pub struct Verifier {
    clusters: BTreeMap<String, ClusterIssuer>,
    clock: Clock,
}

struct ClusterIssuer {
    expected: Expected,
    keys: Keys,
}

enum Keys {
    /// From `jwks` or `jwks_file`, read at start.
    Fixed(Arc<KeySet>),
    /// By OIDC discovery.
    Discovered {
        discovery: Box<Discovery>,
        state: Mutex<Discovered>,
    },
}

/// A moment by both of a [`Clock`]'s times. The time since is the longer of the two: the
/// monotonic time keeps the pace when the wall clock steps back, and the wall time lets a
/// clock that is moved ahead (`Clock::offset_file`, as the end-to-end suites move the
/// service) move the refreshes with it. A wall clock stepping forward at worst allows one
/// early fetch.
#[derive(Clone, Copy)]
struct Moment {
    instant: Instant,
    wall: OffsetDateTime,
}

impl Moment {
    fn now(clock: &Clock) -> Moment {
        Moment {
            instant: clock.instant(),
            wall: clock.now(),
        }
    }

    fn elapsed(&self, clock: &Clock) -> std::time::Duration {
        let wall = (clock.now() - self.wall).try_into().unwrap_or_default();
        clock.elapsed(self.instant).max(wall)
    }
}

/// What is known of a cluster's discovered keys.
#[derive(Default)]
struct Discovered {
    keys: Arc<KeySet>,
    /// When the keys held were fetched.
    fetched_at: Option<Moment>,
    /// When a fetch was last tried, successful or not.
    attempted_at: Option<Moment>,
    /// Why the last fetch failed, if it did.
    last_error: Option<String>,
}

impl Verifier {
    /// Checks each cluster's configuration, reads its JWKS file or inline JWKS, and fetches
    /// its discovered keys (concurrently). A configuration, file or JWKS at fault is an
    /// error; a discovery that fails is logged, and that cluster's tokens are refused with
    /// `sa_jwks_unavailable` until a later fetch succeeds. `clock` paces the fetches.
    pub async fn new(
        issuers: impl IntoIterator<Item = (String, ServiceAccountIssuer)>,
        clock: Clock,
    ) -> Result<Verifier> {
        let mut clusters = BTreeMap::new();
        for (cluster, config) in issuers {
            let keys = load_keys(&cluster, &config).await?;
            let expected = Expected {
                cluster: cluster.clone(),
                issuer: config.issuer,
                subject: config.subject,
            };
            if clusters
                .insert(cluster.clone(), ClusterIssuer { expected, keys })
                .is_some()
            {
                return Err(Error::Config {
                    location: format!("cluster {cluster}"),
                    reason: "has two service-account issuers: keep one".to_string(),
                });
            }
        }
        let verifier = Verifier { clusters, clock };
        let started = verifier.clusters.values().map(|issuer| async {
            if let Keys::Discovered { discovery, state } = &issuer.keys {
                let mut state = state.lock().await;
                state
                    .refresh(discovery, &issuer.expected.cluster, &verifier.clock)
                    .await;
            }
        });
        futures::future::join_all(started).await;
        Ok(verifier)
    }

    /// The clusters that may enroll with a ServiceAccount token.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.clusters.keys().map(String::as_str)
    }

    /// Verifies `token` as cluster `cluster`'s enrolling ServiceAccount at `now`. The
    /// refusal names what was wrong; neither it nor any log line contains the token.
    pub async fn verify(
        &self,
        cluster: &str,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedServiceAccount, Refusal> {
        let Some(issuer) = self.clusters.get(cluster) else {
            return Err(Refusal::ClusterNotConfigured {
                cluster: cluster.to_string(),
            });
        };
        let token = UnverifiedToken::parse(token)?;
        let alg = accepted_algorithm(&token.header.alg)?;
        check_issuer(&issuer.expected, &token.claims)?;
        let kid = token.header.kid.as_deref();
        let keys = self.keys(issuer, kid).await?;
        let candidates = keys.candidates(kid, alg).map_err(|lookup| match lookup {
            Lookup::Unknown => Refusal::UnknownKey {
                cluster: cluster.to_string(),
                kid: kid.map(str::to_string),
                discovered: matches!(issuer.keys, Keys::Discovered { .. }),
            },
            Lookup::Mismatch => Refusal::Algorithm {
                alg: token.header.alg.clone(),
                mismatched_kid: kid.map(str::to_string),
            },
        })?;
        if !candidates.iter().any(|key| signs(&token, key, alg)) {
            return Err(Refusal::Signature {
                cluster: cluster.to_string(),
                kid: kid.map(str::to_string),
            });
        }
        let expires_at = check_claims(&issuer.expected, &token.claims, now)?;
        Ok(VerifiedServiceAccount {
            cluster: cluster.to_string(),
            subject: issuer.expected.subject.clone(),
            issuer: issuer.expected.issuer.clone(),
            expires_at,
        })
    }

    /// The keys to check a token naming `kid` against, fetched again first if they are
    /// older than [`KEY_TTL`] or lack `kid`, and the last fetch is [`KEY_REFRESH_INTERVAL`]
    /// ago.
    async fn keys(
        &self,
        issuer: &ClusterIssuer,
        kid: Option<&str>,
    ) -> Result<Arc<KeySet>, Refusal> {
        let (discovery, state) = match &issuer.keys {
            Keys::Fixed(keys) => return Ok(keys.clone()),
            Keys::Discovered { discovery, state } => (discovery, state),
        };
        let cluster = &issuer.expected.cluster;
        let mut state = state.lock().await;
        let stale = state
            .fetched_at
            .is_none_or(|at| at.elapsed(&self.clock) >= KEY_TTL);
        let may_fetch = state
            .attempted_at
            .is_none_or(|at| at.elapsed(&self.clock) >= KEY_REFRESH_INTERVAL);
        if (stale || !state.keys.knows(kid)) && may_fetch {
            state.refresh(discovery, cluster, &self.clock).await;
        }
        if state.fetched_at.is_none() {
            return Err(Refusal::JwksUnavailable {
                cluster: cluster.clone(),
                reason: state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "they have not been fetched yet".to_string()),
            });
        }
        Ok(state.keys.clone())
    }
}

impl Discovered {
    /// Fetches the keys; on failure keeps those held and remembers why.
    async fn refresh(&mut self, discovery: &Discovery, cluster: &str, clock: &Clock) {
        let at = Moment::now(clock);
        self.attempted_at = Some(at);
        match discovery.fetch().await {
            Ok(keys) => {
                tracing::info!(cluster, "fetched the service-account issuer's keys");
                self.keys = Arc::new(keys);
                self.fetched_at = Some(at);
                self.last_error = None;
            }
            Err(reason) => {
                tracing::warn!(
                    cluster,
                    %reason,
                    "the service-account issuer's keys could not be fetched; keeping the keys held"
                );
                self.last_error = Some(reason);
            }
        }
    }
}

async fn load_keys(cluster: &str, config: &ServiceAccountIssuer) -> Result<Keys> {
    let jwks_error = |reason: String| Error::Jwks {
        cluster: cluster.to_string(),
        reason,
    };
    match config.key_source(cluster)? {
        KeySource::File(path) => {
            let shown = path.display();
            let text = tokio::fs::read_to_string(&path)
                .await
                .map_err(|e| jwks_error(format!("jwks_file {shown} cannot be read: {e}")))?;
            let jwks = serde_json::from_str(&text)
                .map_err(|e| jwks_error(format!("jwks_file {shown} is not JSON: {e}")))?;
            let keys = KeySet::from_jwks(&jwks)
                .map_err(|e| jwks_error(format!("jwks_file {shown}: {e}")))?;
            Ok(Keys::Fixed(Arc::new(keys)))
        }
        KeySource::Inline(jwks) => {
            let keys = KeySet::from_jwks(&jwks).map_err(|reason| Error::Config {
                location: format!("cluster {cluster}, field jwks"),
                reason,
            })?;
            Ok(Keys::Fixed(Arc::new(keys)))
        }
        KeySource::Discovery { document, ca_file } => {
            let discovery = Discovery::new(document, ca_file.as_deref(), &config.issuer)
                .await
                .map_err(jwks_error)?;
            Ok(Keys::Discovered {
                discovery: Box::new(discovery),
                state: Mutex::new(Discovered::default()),
            })
        }
    }
}

/// Whether `key` made the token's signature with `alg`.
fn signs(token: &UnverifiedToken<'_>, key: &DecodingKey, alg: Algorithm) -> bool {
    jsonwebtoken::crypto::verify(token.signature, token.signing_input.as_bytes(), key, alg)
        .unwrap_or(false)
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("clusters", &self.clusters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "verifier_tests.rs"]
mod tests;
