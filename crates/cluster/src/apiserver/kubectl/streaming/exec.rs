//! `pods/exec`, over WebSocket (`v5.channel.k8s.io`, what kubectl 1.30+ and kube-rs use, and
//! `v4`) or SPDY (`v4.channel.k8s.io`, with `v3`/`v2`/`channel.k8s.io` for older clients). Over
//! SPDY the client opens an `error` stream and, as it asked, `stdin`, `stdout`, `stderr` and
//! `resize`, and the command runs once they are all open; over WebSocket they are channels of
//! one connection. The end of stdin (a FIN, or v5's close of channel 0) closes the command's
//! stdin (what `kubectl cp` and `echo x | kubectl exec -i` need); at the end stdout and stderr
//! finish and the error stream carries the outcome, a `Status` with the exit code
//! (`NonZeroExitCode`) that kubectl exits with. A client that goes away kills the command.
//! With `tty` the command runs on a pseudo-terminal ([`crate::os::terminal`]) sized by the
//! client's resize messages; its stderr is the terminal too, as on any terminal.

use std::{process::Stdio, sync::Arc, time::Duration};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    process::Command,
    sync::{mpsc, watch},
};

use super::{
    Output, attach,
    session::{Session, Stream, until_closed},
    websocket::Channels,
};
use crate::{
    apiserver::{ApiError, ApiServer, ResourcePath},
    node::{ExecContext, NodeOps},
    object::meta_str,
    os::{
        group::{self, Signal},
        terminal::{self, Pty, Sizes},
    },
};

/// The WebSocket protocols served, best first (kubectl 1.30+ offers v5; kube-rs v5 and v4).
pub const WEBSOCKET_PROTOCOLS: [&str; 3] =
    ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];

/// The SPDY protocols served, best first.
pub const PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// How long the client has to open its streams.
const STREAMS_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a TTY command waits for the client's first window size before it starts (kubectl
/// sends one at once; kube-rs only when asked to).
const FIRST_SIZE: Duration = Duration::from_secs(1);

/// After a TTY command exits, its terminal's output is relayed until this long passes with
/// none (something it left running in the background may hold the terminal).
const TERMINAL_LINGER: Duration = Duration::from_secs(1);

/// The longest a TTY command's terminal is relayed after it exits.
const TERMINAL_LINGER_MAX: Duration = Duration::from_secs(10);

/// The WebSocket channels a client writes: stdin and resize.
pub const WEBSOCKET_INPUTS: [u8; 2] = [0, 4];

/// An exec or attach request, checked.
pub struct Exec {
    run: Run,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

/// What the streams connect to.
enum Run {
    /// A new command in the container (`exec`).
    Command {
        command: Vec<String>,
        context: ExecContext,
    },
    /// The container's own process (`attach`), attached once the streams are up (so a
    /// connection that fails does not use up a `stdinOnce` stdin).
    Attach {
        containers: Arc<dyn NodeOps>,
        uid: String,
        container: String,
    },
}

/// The parts of an exec or attach request: its query, the pod and the container.
struct Asked {
    pairs: Vec<(String, String)>,
    pod: Value,
    container: String,
}

impl Asked {
    fn parse(server: &ApiServer, path: &ResourcePath, query: &str) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let container = pairs
            .iter()
            .find(|(k, _)| k == "container")
            .map(|(_, v)| v.as_str());
        let (pod, container) = super::target(server, path, container)?;
        Ok(Self {
            pairs,
            pod,
            container,
        })
    }

    fn flag(&self, key: &str) -> bool {
        self.pairs
            .iter()
            .any(|(k, v)| k == key && matches!(v.as_str(), "true" | "1"))
    }

