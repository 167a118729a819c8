//! Who a request is. `sluice up` has one administrator, the bearer token of its kubeconfig
//! (user `sluice-admin`, group `system:masters`), and the service accounts of its namespaces,
//! whose tokens it issues itself (`kubectl create token`, the `serviceaccounts/token`
//! subresource): JWTs with Kubernetes' claims, signed HS256 with a key derived from the
//! administrator token, so they survive restarts of `sluice up` on the same data dir and die with
//! it. A service-account token authenticates while it is unexpired, names the API server's
//! audience, and its ServiceAccount still exists with the same uid — as on a real cluster.
//! What each identity may do is RBAC's to say ([`crate::rbac`], checked per request by the API
//! server):
//!
//! | identity | groups | rights |
//! |---|---|---|
//! | `sluice-admin` (the kubeconfig's token) | `system:masters` | everything (privileged group, and the `cluster-admin` binding) |
//! | `system:serviceaccount:NS:NAME` | `system:serviceaccounts`, `system:serviceaccounts:NS` | its bindings, plus what every authenticated user has: `system:discovery`, `system:basic-user`, `system:public-info-viewer` |
//! | anonymous | — | only `/version`, `/healthz`, `/livez`, `/readyz` |
//! | impersonated (`Impersonate-User`, `kubectl --as`) | as asked, plus `system:authenticated` | its bindings; the requester needs `impersonate` |
//! | `system:kube-controller-manager` (the cluster controllers) | — | `system:kube-controller-manager` and the `system:controller:*` role of each of its loops |
//! | `system:kube-scheduler` | — | `system:kube-scheduler` |
//! | `system:node:sluice-local` (the kubelet) | `system:nodes` | `system:node` (no Node authorizer: not limited to its own pods' objects) |
//! | `system:kube-proxy` (the service proxy) | — | `system:node-proxier` |
//! | `sluice:ingress` | — | `sluice:ingress` (ingress-nginx's rules) |
//! | `sluice:rollouts` (`sluice up`'s Rollout and AnalysisRun controllers) | — | `deploy/install.yaml`'s `sluice-controller` rules |
//! | `sluice:gitops` (`sluice up`'s Application controller) | — | `deploy/install.yaml`'s `sluice-gitops-controller` rules |
//! | `sluice:prometheus` (`sluice up --prometheus`'s target discovery) | — | Prometheus' server role |
//!
//! In-process clients are the cluster's own components and, in `sluice up`, sluice's
//! controllers. They reach the API server's router without a socket or a token, but each
//! through its own client ([`crate::apiserver::ApiServer::client_as`]) that names its user on
//! every request, so they are authorized as Kubernetes authorizes its components, by the roles
//! of [`crate::rbac::components`] (which lists the few rights sluice's components need beyond
//! Kubernetes' own, each in a `sluice:*` role), and a refused request is a warning in the log
//! naming user, verb and resource. `sluice up` binds `sluice:rollouts` and `sluice:gitops` to
//! copies of the install's ClusterRoles at every start, so every `sluice up` exercises the
//! install's rules. The garbage collector and the namespace lifecycle make no requests, so
//! nothing checks them: they act through store transactions inside the API server (Kubernetes
//! gives them every resource anyway). [`crate::apiserver::ApiServer::client`] is the
//! administrator's in-process client, for tests and tools. `sluice controller` — the same
//! controllers as a process, with a ServiceAccount token — gets exactly the rights of its
//! bindings, and local pods get their ServiceAccount's ([`crate::kubelet::identity`]).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jiff::Timestamp;
use ring::hmac;
use serde_json::{Value, json};

/// The audience of tokens the API server accepts, Kubernetes' default.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// The lifetime a kubelet asks for its pods' projected tokens (Kubernetes' default).
pub const PROJECTED_TOKEN_SECONDS: i64 = 3607;

/// How long such a token, bound to a pod, really lives: Kubernetes'
/// `--service-account-extend-token-expiration` (on by default) extends it to a year.
pub const EXTENDED_TOKEN_SECONDS: i64 = 365 * 24 * 3600;

