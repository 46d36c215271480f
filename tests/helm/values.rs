//! Value sets: each renders what it says, and values.schema.json refuses bad ones (so do
//! `helm install` and `helm template`, which validate against it).

use serde_json::{Value, json};

use super::{NAMESPACE, Render, helm, render_request};

/// Value sets a platform engineer would use, each with its name.
pub fn valid_sets() -> Vec<(&'static str, Value)> {
    vec![
        ("the defaults", json!({})),
        ("three replicas", json!({"replicas": 3})),
        (
            // Helm merges values into the defaults: null removes a default (the CPU limit).
            "other resources",
            json!({"resources": {"requests": {"cpu": "200m", "memory": "128Mi"},
                                 "limits": {"cpu": null, "memory": "512Mi"}}}),
        ),
        (
            "placement",
            json!({
                "nodeSelector": {"kubernetes.io/os": "linux", "node-role.example.com/infra": "true"},
                "tolerations": [{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a", "b"]}
                    ]}]}}},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule"}],
                "priorityClassName": "system-cluster-critical"
            }),
        ),
        (
            "a custom image",
            json!({"image": {"repository": "registry.example.com/mirror/meshtrust", "tag": "0.1.0-rc1",
                             "pullPolicy": "Always"},
                   "imagePullSecrets": [{"name": "regcred"}]}),
        ),
        (
            "an image by digest",
            json!({"image": {"repository": "ghcr.io/meshtrust/meshtrust",
                             "digest": format!("sha256:{}", "ab".repeat(32))}}),
        ),
        (
            "monitoring on",
            json!({"serviceMonitor": {"enabled": true, "interval": "1m",
                                      "labels": {"release": "kube-prometheus-stack"}},
                   "prometheusRule": {"enabled": true, "labels": {"release": "kube-prometheus-stack"}}}),
        ),
        ("the example on", json!({"example": {"enabled": true}})),
        (
            "logging, flags, identity",
            json!({"logFormat": "text", "logLevel": "debug,kube=warn",
                   "extraArgs": ["--resync", "5m"],
                   "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/meshtrust"}},
                   "podAnnotations": {"example.com/team": "platform"},
                   "podLabels": {"example.com/tier": "infra"}}),
        ),
        (
            "another istiod namespace",
            json!({"istioNamespace": "istio-prod"}),
        ),
        (
            "no operator roles",
            json!({"operatorRoles": {"create": false}}),
        ),
    ]
}

fn pod(r: &Render) -> &Value {
    &r.deployment()["spec"]["template"]["spec"]
}

fn container(r: &Render) -> &Value {
    &pod(r)["containers"][0]
}

