//! What a real container is started with: its command line and its environment, as the kubelet
//! builds them — `HOSTNAME`, the Service variables of the pod's namespace, `POD_IP` and `PORT`,
//! then the container's own `env` (values, `fieldRef`, ConfigMap and Secret keys) and `envFrom`,
//! with `$(VAR)` references expanded in values, command and args. Pure: ConfigMaps and Secrets
//! arrive already read.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, Service};

use super::rules::Runtime;
use crate::proxy::LOCAL_PORTS;

/// What a container would run on this host (the exec runtime): its `command`, or, without one,
/// its `args` when the first names a program here — an image whose entrypoint is a shell, as
/// busybox's, run as `kubectl run -it --image=busybox -- sh`. `None` when it has neither.
pub fn host_command(container: &Container) -> Option<Vec<String>> {
    if let Some(command) = container.command.as_ref().filter(|c| !c.is_empty()) {
        return Some(command.clone());
    }
    let args = container.args.as_ref().filter(|a| !a.is_empty())?;
    on_this_host(&args[0]).then(|| args.clone())
}

/// Whether `program` is a file here: a path, or a name on `PATH`.
fn on_this_host(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Port a process container listens on when it declares none (rollouts-demo's).
pub const DEFAULT_PORT: u16 = 8080;

/// ConfigMap and Secret data the container refers to, by name.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// ConfigMap name → data.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret name → decoded data.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// Names of the ConfigMaps and Secrets a container's env refers to.
pub fn references(container: &Container) -> (Vec<String>, Vec<String>) {
    let (mut maps, mut secrets) = (Vec::new(), Vec::new());
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.config_map_key_ref {
            maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.push(r.name.clone());
        }
    }
    for from in container.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.push(r.name.clone());
        }
    }
    maps.dedup();
    secrets.dedup();
    (maps, secrets)
}

/// The port the container's process serves (its first TCP containerPort).
pub fn main_port(container: &Container) -> u16 {
    container
        .ports
        .iter()
        .flatten()
        .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(DEFAULT_PORT)
}

/// `$(NAME)` replaced by the variable's value when defined; `$$` is a literal `$`.
pub fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(close) = inner.find(')')
            && let Some((_, value)) = env.iter().rev().find(|(k, _)| *k == inner[..close])
        {
            out.push_str(value);
            rest = &inner[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn service_variables(services: &[&Service]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for service in services {
        let Some(spec) = &service.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        else {
            continue;
        };
        let local: BTreeMap<String, u16> = service
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(LOCAL_PORTS))
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let prefix = service
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        let ports = spec.ports.iter().flatten();
        let ports: Vec<(Option<&str>, u16, String)> = ports
            .map(|p| {
                let port = local
                    .get(&p.port.to_string())
                    .copied()
                    .unwrap_or(p.port as u16);
                let protocol = p.protocol.as_deref().unwrap_or("TCP").to_owned();
                (p.name.as_deref(), port, protocol)
            })
            .collect();
        let Some((_, first, first_protocol)) = ports.first() else {
            continue;
        };
        vars.push((format!("{prefix}_SERVICE_HOST"), ip.to_owned()));
        vars.push((format!("{prefix}_SERVICE_PORT"), first.to_string()));
        vars.push((
            format!("{prefix}_PORT"),
            format!("{}://{ip}:{first}", first_protocol.to_lowercase()),
        ));
        for (name, port, protocol) in &ports {
            if let Some(name) = name {
                let name = name.to_uppercase().replace('-', "_");
                vars.push((format!("{prefix}_SERVICE_PORT_{name}"), port.to_string()));
            }
            let link = format!("{prefix}_PORT_{port}_{protocol}");
            vars.push((
                link.clone(),
                format!("{}://{ip}:{port}", protocol.to_lowercase()),
            ));
            vars.push((format!("{link}_PROTO"), protocol.to_lowercase()));
            vars.push((format!("{link}_PORT"), port.to_string()));
            vars.push((format!("{link}_ADDR"), ip.to_owned()));
        }
    }
    vars
}

fn field(pod: &Pod, pod_ip: &str, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let keyed = |map: &Option<BTreeMap<String, String>>, prefix: &str| {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.as_ref()?.get(key).cloned().unwrap_or_default())
    };
    let value = match path {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        "metadata.uid" => meta.uid.clone(),
        "spec.nodeName" => pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone()),
        "status.podIP" => Some(pod_ip.to_owned()),
        "status.hostIP" => Some("127.0.0.1".to_owned()),
        _ => keyed(&meta.labels, "metadata.labels['")
            .or_else(|| keyed(&meta.annotations, "metadata.annotations['")),
    };
    value.ok_or_else(|| format!("unsupported fieldRef {path:?}"))
}

