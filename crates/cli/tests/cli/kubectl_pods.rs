//! Reaching into pods that run as local processes, with kubectl against `sluice up`: `exec`,
//! `exec -it` on a terminal, `cp`, `port-forward`, `attach`, `run -i`, `run -it`, `debug -it`
//! and `top`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use super::kubectl_cluster::until;
use sluice_testkit::process::{KubectlSession, Running};

use crate::SLUICE;

/// `sluice up` with only the cluster, whose pods may run commands on this host.
const HOST_EXEC: [&str; 4] = [
    "--no-controllers",
    "--ingress-listen",
    "off",
    "--allow-host-exec",
];

/// kubectl with its arguments, in the background (killed when dropped), and its first line;
/// the rest of its output is drained (kubectl writes a line per forwarded connection).
fn background(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> (Running, String) {
    background_with(kubectl, kubeconfig, args, &[])
}

/// [`background`] with more environment (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`, …).
fn background_with(
    kubectl: &Path,
    kubeconfig: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Running, String) {
    let mut child = Command::new(kubectl)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (Running(child), line)
}

/// Runs kubectl on a terminal (util-linux `script`, 100 columns by 30 rows) as someone typing
/// `typed`; kubectl's exit code and what the terminal showed.
fn on_terminal(
    kubectl: &Path,
    kubeconfig: &Path,
    args: &[&str],
    typed: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let line = format!(
        "stty cols 100 rows 30; exec {} {}",
        kubectl.display(),
        args.join(" ")
    );
    // `timeout`: a session that goes wrong fails the test instead of hanging it.
    let mut child = Command::new("timeout")
        .args(["120", "script", "-qec", &line, "/dev/null"])
        .env("KUBECONFIG", kubeconfig)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Not read here: into the test's output.
        .stderr(Stdio::inherit())
        .spawn()
        .expect("util-linux script (scripts/test.sh installs it)");
    // Keystrokes stay open until kubectl is done: an end of input would hang up the terminal.
    let mut keys = child.stdin.take().unwrap();
    keys.write_all(typed.as_bytes()).unwrap();
    let mut screen = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut screen)
        .unwrap();
    let status = child.wait().unwrap();
    drop(keys);
    (status.code(), screen)
}

/// The local port of kubectl port-forward's first line (`Forwarding from 127.0.0.1:PORT -> …`).
fn forwarded_port(line: &str) -> u16 {
    line.split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// An HTTP GET of `path` on 127.0.0.1:`port`: the response body.
fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}

