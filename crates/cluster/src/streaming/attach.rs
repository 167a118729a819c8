//! `pods/attach` (`kubectl attach`, `kubectl run -i`): what a running container writes from
//! now on, read from the log file the kubelet captures it into (each CRI line to stdout or
//! stderr, as it was written), and — for a container with `stdin: true` — the client's input
//! into the container's stdin. Detaching leaves the container running; the attach ends when the
//! container exits. The streams and their protocols are exec's ([`super::exec`]).
//!
//! Output is relayed a line at a time, as the kubelet's log pump records it: a prompt without a
//! newline shows once its line ends.

use std::{path::Path, time::Duration};

use bytes::Bytes;
use tokio::{
    io::{AsyncReadExt, AsyncSeekExt},
    sync::{mpsc, watch},
};

use super::{Attachment, Output, session::until_closed};

/// How often the log file is read for new lines.
const POLL: Duration = Duration::from_millis(100);

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

/// Splits complete CRI log lines (`<time> <stream> <F|P> <text>`) into what each stream
/// carried: a full line (`F`) ends with a newline, a partial one (`P`) does not. Lines that are
/// not CRI lines are skipped.
pub fn lines(text: &[u8]) -> Vec<(Source, Vec<u8>)> {
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut fields = line.splitn(4, |b| *b == b' ');
        let (_time, stream, tag) = (fields.next(), fields.next(), fields.next());
        let message = fields.next().unwrap_or_default();
        let source = match stream {
            Some(b"stdout") => Source::Stdout,
            Some(b"stderr") => Source::Stderr,
            _ => continue,
        };
        let mut bytes = message.to_vec();
        if tag != Some(b"P") {
            bytes.push(b'\n');
        }
        out.push((source, bytes));
    }
    out
}

/// The length of a file, 0 when it does not exist yet.
async fn length(path: &Path) -> u64 {
    tokio::fs::metadata(path).await.map_or(0, |m| m.len())
}

/// The complete lines written to `path` after `offset`, and the offset after them.
async fn read_from(path: &Path, offset: u64) -> (Vec<u8>, u64) {
    let mut fresh = Vec::new();
    if let Ok(mut file) = tokio::fs::File::open(path).await
        && file.seek(std::io::SeekFrom::Start(offset)).await.is_ok()
    {
        let _ = file.read_to_end(&mut fresh).await;
    }
    match fresh.iter().rposition(|b| *b == b'\n') {
        Some(end) => {
            fresh.truncate(end + 1);
            let read = fresh.len() as u64;
            (fresh, offset + read)
        }
        None => (Vec::new(), offset),
    }
}

/// Relays `attachment` to the client's streams until the container exits (0, Success) or the
/// client goes.
pub(super) async fn relay(
    attachment: Attachment,
    input: Option<mpsc::Receiver<Bytes>>,
    stdout: &Option<Output>,
    stderr: &Option<Output>,
    closed: watch::Receiver<bool>,
) -> Result<i32, String> {
    let Attachment {
        log,
        stdin,
        mut exited,
    } = attachment;
    if let (Some(mut input), Some(stdin)) = (input, stdin) {
        tokio::spawn(async move {
            while let Some(bytes) = input.recv().await {
                if stdin.send(bytes).await.is_err() {
                    break;
                }
            }
            // The client's input ended: this attach's hold on the container's stdin goes
            // (with `stdinOnce`, the container's stdin closes).
        });
    }
    let mut offset = length(&log).await;
    loop {
        let done = *exited.borrow_and_update();
        let (fresh, next) = read_from(&log, offset).await;
        offset = next;
        for (source, bytes) in lines(&fresh) {
            let to = match source {
                Source::Stdout => stdout,
                Source::Stderr => stderr,
            };
            if let Some(to) = to
                && !to.send(Bytes::from(bytes)).await
            {
                return Ok(0);
            }
        }
        if done {
            return Ok(0);
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = exited.changed() => {}
            () = until_closed(closed.clone()) => return Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_go_to_their_streams_with_newlines_where_they_ended() {
        let text = b"2026-11-01T10:00:00Z stdout F hello world\n\
                     2026-11-01T10:00:01Z stderr F oops\n\
                     2026-11-01T10:00:02Z stdout P $ \n\
                     not a line\n\
                     2026-11-01T10:00:03Z stdout F \n";
        assert_eq!(
            lines(text),
            vec![
                (Source::Stdout, b"hello world\n".to_vec()),
                (Source::Stderr, b"oops\n".to_vec()),
                (Source::Stdout, b"$ ".to_vec()),
                (Source::Stdout, b"\n".to_vec()),
            ]
        );
    }
}
