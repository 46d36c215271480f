//! Per-cluster intermediate CAs: the request a cluster makes and how a root signs it.

use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, SanType};
use time::{Duration, OffsetDateTime};

use crate::bundle::BundleFormat;
use crate::cert::Certificate;
use crate::cluster::ClusterName;
use crate::error::{Error, Result, crypto};
use crate::key::{KeyType, PrivateKey};
use crate::root::{BACKDATE, RootCa, ca_key_usages, check_validity};
use crate::serial::random_serial;

/// The DNS name istiod serves its CA under; Istio's Makefile puts it in every intermediate.
pub const ISTIOD_DNS_NAME: &str = "istiod.istio-system.svc";

/// Parameters of one cluster's intermediate CA, and the form its `cacerts` bundle is
/// delivered in: the one parameter type every caller uses (the CLI's flags and the
/// `MeshTrust` spec each convert into it in one place; [`crate::reissue_reason`] compares a
/// cluster's bundle against it). Defaults follow Istio's Makefile:
/// `O=Istio, CN=Intermediate CA, L=<cluster>`, SAN `DNS:istiod.istio-system.svc`,
/// pathlen 0, 2 years, ECDSA P-256, the istio file layout.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct IntermediateParams {
    /// The cluster this CA serves (subject L).
    pub cluster: ClusterName,
    /// Subject O.
    pub organization: String,
    /// Subject CN.
    pub common_name: String,
    /// Key type of the intermediate key.
    pub key_type: KeyType,
    /// Requested lifetime from `now` (clamped to the issuer's expiry when signed).
    pub validity: Duration,
    /// basicConstraints pathLenConstraint (0: it may sign workload certificates only).
    pub path_len: u8,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// The layout of the `cacerts` bundle (istio's four files, or kubernetes.io/tls).
    pub format: BundleFormat,
}

impl IntermediateParams {
    /// Defaults for `cluster`.
    pub fn new(cluster: ClusterName) -> IntermediateParams {
        IntermediateParams {
            cluster,
            organization: "Istio".to_string(),
            common_name: "Intermediate CA".to_string(),
            key_type: KeyType::EcdsaP256,
            validity: Duration::days(730),
            path_len: 0,
            dns_names: vec![ISTIOD_DNS_NAME.to_string()],
            format: BundleFormat::Istio,
        }
    }

    /// The same parameters for another cluster (batch issuance uses one template for all).
    pub fn for_cluster(&self, cluster: ClusterName) -> IntermediateParams {
        IntermediateParams {
            cluster,
            ..self.clone()
        }
    }

    /// The signing profile a CA applies to this request.
    pub fn profile(&self) -> IntermediateProfile {
        IntermediateProfile {
            path_len: self.path_len,
            validity: self.validity,
        }
    }

    /// A PKCS#10 request for this intermediate, signed by `key` (which never leaves the caller).
    pub fn csr(&self, key: &PrivateKey) -> Result<Csr> {
        let mut params = CertificateParams::default();
        params.distinguished_name = self.distinguished_name();
        params.subject_alt_names =
            self.dns_names
                .iter()
                .map(|d| {
                    d.clone().try_into().map(SanType::DnsName).map_err(|_| {
                        Error::InvalidParameter {
                            field: "DNS name",
                            reason: format!("`{d}` is not a valid DNS name"),
                        }
                    })
                })
                .collect::<Result<_>>()?;
        let csr = params
            .serialize_request(key)
            .map_err(crypto("building the certificate signing request"))?;
        Ok(Csr::from_der(csr.der().to_vec()))
    }

    fn distinguished_name(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, self.organization.as_str());
        dn.push(DnType::CommonName, self.common_name.as_str());
        dn.push(DnType::LocalityName, self.cluster.as_str());
        dn
    }
}

/// A DER-encoded PKCS#10 certificate signing request.
#[derive(Clone, Debug)]
pub struct Csr {
    der: Vec<u8>,
    /// Set once the self-signature verified ([`Csr::inspect`] or signing), so that a
    /// request inspected and then signed is verified once.
    pub(crate) signature_verified: OnceLock<()>,
}

impl PartialEq for Csr {
    fn eq(&self, other: &Csr) -> bool {
        self.der == other.der
    }
}

impl Eq for Csr {}

