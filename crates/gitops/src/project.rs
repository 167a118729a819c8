//! AppProjects enforced as Argo CD enforces them, before anything is applied: the
//! Application's repository must match `sourceRepos`, its destination `destinations` (an
//! InvalidSpecError otherwise, as `ValidatePermissions`), and each resource a sync would apply
//! must be a permitted kind (`clusterResourceWhitelist`/`Blacklist` for cluster-scoped kinds —
//! none allowed unless whitelisted — and `namespaceResourceWhitelist`/`Blacklist` for
//! namespaced ones — all allowed unless listed otherwise) in a permitted namespace (a failed
//! sync naming the rule, as gitops-engine's permission validator).
//!
//! Patterns are globs (`*` crosses `/`, as Argo CD's `glob.Match` without separators); a
//! pattern starting with `!` denies. Repository URLs compare normalised
//! ([`crate::credentials::normalize_url`]). Pure: the project is its JSON.

use serde_json::Value;

use crate::{credentials::normalize_url, status::IN_CLUSTER};

/// Whether `text` matches the glob `pattern` (`*`, `?`, `[...]`, `{a,b}`).
fn glob_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" || pattern == text {
        return true;
    }
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .is_ok_and(|g| g.compile_matcher().is_match(text))
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Whether the project lets Applications use `repo_url` (`IsSourcePermitted`).
pub fn source_permitted(project: &Value, repo_url: &str) -> bool {
    let wanted = normalize_url(repo_url);
    let mut matched = false;
    for pattern in strings(&project["spec"]["sourceRepos"]) {
        match pattern.strip_prefix('!') {
            Some(denied) if glob_match(&normalize_url(denied), &wanted) => return false,
            Some(_) => {}
            None => matched |= glob_match(&normalize_url(pattern), &wanted),
        }
    }
    matched
}

/// Whether the project lets Applications deploy to `namespace` of the cluster known as
/// `server` and `name` (`IsDestinationPermitted`).
pub fn destination_permitted(project: &Value, server: &str, name: &str, namespace: &str) -> bool {
    let mut matched = false;
    for item in project["spec"]["destinations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let field = |key: &str| item[key].as_str().unwrap_or_default().to_owned();
        let (item_server, item_name, item_namespace) =
            (field("server"), field("name"), field("namespace"));
        let namespace_ok = match item_namespace.strip_prefix('!') {
            Some(denied) => !glob_match(denied, namespace),
            None => glob_match(&item_namespace, namespace),
        };
        let cluster = |pattern: &str, value: &str| {
            !pattern.is_empty() && !value.is_empty() && glob_match(pattern, value)
        };
        let denies = |pattern: &str, value: &str| {
            pattern
                .strip_prefix('!')
                .is_some_and(|denied| glob_match(denied, value))
        };
        if denies(&item_server, server) || denies(&item_name, name) {
            return false;
        }
        if item_namespace.starts_with('!') && !namespace_ok {
            let cluster_matches = cluster(&item_server, server) || cluster(&item_name, name);
            if cluster_matches || (item_server.is_empty() && item_name.is_empty()) {
                return false;
            }
        }
        let cluster_ok = cluster(&item_server, server) || cluster(&item_name, name);
        if cluster_ok && namespace_ok && !item_namespace.starts_with('!') {
            matched = true;
        }
    }
    matched
}

fn listed(list: &Value, group: &str, kind: &str) -> bool {
    list.as_array().into_iter().flatten().any(|item| {
        glob_match(item["kind"].as_str().unwrap_or_default(), kind)
            && glob_match(item["group"].as_str().unwrap_or_default(), group)
    })
}

/// Whether the project lets Applications manage `group`/`kind` (`IsGroupKindPermitted`).
pub fn kind_permitted(project: &Value, group: &str, kind: &str, namespaced: bool) -> bool {
    let spec = &project["spec"];
    let nonempty = |v: &Value| v.as_array().is_some_and(|a| !a.is_empty());
    if namespaced {
        let white = &spec["namespaceResourceWhitelist"];
        let black = &spec["namespaceResourceBlacklist"];
        let whitelisted = white.is_null() || (nonempty(white) && listed(white, group, kind));
        return whitelisted && !(nonempty(black) && listed(black, group, kind));
    }
    let white = &spec["clusterResourceWhitelist"];
    let black = &spec["clusterResourceBlacklist"];
    nonempty(white)
        && listed(white, group, kind)
        && !(nonempty(black) && listed(black, group, kind))
}

/// The project's name as Argo CD reads `spec.project` (`""` is `default`).
pub fn name_of(project: &str) -> &str {
    if project.is_empty() {
        "default"
    } else {
        project
    }
}

