"""A faithful AWS Private CA emulator for meshtrust's tests: moto, patched where it differs
from AWS in ways that matter to an issuer of Istio intermediates.

Test-only. Run:  python faithful_moto.py HOST PORT

What stock moto 5.x does, and what this wrapper changes:

| AWS behaviour                                   | stock moto                     | here                        |
|-------------------------------------------------|--------------------------------|-----------------------------|
| CA key follows KeyAlgorithm (RSA_*, EC_*)       | always RSA-2048                | follows KeyAlgorithm        |
| SubordinateCACertificate_PathLen{0..3}/V1       | no basicConstraints at all     | CA:TRUE pathlen N, critical; keyUsage keyCertSign, cRLSign, digitalSignature, critical; SKI; AKI |
| Validity (DAYS, MONTHS, YEARS, END_DATE)        | ignored, always 365 days       | honoured; beyond the CA's own expiry is a ValidationException |
| ValidityNotBefore (ABSOLUTE)                    | ignored, always "now"          | honoured; before the CA's own start is a ValidationException |
| SigningAlgorithm                                | ignored, always SHA-512        | honoured, must match the key |
| IdempotencyToken                                | ignored (mints a new cert)     | same token + same CSR → same certificate ARN |
| IssueCertificate on a CA that is not ACTIVE     | works                          | InvalidStateException, except the CA's own root certificate |
| New CA UsageMode                                | SHORT_LIVED_CERTIFICATE        | GENERAL_PURPOSE unless asked |

Everything else is moto's. The point is that meshtrust's end-to-end tests see certificates
with the content AWS would return, signed by the CA's own key, over the real HTTP API.
"""

import base64
import datetime
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from moto.acmpca import models, responses
from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow
from moto.moto_api._internal import mock_random

ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"
SUBORDINATE = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen{}/V1"

KEYS = {
    "RSA_2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "RSA_3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "RSA_4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
    "EC_prime256v1": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EC_secp384r1": lambda: ec.generate_private_key(ec.SECP384R1()),
}

SIGNING = {
    "SHA256WITHRSA": ("RSA", hashes.SHA256),
    "SHA384WITHRSA": ("RSA", hashes.SHA384),
    "SHA512WITHRSA": ("RSA", hashes.SHA512),
    "SHA256WITHECDSA": ("EC", hashes.SHA256),
    "SHA384WITHECDSA": ("EC", hashes.SHA384),
    "SHA512WITHECDSA": ("EC", hashes.SHA512),
}


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, message):
        super().__init__("ValidationException", message)


class InvalidStateException(JsonRESTError):
    code = 400

    def __init__(self, message):
        super().__init__("InvalidStateException", message)


class MalformedCSRException(JsonRESTError):
    code = 400

    def __init__(self, message):
        super().__init__("MalformedCSRException", message)


_original_init = models.CertificateAuthority.__init__


def _init(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    algorithm = self.certificate_authority_configuration.get("KeyAlgorithm", "RSA_2048")
    if algorithm not in KEYS:
        raise ValidationException(f"KeyAlgorithm {algorithm} is not supported by this emulator")
    self.private_bytes = KEYS[algorithm]().private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(self.password),
    )
    self.usage_mode = "GENERAL_PURPOSE"
    self.issued_by_token = {}


def _not_after(self, validity):
    now = utcnow()
    if not validity:
        return now + datetime.timedelta(days=365)
    kind, value = validity.get("Type"), int(validity.get("Value"))
    if kind == "DAYS":
        return now + datetime.timedelta(days=value)
    if kind == "MONTHS":
        return now + datetime.timedelta(days=30 * value)
    if kind == "YEARS":
        return now + datetime.timedelta(days=365 * value)
    if kind == "END_DATE":
        return datetime.datetime.strptime(str(value), "%Y%m%d%H%M%S")
    raise ValidationException(f"Validity type {kind} is not supported by this emulator")


def _extensions(self, csr, template_arn):
    ski = x509.SubjectKeyIdentifier.from_public_key(csr.public_key())
    ca_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )
    if template_arn == ROOT_TEMPLATE:
        return [(x509.BasicConstraints(ca=True, path_length=None), True), (ca_usage, True), (ski, False)]
    for n in range(4):
        if template_arn == SUBORDINATE.format(n):
            return [
                (x509.BasicConstraints(ca=True, path_length=n), True),
                (ca_usage, True),
                (ski, False),
                (x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False),
            ]
    # Anything else (end-entity templates): moto's own behaviour.
    return _original_extensions(self, csr, template_arn)


