//! Reading a certificate signing request for signing: parsed once, its self-signature
//! verified at most once per [`Csr`] value (a service that inspected the request before
//! signing it does not pay for a second ECDSA verification), then the subject, the
//! subject alternative names and the public key in the form rcgen signs.

use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, SanType, SubjectPublicKeyInfo};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::AttributeTypeAndValue;

use crate::error::{Error, Result};
use crate::intermediate::Csr;

/// What a CA takes from a request: its subject and SANs as certificate parameters (every
/// other field is the CA's to set), and the public key to certify.
pub(crate) struct SigningRequest {
    pub params: CertificateParams,
    pub public_key: SubjectPublicKeyInfo,
}

impl Csr {
    /// Parses the request, refusing trailing bytes.
    pub(crate) fn parsed(&self) -> Result<X509CertificationRequest<'_>> {
        match X509CertificationRequest::from_der(self.der()) {
            Ok(([], csr)) => Ok(csr),
            Ok((rest, _)) => Err(malformed(format!(
                "{} bytes follow the request",
                rest.len()
            ))),
            Err(e) => Err(malformed(e.to_string())),
        }
    }

    /// Verifies the request's self-signature unless this value already did: the DER
    /// cannot change after construction, so neither can the verdict.
    pub(crate) fn verify_once(&self, parsed: &X509CertificationRequest<'_>) -> Result<()> {
        if self.signature_verified.get().is_some() {
            return Ok(());
        }
        parsed
            .verify_signature()
            .map_err(|e| crate::csr_check::signature_error(parsed, e))?;
        // A concurrent caller may have set it first; either way it verified.
        let _ = self.signature_verified.set(());
        Ok(())
    }

    /// The request as a CA signs it, its signature verified (once).
    pub(crate) fn for_signing(&self) -> Result<SigningRequest> {
        let csr = self.parsed()?;
        self.verify_once(&csr)?;
        let info = &csr.certification_request_info;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(&info.subject)?;
        if let Some(extensions) = csr.requested_extensions() {
            for extension in extensions {
                if let ParsedExtension::SubjectAlternativeName(san) = extension {
                    for name in &san.general_names {
                        params.subject_alt_names.push(san_type(name)?);
                    }
                }
            }
        }
        let public_key = SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
            .map_err(|e| malformed(format!("its public key cannot be certified ({e})")))?;
        Ok(SigningRequest { params, public_key })
    }
}

fn distinguished_name(subject: &x509_parser::x509::X509Name<'_>) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    for rdn in subject.iter() {
        let mut attributes = rdn.iter();
        let (Some(attribute), None) = (attributes.next(), attributes.next()) else {
            return Err(malformed(
                "a subject RDN holds several attributes (or none); give each attribute its own RDN"
                    .to_string(),
            ));
        };
        let oid: Vec<u64> = attribute
            .attr_type()
            .iter()
            .ok_or_else(|| malformed("a subject attribute type is not an OID".to_string()))?
            .collect();
        dn.push(DnType::from_oid(&oid), dn_value(attribute)?);
    }
    Ok(dn)
}

/// The attribute's value in its own string type (so the certificate's subject encodes as
/// the request's did). UTF8String, PrintableString and IA5String are accepted.
fn dn_value(attribute: &AttributeTypeAndValue<'_>) -> Result<DnValue> {
    let value = attribute.attr_value();
    let text = std::str::from_utf8(value.data).map_err(|_| not_a_string(attribute))?;
    Ok(match value.header.tag() {
        Tag::Utf8String => DnValue::Utf8String(text.to_string()),
        Tag::PrintableString => {
            DnValue::PrintableString(text.try_into().map_err(|_| not_a_string(attribute))?)
        }
        Tag::Ia5String => DnValue::Ia5String(text.try_into().map_err(|_| not_a_string(attribute))?),
        _ => return Err(not_a_string(attribute)),
    })
}

fn not_a_string(attribute: &AttributeTypeAndValue<'_>) -> Error {
    malformed(format!(
        "subject attribute {} is not a UTF8String, PrintableString or IA5String",
        attribute.attr_type().to_id_string()
    ))
}

fn san_type(name: &GeneralName<'_>) -> Result<SanType> {
    let invalid = || {
        malformed(format!(
            "subject alternative name `{}` is not valid",
            crate::cert::general_name(name)
        ))
    };
    Ok(match name {
        GeneralName::DNSName(d) => SanType::DnsName((*d).try_into().map_err(|_| invalid())?),
        GeneralName::URI(u) => SanType::URI((*u).try_into().map_err(|_| invalid())?),
        GeneralName::RFC822Name(e) => SanType::Rfc822Name((*e).try_into().map_err(|_| invalid())?),
        GeneralName::IPAddress(octets) => {
            SanType::IpAddress(ip_address(octets).ok_or_else(invalid)?)
        }
        _ => {
            return Err(malformed(format!(
                "subject alternative name `{}` is of a kind meshtrust does not certify (DNS, URI, IP and email are)",
                crate::cert::general_name(name)
            )));
        }
    })
}

fn ip_address(octets: &[u8]) -> Option<std::net::IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Some(v4.into());
    }
    <[u8; 16]>::try_from(octets).ok().map(Into::into)
}

pub(crate) fn malformed(reason: String) -> Error {
    Error::InvalidParameter {
        field: "certificate signing request",
        reason: format!("the CSR is malformed ({reason}); send a DER or PEM PKCS#10 request"),
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
