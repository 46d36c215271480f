//! The independent check: a workload certificate signed with the bundle's key, validated
//! by rustls-webpki through the bundle's chain to its roots.

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, SanType};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::{Duration, OffsetDateTime};

use crate::cert::Certificate;
use crate::key::{KeyType, PrivateKey};

/// Signs a throwaway workload certificate with the bundle's key and validates it with
/// rustls-webpki through the chain to the roots: the check that the bundle works for the
/// certificates istiod will actually issue.
pub(super) fn validate_workload_path(
    ca: &Certificate,
    key: &PrivateKey,
    chain: &[Certificate],
    roots: &[Certificate],
    now: OffsetDateTime,
) -> Result<(), String> {
    let leaf_key = PrivateKey::generate(KeyType::EcdsaP256).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "meshtrust verify");
    params.subject_alt_names = vec![SanType::URI(
        "spiffe://cluster.local/ns/meshtrust/sa/verify"
            .try_into()
            .map_err(|e: rcgen::Error| e.to_string())?,
    )];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = (now - Duration::minutes(1)).max(ca.not_before());
    params.not_after = (now + Duration::hours(1)).min(ca.not_after());
    params.use_authority_key_identifier_extension = true;
    let issuer = Issuer::from_ca_cert_der(ca.der(), key).map_err(|e| e.to_string())?;
    let leaf = params
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| format!("could not sign a test certificate: {e}"))?;

    let anchors = roots
        .iter()
        .filter_map(|r| webpki::anchor_from_trusted_cert(r.der()).ok())
        .map(|a| a.to_owned())
        .collect::<Vec<_>>();
    let intermediates: Vec<CertificateDer<'_>> = chain.iter().map(|c| c.der().clone()).collect();
    let leaf_der = leaf.der().clone();
    let end_entity = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| format!("{e:?}"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now.unix_timestamp()).unwrap_or(0),
    ));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| format!("{e:?}"))
}
