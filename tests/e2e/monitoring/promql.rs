//! The metric names a PromQL expression reads, found by a real PromQL parser
//! (`promql-parser`, a port of Prometheus' own grammar), not by pattern matching: label
//! names, functions, keywords, strings and durations are never taken for metric names.

use std::collections::BTreeSet;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};

/// Grafana's interval variables, which are not PromQL: replaced by a duration before parsing.
const GRAFANA_INTERVALS: [&str; 4] = [
    "$__rate_interval",
    "$__interval",
    "$__range",
    "$__interval_ms",
];

struct Names(BTreeSet<String>);

impl ExprVisitor for Names {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        match expr {
            Expr::VectorSelector(vs) => self.selector(vs)?,
            Expr::MatrixSelector(ms) => self.selector(&ms.vs)?,
            _ => {}
        }
        Ok(true)
    }
}

impl Names {
    fn selector(&mut self, vs: &VectorSelector) -> Result<(), String> {
        if let Some(name) = &vs.name {
            self.0.insert(name.clone());
            return Ok(());
        }
        // `{__name__="x"}`: the name as a matcher.
        for m in &vs.matchers.matchers {
            if m.name == "__name__" {
                match m.op {
                    MatchOp::Equal => {
                        self.0.insert(m.value.clone());
                    }
                    _ => {
                        return Err(format!(
                            "a metric name matched by pattern ({}) cannot be checked",
                            m.value
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Every metric name `expr` selects.
pub fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let parsed = parser::parse(expr).map_err(|e| format!("`{expr}` is not PromQL: {e}"))?;
    let mut names = Names(BTreeSet::new());
    walk_expr(&mut names, &parsed)?;
    Ok(names.0)
}

/// The metric names of a Grafana query: PromQL with Grafana's interval variables (label
/// values like `"$cluster"` are plain strings to PromQL), or a variable query
/// `label_values(SELECTOR, LABEL)` / `label_values(LABEL)`.
pub fn grafana_metric_names(query: &str) -> Result<BTreeSet<String>, String> {
    let query = query.trim();
    if let Some(args) = query
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return match args.rsplit_once(',') {
            Some((selector, _label)) => metric_names(selector),
            None => Ok(BTreeSet::new()),
        };
    }
    let mut expr = query.to_string();
    for var in GRAFANA_INTERVALS {
        expr = expr.replace(var, "5m");
    }
    metric_names(&expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(expr: &str) -> Vec<String> {
        metric_names(expr).unwrap().into_iter().collect()
    }

    #[test]
    fn a_selector_gives_its_name_and_not_its_label_names() {
        assert_eq!(
            names(
                r#"meshtrust_certificate_ready_status{condition="True", cluster=~"east|west"} == 0"#
            ),
            ["meshtrust_certificate_ready_status"]
        );
    }

    #[test]
    fn functions_aggregations_and_grouping_labels_are_not_metrics() {
        assert_eq!(
            names("sum by (job, reason) (rate(meshtrust_reconcile_errors_total[10m])) > 0"),
            ["meshtrust_reconcile_errors_total"]
        );
        assert_eq!(
            names(
                "histogram_quantile(0.99, sum without (instance) (rate(x_bucket[5m] offset 1h)))"
            ),
            ["x_bucket"]
        );
        assert_eq!(
            names("absent(meshtrust_is_leader)"),
            ["meshtrust_is_leader"]
        );
        assert!(names("vector(time()) > 3 * 86400").is_empty());
    }

    #[test]
    fn both_sides_of_a_binary_operation_count_and_its_matching_labels_do_not() {
        assert_eq!(
            names(
                r#"(time() - a_started{phase!~"Done"}) * ignoring (phase) group_left (phase) b_phase
                   and on (job, instance) (c_leader == 1) unless d"#
            ),
            ["a_started", "b_phase", "c_leader", "d"]
        );
    }

    #[test]
    fn strings_subqueries_and_name_matchers_are_read_as_promql_reads_them() {
        assert_eq!(
            names(r#"label_replace(up_metric, "dst", "meshtrust_not_a_metric", "src", "(.*)")"#),
            ["up_metric"]
        );
        assert_eq!(
            names("max_over_time(rate(m_total[1m])[1h:5m])"),
            ["m_total"]
        );
        assert_eq!(names(r#"{__name__="by_matcher", job="x"}"#), ["by_matcher"]);
        assert!(metric_names(r#"{__name__=~"meshtrust_.*"}"#).is_err());
    }

    #[test]
    fn an_expression_that_is_not_promql_is_refused_with_its_text() {
        let e = metric_names("sum by (job (rate(x[5m]))").unwrap_err();
        assert!(e.contains("sum by (job (rate(x[5m]))"), "{e}");
        assert!(
            metric_names("rate(x[$__rate_interval])").is_err(),
            "Grafana's variables are not PromQL"
        );
    }

    #[test]
    fn grafana_queries_lose_their_interval_variables_and_variable_queries_their_label() {
        assert_eq!(
            grafana_metric_names(r#"sum(rate(m_total{job=~"$job"}[$__rate_interval]))"#)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["m_total"]
        );
        assert_eq!(
            grafana_metric_names(r#"label_values(m_seconds{job=~"$job"}, cluster)"#)
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["m_seconds"]
        );
        assert!(
            grafana_metric_names("label_values(job)")
                .unwrap()
                .is_empty()
        );
    }
}