/// The user of the cluster controllers (Kubernetes' kube-controller-manager).
pub const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
/// The user of the scheduler.
pub const KUBE_SCHEDULER: &str = "system:kube-scheduler";
/// The user of the service proxy (kube-proxy).
pub const KUBE_PROXY: &str = "system:kube-proxy";
/// The group of every kubelet.
pub const NODES: &str = "system:nodes";
/// The user of the ingress controller.
pub const INGRESS: &str = "sluice:ingress";
/// The user of `sluice up --prometheus`'s target discovery.
pub const PROMETHEUS: &str = "sluice:prometheus";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `sluice-admin`, or `system:serviceaccount:<namespace>:<name>`.
    pub username: String,
    /// The ServiceAccount's uid (empty for the administrator).
    pub uid: String,
    /// Groups, ending with `system:authenticated`.
    pub groups: Vec<String>,
}

impl User {
    /// The administrator of the kubeconfig `sluice up` writes (and of
    /// [`crate::apiserver::ApiServer::client`]).
    pub fn admin() -> Self {
        Self {
            username: "sluice-admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A component of the cluster acting as `username` in `groups` (and
    /// `system:authenticated`), as its client certificate would name it on a real cluster.
    pub fn component(username: &str, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        groups.push("system:authenticated".into());
        Self {
            username: username.to_owned(),
            uid: String::new(),
            groups,
        }
    }

    /// The cluster controllers (kube-controller-manager's loops).
    pub fn controller_manager() -> Self {
        Self::component(KUBE_CONTROLLER_MANAGER, &[])
    }

    /// The scheduler.
    pub fn scheduler() -> Self {
        Self::component(KUBE_SCHEDULER, &[])
    }

    /// The kubelet of node `node`.
    pub fn node(node: &str) -> Self {
        Self::component(&format!("system:node:{node}"), &[NODES])
    }

    /// The service proxy.
    pub fn proxy() -> Self {
        Self::component(KUBE_PROXY, &[])
    }

    /// The ingress controller.
    pub fn ingress() -> Self {
        Self::component(INGRESS, &[])
    }

    /// Prometheus' discovery of scrape targets.
    pub fn prometheus() -> Self {
        Self::component(PROMETHEUS, &[])
    }

    fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.to_owned(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// The `userInfo` of reviews.
    pub fn to_json(&self) -> Value {
        let mut info = json!({"username": self.username, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = json!(self.uid);
        }
        info
    }
}

/// The claims of a token this server issued, once its signature and lifetime are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid when the token was issued.
    pub uid: String,
    /// Audiences.
    pub audiences: Vec<String>,
}

/// Checks bearer tokens and issues service-account tokens.
pub struct Authenticator {
    admin: String,
    key: hmac::Key,
}

impl Authenticator {
    /// An authenticator for the administrator token `admin`.
    pub fn new(admin: &str) -> Self {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, admin.as_bytes());
        let key = hmac::sign(&derive, b"sluice service-account tokens");
        Self {
            admin: admin.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()),
        }
    }

    /// Whether `token` is the administrator's.
    pub fn is_admin(&self, token: &str) -> bool {
        // Compared in constant time: how much of a guess matches does not show in the timing.
        let (a, b) = (token.as_bytes(), self.admin.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// A signed token for a ServiceAccount, valid from `now` for `seconds`.
    pub fn issue(&self, account: &Claims, now: Timestamp, seconds: i64, bound: Value) -> String {
        let header = json!({"alg": "HS256", "typ": "JWT"});
        let issued = now.as_second();
        let mut kubernetes = json!({
            "namespace": account.namespace,
            "serviceaccount": {"name": account.name, "uid": account.uid},
        });
        if let Some(kind) = bound["kind"].as_str() {
            kubernetes[kind.to_lowercase()] = json!({"name": bound["name"], "uid": bound["uid"]});
        }
        let claims = json!({
            "aud": account.audiences,
            "exp": issued + seconds,
            "iat": issued,
            "nbf": issued,
            "iss": API_AUDIENCE,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": format!("system:serviceaccount:{}:{}", account.namespace, account.name),
            "kubernetes.io": kubernetes,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// The claims of `token` if this server signed it and it is valid at `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Option<Claims> {
        let (signed, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        hmac::verify(&self.key, signed.as_bytes(), &signature).ok()?;
        let (_, claims) = signed.split_once('.')?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
        let second = now.as_second();
        if claims["exp"].as_i64()? <= second || claims["nbf"].as_i64()? > second + 60 {
            return None;
        }
        let kubernetes = &claims["kubernetes.io"];
        Some(Claims {
            namespace: kubernetes["namespace"].as_str()?.to_owned(),
            name: kubernetes["serviceaccount"]["name"].as_str()?.to_owned(),
            uid: kubernetes["serviceaccount"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            audiences: claims["aud"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
        })
    }

    /// Who presents `token`, for a request that needs one of `audiences`: the administrator,
    /// or the ServiceAccount of a valid token whose account `exists` (namespace, name, uid).
    pub fn authenticate(
        &self,
        token: &str,
        audiences: &[&str],
        now: Timestamp,
        exists: impl FnOnce(&str, &str, &str) -> bool,
    ) -> Option<User> {
        if self.is_admin(token) {
            return Some(User::admin());
        }
        let claims = self.verify(token, now)?;
        let audience_ok = claims
            .audiences
            .iter()
            .any(|a| audiences.contains(&a.as_str()));
        (audience_ok && exists(&claims.namespace, &claims.name, &claims.uid))
            .then(|| User::service_account(&claims.namespace, &claims.name, &claims.uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Claims {
        Claims {
            namespace: "shop".into(),
            name: "robot".into(),
            uid: "u-1".into(),
            audiences: vec![API_AUDIENCE.into()],
        }
    }

    #[test]
    fn issued_tokens_authenticate_their_account_until_they_expire() {
        let auth = Authenticator::new("admin-token");
        let now: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let token = auth.issue(&account(), now, 3600, Value::Null);
        let user = auth
            .authenticate(&token, &[API_AUDIENCE], now, |ns, n, uid| {
                (ns, n, uid) == ("shop", "robot", "u-1")
            })
            .unwrap();
        assert_eq!(user.username, "system:serviceaccount:shop:robot");
        assert!(user.groups.contains(&"system:serviceaccounts:shop".into()));
        let later = now + jiff::SignedDuration::from_secs(3600);
        assert_eq!(
            auth.authenticate(&token, &[API_AUDIENCE], later, |_, _, _| true),
            None
        );
        // A deleted (or recreated) account's tokens stop working.
        assert_eq!(
            auth.authenticate(&token, &[API_AUDIENCE], now, |_, _, _| false),
            None
        );
        // Another audience is not the API server's.
        let vault = Claims {
            audiences: vec!["vault".into()],
            ..account()
        };
        let token = auth.issue(&vault, now, 3600, Value::Null);
        assert_eq!(
            auth.authenticate(&token, &[API_AUDIENCE], now, |_, _, _| true),
            None
        );
        assert!(auth.verify(&token, now).is_some());
    }

    #[test]
    fn forged_and_foreign_tokens_do_not() {
        let auth = Authenticator::new("admin-token");
        let other = Authenticator::new("another-cluster");
        let now = Timestamp::now();
        let token = other.issue(&account(), now, 3600, Value::Null);
        assert_eq!(auth.verify(&token, now), None);
        let mine = auth.issue(&account(), now, 3600, Value::Null);
        let (head, _) = mine.rsplit_once('.').unwrap();
        assert_eq!(auth.verify(&format!("{head}.AAAA"), now), None);
        assert_eq!(auth.verify("not a token", now), None);
        assert_eq!(
            auth.authenticate("admin-token", &[], now, |_, _, _| false),
            Some(User::admin())
        );
    }
}
