//! The same binary as a kubectl plugin: linked or installed as `kubectl-argo-rollouts` it *is*
//! `kubectl argo rollouts` (existing scripts and CI workflows call it unchanged), and as
//! `kubectl-sluice` it is `kubectl sluice`. kubectl hands a plugin every argument after the
//! plugin's name, so the kubeconfig flags may come before the verb (`kubectl argo rollouts
//! --context aws get rollout demo`); those are moved after it, where the verbs read them.

use std::{ffi::OsString, path::Path};

/// The flags a cluster is chosen by, with whether they take a value.
const CLUSTER_FLAGS: [(&str, bool); 3] = [
    ("--namespace", true),
    ("--context", true),
    ("--kubeconfig", true),
];

/// What the program is called as: `kubectl argo rollouts`, `kubectl sluice` or `sluice`.
pub fn invoked_as(argv0: &OsString) -> &'static str {
    let name = Path::new(argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    match name {
        "kubectl-argo-rollouts" => "kubectl argo rollouts",
        "kubectl-sluice" => "kubectl sluice",
        _ => "sluice",
    }
}

/// Whether `arg` is one of [`CLUSTER_FLAGS`] (or `-n`): `Some(takes a separate value)`.
fn cluster_flag(arg: &str) -> Option<bool> {
    if arg == "-n" {
        return Some(true);
    }
    if arg.starts_with("-n") && arg.len() > 2 && !arg.starts_with("--") {
        return Some(false);
    }
    CLUSTER_FLAGS.iter().find_map(|(flag, value)| {
        if arg == *flag {
            Some(*value)
        } else {
            arg.strip_prefix(flag)
                .filter(|rest| rest.starts_with('='))
                .map(|_| false)
        }
    })
}

/// The arguments with the cluster flags that come before the verb moved to the end.
pub fn arguments(args: Vec<OsString>) -> Vec<OsString> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    let mut moved = Vec::new();
    let mut verb_seen = false;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        match cluster_flag(&text) {
            Some(takes_value) if !verb_seen => {
                moved.push(arg);
                if takes_value && let Some(value) = args.next() {
                    moved.push(value);
                }
            }
            _ => {
                verb_seen |= !text.starts_with('-');
                out.push(arg);
            }
        }
    }
    out.extend(moved);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        arguments(args.iter().map(OsString::from).collect())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn cluster_flags_before_the_verb_move_after_it() {
        assert_eq!(
            run(&[
                "kubectl-argo-rollouts",
                "--context",
                "aws",
                "-n",
                "shop",
                "get",
                "rollout",
                "demo"
            ]),
            [
                "kubectl-argo-rollouts",
                "get",
                "rollout",
                "demo",
                "--context",
                "aws",
                "-n",
                "shop"
            ]
        );
        assert_eq!(
            run(&[
                "sluice",
                "--kubeconfig=/k",
                "-nshop",
                "promote",
                "demo",
                "--full"
            ]),
            [
                "sluice",
                "promote",
                "demo",
                "--full",
                "--kubeconfig=/k",
                "-nshop"
            ]
        );
        assert_eq!(
            run(&["sluice", "promote", "demo", "-n", "shop"]),
            ["sluice", "promote", "demo", "-n", "shop"],
            "after the verb they stay"
        );
    }

    #[test]
    fn the_name_it_is_called_by_picks_the_plugin() {
        assert_eq!(
            invoked_as(&"/usr/local/bin/kubectl-argo-rollouts".into()),
            "kubectl argo rollouts"
        );
        assert_eq!(invoked_as(&"kubectl-sluice".into()), "kubectl sluice");
        assert_eq!(invoked_as(&"./target/release/sluice".into()), "sluice");
    }
}
