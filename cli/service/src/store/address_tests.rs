use super::*;

#[test]
fn store_urls_are_shown_without_credentials() {
    let cases = [
        (
            "a PostgreSQL URL loses its password and parameters",
            "postgres://meshtrust:pw@db.example:6432/meshtrust?sslmode=verify-full",
            "postgres://meshtrust@db.example:6432/meshtrust",
        ),
        (
            "a PostgreSQL URL without a port shows the default one",
            "postgresql://meshtrust@10.0.0.5/trust",
            "postgres://meshtrust@10.0.0.5:5432/trust",
        ),
        (
            "a password given as a parameter is dropped too",
            "postgres://db:5432/trust?user=meshtrust&password=pw",
            "postgres://meshtrust@db:5432/trust",
        ),
        (
            "a socket directory given as host parameter is shown as the host",
            "postgres:///trust?host=/run/postgresql&user=meshtrust",
            "postgres://meshtrust@/run/postgresql:5432/trust",
        ),
        (
            "a SQLite URL is shown as given",
            "sqlite:///var/lib/meshtrust/meshtrust.db",
            "sqlite:///var/lib/meshtrust/meshtrust.db",
        ),
    ];
    for (name, url, shown) in cases {
        let address = StoreAddress::parse(url).unwrap();
        assert_eq!(address.shown(), shown, "{name}");
        assert_eq!(address.url(), url, "{name}");
    }
}

#[test]
fn sqlite_paths_are_read_like_sqlx_reads_them() {
    let cases = [
        ("sqlite:///var/lib/m.db", "/var/lib/m.db"),
        ("sqlite://relative/m.db", "relative/m.db"),
        ("sqlite:m.db", "m.db"),
    ];
    for (url, path) in cases {
        let address = StoreAddress::parse(url).unwrap();
        assert_eq!(
            address.backend(),
            &Backend::Sqlite { path: path.into() },
            "{url}"
        );
    }
}

#[test]
fn unusable_store_urls_are_refused_with_a_reason() {
    let cases = [
        (
            "mysql://root@db/m",
            "store (unrecognised URL): the store URL scheme is not sqlite or postgres; use sqlite:///path/meshtrust.db or postgres://user@host:port/database",
        ),
        (
            "sqlite::memory:",
            "store sqlite::memory:: name a database file: an in-memory store would forget every enrollment on restart; use sqlite:///path/meshtrust.db or postgres://user@host:port/database",
        ),
        (
            "sqlite:///m.db?mode=rwc",
            "store sqlite:///m.db: SQLite store URLs take no parameters (meshtrust sets the journal, synchronous and busy-timeout modes itself); remove everything from `?`",
        ),
    ];
    for (url, message) in cases {
        let error = StoreAddress::parse(url).err().unwrap();
        assert_eq!(error.to_string(), message, "{url}");
    }
}

#[test]
fn a_password_is_scrubbed_from_reasons() {
    let address = StoreAddress::parse("postgres://u:hunter22@db/m").unwrap();
    let error = address.error("server said hunter22 is wrong");
    assert_eq!(
        error.to_string(),
        "store postgres://u@db:5432/m: server said *** is wrong"
    );
}
