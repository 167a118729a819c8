//! Applications on repositories served over ssh by a real sshd (on a free loopback port, as
//! the current user): refused while the host key is not in `argocd-ssh-known-hosts-cm`
//! (`key is unknown`) or differs from it (`key mismatch`), nothing applied; synced once the
//! ConfigMap lists the server's key, with the Secret's `sshPrivateKey`; synced without known
//! hosts when the Secret says `insecure: "true"`; `sluice app diff` fetches the same way; the
//! key's text in no status, event or output.

use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use sluice_testkit::sshd::Sshd;

use super::gitops::{
    app_status, apps, automated, config_map_yaml, create_application, served_repository, sync_is,
};
use super::gitops_apps::sluice;
use super::gitops_waves::wait_for;
use super::*;

const KNOWN_HOSTS: &str = "argocd-ssh-known-hosts-cm";

/// A repository Secret for `url` holding `key`, and `insecure` when asked.
async fn repository_secret(name: &str, url: &str, key: &str, insecure: bool) {
    let mut data = json!({"type": "git", "url": url, "sshPrivateKey": key});
    if insecure {
        data["insecure"] = json!("true");
    }
    let secret: Secret = from(json!({
        "metadata": {"name": name, "namespace": "argocd",
            "labels": {"argocd.argoproj.io/secret-type": "repository"}},
        "stringData": data,
    }));
    Api::<Secret>::namespaced(client(), "argocd")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// Sets the known hosts ConfigMap's `ssh_known_hosts` to `lines`.
async fn known_hosts(lines: &str) {
    let map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": KNOWN_HOSTS, "namespace": "argocd"},
        "data": {"ssh_known_hosts": lines}});
    Api::<ConfigMap>::namespaced(client(), "argocd")
        .patch(
            KNOWN_HOSTS,
            &PatchParams::apply("gitops-ssh-test").force(),
            &Patch::Apply(map),
        )
        .await
        .unwrap();
}

fn comparison_error(s: &Value) -> Option<String> {
    s["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ComparisonError")
        .map(|c| c["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn an_ssh_repository_syncs_only_with_a_known_host_key_or_insecure() {
    let Some(sshd) = Sshd::start() else {
        return;
    };
    let ns = namespace(&client(), "gitops-ssh").await;
    let root = tempfile::tempdir().unwrap();
    let one = config_map_yaml("over-ssh");
    let _work = served_repository(root.path(), "cd.git", &[("one.yaml", &one)]);
    let two = config_map_yaml("over-ssh-insecure");
    let _work2 = served_repository(root.path(), "loose.git", &[("two.yaml", &two)]);
    let url = sshd.url(&root.path().join("cd.git"));
    let loose_url = sshd.url(&root.path().join("loose.git"));
    let key = sshd.client_key.clone();
    let maps: Api<ConfigMap> = Api::namespaced(client(), &ns);

    // Insecure: no known hosts needed (none are configured yet).
    let loose = format!("{ns}-insecure");
    repository_secret(&format!("{ns}-loose"), &loose_url, &key, true).await;
    let source = json!({"repoURL": loose_url, "targetRevision": "main", "path": ""});
    create_application(&loose, "default", source, &ns, automated()).await;
    wait_for(&loose, "Synced over ssh with insecure", 60, |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    assert!(maps.get_opt("over-ssh-insecure").await.unwrap().is_some());

    // Checked: refused while the server's key is not known.
    let name = format!("{ns}-app");
    repository_secret(&format!("{ns}-repo"), &url, &key, false).await;
    let source = json!({"repoURL": url, "targetRevision": "main", "path": ""});
    create_application(&name, "default", source, &ns, automated()).await;
    let s = wait_for(&name, "refused: the host key is unknown", 60, |s| {
        comparison_error(s).is_some_and(|m| m.contains("knownhosts: key is unknown"))
    })
    .await;
    let message = comparison_error(&s).unwrap();
    assert!(
        message.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{message}"
    );

    // A different key for that host and port: a mismatch, and still nothing applied.
    known_hosts(&format!(
        "# not this server\n[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
        sshd.port
    ))
    .await;
    wait_for(&name, "refused: key mismatch", 60, |s| {
        comparison_error(s).is_some_and(|m| m.contains("knownhosts: key mismatch"))
    })
    .await;
    assert!(maps.get_opt("over-ssh").await.unwrap().is_none());
    assert_ne!(app_status(&name).await["sync"]["status"], "Synced");

    // The server's own key listed (beside another host's): synced.
    known_hosts(&format!(
        "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n{}\n",
        sshd.known_hosts_line()
    ))
    .await;
    let s = wait_for(&name, "Synced over ssh", 60, |s| {
        sync_is(s, "Synced", "Healthy")
    })
    .await;
    assert!(comparison_error(&s).is_none(), "{s}");
    assert!(maps.get_opt("over-ssh").await.unwrap().is_some());

    // `sluice app diff` fetches over ssh with the same Secret and known hosts: no difference.
    let out = sluice(&["app", "diff", &name]).await;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{printed}");

    // The private key is nowhere to be read but in its Secret.
    let secret_line = key
        .lines()
        .find(|l| l.len() > 40)
        .expect("a line of the key's body");
    assert!(!printed.contains(secret_line), "{printed}");
    for app in [&name, &loose] {
        let s = app_status(app).await;
        assert!(!s.to_string().contains(secret_line), "{s}");
    }
    for event in Api::<Event>::all(client())
        .list(&Default::default())
        .await
        .unwrap()
    {
        let text = serde_json::to_string(&event).unwrap();
        assert!(!text.contains(secret_line), "{text}");
    }

    for app in [&name, &loose] {
        apps().delete(app, &DeleteParams::default()).await.unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(client(), "argocd");
    for secret in [format!("{ns}-repo"), format!("{ns}-loose")] {
        secrets
            .delete(&secret, &DeleteParams::default())
            .await
            .unwrap();
    }
}
