//! Argo Rollouts' own controller running beside sluice: both would act on the same Rollouts
//! (scale their ReplicaSets, write their status) and fight. It is found by its Deployment
//! (`argo-rollouts`, in any namespace, with replicas > 0; its `--instance-id` read from the
//! container's arguments) or by its held leader-election Lease (`argo-rollouts-controller-lock`,
//! renewed recently). Argo's controller acts on the Rollouts labelled
//! `argo-rollouts.argoproj.io/controller-instance-id` with its `--instance-id`, or on the
//! unlabelled ones without it — a Rollout is contended when its label says the same.
//!
//! Pure: the Rollout controller hands it what its two small watches hold (by name, so they
//! hold next to nothing), `sluice get rollout` what it lists.

use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::Deployment, coordination::v1::Lease};
use kube::ResourceExt;
use sluice_api::names::label;

/// The name of Argo Rollouts' Deployment in its install manifests.
pub const DEPLOYMENT: &str = "argo-rollouts";
/// The name of the Lease Argo's controller holds while it leads.
pub const LEASE: &str = "argo-rollouts-controller-lock";
/// The reason of the Warning event on a contended Rollout.
pub const REASON: &str = "ArgoRolloutsControllerRunning";

/// How long after its last renewal beyond its duration a Lease still counts as held.
const LEASE_SLACK_SECONDS: i64 = 15;
/// Argo's `--leader-election-lease-duration` default.
const LEASE_SECONDS: i64 = 15;

/// A running Argo Rollouts controller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rival {
    /// Where it runs (`Deployment argo-rollouts/argo-rollouts`).
    pub location: String,
    /// Its `--instance-id`; none: it acts on unlabelled Rollouts (also assumed for a controller
    /// found only by its Lease).
    pub instance_id: Option<String>,
}

impl Rival {
    /// Whether it acts on a Rollout labelled with this instance id (none: unlabelled).
    pub fn contends(&self, rollout_instance: Option<&str>) -> bool {
        self.instance_id.as_deref() == rollout_instance
    }

    /// What the Warning says: where it runs, and how to switch.
    pub fn message(&self) -> String {
        let acts_on = match &self.instance_id {
            Some(id) => format!(
                "Rollouts labelled {}={id}, as this one",
                label::CONTROLLER_INSTANCE_ID
            ),
            None => "unlabelled Rollouts, as this one".to_owned(),
        };
        format!(
            "Argo Rollouts' controller is running ({}) and acts on {acts_on}: both controllers \
             would reconcile it. Remove Argo's controller (scale its Deployment to 0 or delete \
             it), or run sluice with --instance-id ID and label the Rollouts it handles {}=ID",
            self.location,
            label::CONTROLLER_INSTANCE_ID
        )
    }
}

/// `--instance-id X` or `--instance-id=X` among a container's command and arguments.
pub fn instance_id(args: &[String]) -> Option<String> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--instance-id" {
            return args.next().filter(|v| !v.is_empty()).cloned();
        }
        if let Some(value) = arg.strip_prefix("--instance-id=") {
            return (!value.is_empty()).then(|| value.to_owned());
        }
    }
    None
}

/// Argo's controller, if this Deployment is it and runs (replicas > 0; 1 when unset).
pub fn from_deployment(deployment: &Deployment) -> Option<Rival> {
    if deployment.name_any() != DEPLOYMENT {
        return None;
    }
    let spec = deployment.spec.as_ref()?;
    if spec.replicas.unwrap_or(1) <= 0 {
        return None;
    }
    let instance_id = spec
        .template
        .spec
        .iter()
        .flat_map(|pod| &pod.containers)
        .find_map(|c| {
            let words: Vec<String> = c
                .command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .cloned()
                .collect();
            instance_id(&words)
        });
    Some(Rival {
        location: format!(
            "Deployment {}/{}",
            deployment.namespace().unwrap_or_default(),
            deployment.name_any()
        ),
        instance_id,
    })
}

/// Argo's controller, if this is its Lease and someone renewed it lately.
pub fn from_lease(lease: &Lease, now: Timestamp) -> Option<Rival> {
    if lease.name_any() != LEASE {
        return None;
    }
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = spec.lease_duration_seconds.map_or(LEASE_SECONDS, i64::from);
    let age = now.duration_since(renewed).as_secs();
    if age > duration + LEASE_SLACK_SECONDS {
        return None;
    }
    Some(Rival {
        location: format!(
            "Lease {}/{} held by {holder}",
            lease.namespace().unwrap_or_default(),
            lease.name_any()
        ),
        instance_id: None,
    })
}

/// The running Argo controllers: by Deployment, and by Lease when no Deployment shows one (a
/// Lease says less: no instance id).
pub fn find<'a>(
    deployments: impl IntoIterator<Item = &'a Deployment>,
    leases: impl IntoIterator<Item = &'a Lease>,
    now: Timestamp,
) -> Vec<Rival> {
    let mut rivals: Vec<Rival> = deployments
        .into_iter()
        .filter_map(from_deployment)
        .collect();
    if rivals.is_empty() {
        rivals.extend(leases.into_iter().filter_map(|l| from_lease(l, now)));
    }
    rivals
}

