//! Request paths: which API endpoint a URL names. Pure parsing, no registry lookups.

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiPath {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz`.
    Health,
    /// `/api`.
    CoreGroup,
    /// `/apis`.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    GroupVersion {
        /// Empty for core.
        group: String,
        /// Version.
        version: String,
    },
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Root,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
    OpenApiV3 {
        /// Empty for core.
        group: String,
        /// Version.
        version: String,
    },
    /// A resource collection, an object, or an object's subresource.
    Resource(ResourcePath),
}

/// A path into a resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    /// Empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace, when the path names one.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub resource: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, …).
    pub subresource: Option<String>,
    /// The legacy `/watch/` prefix was used.
    pub watch_prefix: bool,
}

/// Parses a request path. `None` when it is not an API path.
pub fn parse(path: &str) -> Option<ApiPath> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        ["version"] => Some(ApiPath::Version),
        ["healthz" | "livez" | "readyz", ..] => Some(ApiPath::Health),
        ["api"] => Some(ApiPath::CoreGroup),
        ["apis"] => Some(ApiPath::Groups),
        ["apis", group] => Some(ApiPath::Group((*group).to_owned())),
        ["openapi", "v2"] => Some(ApiPath::OpenApiV2),
        ["openapi", "v3"] => Some(ApiPath::OpenApiV3Root),
        ["openapi", "v3", "api", version] => Some(ApiPath::OpenApiV3 {
            group: String::new(),
            version: (*version).to_owned(),
        }),
        ["openapi", "v3", "apis", group, version] => Some(ApiPath::OpenApiV3 {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
        }),
        ["api", version, rest @ ..] => resource_path("", version, rest),
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest),
        _ => None,
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ApiPath> {
    if rest.is_empty() {
        return Some(ApiPath::GroupVersion {
            group: group.to_owned(),
            version: version.to_owned(),
        });
    }
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let mut path = ResourcePath {
        group: group.to_owned(),
        version: version.to_owned(),
        watch_prefix,
        ..ResourcePath::default()
    };
    let owned = |s: &&str| (*s).to_owned();
    match rest {
        // A namespace's own subresources: /namespaces/{name}/status|finalize.
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            path.resource = "namespaces".into();
            path.name = Some(owned(name));
            path.subresource = Some(owned(sub));
        }
        ["namespaces", ns, resource, tail @ ..] => {
            path.namespace = Some(owned(ns));
            path.resource = owned(resource);
            match tail {
                [] => {}
                [name] => path.name = Some(owned(name)),
                [name, sub] => {
                    path.name = Some(owned(name));
                    path.subresource = Some(owned(sub));
                }
                _ => return None,
            }
        }
        [resource] => path.resource = owned(resource),
        [resource, name] => {
            path.resource = owned(resource);
            path.name = Some(owned(name));
        }
        [resource, name, sub] => {
            path.resource = owned(resource);
            path.name = Some(owned(name));
            path.subresource = Some(owned(sub));
        }
        _ => return None,
    }
    Some(ApiPath::Resource(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse(path) {
            Some(ApiPath::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_resource_paths() {
        let r = resource("/apis/argoproj.io/v1alpha1/namespaces/default/rollouts/demo/status");
        assert_eq!(
            (
                r.group.as_str(),
                r.namespace.as_deref(),
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            (
                "argoproj.io",
                Some("default"),
                "rollouts",
                Some("demo"),
                Some("status")
            )
        );
        let r = resource("/api/v1/namespaces/default");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("default"), None)
        );
        let r = resource("/api/v1/namespaces/default/pods");
        assert_eq!(
            (r.resource.as_str(), r.namespace.as_deref(), r.name),
            ("pods", Some("default"), None)
        );
        let r = resource("/api/v1/namespaces/team/finalize");
        assert_eq!(
            (r.name.as_deref(), r.subresource.as_deref()),
            (Some("team"), Some("finalize"))
        );
        let r = resource("/api/v1/watch/namespaces/default/pods");
        assert!(r.watch_prefix);
        assert_eq!(r.resource, "pods");
        let r = resource(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/rollouts.argoproj.io",
        );
        assert_eq!(r.name.as_deref(), Some("rollouts.argoproj.io"));
    }

    #[test]
    fn parses_discovery_paths() {
        assert_eq!(parse("/api"), Some(ApiPath::CoreGroup));
        assert_eq!(parse("/apis/"), Some(ApiPath::Groups));
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(ApiPath::GroupVersion {
                group: "apps".into(),
                version: "v1".into()
            })
        );
        assert_eq!(
            parse("/openapi/v3/api/v1"),
            Some(ApiPath::OpenApiV3 {
                group: String::new(),
                version: "v1".into()
            })
        );
        assert_eq!(parse("/nope"), None);
        assert_eq!(parse("/api/v1/a/b/c/d"), None);
    }

    /// Random paths over the characters paths and selectors use: the parser never panics.
    #[test]
    fn random_paths_never_panic() {
        const ALPHABET: &[u8] = b"ab=!,() inotx.-_/9";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let len = (state % 24) as usize;
            let text: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    ALPHABET[(state % ALPHABET.len() as u64) as usize] as char
                })
                .collect();
            let _ = parse(&text.replace(' ', "/"));
        }
    }
}