#[test]
fn exec_cp_and_port_forward_reach_local_processes() {
    let Some(session) = KubectlSession::start(SLUICE, &HOST_EXEC) else {
        return;
    };
    let (kubectl, kubeconfig, dir) = (&session.kubectl, &session.kubeconfig, &session.dir);
    let k = |args: &[&str]| session.run(args);
    let ok = |args: &[&str]| session.ok(args);
    ok(&[
        "create",
        "deployment",
        "demo",
        "--image=argoproj/rollouts-demo:blue",
        "--port=8080",
    ]);
    ok(&["create", "deployment", "simulated", "--image=nginx:1.25"]);
    ok(&[
        "expose",
        "deployment",
        "demo",
        "--port=80",
        "--target-port=8080",
    ]);
    ok(&["rollout", "status", "deploy/demo", "--timeout=60s"]);
    ok(&["rollout", "status", "deploy/simulated", "--timeout=60s"]);
    let pod = ok(&[
        "get",
        "pods",
        "-l",
        "app=demo",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let ip = ok(&["get", "pod", &pod, "-o", "jsonpath={.status.podIP}"]);

    // exec: output, the container's environment, and the exit code kubectl exits with.
    let out = Command::new(kubectl)
        .args([
            "exec",
            &pod,
            "--",
            "sh",
            "-c",
            "echo \"$POD_IP $PORT\"; echo oops >&2; exit 3",
        ])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{ip} 8080\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("oops"));
    // stdin, closed when kubectl's ends.
    let mut cat = Command::new(kubectl)
        .args(["exec", "-i", &pod, "--", "wc", "-c"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cat.stdin
        .take()
        .unwrap()
        .write_all(&[b'x'; 100_000])
        .unwrap();
    let counted = cat.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&counted.stdout).trim(), "100000");
    let (failed, out) = k(&["exec", "deploy/simulated", "--", "ls"]);
    assert!(!failed && out.contains("runs no local process"), "{out}");

    // cp, both ways, through tar over exec.
    let local = dir.path().join("notes.txt");
    std::fs::write(&local, "first line\nsecond line\n").unwrap();
    ok(&["cp", local.to_str().unwrap(), &format!("{pod}:notes.txt")]);
    assert_eq!(
        ok(&["exec", &pod, "--", "cat", "notes.txt"]),
        "first line\nsecond line\n"
    );
    let back = dir.path().join("back.txt");
    ok(&["cp", &format!("{pod}:notes.txt"), back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&back).unwrap(),
        "first line\nsecond line\n"
    );

    // port-forward to the pod and through the Service, several connections each.
    for target in [format!("pod/{pod}"), "svc/demo".to_owned()] {
        let remote = if target.starts_with("svc") {
            ":80"
        } else {
            ":8080"
        };
        let (_forward, line) = background(kubectl, kubeconfig, &["port-forward", &target, remote]);
        let port = forwarded_port(&line);
        for round in 0..3 {
            let body = get(port, "/color").unwrap_or_else(|e| panic!("{target} #{round}: {e}"));
            assert_eq!(body, "\"blue\"", "{target}");
        }
    }
    // kubectl 1.31+ speaks WebSocket first; the SPDY it falls back to (and older kubectls
    // speak) works too.
    let spdy = [
        ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false"),
        ("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false"),
    ];
    let out = Command::new(kubectl)
        .args(["exec", &pod, "--", "sh", "-c", "echo spdy; exit 4"])
        .env("KUBECONFIG", kubeconfig)
        .envs(spdy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "spdy\n");
    // `exec -it`: an interactive shell on a terminal of kubectl's size, over both protocols.
    for env in [&[][..], &spdy[..]] {
        let typed = "stty size; tty; echo \"term=$TERM\"\nexit 5\n";
        let (code, screen) = on_terminal(
            kubectl,
            kubeconfig,
            &["exec", "-it", &pod, "--", "sh"],
            typed,
            env,
        );
        assert_eq!(code, Some(5), "{screen}");
        assert!(
            screen.contains("30 100\r\n"),
            "the terminal's size: {screen}"
        );
        assert!(screen.contains("/dev/pts/"), "a terminal: {screen}");
        assert!(screen.contains("term=xterm\r\n"), "{screen}");
    }
    let (_forward, line) =
        background_with(kubectl, kubeconfig, &["port-forward", &pod, ":8080"], &spdy);
    let port = forwarded_port(&line);
    assert_eq!(get(port, "/color").unwrap(), "\"blue\"");

    // A port nothing listens on: the connection fails and kubectl reports the pod's error.
    let (mut refused, line) = background(kubectl, kubeconfig, &["port-forward", &pod, ":9"]);
    let port = forwarded_port(&line);
    assert_eq!(get(port, "/").unwrap_or_default(), "");
    let status = refused.0.wait().unwrap();
    let mut stderr = String::new();
    refused
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("connection refused") || stderr.contains("Connection refused"),
        "{stderr}"
    );
}