impl Csr {
    /// Wraps DER received from elsewhere (checked when signed).
    pub fn from_der(der: Vec<u8>) -> Csr {
        Csr {
            der,
            signature_verified: OnceLock::new(),
        }
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM text (`CERTIFICATE REQUEST`), as AWS Private CA expects it.
    pub fn to_pem(&self) -> String {
        crate::key::encode_pem("CERTIFICATE REQUEST", &self.der)
    }

    /// The raw public key the request carries (its signature is not checked here; see
    /// [`Csr::inspect`]).
    pub fn public_key_raw(&self) -> Result<Vec<u8>> {
        let csr = self.parsed()?;
        Ok(csr
            .certification_request_info
            .subject_pki
            .subject_public_key
            .data
            .to_vec())
    }
}

/// What a CA puts in an intermediate regardless of what the request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntermediateProfile {
    /// basicConstraints pathLenConstraint.
    pub path_len: u8,
    /// Requested lifetime from `now`.
    pub validity: Duration,
}

impl IntermediateProfile {
    /// A profile with the given path length and validity.
    pub fn new(path_len: u8, validity: Duration) -> IntermediateProfile {
        IntermediateProfile { path_len, validity }
    }
}

/// A freshly signed intermediate and what was adjusted while signing it.
#[derive(Clone, Debug)]
pub struct SignedIntermediate {
    /// The intermediate certificate.
    pub certificate: Certificate,
    /// Set when the requested validity was cut to the issuer's expiry.
    pub clamped_to: Option<OffsetDateTime>,
}

/// The validity window of a certificate requested at `now`, cut so that it never outlives
/// its issuer. Returns `(not_before, not_after, clamped)`.
pub fn validity_window(
    now: OffsetDateTime,
    validity: Duration,
    issuer_not_before: OffsetDateTime,
    issuer_not_after: OffsetDateTime,
) -> (OffsetDateTime, OffsetDateTime, bool) {
    let not_before = (now - BACKDATE).max(issuer_not_before);
    let wanted = now + validity;
    if wanted > issuer_not_after {
        (not_before, issuer_not_after, true)
    } else {
        (not_before, wanted, false)
    }
}

impl RootCa {
    /// Signs a cluster's CSR as an intermediate CA at `now`.
    ///
    /// The subject and SANs come from the (signature-checked) request; CA:TRUE with
    /// `profile.path_len`, the CA keyUsage, SKI/AKI and a random serial come from the
    /// profile; no extendedKeyUsage is ever set. The validity is clamped to the root's.
    pub fn sign_intermediate(
        &self,
        csr: &Csr,
        profile: &IntermediateProfile,
        now: OffsetDateTime,
    ) -> Result<SignedIntermediate> {
        let root = self.certificate();
        check_validity(
            "root-cert.pem",
            root,
            now,
            "create a new root and rotate to it (docs/rotation.md)",
        )?;
        if let Some(limit) = root.path_len()
            && u32::from(profile.path_len) + 1 > limit
        {
            return Err(Error::InvalidParameter {
                field: "path length",
                reason: format!(
                    "root-cert.pem allows {limit} CA level(s) below it (pathlen:{limit}); an intermediate with path length {} needs pathlen:{} or none on the root",
                    profile.path_len,
                    u32::from(profile.path_len) + 1
                ),
            });
        }
        if profile.validity <= Duration::ZERO {
            return Err(Error::InvalidParameter {
                field: "validity",
                reason: "an intermediate needs a positive validity (e.g. 2y)".to_string(),
            });
        }
        let request = csr.for_signing()?;
        let mut params = request.params;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(profile.path_len));
        params.key_usages = ca_key_usages();
        params.extended_key_usages = Vec::new();
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let (not_before, not_after, clamped) =
            validity_window(now, profile.validity, root.not_before(), root.not_after());
        params.not_before = not_before;
        params.not_after = not_after;
        let issuer = self.issuer();
        let cert = params
            .signed_by(&request.public_key, issuer)
            .map_err(crypto("signing the intermediate certificate"))?;
        Ok(SignedIntermediate {
            certificate: Certificate::from_der("ca-cert.pem", 1, cert.der().to_vec())?,
            clamped_to: clamped.then_some(not_after),
        })
    }
}