/// The first running controller that acts on a Rollout labelled with this instance id.
pub fn contending<'a>(rivals: &'a [Rival], rollout_instance: Option<&str>) -> Option<&'a Rival> {
    rivals.iter().find(|r| r.contends(rollout_instance))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use serde_json::json;

    use super::*;

    fn deployment(name: &str, replicas: Option<i32>, args: &[&str]) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "argo-rollouts"},
            "spec": {"replicas": replicas, "selector": {},
                "template": {"spec": {"containers": [{"name": "argo-rollouts",
                    "image": "quay.io/argoproj/argo-rollouts:v1.8.3", "args": args}]}}}
        }))
        .unwrap()
    }

    fn lease(holder: &str, renewed: Timestamp) -> Lease {
        let mut lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": LEASE, "namespace": "argo-rollouts"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}
        }))
        .unwrap();
        lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(renewed));
        lease
    }

    #[test]
    fn reads_the_instance_id_in_both_spellings() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            instance_id(&words(&["--instance-id", "a"])),
            Some("a".into())
        );
        assert_eq!(
            instance_id(&words(&[
                "/bin/rollouts",
                "--loglevel",
                "info",
                "--instance-id=b"
            ])),
            Some("b".into())
        );
        assert_eq!(instance_id(&words(&["--instance-id="])), None);
        assert_eq!(instance_id(&words(&["--instance-id"])), None);
        assert_eq!(instance_id(&words(&["--namespaced"])), None);
    }

    #[test]
    fn a_running_argo_deployment_is_a_rival() {
        let running = from_deployment(&deployment(DEPLOYMENT, None, &[])).unwrap();
        assert_eq!(running.location, "Deployment argo-rollouts/argo-rollouts");
        assert_eq!(running.instance_id, None);
        let labelled = from_deployment(&deployment(DEPLOYMENT, Some(2), &["--instance-id", "x"]));
        assert_eq!(labelled.unwrap().instance_id.as_deref(), Some("x"));
        assert_eq!(from_deployment(&deployment(DEPLOYMENT, Some(0), &[])), None);
        assert_eq!(from_deployment(&deployment("web", Some(1), &[])), None);
    }

    #[test]
    fn a_lease_counts_while_it_is_renewed() {
        let now: Timestamp = "2025-01-01T00:01:00Z".parse().unwrap();
        let recent = now - jiff::SignedDuration::from_secs(10);
        let rival = from_lease(&lease("argo-rollouts-6d9f-abc", recent), now).unwrap();
        assert_eq!(
            rival.location,
            "Lease argo-rollouts/argo-rollouts-controller-lock held by argo-rollouts-6d9f-abc"
        );
        let stale = now - jiff::SignedDuration::from_secs(60);
        assert_eq!(
            from_lease(&lease("argo-rollouts-6d9f-abc", stale), now),
            None
        );
        assert_eq!(from_lease(&lease("", recent), now), None);
        // The Deployment says more (the instance id): the Lease is not counted beside it.
        let found = find(
            [&deployment(DEPLOYMENT, Some(1), &["--instance-id=x"])],
            [&lease("h", recent)],
            now,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].instance_id.as_deref(), Some("x"));
        let by_lease = find(
            [&deployment(DEPLOYMENT, Some(0), &[])],
            [&lease("h", recent)],
            now,
        );
        assert_eq!(by_lease.len(), 1);
    }

    #[test]
    fn argo_contends_for_the_rollouts_its_instance_id_selects() {
        let plain = Rival {
            location: "Deployment argo-rollouts/argo-rollouts".into(),
            instance_id: None,
        };
        let labelled = Rival {
            instance_id: Some("x".into()),
            ..plain.clone()
        };
        // Both controllers without --instance-id: both act on unlabelled Rollouts.
        assert!(plain.contends(None));
        // sluice with --instance-id y handles Rollouts labelled y: Argo's plain one does not.
        assert!(!plain.contends(Some("y")));
        assert!(!labelled.contends(None));
        assert!(!labelled.contends(Some("y")));
        assert!(labelled.contends(Some("x")));
        let rivals = [labelled.clone(), plain.clone()];
        assert_eq!(contending(&rivals, None), Some(&plain));
        assert_eq!(contending(&rivals, Some("z")), None);
        let message = plain.message();
        assert!(message.contains("(Deployment argo-rollouts/argo-rollouts)"));
        assert!(message.contains("acts on unlabelled Rollouts"));
        assert!(message.contains("--instance-id"));
        assert!(labelled.message().contains(
            "acts on Rollouts labelled argo-rollouts.argoproj.io/controller-instance-id=x"
        ));
    }
}
