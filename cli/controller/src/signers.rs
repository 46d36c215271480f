//! The controller's signers: the local root kept in a Secret (created when absent), or AWS
//! Private CA; and, during a root rotation, the new root next to the old one. Built through
//! the one issuer factory ([`meshtrust_issuer::connect`]) once per MeshTrust generation and
//! kept in a [`SignerCache`], so a round neither reconnects to AWS nor refetches the trust
//! bundle.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::PostParams;
use kube::{Api, Client};
use meshtrust_ca::{Certificate, KeyType, RootCa, RootParams, TrustBundle};
use meshtrust_issuer::aws_pca::AwsOptions;
use meshtrust_issuer::{AwsPcaConfig, Clock, Issuer, IssuerConfig, LocalIssuer};
use meshtrust_kube::{MANAGED_BY, is_conflict, is_not_found, scrub};
use time::OffsetDateTime;

use crate::crd::{
    AwsPcaIssuerSpec, LocalIssuerSpec, MeshTrust, MeshTrustSpec, ROOT_CERT, ROOT_KEY,
    RotationTarget, SecretRef, SelectedIssuer,
};
use crate::error::{Error, Result};

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

/// The two issuers of a rotation, and the one root each signs under.
pub struct Rotation {
    /// The issuer being retired (the spec's issuer).
    pub old: Arc<dyn Issuer>,
    /// The root it signs under.
    pub old_root: Certificate,
    /// The issuer being introduced (`spec.rootRotation`).
    pub new: Arc<dyn Issuer>,
    /// The root it signs under.
    pub new_root: Certificate,
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
    match api.get(&r.name).await {
        Ok(secret) => Ok((read_root(secret, r, now)?, false)),
        Err(e) if is_not_found(&e) => match generate {
            Some(key_type) => create_root(client, &api, r, key_type, now).await,
            None => Err(Error::Root {
                reason: format!(
                    "root Secret {r} does not exist; create it with the new root's root-cert.pem and root-key.pem (`kubectl -n {} create secret generic {} --from-file=DIR/root-cert.pem --from-file=DIR/root-key.pem`)",
                    r.namespace, r.name
                ),
            }),
        },
        Err(e) => Err(meshtrust_kube::Error::api(format!("cannot read root Secret {r}"), e).into()),
    }
}

/// Generates a root and creates the Secret `r` with it; when another writer created the
/// Secret first, its root is used, never ours.
async fn create_root(
    client: &Client,
    api: &Api<Secret>,
    r: &SecretRef,
    key_type: KeyType,
    now: OffsetDateTime,
) -> Result<(RootCa, bool)> {
    let mut params = RootParams::default();
    params.key_type = key_type;
    let root = params.self_signed(now).map_err(|e| Error::Root {
        reason: format!("cannot generate a root for Secret {r}: {e}"),
    })?;
    let mut secret = root_secret(
        r,
        root.certificate().to_pem().as_bytes(),
        root.key().to_pem().as_bytes(),
    );
    let created = api.create(&PostParams::default(), &secret).await;
    scrub(&mut secret);
    match created {
        Ok(mut answer) => {
            scrub(&mut answer);
            Ok((root, true))
        }
        Err(e) if is_conflict(&e) => Box::pin(root_from_secret(client, r, None, now)).await,
        Err(e) => {
            Err(meshtrust_kube::Error::api(format!("cannot create root Secret {r}"), e).into())
        }
    }
}

/// The Secret `r` holding a root's `root-cert.pem` and `root-key.pem` (PEM bytes), marked
/// as meshtrust's: the layout the local issuer reads, for the root the controller generates
/// and for one handed over by `meshtrust rotate start`. It holds the key: scrub it
/// ([`meshtrust_kube::scrub`]) once written.
pub fn root_secret(r: &SecretRef, cert_pem: &[u8], key_pem: &[u8]) -> Secret {
    Secret {
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
            (ROOT_CERT.to_string(), ByteString(cert_pem.to_vec())),
            (ROOT_KEY.to_string(), ByteString(key_pem.to_vec())),
        ])),
        ..Secret::default()
    }
}

/// The root the Secret `r` holds, checked at `now`.
fn read_root(secret: Secret, r: &SecretRef, now: OffsetDateTime) -> Result<RootCa> {
    let data = secret.data.unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|b| b.0.as_slice())
            .ok_or_else(|| Error::Root {
                reason: format!("root Secret {r} has no key `{k}`"),
            })
    };
    let cert = get(ROOT_CERT)?;
    let key = zeroize::Zeroizing::new(get(ROOT_KEY)?.to_vec());
    RootCa::from_pem(cert, &key, now).map_err(|e| Error::Root {
        reason: format!("root Secret {r} does not hold a usable root: {e}"),
    })
}