    /// The request as an [`Exec`] of what `run` finds in the kubelet (given the pod's uid, the
    /// container and whether stdin is asked for), or 400 naming what is wrong, as the API
    /// server and kubelet answer.
    fn into_exec(
        self,
        server: &ApiServer,
        verb: &str,
        run: impl FnOnce(&Arc<dyn NodeOps>, &str, &str) -> Result<Run, String>,
    ) -> Result<Exec, ApiError> {
        let (stdin, stdout, stderr, tty) = (
            self.flag("stdin"),
            self.flag("stdout"),
            self.flag("stderr"),
            self.flag("tty"),
        );
        if !stdin && !stdout && !stderr {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        let uid = meta_str(&self.pod, "uid");
        let container = &self.container;
        let run = server
            .node()
            .ok_or_else(|| "this cluster runs no kubelet".to_owned())
            .and_then(|c| run(c, uid, container))
            .map_err(|why| {
                ApiError::bad_request(format!(
                    "unable to {verb} container {container} of pod {}: {why}",
                    meta_str(&self.pod, "name")
                ))
            })?;
        Ok(Exec {
            run,
            stdin,
            stdout,
            stderr: stderr && !tty,
            tty,
        })
    }
}

/// Checks an exec request: the pod, the container, the command, and that a command can run
/// there.
///
/// # Errors
/// 400 naming what is wrong, as the API server and kubelet answer.
pub fn prepare(server: &ApiServer, path: &ResourcePath, query: &str) -> Result<Exec, ApiError> {
    let asked = Asked::parse(server, path, query)?;
    let command: Vec<String> = asked
        .pairs
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    asked.into_exec(server, "exec in", |containers, uid, container| {
        let context = containers.exec_context(uid, container)?;
        Ok(Run::Command { command, context })
    })
}

/// Checks an attach request: the pod, and a running container to attach to.
///
/// # Errors
/// 400 naming what is wrong.
pub fn prepare_attach(
    server: &ApiServer,
    path: &ResourcePath,
    query: &str,
) -> Result<Exec, ApiError> {
    let asked = Asked::parse(server, path, query)?;
    asked.into_exec(server, "attach to", |containers, uid, container| {
        // Checked now (a 400 if there is nothing to attach to), attached when the streams run.
        containers.attach(uid, container, false)?;
        Ok(Run::Attach {
            containers: Arc::clone(containers),
            uid: uid.to_owned(),
            container: container.to_owned(),
        })
    })
}

/// The streams of one exec over SPDY, by type.
#[derive(Default)]
struct Streams {
    error: Option<Stream>,
    stdin: Option<Stream>,
    stdout: Option<Stream>,
    stderr: Option<Stream>,
    resize: Option<Stream>,
}

/// Where the command's input and output go.
struct Io {
    stdin: Option<mpsc::Receiver<Bytes>>,
    stdout: Option<Output>,
    stderr: Option<Output>,
    resize: Option<mpsc::Receiver<Bytes>>,
    closed: watch::Receiver<bool>,
}

/// What the error stream (or channel) carries for `outcome` in `protocol`: v4 and v5 report
/// every outcome as a `Status`; older protocols write failures as text and success as nothing.
fn report(outcome: &Result<i32, String>, protocol: &str) -> Option<String> {
    match (outcome, protocol) {
        (outcome, "v4.channel.k8s.io" | "v5.channel.k8s.io") => Some(status(outcome).to_string()),
        (Ok(0), _) => None,
        (Ok(code), _) => Some(format!("command terminated with exit code {code}")),
        (Err(why), _) => Some(why.clone()),
    }
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

    /// Runs the command on a SPDY session (the streams the client opens).
    pub async fn run(self, mut session: Session, protocol: &str) {
        let Some(mut streams) = self.accept(&mut session).await else {
            session.go_away().await;
            return;
        };
        let error = streams.error.take().map(|s| s.writer);
        let mut io = Io {
            stdin: streams.stdin.take().map(|s| s.incoming),
            stdout: streams.stdout.take().map(|s| Output::Spdy(s.writer)),
            stderr: streams.stderr.take().map(|s| Output::Spdy(s.writer)),
            resize: streams.resize.take().map(|s| s.incoming),
            closed: session.closed(),
        };
        let outcome = self.execute(&mut io).await;
        if let Some(error) = error {
            if let Some(text) = report(&outcome, protocol) {
                error.send(Bytes::from(text)).await;
            }
            error.finish().await;
        }
        // The client closes once it has read everything; a client that does not is let go.
        let _ = tokio::time::timeout(Duration::from_secs(5), until_closed(session.closed())).await;
        session.go_away().await;
    }

    /// Runs the command on WebSocket channels (0 stdin, 1 stdout, 2 stderr, 3 the outcome,
    /// 4 resize), then closes the connection with 1000, which ends every channel cleanly.
    pub async fn run_websocket(self, mut channels: Channels, protocol: &str) {
        // Channels this exec does not read are drained, so a client writing them anyway never
        // holds up the others.
        for (channel, used) in [(0, self.stdin), (4, self.tty)] {
            if !used && let Some(mut unused) = channels.input(channel) {
                tokio::spawn(async move { while unused.recv().await.is_some() {} });
            }
        }
        let mut io = Io {
            stdin: if self.stdin { channels.input(0) } else { None },
            stdout: self.stdout.then(|| Output::Channel(channels.writer(1))),
            stderr: self.stderr.then(|| Output::Channel(channels.writer(2))),
            resize: if self.tty { channels.input(4) } else { None },
            closed: channels.closed(),
        };
        let outcome = self.execute(&mut io).await;
        if let Some(text) = report(&outcome, protocol) {
            channels.writer(3).send(text.as_bytes()).await;
        }
        channels.close().await;
    }

    /// Runs the command wired to `io`; its exit code. Its output streams end on every path (a
    /// command that did not start too, so the client reads the outcome), and the command is
    /// killed if the client goes away first.
    async fn execute(&self, io: &mut Io) -> Result<i32, String> {
        let stdout = io.stdout.take();
        // Without a stderr stream (a TTY) stderr goes where stdout goes, as on a terminal.
        let stderr = io.stderr.take().or_else(|| stdout.clone());
        let outcome = match &self.run {
            Run::Attach {
                containers,
                uid,
                container,
            } => match containers.attach(uid, container, self.stdin) {
                Ok(attachment) => {
                    let inputs = (io.stdin.take(), io.resize.take());
                    attach::relay(attachment, inputs, &stdout, &stderr, io.closed.clone()).await
                }
                Err(why) => Err(why),
            },
            Run::Command { .. } if self.tty => self.run_on_terminal(io, &stdout).await,
            Run::Command { .. } => self.spawn_and_wait(io, &stdout, &stderr).await,
        };
        for output in [stdout, stderr].into_iter().flatten() {
            output.finish().await;
        }
        outcome
    }

    /// The command, in the container's directory with its environment.
    fn command(&self) -> Result<Command, String> {
        let Run::Command { command, context } = &self.run else {
            return Err("no command".into());
        };
        context.command(command).ok_or_else(|| "no command".into())
    }

    fn start_failed(&self, err: &std::io::Error) -> String {
        let program = match &self.run {
            Run::Command { command, .. } => command.first().map(String::as_str),
            Run::Attach { .. } => None,
        };
        let program = program.unwrap_or_default();
        format!("failed to exec in container: starting {program:?}: {err}")
    }

    async fn spawn_and_wait(
        &self,
        io: &mut Io,
        stdout: &Option<Output>,
        stderr: &Option<Output>,
    ) -> Result<i32, String> {
        let mut command = self.command()?;
        command
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = group::spawn(command)
            .await
            .map_err(|err| self.start_failed(&err))?;
        if let (Some(mut input), Some(mut stdin)) = (child.stdin.take(), io.stdin.take()) {
            tokio::spawn(async move {
                while let Some(bytes) = stdin.recv().await {
                    if input.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                // Dropping stdin closes it: the client's stdin ended.
            });
        }
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
        let code = wait(&mut child, io.closed.clone()).await?;
        for pump in pumps.into_iter().flatten() {
            let _ = pump.await;
        }
        Ok(code)
    }

    /// Runs the command on a new pseudo-terminal: the client's input is typed into it, its
    /// screen goes to stdout, resize messages set its size (the first, if it comes soon, before
    /// the command starts). The client's end of input does not end the command; on a terminal
    /// only the command's own exit (or the client's going) does.
    async fn run_on_terminal(&self, io: &mut Io, stdout: &Option<Output>) -> Result<i32, String> {
        let mut resize = io.resize.take();
        let mut sizes = Sizes::default();
        let mut first = None;
        if let Some(resize) = &mut resize
            && let Ok(Some(bytes)) = tokio::time::timeout(FIRST_SIZE, resize.recv()).await
        {
            first = sizes.push(&bytes).pop();
        }
        let (mut child, terminal) = terminal::spawn(self.command()?, first)
            .await
            .map_err(|err| self.start_failed(&err))?;
        if let Some(resize) = resize {
            terminal::follow(resize, sizes, Some(Arc::clone(&terminal)));
        }
        if let Some(mut stdin) = io.stdin.take() {
            let mut typing = Pty(Arc::clone(&terminal));
            tokio::spawn(async move {
                while let Some(bytes) = stdin.recv().await {
                    if typing.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            });
        }
        let (exited, on_exit) = watch::channel(false);
        let screen = Pty(Arc::clone(&terminal));
        let screen = tokio::spawn(relay_screen(screen, stdout.clone(), on_exit));
        let code = wait(&mut child, io.closed.clone()).await;
        let _ = exited.send(true);
        let _ = screen.await;
        code
    }
}

/// Waits for `child`, killing its group if the client goes away first; its exit code (128 +
/// the signal for a killed command, as a shell reports it).
async fn wait(
    child: &mut tokio::process::Child,
    closed: watch::Receiver<bool>,
) -> Result<i32, String> {
    let pid = child.id().unwrap_or_default();
    let status = tokio::select! {
        status = child.wait() => status.map_err(|e| e.to_string())?,
        () = until_closed(closed) => {
            group::signal_group(pid, Signal::Kill);
            child.wait().await.map_err(|e| e.to_string())?
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Copies what a terminal shows to an output until every process holding the terminal has
/// gone (or the client has). Once the command has exited, something it left in the background
/// may still hold it: the output is relayed while it goes on, until [`TERMINAL_LINGER`] passes
/// with none, and no longer than [`TERMINAL_LINGER_MAX`] in all.
async fn relay_screen(mut from: Pty, to: Option<Output>, mut exited: watch::Receiver<bool>) {
    let mut buffer = vec![0u8; 32 * 1024];
    let mut since: Option<tokio::time::Instant> = None;
    loop {
        let read = match since {
            Some(at) => {
                let left = TERMINAL_LINGER_MAX.saturating_sub(at.elapsed());
                let wait = TERMINAL_LINGER.min(left);
                match tokio::time::timeout(wait, from.read(&mut buffer)).await {
                    Ok(read) => read,
                    Err(_) => return,
                }
            }
            None => tokio::select! {
                read = from.read(&mut buffer) => read,
                _ = exited.wait_for(|gone| *gone) => {
                    since = Some(tokio::time::Instant::now());
                    continue;
                }
            },
        };
        match read {
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

/// Copies a pipe to an output until the pipe ends (or the client is gone).
async fn pump(mut from: impl AsyncRead + Unpin, to: Option<Output>) {
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
