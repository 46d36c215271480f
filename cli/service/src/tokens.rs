//! Bearer credentials: one-time enrollment tokens and the admin token.
//!
//! An enrollment token is `mtenroll_` and 256 random bits (base64url). The service keeps
//! only its SHA-256; the store makes it single-use across restarts and replicas. The admin
//! token is read from a file and compared by hash, so its length does not leak through time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshtrust_issuer::server::api::ENROLLMENT_TOKEN_PREFIX;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The longest an enrollment token may live.
pub const MAX_TOKEN_TTL: time::Duration = time::Duration::days(7);

/// A new enrollment token (the secret) and its hash (what is stored).
pub fn generate() -> Result<(Zeroizing<String>, String)> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| Error::Internal {
            reason: "the operating system's random number generator failed".to_string(),
        })?;
    let token = Zeroizing::new(format!(
        "{ENROLLMENT_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes.as_ref())
    ));
    let hash = hash(&token);
    Ok((token, hash))
}

/// SHA-256 of a bearer credential, lowercase hex: the only form in which one is stored.
pub fn hash(token: &str) -> String {
    meshtrust_ca::sha256_hex(token.as_bytes())
}

/// Whether `presented` looks like an enrollment token (and not a ServiceAccount JWT).
pub fn is_enrollment_token(presented: &str) -> bool {
    presented.starts_with(ENROLLMENT_TOKEN_PREFIX)
}

/// The admin credential: the hash of the token in the admin token file.
#[derive(Clone)]
pub struct AdminToken {
    hash: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken(sha256 {}…)", &self.hash[..12])
    }
}

impl AdminToken {
    /// Reads the token from `path` (surrounding whitespace ignored; 32 characters at least,
    /// and never an enrollment token).
    pub fn from_file(path: &std::path::Path) -> Result<AdminToken> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::Config {
            location: path.display().to_string(),
            reason: format!("the admin token file cannot be read: {e}"),
        })?);
        AdminToken::new(text.trim()).map_err(|reason| Error::Config {
            location: path.display().to_string(),
            reason,
        })
    }

    /// The admin credential `token`.
    pub fn new(token: &str) -> std::result::Result<AdminToken, String> {
        if token.len() < 32 {
            return Err(format!(
                "the admin token is {} characters long; use at least 32 random characters (e.g. `openssl rand -base64 32`)",
                token.len()
            ));
        }
        if is_enrollment_token(token) {
            return Err("the admin token must not be an enrollment token".to_string());
        }
        Ok(AdminToken { hash: hash(token) })
    }

    /// Whether `presented` is the admin token.
    pub fn matches(&self, presented: &str) -> bool {
        hash(presented) == self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_prefixed_random_and_hashes_to_what_is_returned() {
        let (a, hash_a) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert!(is_enrollment_token(&a));
        assert_eq!(a.len(), ENROLLMENT_TOKEN_PREFIX.len() + 43);
        assert_ne!(*a, *b);
        assert_eq!(hash(&a), hash_a);
        assert_eq!(hash_a.len(), 64);
    }

    #[test]
    fn a_short_admin_token_is_refused_and_a_long_one_matches_only_itself() {
        assert!(
            AdminToken::new("short")
                .unwrap_err()
                .contains("at least 32")
        );
        let admin = AdminToken::new(&"a".repeat(40)).unwrap();
        assert!(admin.matches(&"a".repeat(40)));
        assert!(!admin.matches(&"a".repeat(41)));
        assert!(!format!("{admin:?}").contains(&"a".repeat(40)));
    }
}
