//! When a `MeshTrust` is looked at again: meshtrust's own answer of a reconcile, converted
//! into kube-runtime's `Action` only at the edge, so that tests read it directly.

use std::time::Duration;

use kube::runtime::controller::Action;

/// The shortest requeue: a clock that is a second off never busy-loops the controller.
pub const MIN_REQUEUE: Duration = Duration::from_secs(1);

/// What a reconcile asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Look again after this long.
    After(Duration),
    /// Only when the resource changes (an invalid spec).
    AwaitChange,
}

impl Requeue {
    /// The delay, `None` for [`Requeue::AwaitChange`].
    pub fn after(self) -> Option<Duration> {
        match self {
            Requeue::After(d) => Some(d),
            Requeue::AwaitChange => None,
        }
    }
}

impl From<Requeue> for Action {
    fn from(r: Requeue) -> Action {
        match r {
            Requeue::After(d) => Action::requeue(d),
            Requeue::AwaitChange => Action::await_change(),
        }
    }
}
