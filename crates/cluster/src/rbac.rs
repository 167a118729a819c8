//! RBAC as Kubernetes evaluates it, pure: which rules a user holds through Roles, ClusterRoles,
//! RoleBindings and ClusterRoleBindings, whether one of them allows a request, and the
//! aggregated rules of ClusterRoles with an `aggregationRule` (what Kubernetes'
//! clusterrole-aggregation controller writes into them).
//!
//! ```text
//!   ClusterRoleBinding ─▶ ClusterRole ──────────────┐
//!   RoleBinding (ns) ───▶ Role (ns) | ClusterRole ──┴─▶ rules ─▶ allows(Attributes)?
//! ```
//!
//! The semantics are `k8s.io/kubernetes/pkg/registry/rbac/validation` and
//! `plugin/pkg/auth/authorizer/rbac`: ClusterRoleBindings first, then the RoleBindings of the
//! request's namespace; `*` in verbs, groups, resources and URLs; `*/sub` for a subresource of
//! any resource; `resourceNames` only match a named request; a URL rule ending in `*` is a
//! prefix; a ServiceAccount subject without a namespace means the binding's. A binding whose
//! role does not exist grants nothing and is named in the reason, as Kubernetes does.
//! `system:masters` is allowed everything before RBAC is asked (Kubernetes' privileged-group
//! authorizer).
//!
//! Layering: beside the store, below the API server; [`index`] keeps a [`Policy`] current from
//! the store, [`defaults`] holds Kubernetes' default ClusterRoles and bindings, [`components`]
//! those of the cluster's own components.

pub mod components;
pub mod defaults;
pub mod index;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use kube::core::{Selector, SelectorExt};
use serde_json::{Value, json};

use crate::authn::User;

/// The group allowed everything, before RBAC (Kubernetes' privileged-group authorizer).
pub const MASTERS: &str = "system:masters";

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyRule {
    /// `get`, `list`, … or `*`.
    pub verbs: Vec<String>,
    /// API groups (`""` is core) or `*`.
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*/subresource` or `*`.
    pub resources: Vec<String>,
    /// Object names the rule is limited to (empty: any).
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/healthz`, `/apis/*`, `*`).
    pub non_resource_urls: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|s| s == "*" || s == wanted)
}

impl PolicyRule {
    /// A rule as stored (`verbs`, `apiGroups`, `resources`, `resourceNames`, `nonResourceURLs`).
    pub fn from_json(rule: &Value) -> Self {
        Self {
            verbs: strings(&rule["verbs"]),
            api_groups: strings(&rule["apiGroups"]),
            resources: strings(&rule["resources"]),
            resource_names: strings(&rule["resourceNames"]),
            non_resource_urls: strings(&rule["nonResourceURLs"]),
        }
    }

    /// The stored form (empty lists left out, as Kubernetes serializes them).
    pub fn to_json(&self) -> Value {
        let mut rule = json!({"verbs": self.verbs});
        for (field, list) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() {
                rule[field] = json!(list);
            }
        }
        rule
    }

    /// Whether the rule allows `request` (Kubernetes' `RuleAllows`).
    pub fn allows(&self, request: &Attributes) -> bool {
        if !has(&self.verbs, &request.verb) {
            return false;
        }
        match &request.resource {
            Some(r) => {
                has(&self.api_groups, &r.group)
                    && self.matches_resource(r)
                    && (self.resource_names.is_empty() || self.resource_names.contains(&r.name))
            }
            None => self.non_resource_urls.iter().any(|url| {
                url == "*"
                    || *url == request.path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| request.path.starts_with(prefix))
            }),
        }
    }

    fn matches_resource(&self, r: &ResourceAttributes) -> bool {
        let combined = r.combined();
        self.resources.iter().any(|resource| {
            resource == "*"
                || *resource == combined
                || (!r.subresource.is_empty()
                    && resource.strip_prefix("*/") == Some(r.subresource.as_str()))
        })
    }
}

