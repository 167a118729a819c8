//! `pods/attach` (`kubectl attach`, `kubectl run -i`, `run -it`): what a running container
//! writes from now on, as the kubelet reads it from the container (prompts and echoes too) —
//! stdout and stderr apart, or the one terminal of a `tty: true` container, which the client's
//! resize messages then size — and, for a container with `stdin: true`, the client's input into
//! the container's stdin. Detaching leaves the container running; the attach ends when the
//! container exits. The streams and their protocols are exec's ([`super::exec`]).

use bytes::Bytes;
use tokio::sync::{
    broadcast::{self, error::RecvError},
    mpsc, watch,
};

use super::{Output, session::until_closed};
use crate::{
    node::Attachment,
    os::terminal::{self, Sizes},
};

/// The next chunk of a container's output: `None` once there is no more to wait for here (the
/// stream is absent or its sender gone); a chunk missed by a slow client is skipped.
async fn next(from: &mut Option<broadcast::Receiver<Bytes>>) -> Option<Bytes> {
    let receiver = from.as_mut()?;
    loop {
        match receiver.recv().await {
            Ok(bytes) => return Some(bytes),
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => {
                *from = None;
                return None;
            }
        }
    }
}

/// Sends what is still queued on `from` to `to`.
async fn drain(from: &mut Option<broadcast::Receiver<Bytes>>, to: &Option<Output>) {
    let Some(receiver) = from.as_mut() else {
        return;
    };
    loop {
        match receiver.try_recv() {
            Ok(bytes) => {
                if let Some(to) = to {
                    to.send(bytes).await;
                }
            }
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

/// Whether the watched thing happened (false if that can no longer be known).
async fn gone(exited: &mut watch::Receiver<bool>) -> bool {
    exited.wait_for(|gone| *gone).await.is_ok()
}

/// Relays `attachment` to the client's streams until the container exits (0, Success) or the
/// client goes.
pub(super) async fn relay(
    attachment: Attachment,
    (input, resize): (Option<mpsc::Receiver<Bytes>>, Option<mpsc::Receiver<Bytes>>),
    stdout: &Option<Output>,
    stderr: &Option<Output>,
    closed: watch::Receiver<bool>,
) -> Result<i32, String> {
    let Attachment {
        stdout: out,
        stderr: err,
        stdin,
        terminal,
        mut exited,
        ends_with_input,
    } = attachment;
    if let Some(resize) = resize {
        terminal::follow(resize, Sizes::default(), terminal);
    }
    let (input_ended, mut on_input_end) = watch::channel(false);
    if let (Some(mut input), Some(stdin)) = (input, stdin) {
        tokio::spawn(async move {
            while let Some(bytes) = input.recv().await {
                if stdin.send(bytes).await.is_err() {
                    break;
                }
            }
            // The client's input ended: this attach's hold on the container's stdin goes
            // (with `stdinOnce`, the container's stdin closes).
            drop(stdin);
            if ends_with_input {
                let _ = input_ended.send(true);
            }
        });
    }
    let (mut out, mut err) = (Some(out), err);
    loop {
        tokio::select! {
            Some(bytes) = next(&mut out) => {
                if let Some(to) = stdout && !to.send(bytes).await {
                    return Ok(0);
                }
            }
            Some(bytes) = next(&mut err) => {
                if let Some(to) = stderr && !to.send(bytes).await {
                    return Ok(0);
                }
            }
            // Exited, and the kubelet has read all it wrote: what is queued is the rest.
            true = gone(&mut exited) => {
                drain(&mut out, stdout).await;
                drain(&mut err, stderr).await;
                return Ok(0);
            }
            () = until_closed(closed.clone()) => return Ok(0),
            true = gone(&mut on_input_end) => return Ok(0),
        }
    }
}