/// The environment of a container, in the kubelet's order (later entries win).
///
/// # Errors
/// A missing ConfigMap, Secret or key that is not optional, or an unsupported field path.
pub fn environment(
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
    services: &[&Service],
    sources: &Sources,
) -> Result<Vec<(String, String)>, String> {
    let mut env = vec![
        (
            "PATH".to_owned(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        (
            "HOSTNAME".to_owned(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
    ];
    env.extend(service_variables(services));
    env.push(("POD_IP".to_owned(), pod_ip.to_owned()));
    env.push(("PORT".to_owned(), main_port(container).to_string()));
    let lookup = |kind: &str,
                  data: &BTreeMap<String, BTreeMap<String, String>>,
                  name: &str,
                  key: &str,
                  optional: bool| {
        match data.get(name).and_then(|d| d.get(key)) {
            Some(value) => Ok(Some(value.clone())),
            None if optional => Ok(None),
            None => Err(format!("couldn't find key {key} in {kind} {name}")),
        }
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, data, name, optional) = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), _) => ("ConfigMap", &sources.config_maps, &r.name, r.optional),
            (None, Some(r)) => ("Secret", &sources.secrets, &r.name, r.optional),
            (None, None) => continue,
        };
        match data.get(name) {
            Some(values) => env.extend(
                values
                    .iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
            ),
            None if optional == Some(true) => {}
            None => return Err(format!("{kind} {name:?} not found")),
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(from)) => {
                if let Some(r) = &from.field_ref {
                    Some(field(pod, pod_ip, &r.field_path)?)
                } else if let Some(r) = &from.config_map_key_ref {
                    lookup(
                        "ConfigMap",
                        &sources.config_maps,
                        &r.name,
                        &r.key,
                        r.optional == Some(true),
                    )?
                } else if let Some(r) = &from.secret_key_ref {
                    lookup(
                        "Secret",
                        &sources.secrets,
                        &r.name,
                        &r.key,
                        r.optional == Some(true),
                    )?
                } else {
                    return Err(format!("env {}: unsupported valueFrom", var.name));
                }
            }
            (Some(value), None) => Some(expand(value, &env)),
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            env.push((var.name.clone(), value));
        }
    }
    // Later definitions win, as in a process environment.
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<(String, String)> = env
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    unique.reverse();
    Ok(unique)
}

