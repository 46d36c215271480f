//! Renewal on request, decided purely: does the `MeshTrust`'s renewal request
//! ([`RenewalRequest`], written by `meshtrust renew`) ask for this cluster's intermediate to
//! be replaced now, has it been done already, or does it not concern the cluster?

use time::OffsetDateTime;

use crate::crd::{RenewalRecord, RenewalRequest, timestamp};

/// What a renewal request means for one cluster this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requested {
    /// No request covers the cluster, or its record is already in status.
    Nothing,
    /// The cluster still holds the intermediate the request names: reissue it. The record
    /// is completed (new serial, time) once the new intermediate is delivered.
    Reissue(RenewalRecord),
    /// The cluster no longer holds the intermediate the request names (it was replaced by a
    /// renewal, by another writer, or by this request in a round whose status was lost):
    /// the request is done; record it.
    AlreadyDone(RenewalRecord),
}

/// What `request` means for `cluster`, which holds the intermediate `held_serial` (`None`:
/// it holds none, or none that can be read) and whose status last recorded `recorded`.
pub fn requested(
    request: Option<&RenewalRequest>,
    cluster: &str,
    held_serial: Option<&str>,
    recorded: Option<&RenewalRecord>,
    now: OffsetDateTime,
) -> Requested {
    let Some(request) = request else {
        return Requested::Nothing;
    };
    let Some(wanted) = request.serial_for(cluster) else {
        return Requested::Nothing;
    };
    let record = |serial: Option<&str>, reissued: bool| RenewalRecord {
        id: request.id.clone(),
        requested_at: Some(request.requested_at.clone()),
        replaced_serial: wanted.to_string(),
        serial: serial.map(str::to_string),
        completed_at: timestamp(now),
        reissued,
    };
    match held_serial {
        Some(held) if same_serial(held, wanted) => Requested::Reissue(record(None, true)),
        // Without an intermediate the cluster is issued one anyway (DoesNotExist, …), and
        // the request is recorded once it holds one.
        None => Requested::Nothing,
        Some(_) if recorded.is_some_and(|r| r.id == request.id) => Requested::Nothing,
        Some(held) => Requested::AlreadyDone(record(Some(held), false)),
    }
}

/// Serials as hex, compared without case, separators or leading zeros.
fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let hex: String = s
            .chars()
            .filter(char::is_ascii_hexdigit)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        hex.trim_start_matches('0').to_string()
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn request(clusters: &[(&str, &str)]) -> RenewalRequest {
        RenewalRequest {
            id: "r-1".into(),
            requested_at: "2026-06-01T11:59:00Z".into(),
            clusters: clusters
                .iter()
                .map(|(c, s)| (c.to_string(), s.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn record(id: &str) -> RenewalRecord {
        RenewalRecord {
            id: id.into(),
            replaced_serial: "0a".into(),
            completed_at: "2026-06-01T11:00:00Z".into(),
            ..RenewalRecord::default()
        }
    }

    #[test]
    fn what_a_request_means_for_a_cluster() {
        let only_c1 = request(&[("c1", "0A:1B")]);
        let done_before = record("r-1");
        let older = record("r-0");
        type Case<'a> = (
            &'a str,
            Option<&'a RenewalRequest>,
            Option<&'a str>,
            Option<&'a RenewalRecord>,
            &'a str,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "without a request nothing is asked",
                None,
                Some("0a1b"),
                None,
                "nothing",
            ),
            (
                "a request for another cluster does not touch this one",
                Some(&only_c1),
                Some("0a1b"),
                None,
                "nothing",
            ),
            (
                "a cluster holding the named intermediate is reissued",
                Some(&only_c1),
                Some("0a1b"),
                None,
                "reissue",
            ),
            (
                "serials match whatever their case, separators and leading zeros",
                Some(&only_c1),
                Some("00:0a:1b"),
                None,
                "reissue",
            ),
            (
                "a named intermediate is reissued even when an older request is on record",
                Some(&only_c1),
                Some("0a1b"),
                Some(&older),
                "reissue",
            ),
            (
                "a cluster that holds another intermediate has the request recorded as done",
                Some(&only_c1),
                Some("ffee"),
                None,
                "done",
            ),
            (
                "a request done and on record is not done again",
                Some(&only_c1),
                Some("ffee"),
                Some(&done_before),
                "nothing",
            ),
            (
                "a cluster without an intermediate is left to its first issuance",
                Some(&only_c1),
                None,
                None,
                "nothing",
            ),
        ];
        let c1 = |r: Option<&RenewalRequest>| r.is_some_and(|r| r.serial_for("c1").is_some());
        for (case, req, held, recorded, want) in cases {
            let cluster = if case.contains("another cluster") {
                "c2"
            } else {
                "c1"
            };
            let got = requested(req, cluster, held, recorded, T0);
            let name = match &got {
                Requested::Nothing => "nothing",
                Requested::Reissue(_) => "reissue",
                Requested::AlreadyDone(_) => "done",
            };
            assert_eq!(name, want, "{case}");
            match got {
                Requested::Reissue(r) => {
                    assert!(c1(req), "{case}");
                    assert_eq!(
                        (r.id.as_str(), r.replaced_serial.as_str()),
                        ("r-1", "0A:1B"),
                        "{case}"
                    );
                    assert!(
                        r.reissued && r.serial.is_none(),
                        "{case}: completed on delivery"
                    );
                }
                Requested::AlreadyDone(r) => {
                    assert_eq!(r.serial.as_deref(), held, "{case}");
                    assert!(!r.reissued, "{case}");
                    assert_eq!(r.completed_at, timestamp(T0), "{case}");
                }
                Requested::Nothing => {}
            }
        }
    }

    #[test]
    fn the_annotation_round_trips_and_a_bad_one_is_named() {
        let r = request(&[("c1", "0a"), ("c2", "0b")]);
        assert_eq!(RenewalRequest::parse(&r.to_annotation()), Ok(r));
        let e = RenewalRequest::parse("{\"id\": 3}").unwrap_err();
        assert!(e.contains("meshtrust.io/renewal-request"), "{e}");
        let e = RenewalRequest::parse(r#"{"id":" ","requestedAt":"x","clusters":{}}"#).unwrap_err();
        assert!(e.contains("empty id"), "{e}");
    }
}