/// What a resource request addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceAttributes {
    /// Namespace (empty: cluster scope or every namespace).
    pub namespace: String,
    /// API group (empty: core).
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (empty: none).
    pub subresource: String,
    /// Object name (empty: a collection).
    pub name: String,
}

impl ResourceAttributes {
    /// `resource/subresource`, or the resource alone.
    pub fn combined(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// A request as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Kubernetes' verb (`get`, `list`, `watch`, `create`, …).
    pub verb: String,
    /// The resource, or `None` for a non-resource URL.
    pub resource: Option<ResourceAttributes>,
    /// The URL path (what non-resource rules match).
    pub path: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(verb: &str, resource: ResourceAttributes) -> Self {
        Self {
            verb: verb.to_owned(),
            resource: Some(resource),
            path: String::new(),
        }
    }

    /// A non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            resource: None,
            path: path.to_owned(),
        }
    }

    /// Kubernetes' forbidden message: `User "u" cannot list resource "secrets" in API group
    /// "" in the namespace "ns"` (or `at the cluster scope`, or `cannot get path "/x"`).
    pub fn forbidden_message(&self, username: &str) -> String {
        match &self.resource {
            None => format!(
                "User {username:?} cannot {} path {:?}",
                self.verb, self.path
            ),
            Some(r) if !r.namespace.is_empty() => format!(
                "User {username:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                self.verb,
                r.combined(),
                r.group,
                r.namespace
            ),
            Some(r) => format!(
                "User {username:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                self.verb,
                r.combined(),
                r.group
            ),
        }
    }
}

/// Who a binding grants its role to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// A ServiceAccount's namespace (empty: the binding's).
    pub namespace: String,
}

impl Subject {
    fn from_json(subject: &Value) -> Self {
        let text = |field: &str| subject[field].as_str().unwrap_or_default().to_owned();
        Self {
            kind: text("kind"),
            name: text("name"),
            namespace: text("namespace"),
        }
    }

    /// Kubernetes' `appliesToUser`; `namespace` is the binding's (empty for a ClusterRoleBinding).
    fn applies_to(&self, user: &User, namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.username == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    namespace
                } else {
                    &self.namespace
                };
                !namespace.is_empty()
                    && user.username == format!("system:serviceaccount:{namespace}:{}", self.name)
            }
            _ => false,
        }
    }

    /// How Kubernetes names the subject in an `allowed by` reason.
    fn describe(&self, binding_namespace: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let namespace = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                format!("{} {:?}", self.kind, format!("{}/{namespace}", self.name))
            }
            _ => format!("{} {:?}", self.kind, self.name),
        }
    }
}

/// A RoleBinding (`namespace` set) or a ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Name.
    pub name: String,
    /// The RoleBinding's namespace; empty for a ClusterRoleBinding.
    pub namespace: String,
    /// `Role` or `ClusterRole`.
    pub role_kind: String,
    /// The role's name.
    pub role_name: String,
    /// Who it grants the role to.
    pub subjects: Vec<Subject>,
}

impl Binding {
    /// A binding as stored.
    pub fn from_json(binding: &Value) -> Self {
        let meta = &binding["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Self {
            name: text(&meta["name"]),
            namespace: text(&meta["namespace"]),
            role_kind: text(&binding["roleRef"]["kind"]),
            role_name: text(&binding["roleRef"]["name"]),
            subjects: binding["subjects"]
                .as_array()
                .map(|s| s.iter().map(Subject::from_json).collect())
                .unwrap_or_default(),
        }
    }

    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {}",
                self.name,
                self.role_kind,
                self.role_name,
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{}", self.name, self.namespace),
                self.role_kind,
                self.role_name,
                subject.describe(&self.namespace)
            )
        }
    }
}

/// A ClusterRole as stored: its rules, labels and aggregation selectors.
#[derive(Debug, Clone, Default)]
pub struct ClusterRole {
    /// Name.
    pub name: String,
    /// Labels (what aggregation selects on).
    pub labels: BTreeMap<String, String>,
    /// `aggregationRule.clusterRoleSelectors`, when the role aggregates.
    pub aggregation: Option<Vec<Selector>>,
    /// Stored rules.
    pub rules: Vec<PolicyRule>,
}

