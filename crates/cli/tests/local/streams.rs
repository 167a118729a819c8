//! kube-rs' `exec` and `portforward` (WebSocket, `v5.channel.k8s.io`) into a demo pod that runs
//! as a local process, through the API server's HTTPS listener like any client.

use futures::SinkExt;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::api::TerminalSize;
use kube::{
    Api, Client, ResourceExt,
    api::{AttachParams, PostParams},
};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::{SHARED, client, demo_deployment, namespace, ready_pods};

/// A client of the shared cluster over HTTPS (upgrades need a real connection).
async fn https_client() -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(SHARED.cluster.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn kube_rs_execs_and_forwards_ports_over_websocket() {
    let client = client();
    let ns = namespace(&client, "ws").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &demo_deployment("web", 1, "blue", json!({})),
        )
        .await
        .unwrap();
    let pod = ready_pods(&Api::namespaced(client.clone(), &ns), "web", 1)
        .await
        .remove(0);
    let ip = pod.status.as_ref().unwrap().pod_ip.clone().unwrap();
    let pods: Api<Pod> = Api::namespaced(https_client().await, &ns);

    // exec: stdin in (and closed), stdout and stderr out, the exit code in the status.
    let script = "read line; echo \"$line from $POD_IP\"; echo oops >&2; exit 2";
    let mut attached = pods
        .exec(
            &pod.name_any(),
            ["sh", "-c", script],
            &AttachParams::default().stdin(true).stderr(true),
        )
        .await
        .unwrap();
    let mut stdin = attached.stdin().unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    stdin.shutdown().await.unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    attached
        .stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    attached
        .stderr()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    let status = attached.take_status().unwrap().await.unwrap();
    assert_eq!(out, format!("hello from {ip}\n"));
    assert_eq!(err, "oops\n");
    assert_eq!(
        status.reason.as_deref(),
        Some("NonZeroExitCode"),
        "{status:?}"
    );
    let code = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(code.message.as_deref(), Some("2"));

    // exec with a TTY: a terminal of the size the client sends, resized while it runs.
    // Each size is read after a line is typed, so no size message can be late for it.
    let script = "read go; stty size; read line; stty size; echo \"got $line\"";
    let mut attached = pods
        .exec(
            &pod.name_any(),
            ["sh", "-c", script],
            &AttachParams::interactive_tty(),
        )
        .await
        .unwrap();
    let mut sizes = attached.terminal_size().unwrap();
    sizes
        .send(TerminalSize {
            width: 80,
            height: 24,
        })
        .await
        .unwrap();
    let mut screen = attached.stdout().unwrap();
    let mut stdin = attached.stdin().unwrap();
    stdin.write_all(b"go\r").await.unwrap();
    let shown = read_until(&mut screen, "24 80\r\n").await;
    assert_eq!(shown, "go\r\n24 80\r\n", "echoed, then the size");
    sizes
        .send(TerminalSize {
            width: 132,
            height: 50,
        })
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stdin.write_all(b"typed\r").await.unwrap();
    let mut rest = String::new();
    tokio::time::timeout(LIMIT, screen.read_to_string(&mut rest))
        .await
        .expect("the terminal's output ends")
        .unwrap();
    assert_eq!(rest, "typed\r\n50 132\r\ngot typed\r\n", "echoed, resized");
    let status = attached.take_status().unwrap().await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"), "{status:?}");

    // port-forward: one request through the forwarded port, answered by the pod.
    let mut forwarder = pods.portforward(&pod.name_any(), &[8080]).await.unwrap();
    let mut stream = forwarder.take_stream(8080).unwrap();
    stream
        .write_all(b"GET /color HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with("\"blue\""),
        "{response}"
    );
    drop(stream);
    // The server closes the connection once the pod's side has ended, as the kubelet does;
    // kube-rs then still sends a close of its own and reports that as an error, so the result
    // of `join` says nothing about the forward.
    let _ = forwarder.join().await;
}

/// How long a step of a terminal session may take before the test fails.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads `from` until what was read ends with `end` (failing after [`LIMIT`]).
async fn read_until(from: &mut (impl AsyncRead + Unpin), end: &str) -> String {
    let mut read = Vec::new();
    let mut byte = [0u8; 1];
    let reading = async {
        while !read.ends_with(end.as_bytes()) {
            let n = from.read(&mut byte).await.unwrap();
            assert!(
                n > 0,
                "ended before {end:?}: {}",
                String::from_utf8_lossy(&read)
            );
            read.push(byte[0]);
        }
    };
    if tokio::time::timeout(LIMIT, reading).await.is_err() {
        panic!(
            "no {end:?} within {LIMIT:?}: {}",
            String::from_utf8_lossy(&read)
        );
    }
    String::from_utf8(read).unwrap()
}
