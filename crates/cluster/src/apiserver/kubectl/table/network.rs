//! Columns of Services and what routes to them: Endpoints, EndpointSlices, Ingresses,
//! IngressClasses and NetworkPolicies.

use jiff::Timestamp;
use serde_json::Value;

use super::{Row, int, label_selector, labels, or_none, text};
use crate::registry::ResourceType;

pub(super) fn row(rt: &ResourceType, object: &Value, now: Timestamp) -> Option<Row> {
    let spec = &object["spec"];
    let row = match (rt.group.as_str(), rt.resource.as_str()) {
        ("", "services") => service(object, now),
        ("", "endpoints") => {
            let mut endpoints = Vec::new();
            for subset in object["subsets"].as_array().into_iter().flatten() {
                for address in subset["addresses"].as_array().into_iter().flatten() {
                    for port in subset["ports"].as_array().into_iter().flatten() {
                        endpoints.push(format!("{}:{}", text(&address["ip"]), int(&port["port"])));
                    }
                }
            }
            Row::named(object)
                .cell("Endpoints", "string", at_most_three(&endpoints))
                .age(object, now)
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = object["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| int(&p["port"]).to_string())
                .collect();
            let addresses: Vec<String> = object["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().into_iter().flatten().map(text))
                .collect();
            Row::named(object)
                .cell("AddressType", "string", text(&object["addressType"]))
                .cell("Ports", "string", or_unset(ports.join(",")))
                .cell(
                    "Endpoints",
                    "string",
                    or_unset(at_most_three(&addresses).replace("<none>", "")),
                )
                .age(object, now)
        }
        ("networking.k8s.io", "ingresses") => {
            let hosts: Vec<String> = spec["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["host"].as_str().map(str::to_owned))
                .collect();
            let hosts = match hosts.len() {
                0 => "*".to_owned(),
                1..=3 => hosts.join(","),
                n => format!("{} + {} more...", hosts[..3].join(","), n - 3),
            };
            Row::named(object)
                .cell("Class", "string", or_none(text(&spec["ingressClassName"])))
                .cell("Hosts", "string", hosts)
                .cell(
                    "Address",
                    "string",
                    load_balancer(&object["status"]).join(","),
                )
                .cell(
                    "Ports",
                    "string",
                    if spec["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                        "80, 443"
                    } else {
                        "80"
                    },
                )
                .age(object, now)
        }
        ("networking.k8s.io", "ingressclasses") => {
            let parameters = &spec["parameters"];
            let shown = if parameters.is_object() {
                let group = parameters["apiGroup"]
                    .as_str()
                    .map_or(String::new(), |g| format!(".{g}"));
                format!(
                    "{}{group}/{}",
                    text(&parameters["kind"]),
                    text(&parameters["name"])
                )
            } else {
                "<none>".to_owned()
            };
            Row::named(object)
                .cell("Controller", "string", text(&spec["controller"]))
                .cell("Parameters", "string", shown)
                .age(object, now)
        }
        ("networking.k8s.io", "networkpolicies") => Row::named(object)
            .cell(
                "Pod-Selector",
                "string",
                label_selector(&spec["podSelector"]),
            )
            .age(object, now),
        _ => return None,
    };
    Some(row)
}

fn or_unset(s: String) -> String {
    if s.is_empty() { "<unset>".into() } else { s }
}

/// Up to three values, then `+ N more...`; `<none>` for none.
fn at_most_three(values: &[String]) -> String {
    match values.len() {
        0 => "<none>".to_owned(),
        1..=3 => values.join(","),
        n => format!("{} + {} more...", values[..3].join(","), n - 3),
    }
}

/// The IPs and hostnames of a `status.loadBalancer`.
fn load_balancer(status: &Value) -> Vec<String> {
    status["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i["ip"]
                .as_str()
                .or(i["hostname"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

fn service(object: &Value, now: Timestamp) -> Row {
    let spec = &object["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    let cluster_ip = spec["clusterIPs"][0]
        .as_str()
        .or(spec["clusterIP"].as_str())
        .unwrap_or_default();
    let external: Vec<String> = spec["externalIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let external = match kind {
        "ExternalName" => text(&spec["externalName"]),
        "LoadBalancer" => {
            let mut all = load_balancer(&object["status"]);
            all.extend(external);
            if all.is_empty() {
                "<pending>".to_owned()
            } else {
                all.join(",")
            }
        }
        _ => or_none(external.join(",")),
    };
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(node) if node != 0 => format!("{}:{node}/{protocol}", int(&p["port"])),
                _ => format!("{}/{protocol}", int(&p["port"])),
            }
        })
        .collect();
    Row::named(object)
        .cell("Type", "string", kind)
        .cell("Cluster-IP", "string", or_none(cluster_ip.to_owned()))
        .cell("External-IP", "string", external)
        .cell("Port(s)", "string", or_none(ports.join(",")))
        .age(object, now)
        .wide("Selector", "string", labels(&spec["selector"]))
}
