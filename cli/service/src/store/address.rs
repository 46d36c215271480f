//! Where the store lives: a store URL, understood and redacted.

use std::path::PathBuf;
use std::str::FromStr;

use sqlx::any::AnyConnectOptions;

use crate::{Error, Result};

/// The two kinds of database the store runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Backend {
    /// An embedded SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL server, possibly shared by several replicas.
    Postgres,
}

/// A parsed store URL: what to connect to, and how to name it in messages.
#[derive(Clone)]
pub(super) struct StoreAddress {
    /// The URL as given, for connecting. Never shown.
    url: String,
    /// The URL without password or parameters, for messages.
    shown: String,
    /// The password in the URL, if any, so that messages can be scrubbed of it.
    password: Option<String>,
    backend: Backend,
}

const EXPECTED: &str = "use sqlite:///path/meshtrust.db or postgres://user@host:port/database";

impl StoreAddress {
    /// Understands `sqlite:///abs/path.db`, `sqlite:relative.db` and `postgres://…`.
    pub(super) fn parse(url: &str) -> Result<StoreAddress> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Self::sqlite(url),
            "postgres" | "postgresql" => Self::postgres(url),
            _ => Err(Error::Store {
                store: "(unrecognised URL)".into(),
                reason: format!("the store URL scheme is not sqlite or postgres; {EXPECTED}"),
            }),
        }
    }

    fn sqlite(url: &str) -> Result<StoreAddress> {
        // The same reading of the URL as sqlx's SQLite driver.
        let rest = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let refuse = |reason: String| Error::Store {
            store: url.split('?').next().unwrap_or_default().to_owned(),
            reason,
        };
        if rest.contains('?') {
            return Err(refuse(
                "SQLite store URLs take no parameters (meshtrust sets the journal, \
                 synchronous and busy-timeout modes itself); remove everything from `?`"
                    .into(),
            ));
        }
        if rest.is_empty() || rest.starts_with(':') {
            return Err(refuse(format!(
                "name a database file: an in-memory store would forget every \
                 enrollment on restart; {EXPECTED}"
            )));
        }
        if rest.contains('%') {
            return Err(refuse(
                "percent-escapes are not supported in SQLite paths; rename the file".into(),
            ));
        }
        Ok(StoreAddress {
            url: url.to_owned(),
            shown: url.to_owned(),
            password: None,
            backend: Backend::Sqlite { path: rest.into() },
        })
    }

    fn postgres(url: &str) -> Result<StoreAddress> {
        let parsed = AnyConnectOptions::from_str(url)
            .map_err(|e| Error::Store {
                store: "postgres://(unparsable URL)".into(),
                reason: format!("the store URL is not a valid URL ({e}); {EXPECTED}"),
            })?
            .database_url;
        let host_param = parsed
            .query_pairs()
            .find(|(key, _)| key == "host")
            .map(|(_, value)| value.into_owned());
        let host = host_param
            .or_else(|| parsed.host_str().map(str::to_owned))
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let user_param = parsed
            .query_pairs()
            .find(|(key, _)| key == "user")
            .map(|(_, value)| value.into_owned());
        let user = match (parsed.username(), user_param) {
            ("", None) => String::new(),
            ("", Some(user)) => format!("{user}@"),
            (user, _) => format!("{user}@"),
        };
        let port = parsed.port().unwrap_or(5432);
        let shown = format!("postgres://{user}{host}:{port}{}", parsed.path());
        let password = parsed
            .password()
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .or_else(|| {
                parsed
                    .query_pairs()
                    .find(|(key, _)| key == "password")
                    .map(|(_, value)| value.into_owned())
            });
        Ok(StoreAddress {
            url: url.to_owned(),
            shown,
            password,
            backend: Backend::Postgres,
        })
    }

    /// The URL to connect with (it may hold a password: never print it).
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// The store, without credentials: `postgres://user@host:port/db`, `sqlite:///p.db`.
    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    /// Which database it is.
    pub(super) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Whether it is SQLite.
    pub(super) fn is_sqlite(&self) -> bool {
        matches!(self.backend, Backend::Sqlite { .. })
    }

    /// A store error: "store URL: reason", with any password scrubbed from the reason.
    pub(super) fn error(&self, reason: impl Into<String>) -> Error {
        let mut reason = reason.into();
        if let Some(password) = &self.password {
            reason = reason.replace(password.as_str(), "***");
        }
        Error::Store {
            store: self.shown.clone(),
            reason,
        }
    }
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
