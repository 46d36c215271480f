//! The root Secrets of a rotation: the new root's, created as docs/rotation.md's
//! `kubectl create secret generic NAME --from-file=root-cert.pem --from-file=root-key.pem`
//! would (plus meshtrust's managed-by label), never overwriting another without `--force`;
//! and the current root's certificate, read for comparison.

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use meshtrust_ca::Certificate;
use meshtrust_controller::crd::{ROOT_CERT, ROOT_KEY, SecretRef};
use meshtrust_kube::{api_message, is_conflict, is_not_found, scrub};

/// The new root's files, byte for byte as read (as `kubectl create secret --from-file` puts
/// them).
pub struct RootFiles {
    /// `root-cert.pem`.
    pub cert: Vec<u8>,
    /// `root-key.pem`.
    pub key: zeroize::Zeroizing<Vec<u8>>,
}

/// Creates the Secret `target` holding `root`. An existing Secret that holds exactly this
/// root is kept (`unchanged`); one holding anything else is refused, or replaced with
/// `force` (at the resourceVersion read, so a concurrent change is not overwritten).
/// Returns `created`, `unchanged` or `replaced`.
pub async fn ensure(
    client: &Client,
    target: &SecretRef,
    root: &RootFiles,
    force: bool,
) -> Result<&'static str> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &target.namespace);
    let mut wanted = meshtrust_controller::root_secret(target, &root.cert, &root.key);
    let result = create_or_replace(&api, target, &mut wanted, force).await;
    scrub(&mut wanted);
    result
}

async fn create_or_replace(
    api: &Api<Secret>,
    target: &SecretRef,
    wanted: &mut Secret,
    force: bool,
) -> Result<&'static str> {
    match api.create(&PostParams::default(), wanted).await {
        Ok(mut s) => {
            scrub(&mut s);
            return Ok("created");
        }
        Err(e) if is_conflict(&e) => {}
        Err(e) if is_not_found(&e) => bail!(
            "cannot create Secret {target}: namespace {} does not exist; pass the controller's namespace with --namespace",
            target.namespace
        ),
        Err(e) => bail!("cannot create Secret {target}: {}", api_message(&e)),
    }
    let mut existing = match api.get(&target.name).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.code == 403 => bail!(
            "Secret {target} already exists, and this identity may not read it to see what it holds (403 Forbidden); nothing was changed: pick another name with --secret"
        ),
        Err(e) => bail!("cannot read Secret {target}: {}", api_message(&e)),
    };
    let same = existing.data == wanted.data;
    let version = existing.metadata.resource_version.take();
    scrub(&mut existing);
    if same {
        return Ok("unchanged");
    }
    if !force {
        bail!(
            "Secret {target} already exists and does not hold this root (keys {ROOT_CERT} and {ROOT_KEY}); refusing to overwrite it: pick another name with --secret, or pass --force to replace it"
        );
    }
    wanted.metadata.resource_version = version;
    match api
        .replace(&target.name, &PostParams::default(), wanted)
        .await
    {
        Ok(mut s) => {
            scrub(&mut s);
            Ok("replaced")
        }
        Err(e) => bail!("cannot replace Secret {target}: {}", api_message(&e)),
    }
}

/// The SHA-256 fingerprint of the root in Secret `r`: `None` when it cannot be read for
/// lack of rights; an error when it does not exist or holds no certificate.
pub async fn root_fingerprint(client: &Client, r: &SecretRef) -> Result<Option<String>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &r.namespace);
    let mut secret = match api.get(&r.name).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.code == 403 => return Ok(None),
        Err(e) if is_not_found(&e) => bail!(
            "the current root's Secret {r} (spec.issuer.local.secretRef) does not exist yet: let the controller generate it and reach Ready (`meshtrust status`) before rotating"
        ),
        Err(e) => bail!("cannot read Secret {r}: {}", api_message(&e)),
    };
    let cert = secret
        .data
        .as_ref()
        .and_then(|d| d.get(ROOT_CERT))
        .map(|b| Certificate::all_from_pem(ROOT_CERT, &b.0));
    scrub(&mut secret);
    match cert {
        Some(Ok(certs)) if !certs.is_empty() => Ok(Some(certs[0].fingerprint())),
        _ => bail!("the current root's Secret {r} holds no readable {ROOT_CERT}"),
    }
}