impl ClusterRole {
    /// A ClusterRole as stored (a selector that does not parse selects nothing).
    pub fn from_json(role: &Value) -> Self {
        let meta = &role["metadata"];
        let aggregation = role["aggregationRule"].is_object().then(|| {
            role["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .map(|selectors| selectors.iter().filter_map(label_selector).collect())
                .unwrap_or_default()
        });
        Self {
            name: meta["name"].as_str().unwrap_or_default().to_owned(),
            labels: serde_json::from_value(meta["labels"].clone()).unwrap_or_default(),
            aggregation,
            rules: rules_of(role),
        }
    }
}

fn label_selector(value: &Value) -> Option<Selector> {
    let selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(value.clone()).ok()?;
    Selector::try_from(selector).ok()
}

/// The `rules` of a Role or ClusterRole as stored.
pub fn rules_of(role: &Value) -> Vec<PolicyRule> {
    role["rules"]
        .as_array()
        .map(|r| r.iter().map(PolicyRule::from_json).collect())
        .unwrap_or_default()
}

/// The rules of every ClusterRole with an `aggregationRule`, as Kubernetes' clusterrole-
/// aggregation controller computes them: for each selector in order, the rules of the other
/// ClusterRoles it selects (by name), without duplicates. Aggregated roles that select each
/// other settle to a fixed point, as the controller's repeated syncs do.
pub fn aggregate(roles: &[ClusterRole]) -> HashMap<String, Vec<PolicyRule>> {
    let mut sorted: Vec<&ClusterRole> = roles.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut current: HashMap<String, Vec<PolicyRule>> = sorted
        .iter()
        .map(|r| (r.name.clone(), r.rules.clone()))
        .collect();
    // Each round lets aggregation reach one level deeper; the levels are few.
    for _ in 0..=sorted.len() {
        let mut changed = false;
        for role in &sorted {
            let Some(selectors) = &role.aggregation else {
                continue;
            };
            let mut rules: Vec<PolicyRule> = Vec::new();
            for selector in selectors {
                for other in sorted.iter().filter(|o| o.name != role.name) {
                    if !selector.matches(&other.labels) {
                        continue;
                    }
                    for rule in &current[&other.name] {
                        if !rules.contains(rule) {
                            rules.push(rule.clone());
                        }
                    }
                }
            }
            if current[&role.name] != rules {
                current.insert(role.name.clone(), rules);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    sorted
        .iter()
        .filter(|r| r.aggregation.is_some())
        .map(|r| (r.name.clone(), current.remove(&r.name).unwrap_or_default()))
        .collect()
}

/// The outcome of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Kubernetes' reason: `RBAC: allowed by …`, or why bindings were skipped (may be empty).
    pub reason: String,
}

/// Every Role, ClusterRole (aggregation applied) and binding, ready to answer requests.
#[derive(Debug, Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    cluster_bindings: Vec<Binding>,
    bindings: HashMap<String, Vec<Binding>>,
}

/// One role a user holds, and how.
struct Grant<'a> {
    rules: &'a [PolicyRule],
    binding: &'a Binding,
    subject: &'a Subject,
}

impl Policy {
    /// A policy over stored Roles (namespace, name, rules), ClusterRoles and bindings
    /// (RoleBindings and ClusterRoleBindings alike).
    pub fn new(
        roles: Vec<(String, String, Vec<PolicyRule>)>,
        cluster_roles: &[ClusterRole],
        bindings: Vec<Binding>,
    ) -> Self {
        let mut rules: HashMap<String, Vec<PolicyRule>> = cluster_roles
            .iter()
            .map(|r| (r.name.clone(), r.rules.clone()))
            .collect();
        rules.extend(aggregate(cluster_roles));
        let mut policy = Self {
            roles: roles
                .into_iter()
                .map(|(ns, name, rules)| ((ns, name), rules))
                .collect(),
            cluster_roles: rules,
            ..Self::default()
        };
        for binding in bindings {
            if binding.namespace.is_empty() {
                policy.cluster_bindings.push(binding);
            } else {
                policy
                    .bindings
                    .entry(binding.namespace.clone())
                    .or_default()
                    .push(binding);
            }
        }
        policy
    }