#[test]
fn every_value_set_validates_and_renders_what_it_says() {
    let sets = valid_sets();
    let mut requests = Vec::new();
    for (_, v) in &sets {
        requests.push(json!({"op": "validate", "values": v}));
        requests.push(render_request(v));
    }
    let results = helm(&requests);
    let renders: Vec<Render> = sets
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            assert_eq!(results[2 * i], json!({"valid": true}), "{name}");
            Render::from_result(&results[2 * i + 1])
        })
        .collect();
    let by = |name: &str| &renders[sets.iter().position(|(n, _)| *n == name).unwrap()];

    assert_eq!(by("the defaults").deployment()["spec"]["replicas"], 2);
    assert_eq!(by("three replicas").deployment()["spec"]["replicas"], 3);
    assert_eq!(
        container(by("other resources"))["resources"],
        json!({"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    );

    let placed = pod(by("placement"));
    assert_eq!(
        placed["nodeSelector"]["node-role.example.com/infra"],
        "true"
    );
    assert_eq!(placed["tolerations"][0]["key"], "infra");
    assert_eq!(
        placed["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            [0]["matchExpressions"][0]["values"],
        json!(["a", "b"])
    );
    let spread = &placed["topologySpreadConstraints"];
    assert_eq!(spread.as_array().unwrap().len(), 1, "{spread}");
    assert_eq!(spread[0]["topologyKey"], "topology.kubernetes.io/zone");
    assert_eq!(
        spread[0]["labelSelector"]["matchLabels"],
        json!({"app.kubernetes.io/name": "meshtrust", "app.kubernetes.io/component": "controller"}),
        "a constraint without a selector gets the controller's pods"
    );
    assert_eq!(placed["priorityClassName"], "system-cluster-critical");
    let defaults = pod(by("the defaults"));
    for key in [
        "nodeSelector",
        "tolerations",
        "affinity",
        "priorityClassName",
        "imagePullSecrets",
    ] {
        assert!(
            defaults.get(key).is_none(),
            "{key} is set by default: {defaults}"
        );
    }

    let custom = by("a custom image");
    assert_eq!(
        container(custom)["image"],
        "registry.example.com/mirror/meshtrust:0.1.0-rc1"
    );
    assert_eq!(container(custom)["imagePullPolicy"], "Always");
    assert_eq!(
        pod(custom)["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    assert_eq!(
        container(by("an image by digest"))["image"],
        format!("ghcr.io/meshtrust/meshtrust@sha256:{}", "ab".repeat(32))
    );

    let monitored = by("monitoring on");
    let sm = monitored.get("ServiceMonitor", "meshtrust-controller");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "1m");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let rule = monitored.get("PrometheusRule", "meshtrust-controller");
    assert_eq!(
        rule["metadata"]["labels"]["release"],
        "kube-prometheus-stack"
    );
    assert_eq!(rule["metadata"]["namespace"], NAMESPACE);

    let example = by("the example on").get("MeshTrust", "mesh");
    assert_eq!(
        example["spec"]["issuer"]["local"]["secretRef"]["namespace"],
        NAMESPACE
    );

    let tuned = by("logging, flags, identity");
    assert_eq!(
        container(tuned)["args"],
        json!([
            "controller",
            "--namespace",
            NAMESPACE,
            "--log-format",
            "text",
            "--resync",
            "5m"
        ])
    );
    assert_eq!(
        container(tuned)["env"][1],
        json!({"name": "RUST_LOG", "value": "debug,kube=warn"})
    );
    assert_eq!(
        tuned.get("ServiceAccount", "meshtrust-controller")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::111122223333:role/meshtrust"
    );
    let template = &tuned.deployment()["spec"]["template"]["metadata"];
    assert_eq!(template["annotations"]["example.com/team"], "platform");
    assert_eq!(template["labels"]["example.com/tier"], "infra");
    assert_eq!(
        template["labels"]["app.kubernetes.io/component"],
        "controller"
    );

    let istio = by("another istiod namespace");
    let roles: Vec<&Value> = istio
        .objects
        .iter()
        .filter(|o| o["metadata"]["namespace"] == "istio-prod")
        .collect();
    assert_eq!(
        roles.len(),
        2,
        "the Role and RoleBinding move: {:?}",
        istio.kinds()
    );
    let cluster_role = istio.get("ClusterRole", "meshtrust-controller");
    assert_eq!(
        cluster_role["rules"][3]["resourceNames"],
        json!(["istio-prod"])
    );

    for kind in ["ClusterRole", "Role"] {
        assert!(
            by("the defaults")
                .find(kind, "meshtrust-operator")
                .is_some(),
            "{kind}"
        );
        assert!(
            by("no operator roles")
                .find(kind, "meshtrust-operator")
                .is_none(),
            "{kind}"
        );
    }
}

/// Values the schema must refuse, each with the path its refusal names.
fn bad_sets() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"replicas": "two"}), "/replicas"),
        (json!({"replicas": 0}), "/replicas"),
        (json!({"replica": 2}), "replica"),
        (json!({"image": {"repository": "x", "tags": "1"}}), "tags"),
        (json!({"image": {"repository": ""}}), "/image/repository"),
        (
            json!({"image": {"repository": "x", "digest": "latest"}}),
            "/image/digest",
        ),
        (
            json!({"image": {"repository": "x", "pullPolicy": "Sometimes"}}),
            "/image/pullPolicy",
        ),
        (json!({"logFormat": "xml"}), "/logFormat"),
        (json!({"extraArgs": "--resync 5m"}), "/extraArgs"),
        (json!({"resources": {"request": {"cpu": "1"}}}), "request"),
        (json!({"nodeSelector": {"zone": 1}}), "/nodeSelector/zone"),
        (json!({"tolerations": {"key": "infra"}}), "/tolerations"),
        (
            json!({"topologySpreadConstraints": [{"maxSkew": 1}]}),
            "/topologySpreadConstraints/0",
        ),
        (json!({"service": {"port": 70000}}), "/service/port"),
        (
            json!({"serviceMonitor": {"enabled": "yes"}}),
            "/serviceMonitor/enabled",
        ),
        (
            json!({"serviceMonitor": {"interval": "30"}}),
            "/serviceMonitor/interval",
        ),
        (
            json!({"prometheusRule": {"enabled": true, "rules": []}}),
            "rules",
        ),
        (json!({"istioNamespace": "Istio_System"}), "/istioNamespace"),
        (json!({"example": {"enabled": true, "name": "x"}}), "name"),
        (json!({"namespace": {"create": true}}), "namespace"),
        (
            json!({"operatorRoles": {"create": "no"}}),
            "/operatorRoles/create",
        ),
    ]
}

#[test]
fn the_schema_refuses_bad_values_and_names_the_key() {
    let bad = bad_sets();
    let mut requests = Vec::new();
    for (v, _) in &bad {
        requests.push(json!({"op": "validate", "values": v}));
        requests.push(render_request(v));
    }
    let results = helm(&requests);
    for (i, (values, path)) in bad.iter().enumerate() {
        let (validated, rendered) = (&results[2 * i], &results[2 * i + 1]);
        assert_eq!(validated["valid"], false, "{values} was accepted");
        let error = validated["error"].as_str().unwrap();
        assert!(
            error.contains(path),
            "the refusal of {values} names {path}: {error}"
        );
        let refused = rendered["error"].as_str().unwrap_or_default();
        assert!(
            refused.contains("schema") && refused.contains(path),
            "rendering {values} is refused too: {rendered}"
        );
    }
}
