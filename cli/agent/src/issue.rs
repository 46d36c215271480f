//! Carrying out an enrollment or a renewal, so that a kill at any point loses nothing:
//!
//! 1. the new key is made in memory and kept in the pending Secret (created, or replaced
//!    at the resourceVersion read) before anyone sees its CSR;
//! 2. the service signs the CSR (enrollment with the credential, or renewal proved with
//!    the current key); the answer is checked like every issuer's;
//! 3. `cacerts` is written by the delivery code `bootstrap` uses (a single create, or a
//!    replace at the resourceVersion read; a bundle meshtrust did not write is backed up
//!    first), after the bundle passed the same checks `meshtrust verify` makes;
//! 4. the pending Secret is deleted.
//!
//! A restart after 1 or 2 finds the pending key and asks again with the same key: the
//! service answers a retried enrollment or renewal with the certificate it already issued.
//! After 3, `cacerts` holds the pending key and only step 4 is left.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use meshtrust_ca::{
    BundleFiles, CaCerts, IntermediateParams, PrivateKey, VerifyOptions, is_byte_superset,
    verify_bundle,
};
use meshtrust_issuer::server::ServerIssuer;
use meshtrust_issuer::{IssueRequest, IssueResponse};
use meshtrust_kube::{Action, CACERTS, MANAGED_BY, Observed, ObservedSecret, cacerts_secret};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::config::{AgentConfig, PENDING};
use crate::error::{Error, Result};
use crate::held::{Bundle, Held, PENDING_FOR, Pending, Purpose};
use crate::observe::ClusterView;

/// What a carried-out issuance wrote.
#[derive(Debug)]
pub struct Issued {
    /// The new intermediate's serial.
    pub serial: String,
    /// Its notAfter.
    pub not_after: OffsetDateTime,
    /// The backup made of a `cacerts` meshtrust did not write.
    pub backup: Option<String>,
    /// What a person should know (from the service, and about istiod).
    pub notices: Vec<String>,
}

/// Everything an issuance needs from the agent.
pub struct Issuance<'a> {
    /// The cluster's API.
    pub client: &'a Client,
    /// The service.
    pub issuer: &'a ServerIssuer,
    /// The agent's settings.
    pub config: &'a AgentConfig,
    /// Now.
    pub now: OffsetDateTime,
}

