//! The controller's signers: the local root kept in a Secret (created when absent), or AWS
//! Private CA; and, during a root rotation, the new root next to the old one.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use meshtrust_ca::{KeyType, RootCa, RootParams, TrustBundle};
use meshtrust_issuer::aws_pca::{AwsOptions, RetryPolicy, SdkPca};
use meshtrust_issuer::{AwsPcaIssuer, Issuer, LocalIssuer};
use time::OffsetDateTime;

use super::crd::{MeshTrustSpec, ROOT_CERT, ROOT_KEY, SecretRef, SelectedIssuer};
use crate::cluster::secret::MANAGED_BY;
use crate::cluster::{is_conflict, is_not_found};

/// Who signs, for one reconcile.
pub struct Signers {
    /// The issuer of the spec.
    pub issuer: Arc<dyn Issuer>,
    /// The roots intermediates from `issuer` chain to.
    pub roots: TrustBundle,
    /// During a root rotation: the new root's issuer.
    pub rotation: Option<Rotation>,
    /// What the user should know (e.g. a root was generated).
    pub notices: Vec<String>,
}

/// The two roots of a rotation.
pub struct Rotation {
    /// The root being retired (the spec's issuer).
    pub old: Arc<LocalIssuer>,
    /// The root being introduced.
    pub new: Arc<LocalIssuer>,
}

/// Reads a root from a Secret; with `generate`, creates the Secret with a new root when it
/// does not exist. Returns the root and whether it was created.
pub async fn root_from_secret(
    client: &Client,
    r: &SecretRef,
    generate: Option<KeyType>,
    now: OffsetDateTime,
) -> Result<(RootCa, bool)> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &r.namespace);
    let secret = match api.get(&r.name).await {
        Ok(s) => Some(s),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read root Secret {r}")),
    };
    let Some(secret) = secret else {
        let Some(key_type) = generate else {
            bail!(
                "root Secret {r} does not exist; create it with the new root's root-cert.pem and root-key.pem (`kubectl -n {} create secret generic {} --from-file=DIR/root-cert.pem --from-file=DIR/root-key.pem`)",
                r.namespace,
                r.name
            );
        };
        let mut params = RootParams::default();
        params.key_type = key_type;
        let root = params.self_signed(now)?;
        let key_pem = root.key().to_pem();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(r.name.clone()),
                namespace: Some(r.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_string(),
                    MANAGED_BY.1.to_string(),
                )])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(BTreeMap::from([
                (
                    ROOT_CERT.to_string(),
                    ByteString(root.certificate().to_pem().into_bytes()),
                ),
                (
                    ROOT_KEY.to_string(),
                    ByteString(key_pem.as_bytes().to_vec()),
                ),
            ])),
            ..Secret::default()
        };
        return match api.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok((root, true)),
            // Another writer won: use its root, never ours.
            Err(e) if is_conflict(&e) => Box::pin(root_from_secret(client, r, None, now)).await,
            Err(e) => Err(e).with_context(|| format!("cannot create root Secret {r}")),
        };
    };
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|b| b.0.as_slice())
            .with_context(|| format!("root Secret {r} has no key `{k}`"))
    };
    let cert = get(ROOT_CERT)?;
    let key = zeroize::Zeroizing::new(get(ROOT_KEY)?.to_vec());
    let root = RootCa::from_pem(cert, &key, now)
        .with_context(|| format!("root Secret {r} does not hold a usable root"))?;
    Ok((root, false))
}

/// The signers a spec asks for.
pub async fn signers(
    client: &Client,
    spec: &MeshTrustSpec,
    now: OffsetDateTime,
) -> Result<Signers> {
    let mut notices = Vec::new();
    match spec.issuer.selected()? {
        SelectedIssuer::Local(l) => {
            let (root, created) =
                root_from_secret(client, &l.secret_ref, Some(l.key_type()?), now).await?;
            if created {
                notices.push(format!(
                    "generated a new root in Secret {} ({})",
                    l.secret_ref,
                    root.certificate().fingerprint()
                ));
            }
            let old = Arc::new(LocalIssuer::named(
                root,
                format!("root in Secret {}", l.secret_ref),
            ));
            let rotation = match &spec.root_rotation {
                None => None,
                Some(rot) if rot.new_root_secret_ref == l.secret_ref => None,
                Some(rot) => {
                    let (new, _) =
                        root_from_secret(client, &rot.new_root_secret_ref, None, now).await?;
                    Some(Rotation {
                        old: Arc::clone(&old),
                        new: Arc::new(LocalIssuer::named(
                            new,
                            format!("new root in Secret {}", rot.new_root_secret_ref),
                        )),
                    })
                }
            };
            Ok(Signers {
                roots: old.root().trust_bundle(),
                issuer: old,
                rotation,
                notices,
            })
        }
        SelectedIssuer::AwsPca(a) => {
            if spec.root_rotation.is_some() {
                bail!(
                    "spec.rootRotation needs a local issuer: rotating to a new AWS Private CA is a manual procedure, with the controller stopped (docs/rotation.md, \"AWS Private CA\")"
                );
            }
            let api = SdkPca::connect(&AwsOptions::new(
                a.resolved_region().map(str::to_string),
                None,
                a.endpoint_url.clone(),
            ))
            .await?;
            let issuer: Arc<dyn Issuer> = Arc::new(AwsPcaIssuer::new(
                Arc::new(api),
                &a.arn,
                RetryPolicy::default(),
            ));
            let roots = issuer.trust_bundle().await?;
            Ok(Signers {
                issuer,
                roots,
                rotation: None,
                notices,
            })
        }
    }
}
