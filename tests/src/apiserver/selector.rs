//! Label and field selectors, with the real server's grammar and semantics.
//!
//! Label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`,
//! `a>1`, `a<1`, joined by commas; `!=` and `notin` also match objects without the label.
//! Field selectors: `metadata.name` and `metadata.namespace` on every resource, plus the
//! few per-kind fields of [`EXTRA_FIELDS`]; anything else is rejected as the real server
//! rejects it (400 `field label not supported`).

use serde_json::{Map, Value};

use super::meta;
use super::resources::Resource;
use super::status::ApiError;

/// One label requirement.
#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

fn invalid(selector: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} (selector \"{selector}\")"
    ))
}

fn check_key(selector: &str, key: &str) -> Result<String, ApiError> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
    if ok {
        Ok(key.to_string())
    } else {
        Err(invalid(selector, &format!("invalid label key \"{key}\"")))
    }
}

/// Splits at commas that are not inside parentheses.
fn split_requirements(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `key in (a, b)` / `key notin (a,b)`, if `part` has that shape.
fn parse_set(selector: &str, part: &str) -> Result<Option<Requirement>, ApiError> {
    let Some((key, rest)) = part.split_once(char::is_whitespace) else {
        return Ok(None);
    };
    let rest = rest.trim_start();
    let (negated, rest) = if let Some(r) = rest.strip_prefix("notin") {
        (true, r)
    } else if let Some(r) = rest.strip_prefix("in") {
        (false, r)
    } else {
        return Ok(None);
    };
    let values = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| invalid(selector, "expected a parenthesised set of values"))?;
    let key = check_key(selector, key)?;
    let values = values.split(',').map(|v| v.trim().to_string()).collect();
    Ok(Some(if negated {
        Requirement::NotIn(key, values)
    } else {
        Requirement::In(key, values)
    }))
}

fn parse_requirement(selector: &str, part: &str) -> Result<Requirement, ApiError> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(check_key(selector, key.trim())?));
    }
    if let Some(set) = parse_set(selector, part)? {
        return Ok(set);
    }
    for (op, len) in [("!=", 2), ("==", 2), ("=", 1), (">", 1), ("<", 1)] {
        let Some(at) = part.find(op) else { continue };
        let key = check_key(selector, part[..at].trim())?;
        let value = part[at + len..].trim().to_string();
        let number = || {
            value
                .parse::<i64>()
                .map_err(|_| invalid(selector, &format!("{value:?} is not an integer")))
        };
        return Ok(match op {
            "!=" => Requirement::NotIn(key, vec![value]),
            ">" => Requirement::GreaterThan(key, number()?),
            "<" => Requirement::LessThan(key, number()?),
            _ => Requirement::In(key, vec![value]),
        });
    }
    Ok(Requirement::Exists(check_key(selector, part)?))
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter; errors are 400 BadRequest.
    pub fn parse(selector: &str) -> Result<Self, ApiError> {
        if selector.trim().is_empty() {
            return Ok(Self::default());
        }
        split_requirements(selector)
            .into_iter()
            .map(|part| parse_requirement(selector, part.trim()))
            .collect::<Result<_, _>>()
            .map(LabelSelector)
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        let int = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        self.0.iter().all(|r| match r {
            Requirement::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|v| vs.iter().all(|x| x != v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::GreaterThan(k, n) => int(k).is_some_and(|v| v > *n),
            Requirement::LessThan(k, n) => int(k).is_some_and(|v| v < *n),
        })
    }
}

/// Fields beyond `metadata.name`/`metadata.namespace` that the real server accepts in a
/// field selector, per kind.
const EXTRA_FIELDS: &[(&str, &[&str])] = &[
    ("Secret", &["type"]),
    ("Namespace", &["status.phase"]),
    (
        "Pod",
        &[
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
        ],
    ),
    (
        "Event",
        &[
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "reason",
            "type",
        ],
    ),
];

/// A parsed field selector: `(field path, wanted value, equal?)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter for `resource`.
    pub fn parse(selector: &str, resource: &Resource) -> Result<Self, ApiError> {
        let mut out = Vec::new();
        for part in selector.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let extra = EXTRA_FIELDS
                .iter()
                .find(|(kind, _)| *kind == resource.kind)
                .is_some_and(|(_, fields)| fields.contains(&field));
            if !(field == "metadata.name" || field == "metadata.namespace" || extra) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            out.push((field.to_string(), value.trim().to_string(), equal));
        }
        Ok(FieldSelector(out))
    }

    /// Whether `obj` is selected.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, want, equal)| {
            let got = match field.as_str() {
                "metadata.name" => meta::name(obj),
                "metadata.namespace" => meta::namespace(obj),
                path => field_value(obj, path),
            };
            (got == want) == *equal
        })
    }
}

fn field_value<'a>(obj: &'a Value, path: &str) -> &'a str {
    path.split('.')
        .try_fold(obj, |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Both selectors of a list or watch request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(&meta::labels(obj)) && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::Registry;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn label_selectors_follow_the_kubernetes_grammar() {
        let l = labels(json!({"app": "istiod", "rev": "1-22", "tier": "5"}));
        let none = labels(json!({}));
        let cases: &[(&str, bool, bool)] = &[
            // (selector, matches `l`, matches no labels)
            ("", true, true),
            ("app=istiod", true, false),
            ("app==istiod", true, false),
            ("app = istiod", true, false),
            ("app!=istiod", false, true),
            ("app!=other", true, true),
            ("app", true, false),
            ("!app", false, true),
            ("! missing", true, true),
            ("app in (istiod, gateway)", true, false),
            ("app in (gateway)", false, false),
            ("app notin (gateway,x)", true, true),
            ("app notin (istiod)", false, true),
            ("app=istiod,rev in (1-22,1-23),!legacy", true, false),
            ("app=istiod,rev=other", false, false),
            ("tier>4,tier<6", true, false),
            ("tier>5", false, false),
        ];
        for &(selector, want, want_none) in cases {
            let s = LabelSelector::parse(selector).unwrap();
            assert_eq!(s.matches(&l), want, "{selector:?} on {l:?}");
            assert_eq!(s.matches(&none), want_none, "{selector:?} on no labels");
        }
    }

    #[test]
    fn malformed_label_selectors_are_bad_requests() {
        for bad in ["app in istiod", "a b", "tier>x", "=x", "app in (a"] {
            let e = LabelSelector::parse(bad).unwrap_err();
            assert_eq!(e.code, 400, "{bad}");
        }
    }

    #[test]
    fn field_selectors_accept_only_supported_fields() {
        let registry = Registry::default();
        let secret = registry.get(registry.by_kind("v1", "Secret").unwrap());
        let obj = json!({"metadata": {"name": "cacerts", "namespace": "istio-system"},
                         "type": "Opaque"});
        let s = FieldSelector::parse(
            "metadata.name=cacerts,metadata.namespace==istio-system",
            secret,
        )
        .unwrap();
        assert!(s.matches(&obj));
        assert!(
            !FieldSelector::parse("metadata.name!=cacerts", secret)
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("type=Opaque", secret)
                .unwrap()
                .matches(&obj)
        );
        let e = FieldSelector::parse("spec.x=1", secret).unwrap_err();
        assert_eq!(e.message, "field label not supported: spec.x");
    }
}