/// The signers a spec asks for: its issuer and, during a rotation, the new one.
pub async fn signers(client: &Client, spec: &MeshTrustSpec, clock: &Clock) -> Result<Signers> {
    let mut signers = match spec.issuer.selected()? {
        SelectedIssuer::Local(l) => local_signers(client, l, clock.now()).await?,
        SelectedIssuer::AwsPca(a) => aws_signers(a, clock).await?,
    };
    let target = match &spec.root_rotation {
        Some(r) => r.target()?,
        None => return Ok(signers),
    };
    if target.is(&spec.issuer) {
        return Ok(signers);
    }
    let new = match target {
        RotationTarget::Secret(r) => {
            let (root, _) = root_from_secret(client, r, None, clock.now()).await?;
            let issuer = LocalIssuer::named(root, format!("new root in Secret {r}"));
            let roots = issuer.root().trust_bundle();
            (Arc::new(issuer) as Arc<dyn Issuer>, roots)
        }
        RotationTarget::AwsPca(a) => {
            let built = aws_signers(a, clock).await?;
            (built.issuer, built.roots)
        }
    };
    signers.rotation = Some(Rotation {
        old_root: only_root(&signers.roots, &*signers.issuer, "spec.issuer")?,
        old: Arc::clone(&signers.issuer),
        new_root: only_root(&new.1, &*new.0, "spec.rootRotation")?,
        new: new.0,
    });
    Ok(signers)
}

/// The one root `issuer` signs under: a rotation goes from one root to one other.
fn only_root(roots: &TrustBundle, issuer: &dyn Issuer, field: &str) -> Result<Certificate> {
    match roots.roots() {
        [root] => Ok(root.clone()),
        all => Err(crate::crd::FieldError::new(
            field,
            format!(
                "{} signs under {} roots; a root rotation goes from one root to one other: name a CA whose chain ends in one root",
                issuer.describe(),
                all.len()
            ),
        )
        .into()),
    }
}

/// The root in a Secret (generated when absent).
async fn local_signers(
    client: &Client,
    l: &LocalIssuerSpec,
    now: OffsetDateTime,
) -> Result<Signers> {
    let mut notices = Vec::new();
    let (root, created) = root_from_secret(client, &l.secret_ref, Some(l.key_type()?), now).await?;
    if created {
        notices.push(format!(
            "generated a new root in Secret {} ({})",
            l.secret_ref,
            root.certificate().fingerprint()
        ));
    }
    let issuer = LocalIssuer::named(root, format!("root in Secret {}", l.secret_ref));
    Ok(Signers {
        roots: issuer.root().trust_bundle(),
        issuer: Arc::new(issuer),
        rotation: None,
        notices,
    })
}

/// AWS Private CA, built by the one issuer factory (its errors name the ARN); its roots are
/// read once.
async fn aws_signers(a: &AwsPcaIssuerSpec, clock: &Clock) -> Result<Signers> {
    let config = IssuerConfig::AwsPca(AwsPcaConfig::new(
        &a.arn,
        AwsOptions::new(
            a.resolved_region().map(str::to_string),
            None,
            a.endpoint_url.clone(),
        ),
    ));
    let issuer = meshtrust_issuer::connect(config, clock).await?;
    let roots = issuer.trust_bundle().await?;
    Ok(Signers {
        issuer,
        roots,
        rotation: None,
        notices: Vec::new(),
    })
}

/// Signers built per MeshTrust generation: a round reuses them until the spec changes
/// (a new generation) or building them failed (nothing is kept then).
#[derive(Default)]
pub struct SignerCache {
    entries: Mutex<HashMap<String, Cached>>,
}

/// Signers and the generation they were built for.
type Cached = (Option<i64>, Arc<Signers>);

impl SignerCache {
    /// The signers of `mt`'s current generation: cached, or built now. The second value is
    /// true when they were built by this call (their notices are news).
    pub async fn get(
        &self,
        client: &Client,
        mt: &MeshTrust,
        clock: &Clock,
    ) -> Result<(Arc<Signers>, bool)> {
        let key = mt.uid().unwrap_or_else(|| mt.name_any());
        let generation = mt.metadata.generation;
        if let Some((g, s)) = self.lock().get(&key)
            && *g == generation
        {
            return Ok((Arc::clone(s), false));
        }
        let built = Arc::new(signers(client, &mt.spec, clock).await?);
        self.lock().insert(key, (generation, Arc::clone(&built)));
        Ok((built, true))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
