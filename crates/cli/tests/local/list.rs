//! `sluice list rollouts` on the cluster: a canary paused at its first pause (`Paused`, step
//! `1/4`, the weight its last `setWeight` set) in one namespace and a healthy blue-green one
//! (`-` for step and weight) in another; `-A` with the NAMESPACE column, `--name`,
//! `--timestamps`, `--watch` printing the row that changed, and the same through the
//! `kubectl-argo-rollouts` link with the kubeconfig flags before the verb.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use k8s_openapi::api::core::v1::Service;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::json;
use sluice_api::Rollout;

use super::{SHARED, client, eventually, from, namespace, rollouts::sluice, service};

fn rollout(name: &str, strategy: serde_json::Value) -> Rollout {
    from(
        json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": "example.com/app:1"}]}},
            "strategy": strategy}}),
    )
}

/// The cells of the rows of `table` (after its header) whose NAME (or NAMESPACE and NAME)
/// is `name`.
fn row(table: &str, name: &str) -> Option<Vec<String>> {
    table.lines().skip(1).find_map(|line| {
        let cells: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        cells.iter().take(2).any(|c| c == name).then_some(cells)
    })
}

fn list(ns: &str, flags: &[&str]) -> String {
    let mut args = vec!["list", "rollouts"];
    args.extend(flags);
    sluice(&args, ns)
}

#[tokio::test]
async fn list_rollouts_shows_each_strategy_as_argo_does() {
    let client = client();
    let canary_ns = namespace(&client, "list-canary").await;
    let blue_green_ns = namespace(&client, "list-bluegreen").await;
    let canaries: Api<Rollout> = Api::namespaced(client.clone(), &canary_ns);
    let blue_greens: Api<Rollout> = Api::namespaced(client.clone(), &blue_green_ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &blue_green_ns);
    services
        .create(&PostParams::default(), &service("bg-active", 80))
        .await
        .unwrap();
    let steps = json!({"canary": {"steps": [
        {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"setWeight": 75}]}});
    canaries
        .create(&PostParams::default(), &rollout("shop", steps))
        .await
        .unwrap();
    blue_greens
        .create(
            &PostParams::default(),
            &rollout("bg", json!({"blueGreen": {"activeService": "bg-active"}})),
        )
        .await
        .unwrap();

    // The first version goes straight to healthy: past the last step, all the weight.
    let want = [
        "shop", "Canary", "Healthy", "4/4", "100", "2/2", "2", "2", "2",
    ];
    eventually("the canary healthy", || async {
        row(&list(&canary_ns, &[]), "shop").is_some_and(|r| r == want)
    })
    .await;
    let image: json_patch::Patch = serde_json::from_value(json!([{"op": "replace",
        "path": "/spec/template/spec/containers/0/image", "value": "example.com/app:2"}]))
    .unwrap();
    canaries
        .patch("shop", &PatchParams::default(), &Patch::<()>::Json(image))
        .await
        .unwrap();
    eventually("the canary paused at step 1 of 4", || async {
        row(&list(&canary_ns, &[]), "shop").is_some_and(|r| r[2..5] == ["Paused", "1/4", "25"])
    })
    .await;
    let table = list(&canary_ns, &[]);
    // Argo's padding: NAME is at least 10 wide, plus the table's two spaces.
    assert!(
        table.starts_with(
            "NAME        STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE\n"
        ),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2, "{table}");
    let shop = row(&table, "shop").unwrap();
    assert_eq!(shop[..5], ["shop", "Canary", "Paused", "1/4", "25"]);
    assert_eq!(shop[6], "2", "DESIRED");

    let want = ["bg", "BlueGreen", "Healthy", "-", "-", "2/2", "2", "2", "2"];
    eventually("the blue-green row healthy", || async {
        row(&list(&blue_green_ns, &[]), "bg").is_some_and(|r| r == want)
    })
    .await;

    // All namespaces: NAMESPACE first; other tests' Rollouts may be listed too.
    let all = list(&canary_ns, &["-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE")
            && all.lines().next().unwrap().contains("  NAME  "),
        "{all}"
    );
    let shop = row(&all, "shop").unwrap();
    assert_eq!(
        shop[..6],
        [canary_ns.as_str(), "shop", "Canary", "Paused", "1/4", "25"]
    );
    let bg = row(&all, "bg").unwrap();
    assert_eq!(
        bg,
        [
            blue_green_ns.as_str(),
            "bg",
            "BlueGreen",
            "Healthy",
            "-",
            "-",
            "2/2",
            "2",
            "2",
            "2"
        ]
    );

    // --name and --timestamps.
    let named = list(&canary_ns, &["-A", "--name", "bg", "--timestamps"]);
    assert!(
        named.starts_with("TIMESTAMP             NAMESPACE"),
        "{named}"
    );
    assert_eq!(named.lines().count(), 2, "{named}");
    let cells: Vec<&str> = named.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(cells[0].len() == 20 && cells[0].ends_with('Z'), "{named}");
    assert_eq!(cells[1..4], [blue_green_ns.as_str(), "bg", "BlueGreen"]);
    let none = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "list",
            "rollouts",
            "--name",
            "absent",
            "-n",
            &canary_ns,
            "--kubeconfig",
        ])
        .arg(SHARED.cluster.kubeconfig())
        .output()
        .unwrap();
    assert!(none.status.success() && none.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&none.stderr),
        "No resources found.\n"
    );

    // Through the plugin link, kubeconfig flags before the verb as kubectl passes them.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl-argo-rollouts");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice"), &link).unwrap();
    let out = Command::new(&link)
        .arg("--kubeconfig")
        .arg(SHARED.cluster.kubeconfig())
        .args(["-n", &blue_green_ns, "list", "rollout"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        row(&table, "bg").unwrap()[..4],
        ["bg", "BlueGreen", "Healthy", "-"]
    );

    // --watch: the table, then a line when the canary's row changes (promoted to step 2).
    let mut watching = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["list", "rollouts", "-w", "-n", &canary_ns, "--kubeconfig"])
        .arg(SHARED.cluster.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = watching.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next = || received.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(next().starts_with("NAME"));
    assert_eq!(
        next().split_whitespace().take(4).collect::<Vec<_>>(),
        ["shop", "Canary", "Paused", "1/4"]
    );
    sluice(&["promote", "shop"], &canary_ns);
    let mut seen = Vec::new();
    let promoted = loop {
        let line = next();
        let cells: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        seen.push(line);
        if cells[3] != "1/4" {
            break cells;
        }
        assert!(seen.len() < 50, "{seen:#?}");
    };
    let _ = watching.kill();
    let _ = watching.wait();
    assert_eq!(promoted[..2], ["shop", "Canary"], "{seen:#?}");
    assert_ne!(promoted[4], "25", "the new step's weight: {seen:#?}");
}
