//! Searching logs for key material (issue 13: key material never appears in a log, at any
//! level).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The shortest run of a key's base64 searched for: long enough that no other text of a
/// log holds it by chance (18 bytes of key), short enough to catch a partial line.
const RUN: usize = 24;

/// Where `log` shows part of the private key `key_pem`, described; `None` if it shows none.
///
/// Searched for: each base64 line of the PEM, [`RUN`] characters of the body as one run, the base64 of the whole PEM file (how a Secret's `data` holds
/// it, so a logged Secret object is caught), and 16 bytes from the middle of the DER in
/// hex and as a Rust `Debug` list of numbers.
pub fn key_material_in(log: &str, key_pem: &str) -> Option<String> {
    let body: Vec<&str> = key_pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    assert!(!body.is_empty(), "not a PEM key:\n{key_pem}");
    let mut needles: Vec<(String, &str)> = Vec::new();
    for line in &body {
        if line.len() >= RUN {
            needles.push((line.to_string(), "a base64 line of the PEM"));
        }
    }
    // From the middle: the start of every key of one type is the same ASN.1 header.
    let joined = body.concat();
    let middle = joined.len() / 2;
    if joined.len() >= middle + RUN {
        needles.push((
            joined[middle..middle + RUN].to_string(),
            "the PEM body as one run",
        ));
    }
    let file = STANDARD.encode(key_pem);
    let middle = file.len() / 2;
    if file.len() >= middle + RUN {
        needles.push((
            file[middle..middle + RUN].to_string(),
            "the base64 of the PEM file",
        ));
    }
    let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .unwrap_or_else(|e| panic!("not a PEM private key ({e}):\n{key_pem}"));
    let der = der.secret_der();
    let middle = &der[der.len() / 2..der.len() / 2 + 16];
    needles.push((
        middle.iter().map(|b| format!("{b:02x}")).collect(),
        "DER bytes in hex",
    ));
    needles.push((
        middle
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        "DER bytes as a Debug list",
    ));
    needles.into_iter().find_map(|(needle, what)| {
        log.find(&needle).map(|at| {
            let line = log[..at].matches('\n').count() + 1;
            format!("{what} (`{needle}`) at line {line}")
        })
    })
}

/// Checks the log of a run at `RUST_LOG=trace` with `--log-format json`: every line is a
/// JSON object with a `level` and a `timestamp`, some lines are at TRACE (so the level
/// really was on), and no part of any of `keys` is in it. `whose` names the log in
/// failures.
pub fn assert_trace_json_log_holds_no_key<'a>(
    log: &str,
    keys: impl IntoIterator<Item = &'a str>,
    whose: &str,
) {
    let mut lines = 0;
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{whose}: not a JSON log line ({e}): {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{whose}: {line}"
        );
        lines += 1;
    }
    assert!(
        log.contains("\"level\":\"TRACE\""),
        "{whose}: {lines} lines, none at TRACE"
    );
    for key in keys {
        if let Some(found) = key_material_in(log, key) {
            panic!("{whose} ({lines} lines) shows a private key: {found}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_form_a_log_could_show_a_key_in() {
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let other = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert_eq!(
            key_material_in(&format!("nothing to see\n{other}"), &key),
            None
        );
        let line = key.lines().nth(2).unwrap();
        assert!(
            key_material_in(&format!("a\nkey={line}\n"), &key)
                .is_some_and(|w| w.contains("line 2")),
        );
        let json = serde_json::json!({ "message": key }).to_string();
        assert!(key_material_in(&json, &key).is_some());
        let secret = serde_json::json!({ "data": { "ca-key.pem": STANDARD.encode(&key) } });
        assert!(key_material_in(&secret.to_string(), &key).is_some());
        let der = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        assert!(key_material_in(&format!("{:?}", der.secret_der()), &key).is_some());
        let hex: String = der
            .secret_der()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(key_material_in(&hex, &key).is_some());
    }
}
