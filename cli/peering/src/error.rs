//! The one error type of this crate.

use std::time::Duration;

use crate::names::{EASTWEST, EXPOSE_ISTIOD_ADDRESS, NETWORK_LABEL};

/// What can stop a peering step.
///
/// A message states what is wrong and names the cluster (its kubeconfig context) and the
/// object at fault. It never names command-line flags or subcommands: a caller with a
/// command line adds that advice when it reports the error (the `meshtrust` binary does).
/// Every message is complete on its own: no variant has a `source()` whose text the message
/// would repeat.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reaching a cluster, or a request to its API server, failed.
    #[error(transparent)]
    Kube(#[from] meshtrust_kube::Error),

    /// An error in one of several clusters: `context <context>: <error>`.
    #[error("context {context}: {error}")]
    Cluster {
        /// The kubeconfig context of the cluster.
        context: String,
        /// What went wrong there.
        error: Box<Error>,
    },

    /// istiod's namespace does not exist, so there is no istiod to peer.
    #[error("{context} has no namespace {namespace}: install istiod first")]
    NoIstioNamespace {
        /// The cluster.
        context: String,
        /// istiod's namespace, as configured.
        namespace: String,
    },

    /// No istiod Deployment was found, so the cluster ID the east-west gateway is labelled
    /// with cannot be read.
    #[error(
        "no istiod Deployment (label app=istiod) in {context}, and the east-west gateway is labelled with its cluster ID: install istiod first"
    )]
    NoIstiod {
        /// The cluster.
        context: String,
    },

    /// istiod runs with its default `CLUSTER_ID`, `Kubernetes`, which every cluster would
    /// share: never a usable peering identity.
    #[error(
        "istiod in {context} runs with the default CLUSTER_ID `Kubernetes`: every cluster needs its own — reinstall istiod with global.multiCluster.clusterName"
    )]
    DefaultClusterId {
        /// The cluster.
        context: String,
    },

    /// istiod's Deployment sets no `CLUSTER_ID`.
    #[error(
        "istiod in {context} sets no CLUSTER_ID — reinstall it with global.multiCluster.clusterName"
    )]
    NoClusterId {
        /// The cluster.
        context: String,
    },

    /// The east-west gateway needs a network, and none was given and istiod's namespace has
    /// no network label.
    #[error("{context}: istio-system has no {label} label", label = NETWORK_LABEL)]
    NoNetwork {
        /// The cluster.
        context: String,
    },

    /// A destination's network is known neither from its east-west gateway nor from its
    /// istiod namespace.
    #[error(
        "{context}: neither its east-west gateway nor istio-system has a {label} label",
        label = NETWORK_LABEL
    )]
    NoGatewayNetwork {
        /// The destination cluster.
        context: String,
    },

    /// A destination has no east-west gateway, so there is nothing to link to.
    #[error("{context} has no east-west gateway {namespace}/{name}", name = EASTWEST)]
    NoEastWestGateway {
        /// The destination cluster.
        context: String,
        /// Namespace the gateway was looked for in.
        namespace: String,
    },

    /// A destination's east-west gateway has no Service yet.
    #[error(
        "{context} has no Service for its east-west gateway yet (the gateway controller creates it); check `kubectl --context {context} -n {namespace} get gateway,svc`"
    )]
    NoEastWestService {
        /// The destination cluster.
        context: String,
        /// Namespace of the gateway.
        namespace: String,
    },

    /// A destination's east-west gateway has no address peers could dial yet.
    #[error(
        "{context}'s east-west gateway has no address yet (no load balancer IP or hostname, no {annotation} annotation)",
        annotation = EXPOSE_ISTIOD_ADDRESS
    )]
    NoAddress {
        /// The destination cluster.
        context: String,
    },

    /// Two clusters trust no common root, so their workloads could not authenticate each
    /// other.
    #[error(
        "{a} and {b} share no root CA, so their workloads could not authenticate each other: {a_trusts}; {b_trusts}"
    )]
    NoSharedRoot {
        /// One cluster.
        a: String,
        /// The other cluster.
        b: String,
        /// What `a` trusts, as a sentence (`a trusts AB:CD:…`).
        a_trusts: String,
        /// What `b` trusts, as a sentence.
        b_trusts: String,
    },

    /// Some clusters could not be read, so no link was written.
    #[error("nothing was linked: {}", list(errors, "; "))]
    LinkUnreadable {
        /// One [`Error::Cluster`] per cluster that could not be read.
        errors: Vec<Error>,
    },

    /// Some pairs cannot be linked (missing facts, or no shared root), so no link was
    /// written. Each reason appears once.
    #[error("nothing was linked:\n  - {}", list(refusals, "\n  - "))]
    LinkRefused {
        /// Why, one error per reason.
        refusals: Vec<Error>,
    },

    /// Some source clusters could not be written; the others were. Server-side applies are
    /// safe to repeat, so a rerun finishes the job.
    #[error(
        "not every peer gateway was written:\n  - {}\nwritten: {}; rerun once those clusters are healthy (writes are server-side applies, safe to repeat)",
        list(failed, "\n  - "),
        written_list(written)
    )]
    LinkIncomplete {
        /// One [`Error::Cluster`] per source cluster that failed.
        failed: Vec<Error>,
        /// The links written, as `from → to`.
        written: Vec<String>,
    },

    /// A server-side apply conflicts with fields another field manager (e.g. `istioctl`)
    /// owns; nothing was changed.
    #[error(
        "gateway {gateway} has fields owned by another manager ({message}); nothing was changed"
    )]
    FieldConflict {
        /// `namespace/name`.
        gateway: String,
        /// The API server's message.
        message: String,
    },

    /// The cluster does not serve the Gateway API.
    #[error(
        "the cluster does not serve gateway.networking.k8s.io/v1 Gateways ({message}); install the Gateway API CRDs first"
    )]
    NoGatewayApi {
        /// The API server's message.
        message: String,
    },

    /// A Gateway did not report `Programmed=True` in time.
    #[error(
        "gateway {namespace}/{name} was not programmed within {secs}s: {last}; check `kubectl -n {namespace} describe gateway {name}`",
        secs = timeout.as_secs()
    )]
    NotProgrammed {
        /// Namespace of the gateway.
        namespace: String,
        /// Name of the gateway.
        name: String,
        /// How long was waited.
        timeout: Duration,
        /// The last thing seen (its `Programmed` condition, or why it could not be read).
        last: String,
    },

    /// Objects could not be written as YAML.
    #[error("cannot write YAML: {message}")]
    Yaml {
        /// What the serializer said.
        message: String,
    },

    /// A bug in meshtrust: an object built without what it needs.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// This error, as one of several clusters' (`context <context>: …`).
    pub(crate) fn in_cluster(self, context: &str) -> Error {
        Error::Cluster {
            context: context.to_string(),
            error: Box::new(self),
        }
    }
}

fn written_list(written: &[String]) -> String {
    if written.is_empty() {
        "none".to_string()
    } else {
        written.join(", ")
    }
}

fn list(errors: &[Error], separator: &str) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(separator)
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
