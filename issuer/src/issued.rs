//! What a batch produces: the clusters' bundles, issued and verified, not yet written. Plain
//! data, kept apart from the code that makes it so that an error can carry a partial batch.

use meshtrust_ca::{CaCerts, ClusterName};

/// One cluster's bundle, issued and verified, not yet written anywhere.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedBundle {
    /// The cluster.
    pub cluster: ClusterName,
    /// Its intermediate, key, chain and trusted roots.
    pub bundle: CaCerts,
}

/// What a batch produced.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Batch {
    /// One bundle per cluster, in the order the clusters were given.
    pub bundles: Vec<IssuedBundle>,
    /// What the user should know (e.g. a validity shortened to the root's expiry).
    pub notices: Vec<String>,
}
