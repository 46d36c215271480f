//! The shape of a ServiceAccount token and the pure checks of its claims. Nothing here
//! verifies a signature: [`UnverifiedToken`] is only read to choose the key and to explain a
//! refusal; a token is accepted only after its signature verified (`verifier.rs`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use meshtrust_issuer::server::api::SERVICE_ACCOUNT_AUDIENCE;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::CLOCK_SKEW_LEEWAY;
use super::refusal::{Refusal, shown};

/// The largest token accepted; a projected token is about 1 KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a cluster's tokens must say.
#[derive(Clone, Debug)]
pub(super) struct Expected {
    pub cluster: String,
    pub issuer: String,
    pub subject: String,
}

/// A compact JWS split into its parts, header and claims decoded, signature not checked.
pub(super) struct UnverifiedToken<'t> {
    /// `header.claims`, the bytes the signature covers.
    pub signing_input: &'t str,
    /// The signature, base64url.
    pub signature: &'t str,
    pub header: Header,
    pub claims: Claims,
}

/// The JOSE header fields meshtrust reads.
#[derive(Deserialize)]
pub(super) struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The registered claims meshtrust checks (Kubernetes adds `kubernetes.io`, ignored here).
#[derive(Deserialize)]
pub(super) struct Claims {
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
}

fn malformed(reason: impl Into<String>) -> Refusal {
    Refusal::Malformed {
        reason: reason.into(),
    }
}

impl<'t> UnverifiedToken<'t> {
    /// Splits and decodes `token` (surrounding whitespace, as a file read leaves it, is
    /// ignored).
    pub fn parse(token: &'t str) -> Result<UnverifiedToken<'t>, Refusal> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(malformed(format!(
                "it is {} bytes long, more than the {MAX_TOKEN_BYTES} accepted",
                token.len()
            )));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let &[header, claims, signature] = parts.as_slice() else {
            let plural = if parts.len() == 1 { "" } else { "s" };
            return Err(malformed(format!(
                "it has {} dot-separated part{plural}, where a signed JWT has 3",
                parts.len()
            )));
        };
        let header: Header = decode_part(header, "header")?;
        if header.crit.is_some() {
            return Err(malformed(
                "its header lists critical extensions (crit), which meshtrust does not support",
            ));
        }
        let claims: Claims = decode_part(claims, "claims")?;
        // An empty signature is left to the algorithm check: it is what `alg: none` sends.
        if URL_SAFE_NO_PAD.decode(signature).is_err() {
            return Err(malformed("its signature is not base64url without padding"));
        }
        let signing_input = &token[..token.len() - signature.len() - 1];
        Ok(UnverifiedToken {
            signing_input,
            signature,
            header,
            claims,
        })
    }
}

fn decode_part<T: DeserializeOwned>(part: &str, name: &str) -> Result<T, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| malformed(format!("its {name} part is not base64url without padding")))?;
    let not_an_object = |reason: String| {
        malformed(format!(
            "its {name} part is not the JSON object a JWT has: {reason}"
        ))
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| not_an_object(shown(&e.to_string())))?;
    if !value.is_object() {
        return Err(malformed(format!(
            "its {name} part is JSON but not an object"
        )));
    }
    T::deserialize(value).map_err(|e| not_an_object(shown(&e.to_string())))
}

/// The algorithm named by `alg`, if meshtrust accepts it: RS256 (Kubernetes' default),
/// ES256 or ES384. `none`, HMAC and everything else are refused.
pub(super) fn accepted_algorithm(alg: &str) -> Result<Algorithm, Refusal> {
    match alg {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        _ => Err(Refusal::Algorithm {
            alg: alg.to_string(),
            mismatched_kid: None,
        }),
    }
}

/// The token's `iss` must be the cluster's issuer. Checked before the key is looked up, so
/// that a token from another cluster is named as such and fetches no keys.
pub(super) fn check_issuer(expected: &Expected, claims: &Claims) -> Result<(), Refusal> {
    match claims.iss.as_deref() {
        Some(iss) if iss == expected.issuer => Ok(()),
        found => Err(Refusal::Issuer {
            cluster: expected.cluster.clone(),
            found: found.unwrap_or_default().to_string(),
            expected: expected.issuer.clone(),
        }),
    }
}

/// The checks after the signature: audience, expiry, not-before, issued-at, subject; first
/// failure wins. Returns when the token expires.
pub(super) fn check_claims(
    expected: &Expected,
    claims: &Claims,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, Refusal> {
    check_audience(claims)?;
    let Some(exp) = &claims.exp else {
        return Err(malformed(
            "it has no expiry (exp): meshtrust accepts projected tokens, which expire, not \
             the tokens of legacy ServiceAccount Secrets",
        ));
    };
    let expires_at = date(exp, "exp")?;
    if now >= expires_at + CLOCK_SKEW_LEEWAY {
        return Err(Refusal::Expired {
            expired_at: expires_at,
            now,
        });
    }
    for (claim, value) in [("nbf", &claims.nbf), ("iat", &claims.iat)] {
        let Some(value) = value else { continue };
        let valid_from = date(value, claim)?;
        if valid_from > now + CLOCK_SKEW_LEEWAY {
            return Err(Refusal::NotYetValid {
                cluster: expected.cluster.clone(),
                claim,
                valid_from,
                now,
            });
        }
    }
    match claims.sub.as_deref() {
        Some(sub) if sub == expected.subject => Ok(expires_at),
        found => Err(Refusal::Subject {
            cluster: expected.cluster.clone(),
            found: found.unwrap_or_default().to_string(),
            expected: expected.subject.clone(),
        }),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3); Kubernetes sends an array.
fn check_audience(claims: &Claims) -> Result<(), Refusal> {
    let found = match &claims.aud {
        None => Vec::new(),
        Some(serde_json::Value::String(aud)) => vec![aud.clone()],
        Some(serde_json::Value::Array(auds)) => auds
            .iter()
            .map(|aud| aud.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("its aud is not an array of strings"))?,
        Some(_) => {
            return Err(malformed(
                "its aud is neither a string nor an array of strings",
            ));
        }
    };
    if found.iter().any(|a| a == SERVICE_ACCOUNT_AUDIENCE) {
        Ok(())
    } else {
        Err(Refusal::Audience { found })
    }
}

/// A NumericDate (seconds since the epoch, possibly fractional) as a time.
fn date(value: &serde_json::Number, claim: &str) -> Result<OffsetDateTime, Refusal> {
    let seconds = match value.as_i64() {
        Some(s) => Some(s),
        // Fractional seconds are allowed (RFC 7519 §2); `as` saturates, and the range check
        // below refuses what saturated.
        None => value.as_f64().map(|s| s.floor() as i64),
    };
    seconds
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| malformed(format!("its {claim} is not a time in seconds since 1970")))
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