/// Why the Application's spec is not permitted by its project (an InvalidSpecError).
pub fn invalid_spec(
    project_name: &str,
    project: Option<&Value>,
    repo_urls: &[&str],
    destination: (&str, &str, &str),
) -> Option<String> {
    let Some(project) = project else {
        return Some(format!(
            "application references project {project_name} which does not exist"
        ));
    };
    for url in repo_urls {
        if !source_permitted(project, url) {
            return Some(format!(
                "application repo {url} is not permitted in project '{project_name}'"
            ));
        }
    }
    let (server, name, namespace) = destination;
    let (server, name) = match (server, name) {
        ("", "in-cluster") | (IN_CLUSTER, _) => (IN_CLUSTER, "in-cluster"),
        other => other,
    };
    if !destination_permitted(project, server, name, namespace) {
        return Some(format!(
            "application destination server '{server}' and namespace '{namespace}' do not match any of the allowed destinations in project '{project_name}'"
        ));
    }
    None
}

/// Why a resource may not be applied under the project (a failed sync), if it may not.
pub fn resource_refused(
    project_name: &str,
    project: &Value,
    group: &str,
    kind: &str,
    namespace: Option<&str>,
) -> Option<String> {
    if !kind_permitted(project, group, kind, namespace.is_some()) {
        return Some(format!(
            "resource {group}:{kind} is not permitted in project {project_name}"
        ));
    }
    if let Some(namespace) = namespace
        && !destination_permitted(project, IN_CLUSTER, "in-cluster", namespace)
    {
        return Some(format!(
            "namespace {namespace} is not permitted in project '{project_name}'"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn team() -> Value {
        json!({"spec": {
            "sourceRepos": ["https://git.example.com/team/*", "!https://git.example.com/team/secret"],
            "destinations": [{"server": IN_CLUSTER, "namespace": "team-*"},
                {"name": "in-cluster", "namespace": "shared"}],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "namespaceResourceBlacklist": [{"group": "", "kind": "ResourceQuota"}],
        }})
    }

    #[test]
    fn source_repositories_globs_and_denials() {
        let p = team();
        assert!(source_permitted(&p, "https://git.example.com/team/cd.git"));
        assert!(source_permitted(&p, "https://GIT.example.com/team/deep/cd"));
        assert!(!source_permitted(
            &p,
            "https://git.example.com/team/secret.git"
        ));
        assert!(!source_permitted(&p, "https://git.example.com/other/cd"));
        assert!(source_permitted(
            &json!({"spec": {"sourceRepos": ["*"]}}),
            "file:///tmp/x"
        ));
        assert!(!source_permitted(&json!({"spec": {}}), "https://x/y"));
    }

    #[test]
    fn destinations_by_server_or_name_and_namespace_glob() {
        let p = team();
        assert!(destination_permitted(
            &p,
            IN_CLUSTER,
            "in-cluster",
            "team-a"
        ));
        assert!(destination_permitted(&p, "", "in-cluster", "shared"));
        assert!(!destination_permitted(
            &p,
            IN_CLUSTER,
            "in-cluster",
            "kube-system"
        ));
        let denying = json!({"spec": {"destinations": [
            {"server": "*", "namespace": "*"}, {"server": "*", "namespace": "!kube-*"}]}});
        assert!(destination_permitted(
            &denying,
            IN_CLUSTER,
            "in-cluster",
            "apps"
        ));
        assert!(!destination_permitted(
            &denying,
            IN_CLUSTER,
            "in-cluster",
            "kube-system"
        ));
    }

    #[test]
    fn kinds_cluster_needs_a_whitelist_namespaced_needs_no_blacklist() {
        let p = team();
        assert!(kind_permitted(&p, "", "Namespace", false));
        assert!(!kind_permitted(
            &p,
            "rbac.authorization.k8s.io",
            "ClusterRole",
            false
        ));
        assert!(kind_permitted(&p, "apps", "Deployment", true));
        assert!(!kind_permitted(&p, "", "ResourceQuota", true));
        let empty_white = json!({"spec": {"namespaceResourceWhitelist": []}});
        assert!(!kind_permitted(&empty_white, "", "ConfigMap", true));
    }

    #[test]
    fn messages_name_the_rule() {
        let p = team();
        let dest = (IN_CLUSTER, "", "team-a");
        assert_eq!(
            invalid_spec("team", Some(&p), &["https://git.example.com/other/cd"], dest),
            Some("application repo https://git.example.com/other/cd is not permitted in project 'team'".into())
        );
        assert_eq!(
            invalid_spec(
                "team",
                Some(&p),
                &["https://git.example.com/team/cd"],
                (IN_CLUSTER, "", "prod")
            ),
            Some(format!(
                "application destination server '{IN_CLUSTER}' and namespace 'prod' do not match any of the allowed destinations in project 'team'"
            ))
        );
        assert_eq!(
            invalid_spec("team", Some(&p), &["https://git.example.com/team/cd"], dest),
            None
        );
        assert_eq!(
            invalid_spec("gone", None, &[], dest),
            Some("application references project gone which does not exist".into())
        );
        assert_eq!(
            resource_refused("team", &p, "", "ResourceQuota", Some("team-a")),
            Some("resource :ResourceQuota is not permitted in project team".into())
        );
        assert_eq!(
            resource_refused("team", &p, "", "ConfigMap", Some("elsewhere")),
            Some("namespace elsewhere is not permitted in project 'team'".into())
        );
    }
}
