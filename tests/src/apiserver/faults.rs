//! Fault injection: rules that make chosen requests fail, stall or hang.

use std::time::Duration;

use axum::http::Method;

use super::requests::RequestRecord;

/// What happens to a request a [`FaultRule`] picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and a `Status` object whose reason fits the code
    /// (`500` InternalError, `409` Conflict, `429` TooManyRequests, `503`
    /// ServiceUnavailable, …). The request is not carried out. meshtrust's clients retry
    /// 429, 500, 502, 503 and 504 (a bounded number of times).
    Status(u16),
    /// Carry the request out, then throw its answer away and answer with this HTTP
    /// status instead: a write whose answer was lost on the way back (a proxy or load
    /// balancer failing after the API server did the work).
    AfterApplying(u16),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Never answer; the connection stays open until the client gives up (its read
    /// timeout fires) or the harness stops.
    Hang,
    /// Carry the request out, then never answer (as [`Fault::Hang`]): the moment to kill
    /// the client between a write and the next. [`Cluster::held`](super::Cluster::held)
    /// counts the requests carried out and held.
    HoldAfterApplying,
}

/// Which requests fail and how. Rules are per cluster; each counts the requests it
/// matches, starting at 1.
///
/// ```
/// use meshtrust_testkit::apiserver::{Fault, FaultRule, Method};
/// // The second PUT to the cacerts Secret gets a 500; every request after it succeeds.
/// let rule = FaultRule {
///     method: Some(Method::PUT),
///     path_contains: "/secrets/cacerts".into(),
///     nth: 2,
///     ..FaultRule::new(Fault::Status(500))
/// };
/// // Every LIST or GET of pods from the first on hangs.
/// let hang = FaultRule::new(Fault::Hang).method(Method::GET).path_contains("/pods").always();
/// # let _ = (rule, hang);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// Only requests with this method; `None` for any.
    pub method: Option<Method>,
    /// Only requests whose target (path, then `?` and the query if any) contains this;
    /// `""` for any.
    pub path_contains: String,
    /// Only POST, PUT, PATCH and DELETE requests (with `method`, that one only).
    pub writes_only: bool,
    /// The first matching request that fails, 1-based.
    pub nth: usize,
    /// How many matching requests fail from the `nth` on; `None` for all of them.
    pub times: Option<usize>,
    /// What happens to the requests picked.
    pub fault: Fault,
}

impl Default for FaultRule {
    /// The first request of any kind gets a 500.
    fn default() -> Self {
        FaultRule {
            method: None,
            path_contains: String::new(),
            writes_only: false,
            nth: 1,
            times: Some(1),
            fault: Fault::Status(500),
        }
    }
}

impl FaultRule {
    /// The first matching request (any method, any path) meets `fault`, once.
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            fault,
            ..FaultRule::default()
        }
    }

    /// Only requests with `method`.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Only requests whose path and query contain `part`.
    pub fn path_contains(mut self, part: impl Into<String>) -> Self {
        self.path_contains = part.into();
        self
    }

    /// Only writes: POST, PUT, PATCH and DELETE.
    pub fn writes(mut self) -> Self {
        self.writes_only = true;
        self
    }

    /// Start failing at the `n`th matching request (1-based).
    pub fn nth(mut self, n: usize) -> Self {
        self.nth = n;
        self
    }

    /// Fail `n` matching requests from the `nth` on.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Fail every matching request from the `nth` on.
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    fn matches(&self, request: &RequestRecord) -> bool {
        self.method.as_ref().is_none_or(|m| *m == request.method)
            && (!self.writes_only || request.is_write())
            && request.target().contains(&self.path_contains)
    }
}

/// A rule with its count of matched requests.
#[derive(Debug)]
pub(crate) struct ActiveRule {
    rule: FaultRule,
    seen: usize,
}

impl From<FaultRule> for ActiveRule {
    fn from(rule: FaultRule) -> Self {
        ActiveRule { rule, seen: 0 }
    }
}

/// Counts `request` against every rule; the fault of the first rule whose turn it is.
pub(crate) fn decide(rules: &mut [ActiveRule], request: &RequestRecord) -> Option<Fault> {
    let mut chosen = None;
    for active in rules.iter_mut().filter(|a| a.rule.matches(request)) {
        active.seen += 1;
        let first = active.rule.nth.max(1);
        let in_window = active.seen >= first
            && active
                .rule
                .times
                .is_none_or(|t| active.seen < first.saturating_add(t));
        if in_window && chosen.is_none() {
            chosen = Some(active.rule.fault.clone());
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, path: &str) -> RequestRecord {
        RequestRecord {
            method,
            path: path.into(),
            query: None,
            content_type: None,
        }
    }

    fn outcomes(rule: FaultRule, requests: &[RequestRecord]) -> Vec<bool> {
        let mut rules = vec![ActiveRule::from(rule)];
        requests
            .iter()
            .map(|r| decide(&mut rules, r).is_some())
            .collect()
    }

    #[test]
    fn the_nth_matching_request_fails_once_by_default() {
        let put = request(
            Method::PUT,
            "/api/v1/namespaces/istio-system/secrets/cacerts",
        );
        let get = request(
            Method::GET,
            "/api/v1/namespaces/istio-system/secrets/cacerts",
        );
        let rule = FaultRule::new(Fault::Status(500))
            .method(Method::PUT)
            .nth(2);
        let seq = [put.clone(), get.clone(), put.clone(), put.clone()];
        assert_eq!(outcomes(rule, &seq), [false, false, true, false]);
    }

    #[test]
    fn always_and_times_widen_the_window() {
        let r = request(Method::GET, "/api/v1/pods");
        let all = FaultRule::new(Fault::Hang)
            .path_contains("pods")
            .nth(2)
            .always();
        assert_eq!(
            outcomes(all, &vec![r.clone(); 4]),
            [false, true, true, true]
        );
        let two = FaultRule::new(Fault::Hang).times(2);
        assert_eq!(
            outcomes(two, &vec![r.clone(); 4]),
            [true, true, false, false]
        );
        let other = FaultRule::new(Fault::Hang).path_contains("secrets");
        assert_eq!(outcomes(other, &[r]), [false]);
    }
}