impl Issuance<'_> {
    /// Enrolls (`renew` = `None`) or renews from `renew`, with the pending key if it was
    /// made for that, else a new one; writes `cacerts` over what `view` found.
    pub async fn run(&self, view: ClusterView, purpose: Purpose) -> Result<Issued> {
        let held = Held::read(view.cacerts.as_ref(), self.now);
        let pending = view.pending.as_ref().and_then(Pending::read);
        let key = match pending {
            Some(p) if p.purpose == purpose => p.key,
            _ => {
                let key = PrivateKey::generate(self.config.key_type)
                    .map_err(|e| Error::ca("generating the intermediate key", e))?;
                self.keep_pending(&key, &purpose, view.pending.as_ref())
                    .await?;
                key
            }
        };
        let answer = self.sign(&key, &purpose, held.bundle()).await?;
        let written = self.write(view, &held, answer, key).await?;
        self.drop_pending().await?;
        Ok(written)
    }

    async fn sign(
        &self,
        key: &PrivateKey,
        purpose: &Purpose,
        held: Option<&Bundle>,
    ) -> Result<IssueResponse> {
        let cluster = self.config.cluster.clone();
        let (params, _) = self
            .issuer
            .params(&IntermediateParams::new(cluster.clone()))
            .await?;
        let csr = params
            .csr(key)
            .map_err(|e| Error::ca("making the CSR", e))?;
        let request = IssueRequest::new(cluster, csr, params.profile(), self.now);
        match (purpose, held) {
            (Purpose::Renew { .. }, Some(current)) => {
                let answer = self
                    .issuer
                    .renew(&request, &current.certificate, &current.key)
                    .await?;
                Ok(answer)
            }
            _ => {
                let credential = self.credential()?;
                Ok(self.issuer.enroll_with(&request, &credential).await?)
            }
        }
    }

    /// The enrollment credential, read from its file now.
    fn credential(&self) -> Result<Zeroizing<String>> {
        let Some(path) = &self.config.credential_file else {
            return Err(Error::NoCredential {
                cluster: self.config.cluster.to_string(),
            });
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            reason: format!(
                "{}: cannot read the enrollment credential: {e}",
                path.display()
            ),
        })?;
        let text = Zeroizing::new(text);
        let token = Zeroizing::new(text.trim().to_string());
        if token.is_empty() {
            return Err(Error::Config {
                reason: format!("{}: the enrollment credential is empty", path.display()),
            });
        }
        Ok(token)
    }

    async fn write(
        &self,
        view: ClusterView,
        held: &Held,
        answer: IssueResponse,
        key: PrivateKey,
    ) -> Result<Issued> {
        let format = held.bundle().map(|b| b.format).unwrap_or_default();
        let serial = meshtrust_issuer::server::wire::serial(&answer.certificate);
        let not_after = answer.certificate.not_after();
        let bundle = CaCerts::new(answer.certificate, key, answer.chain, answer.trust_bundle);
        // The service's PEM is canonical (one block per root, 64 columns), so the trust
        // file written is byte for byte the one it answered with (a rotation's byte rule).
        let files = bundle.bundle_files(format);
        let backup = view
            .cacerts
            .as_ref()
            .is_some_and(|old| !old.is_managed() || held.bundle().is_none());
        let applied = self
            .apply(view, &files, "the agent's new intermediate", backup)
            .await?;
        let mut notices = answer.notices;
        notices.extend(applied.warnings);
        Ok(Issued {
            serial,
            not_after,
            backup: applied.backup,
            notices,
        })
    }

    /// Writes `trust_pem` as `cacerts`' trust file, byte for byte, keeping the intermediate,
    /// its key and its chain (a root rotation's phase 1 or 3). The new file must byte-contain
    /// the old one or be contained in it, as istiod reloads only such a change.
    pub async fn update_trust(&self, view: ClusterView, trust_pem: &str) -> Result<Issued> {
        let ns = self.config.namespace.as_str();
        let held = Held::read(view.cacerts.as_ref(), self.now);
        let Some(bundle) = held.bundle() else {
            return Err(Error::Config {
                reason: format!(
                    "{ns}/{CACERTS} is no longer usable; the trust file was not changed"
                ),
            });
        };
        if !is_byte_superset(trust_pem.as_bytes(), bundle.trust_pem()) {
            return Err(Error::Config {
                reason: format!(
                    "the service's trust file neither contains nor is contained in {ns}/{CACERTS}'s {}: istiod would not reload it; {ns}/{CACERTS} was left as it was",
                    bundle.format.trust_file()
                ),
            });
        }
        let mut files = bundle.files.clone();
        files.insert(bundle.format.trust_file(), trust_pem.as_bytes().to_vec());
        let (serial, not_after) = (bundle.serial(), bundle.certificate.not_after());
        let applied = self
            .apply(view, &files, "the root rotation's new trust file", false)
            .await?;
        Ok(Issued {
            serial,
            not_after,
            backup: applied.backup,
            notices: applied.warnings,
        })
    }

    /// Writes `files` as `cacerts` (a create, or a replace at the resourceVersion `view`
    /// read; `backup` first), once they pass the checks `meshtrust verify` makes.
    async fn apply(
        &self,
        view: ClusterView,
        files: &BundleFiles,
        reason: &str,
        backup: bool,
    ) -> Result<meshtrust_kube::Applied> {
        let ns = self.config.namespace.as_str();
        let report = verify_bundle(files, &VerifyOptions::at(self.now));
        if let Some(problem) = report
            .findings
            .iter()
            .find(|f| f.severity == meshtrust_ca::Severity::Error)
        {
            return Err(Error::Config {
                reason: format!(
                    "the service's answer makes a bundle istiod would refuse ({}); {ns}/{CACERTS} was left as it was",
                    problem.message
                ),
            });
        }
        let action = match &view.cacerts {
            None => Action::Create,
            Some(_) => Action::Replace {
                reason: reason.to_string(),
                backup,
            },
        };
        let observed = Observed {
            secret: view.cacerts,
            namespace_exists: true,
            network: None,
            istiod_running: view.istiod.ready,
        };
        let secret = cacerts_secret(ns, files, &report);
        let context = self.config.cluster.to_string();
        Ok(meshtrust_kube::write(
            self.client,
            &context,
            ns,
            &observed,
            &action,
            Some(secret),
            self.now,
        )
        .await?)
    }

    /// Keeps `key` in the pending Secret: created, or replaced at the resourceVersion read
    /// (a stale one from before: its key was never used).
    async fn keep_pending(
        &self,
        key: &PrivateKey,
        purpose: &Purpose,
        old: Option<&ObservedSecret>,
    ) -> Result<()> {
        let ns = self.config.namespace.as_str();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let mut secret = Secret {
            metadata: ObjectMeta {
                name: Some(PENDING.to_string()),
                namespace: Some(ns.to_string()),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_string(),
                    MANAGED_BY.1.to_string(),
                )])),
                annotations: Some(BTreeMap::from([(
                    PENDING_FOR.to_string(),
                    purpose.annotation(),
                )])),
                resource_version: old.and_then(ObservedSecret::resource_version),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_string()),
            data: Some(BTreeMap::from([(
                "ca-key.pem".to_string(),
                ByteString(key.to_pem().as_bytes().to_vec()),
            )])),
            ..Secret::default()
        };
        let written = match old {
            None => secrets.create(&PostParams::default(), &secret).await,
            Some(_) => {
                secrets
                    .replace(PENDING, &PostParams::default(), &secret)
                    .await
            }
        };
        meshtrust_kube::scrub(&mut secret);
        let mut written = written.map_err(|e| {
            meshtrust_kube::Error::api(format!("cannot keep the new key in {ns}/{PENDING}"), e)
        })?;
        meshtrust_kube::scrub(&mut written);
        Ok(())
    }

    /// Deletes the pending Secret (gone already is fine).
    pub async fn drop_pending(&self) -> Result<()> {
        let ns = self.config.namespace.as_str();
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        match secrets.delete(PENDING, &DeleteParams::default()).await {
            Ok(deleted) => {
                // The API server may answer with the object, key and all.
                if let Some(mut secret) = deleted.left() {
                    meshtrust_kube::scrub(&mut secret);
                }
                Ok(())
            }
            Err(e) if meshtrust_kube::is_not_found(&e) => Ok(()),
            Err(e) => {
                Err(meshtrust_kube::Error::api(format!("cannot delete {ns}/{PENDING}"), e).into())
            }
        }
    }
}
