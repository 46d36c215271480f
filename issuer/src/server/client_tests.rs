use super::*;

#[test]
fn a_base_url_loses_its_trailing_slash_and_keeps_its_path() {
    assert_eq!(
        base_url("https://signer.example/", false).unwrap(),
        "https://signer.example"
    );
    assert_eq!(
        base_url("https://signer.example:8443", false).unwrap(),
        "https://signer.example:8443"
    );
    assert_eq!(
        base_url("https://signer.example/mesh/", false).unwrap(),
        "https://signer.example/mesh"
    );
    assert_eq!(
        base_url("http://127.0.0.1:8080", true).unwrap(),
        "http://127.0.0.1:8080"
    );
}

#[test]
fn a_url_with_a_password_is_refused_without_repeating_it() {
    let e = base_url("https://admin:hunter2@signer.example", false).unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("carries a user name or password"), "{text}");
}

#[test]
fn unusable_urls_say_what_to_give() {
    let cases = [
        ("signer.example", "is not a URL"),
        (
            "ftp://signer.example",
            "has the scheme ftp; use an https:// URL",
        ),
        ("https://signer.example/?a=b", "has a query or a fragment"),
        ("https://127.0.0.1:1", ""),
    ];
    for (url, expected) in cases {
        match base_url(url, false) {
            Ok(_) => assert!(expected.is_empty(), "{url} accepted"),
            Err(e) => assert!(e.to_string().contains(expected), "{url}: {e}"),
        }
    }
    let e = base_url("https://signer.example", true).unwrap_err();
    assert!(e.to_string().contains("use an http:// URL"), "{e}");
}

#[test]
fn routes_live_under_the_version_prefix_of_the_base_url() {
    let trust = ServerTrust::fingerprint(&"ab".repeat(32)).unwrap();
    let client = ServiceClient::new(
        "https://signer.example/mesh/",
        &trust,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(
        client.route("/trust-bundle"),
        "https://signer.example/mesh/v1/trust-bundle"
    );
    assert_eq!(
        client.describe(),
        "meshtrust serve at https://signer.example/mesh"
    );
    assert_eq!(
        format!("{client:?}"),
        "ServiceClient { url: \"https://signer.example/mesh\", timeout: 5s }"
    );
}
