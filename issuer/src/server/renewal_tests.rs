use meshtrust_ca::{IntermediateParams, RootParams};
use time::macros::datetime;

use super::*;

#[test]
fn a_signed_renewal_proves_possession_of_the_current_key() {
    let now = datetime!(2026-03-04 05:06:07.5 +02:00);
    let root = RootParams::default().self_signed(now).unwrap();
    let params = IntermediateParams::new(ClusterName::new("east").unwrap());
    let current_key = PrivateKey::generate(params.key_type).unwrap();
    let current = root
        .sign_intermediate(&params.csr(&current_key).unwrap(), &params.profile(), now)
        .unwrap()
        .certificate;
    let new_key = PrivateKey::generate(params.key_type).unwrap();
    let csr = params.csr(&new_key).unwrap();

    let request = RenewRequest::signed(&params.cluster, &csr, &current, &current_key, now).unwrap();
    assert_eq!(request.signed_at, "2026-03-04T03:06:07Z");
    assert_eq!(request.csr, csr.to_pem());
    assert_eq!(request.certificate, current.to_pem());
    assert!(
        !request.signature.contains(['=', '+', '/']),
        "{}",
        request.signature
    );

    // What the service does: rebuild the message from what it received, check the signature.
    let signature = URL_SAFE_NO_PAD.decode(&request.signature).unwrap();
    let message = possession_message(RENEW_PROOF_CONTEXT, &params.cluster, now, &csr);
    current.verify_message(&message, &signature).unwrap();
    let other = possession_message(
        RENEW_PROOF_CONTEXT,
        &ClusterName::new("west").unwrap(),
        now,
        &csr,
    );
    assert!(current.verify_message(&other, &signature).is_err());
}