/// The command line of a real container.
///
/// # Errors
/// An `exec` container without a command.
pub fn command_line(
    runtime: &Runtime,
    container: &Container,
    env: &[(String, String)],
    pod_ip: &str,
) -> Result<Vec<String>, String> {
    match runtime {
        Runtime::Process(argv) => {
            let port = main_port(container).to_string();
            Ok(argv
                .iter()
                .map(|a| a.replace("{pod_ip}", pod_ip).replace("{port}", &port))
                .collect())
        }
        Runtime::Builtin(argv) => Ok(argv
            .iter()
            .cloned()
            .chain(
                container
                    .command
                    .iter()
                    .flatten()
                    .chain(container.args.iter().flatten())
                    .map(|a| expand(a, env)),
            )
            .collect()),
        Runtime::Exec => {
            let argv: Vec<String> = container
                .command
                .iter()
                .flatten()
                .chain(container.args.iter().flatten())
                .map(|a| expand(a, env))
                .collect();
            if host_command(container).is_none() {
                return Err(format!(
                    "the exec runtime runs the container's command, and container {} has none",
                    container.name
                ));
            }
            Ok(argv)
        }
        Runtime::ExecNotAllowed => Err(format!(
            "container {} would run its command on this host (the exec runtime); start sluice up with --allow-host-exec",
            container.name
        )),
        Runtime::Simulated(_) => Err("a simulated container has no command line".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn references_expand_as_the_kubelet_does() {
        let env = vec![("A".to_owned(), "1".to_owned())];
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("$$(A) $", &env), "$(A) $");
    }

    #[test]
    fn the_environment_has_service_variables_pod_fields_and_sources() {
        let pod: Pod = from(
            json!({"metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"containers": []}}),
        );
        let container: Container = from(json!({"name": "app", "ports": [{"containerPort": 9000}],
            "env": [
                {"name": "GREETING", "value": "hi $(POD_IP)"},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
                {"name": "PORT", "value": "9001"},
            ],
            "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "DB_"}]}));
        let service: Service = from(
            json!({"metadata": {"name": "web-svc", "annotations": {LOCAL_PORTS: "{\"80\": 8080}"}},
            "spec": {"clusterIP": "127.2.0.7", "ports": [{"name": "http", "port": 80}]}}),
        );
        let mut sources = Sources::default();
        sources.config_maps.insert(
            "cfg".into(),
            [("level".to_owned(), "debug".to_owned())].into(),
        );
        sources.secrets.insert(
            "creds".into(),
            [("USER".to_owned(), "admin".to_owned())].into(),
        );
        let env = environment(&pod, &container, "127.1.0.9", &[&service], &sources).unwrap();
        let get = |k: &str| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("WEB_SVC_SERVICE_HOST"), Some("127.2.0.7"));
        assert_eq!(
            get("WEB_SVC_SERVICE_PORT"),
            Some("8080"),
            "the local port of a remapped one"
        );
        assert_eq!(get("WEB_SVC_SERVICE_PORT_HTTP"), Some("8080"));
        assert_eq!(get("GREETING"), Some("hi 127.1.0.9"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("LEVEL"), Some("debug"));
        assert_eq!(get("DB_USER"), Some("admin"));
        assert_eq!(get("PORT"), Some("9001"), "the container's own env wins");
        assert_eq!(get("HOSTNAME"), Some("web-1"));
        let missing = Sources::default();
        let err = environment(&pod, &container, "127.1.0.9", &[], &missing).unwrap_err();
        assert_eq!(err, "Secret \"creds\" not found");
    }

    #[test]
    fn a_host_command_is_the_command_or_args_naming_a_program_here() {
        let with = |value: serde_json::Value| host_command(&from(value));
        assert_eq!(
            with(json!({"name": "a", "command": ["sh", "-c"], "args": ["x"]})),
            Some(vec!["sh".to_owned(), "-c".to_owned()])
        );
        assert_eq!(
            with(json!({"name": "a", "args": ["sh"]})),
            Some(vec!["sh".to_owned()])
        );
        assert_eq!(with(json!({"name": "a", "args": ["-s", "http://x"]})), None);
        assert_eq!(
            with(json!({"name": "a", "args": ["no-such-program-here"]})),
            None
        );
        assert_eq!(with(json!({"name": "a"})), None);
    }

    #[test]
    fn command_lines_per_runtime() {
        let container: Container =
            from(json!({"name": "job", "command": ["sh", "-c"], "args": ["echo $(WHO)"]}));
        let env = vec![("WHO".to_owned(), "me".to_owned())];
        assert_eq!(
            command_line(&Runtime::Exec, &container, &env, "127.1.0.2").unwrap(),
            ["sh", "-c", "echo me"]
        );
        let process = Runtime::Process(vec!["api".into(), "--listen={pod_ip}:{port}".into()]);
        assert_eq!(
            command_line(&process, &container, &env, "127.1.0.2").unwrap(),
            ["api", "--listen=127.1.0.2:8080"]
        );
        assert!(
            command_line(&Runtime::ExecNotAllowed, &container, &env, "x")
                .unwrap_err()
                .contains("--allow-host-exec")
        );
    }
}