    /// The rules of a ClusterRole (aggregated when it aggregates).
    pub fn cluster_role(&self, name: &str) -> Option<&[PolicyRule]> {
        self.cluster_roles.get(name).map(Vec::as_slice)
    }

    /// Visits what `user` holds in `namespace` (ClusterRoleBindings first, then the
    /// namespace's RoleBindings), until `visit` returns true; the errors of bindings whose role
    /// is missing.
    fn visit<'a>(
        &'a self,
        user: &User,
        namespace: &str,
        mut visit: impl FnMut(Grant<'a>) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let local = self
            .bindings
            .get(namespace)
            .filter(|_| !namespace.is_empty());
        let all = self
            .cluster_bindings
            .iter()
            .chain(local.into_iter().flatten());
        for binding in all {
            let Some(subject) = binding
                .subjects
                .iter()
                .find(|s| s.applies_to(user, &binding.namespace))
            else {
                continue;
            };
            let rules = match binding.role_kind.as_str() {
                "ClusterRole" => self.cluster_roles.get(&binding.role_name).ok_or_else(|| {
                    format!(
                        "clusterrole.rbac.authorization.k8s.io {:?} not found",
                        binding.role_name
                    )
                }),
                "Role" if !binding.namespace.is_empty() => self
                    .roles
                    .get(&(binding.namespace.clone(), binding.role_name.clone()))
                    .ok_or_else(|| {
                        format!(
                            "role.rbac.authorization.k8s.io {:?} not found",
                            binding.role_name
                        )
                    }),
                other => Err(format!("unsupported role reference kind: {other:?}")),
            };
            match rules {
                Ok(rules) => {
                    if visit(Grant {
                        rules,
                        binding,
                        subject,
                    }) {
                        break;
                    }
                }
                Err(error) => errors.push(error),
            }
        }
        errors
    }

    /// Whether `user` may do `request` (the privileged group first, then RBAC).
    pub fn authorize(&self, user: &User, request: &Attributes) -> Decision {
        if user.groups.iter().any(|g| g == MASTERS) {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        let namespace = request
            .resource
            .as_ref()
            .map(|r| r.namespace.as_str())
            .unwrap_or_default();
        let mut allowed_by = None;
        let errors = self.visit(user, namespace, |grant| {
            if grant.rules.iter().any(|rule| rule.allows(request)) {
                allowed_by = Some(grant.binding.describe(grant.subject));
                true
            } else {
                false
            }
        });
        match allowed_by {
            Some(by) => Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {by}"),
            },
            None => Decision {
                allowed: false,
                reason: match errors.as_slice() {
                    [] => String::new(),
                    [one] => format!("RBAC: {one}"),
                    many => format!("RBAC: [{}]", many.join(", ")),
                },
            },
        }
    }

    /// Every rule `user` holds in `namespace` (Kubernetes' `RulesFor`) and the errors of
    /// bindings whose role is missing. As in Kubernetes, only bindings count: `system:masters`
    /// shows the rules of its `cluster-admin` binding.
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let errors = self.visit(user, namespace, |grant| {
            rules.extend(grant.rules.iter().cloned());
            false
        });
        (rules, errors)
    }
}

/// The rules of `cluster-admin`: every verb on every resource and URL.
pub fn everything() -> [PolicyRule; 2] {
    let all = vec!["*".to_owned()];
    [
        PolicyRule {
            verbs: all.clone(),
            api_groups: all.clone(),
            resources: all.clone(),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: all.clone(),
            non_resource_urls: all,
            ..PolicyRule::default()
        },
    ]
}