_original_extensions = models.CertificateAuthority._x509_extensions


def _not_before(self, validity_not_before):
    if not validity_not_before:
        return utcnow()
    if validity_not_before.get("Type") != "ABSOLUTE":
        raise ValidationException("ValidityNotBefore must be of type ABSOLUTE in this emulator")
    start = datetime.datetime.fromtimestamp(int(validity_not_before["Value"]), datetime.timezone.utc).replace(tzinfo=None)
    ca_cert = self.certificate
    if ca_cert is not None and start < ca_cert.not_valid_before_utc.replace(tzinfo=None):
        raise ValidationException("ValidityNotBefore is before the CA certificate's validity starts")
    return start


def _issue(self, csr_bytes, template_arn, validity=None, signing_algorithm=None, token=None, validity_not_before=None):
    key = (token, csr_bytes)
    if token and key in self.issued_by_token:
        return self.issued_by_token[key]
    if self.status != "ACTIVE" and template_arn != ROOT_TEMPLATE:
        raise InvalidStateException(
            f"The certificate authority {self.arn} is in the {self.status} state and cannot issue certificates"
        )
    try:
        csr = x509.load_pem_x509_csr(base64.b64decode(csr_bytes))
    except ValueError as e:
        raise MalformedCSRException(f"The certificate signing request is invalid: {e}")
    if not csr.is_signature_valid:
        raise MalformedCSRException("The certificate signing request signature is invalid")
    key_kind = "EC" if isinstance(self.key, ec.EllipticCurvePrivateKey) else "RSA"
    kind, digest = SIGNING.get(signing_algorithm or "", (key_kind, hashes.SHA256))
    if kind != key_kind:
        raise ValidationException(f"SigningAlgorithm {signing_algorithm} does not match the CA's {key_kind} key")
    not_before = _not_before(self, validity_not_before) if template_arn != ROOT_TEMPLATE else utcnow()
    not_after = _not_after(self, validity)
    ca_cert = self.certificate
    if ca_cert is not None and template_arn != ROOT_TEMPLATE and not_after > ca_cert.not_valid_after_utc.replace(tzinfo=None):
        raise ValidationException("The certificate validity period exceeds the validity period of the CA certificate")
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject if ca_cert is not None and template_arn != ROOT_TEMPLATE else self.issuer)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in _extensions(self, csr, template_arn):
        builder = builder.add_extension(extension, critical)
    try:
        san = csr.extensions.get_extension_for_oid(x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        builder = builder.add_extension(san.value, san.critical)
    except (x509.ExtensionNotFound, ValueError):
        pass
    cert = builder.sign(self.key, digest()).public_bytes(serialization.Encoding.PEM)
    cert_id = str(mock_random.uuid4()).replace("-", "")
    arn = f"{self.arn}/certificate/{cert_id}"
    self.issued_certificates[arn] = cert
    if template_arn != ROOT_TEMPLATE:
        chain = self.certificate_bytes
        if self.certificate_chain:
            chain = chain.rstrip(b"\n") + b"\n" + self.certificate_chain
        self.issued_certificates_certificate_chains[arn] = chain
    if token:
        self.issued_by_token[key] = arn
    return arn


def _issue_response(self):
    params = json.loads(self.body)
    ca = self.acmpca_backend.describe_certificate_authority(params.get("CertificateAuthorityArn"))
    arn = ca.issue_certificate(
        params.get("Csr").encode("utf-8"),
        params.get("TemplateArn"),
        validity=params.get("Validity"),
        signing_algorithm=params.get("SigningAlgorithm"),
        token=params.get("IdempotencyToken"),
        validity_not_before=params.get("ValidityNotBefore"),
    )
    return json.dumps({"CertificateArn": arn})


models.CertificateAuthority.__init__ = _init
models.CertificateAuthority._x509_extensions = _extensions
models.CertificateAuthority.issue_certificate = _issue
responses.ACMPCAResponse.issue_certificate = _issue_response

if __name__ == "__main__":
    from moto.server import main

    host, port = sys.argv[1], sys.argv[2]
    main(["-H", host, "-p", port])
