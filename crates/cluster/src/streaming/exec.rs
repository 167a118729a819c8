//! `pods/exec` over SPDY, protocol `v4.channel.k8s.io` (with `v3`/`v2`/`channel.k8s.io` for
//! older clients): the client opens an `error` stream and, as it asked, `stdin`, `stdout`,
//! `stderr` and `resize`; the command runs once they are all open; stdin's end closes the
//! command's stdin (what `kubectl cp` and `echo x | kubectl exec -i` need); at the end stdout and
//! stderr finish and the error stream carries the outcome, a `Status` with the exit code
//! (`NonZeroExitCode`) that kubectl exits with. A client that goes away kills the command.

use std::{process::Stdio, time::Duration};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    process::Command,
};

use super::{
    ExecContext,
    session::{Session, Stream, Writer, until_closed},
};
use crate::{
    apiserver::{ApiError, ApiServer, ResourcePath},
    kubelet::group::{self, Signal},
    object::meta_str,
};

/// The protocols served, best first.
pub const PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// How long the client has to open its streams.
const STREAMS_TIMEOUT: Duration = Duration::from_secs(30);

/// An exec request, checked.
pub struct Exec {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    context: ExecContext,
}

/// Checks an exec request: the pod, the container, the command, and that a command can run
/// there.
///
/// # Errors
/// 400 naming what is wrong, as the API server and kubelet answer.
pub fn prepare(server: &ApiServer, path: &ResourcePath, query: &str) -> Result<Exec, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let flag = |key: &str| {
        pairs
            .iter()
            .any(|(k, v)| k == key && matches!(v.as_str(), "true" | "1"))
    };
    let command: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let container = pairs
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.as_str());
    let (pod, container) = super::target(server, path, container)?;
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let (stdin, stdout, stderr, tty) = (flag("stdin"), flag("stdout"), flag("stderr"), flag("tty"));
    if !stdin && !stdout && !stderr {
        return Err(ApiError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let uid = meta_str(&pod, "uid");
    let context = server
        .containers()
        .ok_or_else(|| "this cluster runs no kubelet".to_owned())
        .and_then(|c| c.exec_context(uid, &container))
        .map_err(|why| {
            ApiError::bad_request(format!(
                "unable to exec in container {container} of pod {}: {why}",
                meta_str(&pod, "name")
            ))
        })?;
    Ok(Exec {
        command,
        stdin,
        stdout,
        stderr: stderr && !tty,
        tty,
        context,
    })
}

/// The streams of one exec, by type.
#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

impl Exec {
    fn complete(&self, streams: &Streams) -> bool {
        streams.error.is_some()
            && streams.stdin.is_some() == self.stdin
            && streams.stdout.is_some() == self.stdout
            && streams.stderr.is_some() == self.stderr
            && streams.resize.is_some() == self.tty
    }

    async fn accept(&self, session: &mut Session) -> Option<Streams> {
        let mut streams = Streams::default();
        let gather = async {
            while !self.complete(&streams) {
                let stream = session.streams.recv().await?;
                let slot = match stream.header("streamtype") {
                    Some("error") => &mut streams.error,
                    Some("stdin") => &mut streams.stdin,
                    Some("stdout") => &mut streams.stdout,
                    Some("stderr") => &mut streams.stderr,
                    Some("resize") => &mut streams.resize,
                    _ => {
                        stream.writer.reset().await;
                        continue;
                    }
                };
                *slot = Some(stream);
            }
            Some(())
        };
        tokio::time::timeout(STREAMS_TIMEOUT, gather)
            .await
            .ok()
            .flatten()?;
        Some(streams)
    }

    /// Runs the command on the upgraded connection.
    pub async fn run(self, mut session: Session, protocol: &str) {
        let Some(mut streams) = self.accept(&mut session).await else {
            session.go_away().await;
            return;
        };
        let error = streams.error.take().map(|s| s.writer);
        // Resize events need a TTY; they are read and dropped so they never hold the session.
        if let Some(mut resize) = streams.resize.take() {
            tokio::spawn(async move { while resize.incoming.recv().await.is_some() {} });
        }
        let outcome = self.execute(&mut streams, &session).await;
        // A command that did not start still ends its output streams, so kubectl reads the error.
        for unused in [streams.stdout.take(), streams.stderr.take()]
            .into_iter()
            .flatten()
        {
            unused.writer.finish().await;
        }
        if let Some(error) = error {
            // v4 reports every outcome as a Status; older protocols write errors as text.
            let text = match (&outcome, protocol) {
                (outcome, "v4.channel.k8s.io") => Some(status(outcome).to_string()),
                (Ok(0), _) => None,
                (Ok(code), _) => Some(format!("command terminated with exit code {code}")),
                (Err(why), _) => Some(why.clone()),
            };
            if let Some(text) = text {
                error.send(Bytes::from(text)).await;
            }
            error.finish().await;
        }
        // The client closes once it has read everything; a client that does not is let go.
        let _ = tokio::time::timeout(Duration::from_secs(5), until_closed(session.closed())).await;
        session.go_away().await;
    }

    /// Runs the command with the streams wired to it; its exit code. The command is killed if
    /// the client goes away first.
    async fn execute(&self, streams: &mut Streams, session: &Session) -> Result<i32, String> {
        let (program, args) = self.command.split_first().ok_or("no command")?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(self.context.env.iter().cloned())
            .current_dir(&self.context.dir)
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.tty {
            command.env("TERM", "dumb");
        }
        let mut child = group::spawn(command)
            .await
            .map_err(|err| format!("failed to exec in container: starting {program:?}: {err}"))?;
        let pid = child.id().unwrap_or_default();
        if let (Some(mut input), Some(mut stream)) = (child.stdin.take(), streams.stdin.take()) {
            tokio::spawn(async move {
                while let Some(bytes) = stream.incoming.recv().await {
                    if input.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                // Dropping stdin closes it: the client's stdin ended.
            });
        }
        let stdout = streams.stdout.take().map(|s| s.writer);
        // Without a stderr stream (a TTY) stderr goes where stdout goes, as on a terminal.
        let stderr = streams
            .stderr
            .take()
            .map(|s| s.writer)
            .or_else(|| stdout.clone());
        let pumps = [
            child
                .stdout
                .take()
                .map(|out| tokio::spawn(pump(out, stdout.clone()))),
            child
                .stderr
                .take()
                .map(|err| tokio::spawn(pump(err, stderr.clone()))),
        ];
        let status = tokio::select! {
            status = child.wait() => status.map_err(|e| e.to_string())?,
            () = until_closed(session.closed()) => {
                group::signal_group(pid, Signal::Kill);
                child.wait().await.map_err(|e| e.to_string())?
            }
        };
        for pump in pumps.into_iter().flatten() {
            let _ = pump.await;
        }
        for writer in [stdout, stderr].into_iter().flatten() {
            writer.finish().await;
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// Copies a pipe to a stream until the pipe ends (or the client is gone).
async fn pump(mut from: impl AsyncRead + Unpin, to: Option<Writer>) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(to) = &to
                    && !to.send(Bytes::copy_from_slice(&buffer[..n])).await
                {
                    return;
                }
            }
        }
    }
}

/// The `Status` a v4 client reads from the error stream.
fn status(outcome: &Result<i32, String>) -> Value {
    match outcome {
        Ok(0) => json!({"metadata": {}, "status": "Success"}),
        Ok(code) => json!({
            "metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(why) => json!({
            "metadata": {}, "status": "Failure", "message": format!("Internal error occurred: {why}"),
            "reason": "InternalError", "details": {"causes": [{"message": why}]}, "code": 500,
        }),
    }
}