#[test]
fn attach_run_debug_and_top_reach_running_containers() {
    let Some(session) = KubectlSession::start(SLUICE, &HOST_EXEC) else {
        return;
    };
    let (kubectl, kubeconfig) = (&session.kubectl, &session.kubeconfig);
    let k = |args: &[&str]| session.run(args);
    let ok = |args: &[&str]| session.ok(args);

    // `kubectl run -i`: the pod gets stdin (once), kubectl attaches and types into it, then
    // exits with the container's exit code.
    let mut run = Command::new(kubectl)
        .args([
            "run",
            "talk",
            "-i",
            "--restart=Never",
            "--image=busybox",
            "--command",
            "--",
        ])
        .args([
            "sh",
            "-c",
            "read line; echo \"got $line\"; echo bye >&2; exit 3",
        ])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    run.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("got hello\n"), "{stdout}{stderr}");
    assert!(stderr.contains("bye\n"), "{stdout}{stderr}");
    assert_eq!(
        ok(&[
            "get",
            "pod",
            "talk",
            "-o",
            "jsonpath={.spec.containers[0].stdinOnce}"
        ]),
        "true"
    );

    // `kubectl attach`: the output of a running container from now on, until it exits.
    // It ticks until the test, once attached, tells it to stop.
    let ticks = "i=0; until [ -e stop ]; do i=$((i+1)); echo tick $i; sleep 0.2; done; \
                 echo bye; echo leaving >&2";
    // A pod running a shell script on this host (the exec runtime), started.
    let run_script = |name: &str, script: &str| {
        let image = ["--restart=Never", "--image=busybox", "--command", "--"];
        ok(&[&["run", name][..], &image, &["sh", "-c", script]].concat());
    };
    run_script("ticker", ticks);
    ok(&[
        "wait",
        "pod/ticker",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    let mut attach = Command::new(kubectl)
        .args(["attach", "ticker"])
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut screen = BufReader::new(attach.stdout.take().unwrap());
    let mut first = String::new();
    screen.read_line(&mut first).unwrap();
    assert!(first.starts_with("tick "), "{first}");
    ok(&["exec", "ticker", "--", "touch", "stop"]);
    let mut rest = String::new();
    screen.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    attach
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(attach.wait().unwrap().success(), "{rest}{stderr}");
    let lines: Vec<&str> = rest.lines().collect();
    assert_eq!(lines.last(), Some(&"bye"), "until it exited: {rest}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.starts_with("tick ")),
        "{rest}"
    );
    assert!(stderr.contains("leaving\n"), "stderr apart: {stderr}");

    // An attach's input ending ends that attach; a stdin kept open (no stdinOnce) stays open
    // for the next, and the container runs on.
    ok(&[
        "run",
        "echoer",
        "--restart=Never",
        "--image=busybox",
        "--stdin",
        "--attach=false",
        "--leave-stdin-open",
        "--command",
        "--",
        "cat",
    ]);
    ok(&[
        "wait",
        "pod/echoer",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    for word in ["first", "second"] {
        let mut attach = Command::new("timeout")
            .args(["60", kubectl.to_str().unwrap(), "attach", "-i", "echoer"])
            .env("KUBECONFIG", kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut keys = attach.stdin.take().unwrap();
        keys.write_all(format!("{word}\n").as_bytes()).unwrap();
        let mut screen = BufReader::new(attach.stdout.take().unwrap());
        let mut line = String::new();
        screen.read_line(&mut line).unwrap();
        assert_eq!(line, format!("{word}\n"));
        drop(keys);
        assert!(attach.wait().unwrap().success(), "ends with its input");
    }
    assert_eq!(
        ok(&["get", "pod", "echoer", "-o", "jsonpath={.status.phase}"]),
        "Running"
    );

    // `kubectl run -it --image=busybox -- sh`, the idiom: a `tty: true` container on a
    // terminal of its own, typed into (args alone run, as they name a program here).
    let typed = "echo \"typed-$((40+2))\"\nexit 7\n";
    let (code, screen) = on_terminal(
        kubectl,
        kubeconfig,
        &["run", "tty", "-it", "--image=busybox", "--", "sh"],
        typed,
        &[],
    );
    assert!(screen.contains("typed-42\r\n"), "{screen}");
    assert_eq!(code, Some(0), "the session ended: {screen}");
    // Its restart policy is Always: the shell is started again, ready for `attach -it`.
    let restarts = || {
        let path = "jsonpath={.status.containerStatuses[0].restartCount}";
        ok(&["get", "pod", "tty", "-o", path])
    };
    assert!(until(|| restarts() == "1"), "{}", restarts());
    assert_eq!(
        ok(&[
            "get",
            "pod",
            "tty",
            "-o",
            "jsonpath={.spec.containers[0].tty}"
        ]),
        "true"
    );

    // Nothing to attach to: a finished pod (kubectl's own check), a simulated container.
    let (failed, out) = k(&["attach", "ticker"]);
    assert!(!failed && out.contains("completed pod"), "{out}");
    ok(&["run", "simulated", "--image=nginx:1.25"]);
    ok(&[
        "wait",
        "pod/simulated",
        "--for=condition=Ready",
        "--timeout=60s",
    ]);
    let (failed, out) = k(&["attach", "simulated"]);
    assert!(!failed && out.contains("runs no local process"), "{out}");

    // `kubectl debug -it`: an ephemeral container added to a running pod, on a terminal,
    // run once; kubectl attaches to it.
    let typed = "echo \"debugging-$((6*7))\"\nexit 4\n";
    let (code, screen) = on_terminal(
        kubectl,
        kubeconfig,
        &[
            "debug",
            "-it",
            "simulated",
            "--image=busybox",
            "--profile=general",
            "--",
            "sh",
        ],
        typed,
        &[],
    );
    assert!(screen.contains("debugging-42\r\n"), "{screen}");
    assert_eq!(
        code,
        Some(0),
        "kubectl debug ends with its session: {screen}"
    );
    let state = |field: &str| {
        let path = format!("jsonpath={{.status.ephemeralContainerStatuses[0].{field}}}");
        ok(&["get", "pod", "simulated", "-o", &path])
    };
    assert!(
        until(|| state("state.terminated.exitCode") == "4"),
        "{}",
        state("state")
    );
    let debugger = ok(&[
        "get",
        "pod",
        "simulated",
        "-o",
        "jsonpath={.spec.ephemeralContainers[0].name}",
    ]);
    assert!(
        ok(&["logs", "simulated", "-c", &debugger]).contains("debugging-42"),
        "its log"
    );
    assert_eq!(
        ok(&["get", "pod", "simulated", "-o", "jsonpath={.status.phase}"]),
        "Running",
        "the pod goes on"
    );

    // `kubectl top`: what a local process uses, measured; a simulated container uses nothing.
    run_script("spin", "while :; do :; done");
    ok(&["wait", "pod/spin", "--for=condition=Ready", "--timeout=60s"]);
    let millicores = |line: &str| -> u64 {
        let cell = line.split_whitespace().nth(1).unwrap_or_default();
        cell.trim_end_matches('m').parse().unwrap_or(0)
    };
    assert!(
        until(|| ok(&["top", "pod", "spin", "--no-headers"])
            .lines()
            .any(|l| millicores(l) >= 10)),
        "a spinning shell uses CPU: {}",
        ok(&["top", "pod", "--no-headers"])
    );
    let pods = ok(&["top", "pod", "--no-headers"]);
    let simulated = pods.lines().find(|l| l.starts_with("simulated ")).unwrap();
    assert_eq!(
        simulated.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["0m", "0Mi"],
        "{pods}"
    );
    let node = ok(&["top", "node", "--no-headers"]);
    let cells: Vec<&str> = node.split_whitespace().collect();
    assert_eq!(cells.first(), Some(&"sluice-local"), "{node}");
    assert!(cells[3].ends_with("Mi") && cells[3] != "0Mi", "{node}");
    ok(&["delete", "pod", "spin", "--wait=false"]);
}
