//! Container logs as a kubelet keeps them: one file per container start,
//! `DIR/pods/<namespace>_<pod>_<uid>/<container>/<restartCount>.log`, each line in the CRI format
//! (`<RFC 3339 time> <stdout|stderr> F <text>`). The kubelet writes them ([`pump`]); the API
//! server's `pods/log` reads them back ([`render`]) with kubectl's options.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use jiff::Timestamp;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    sync::broadcast,
};

/// The directory of a pod's files under the data dir.
pub fn pod_dir(data_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    data_dir
        .join("pods")
        .join(format!("{namespace}_{name}_{uid}"))
}

/// The log file of one start of a container.
pub fn log_file(pod_dir: &Path, container: &str, restart: i64) -> PathBuf {
    pod_dir.join(container).join(format!("{restart}.log"))
}

/// The longest line kept whole; longer output is recorded in parts (`P`), as the CRI does.
const MAX_LINE: usize = 16 * 1024;

/// Copies a container's stdout or stderr into its log file, a CRI record per line of output,
/// and every chunk as it arrives to `live` (what `attach` sessions read: prompts and echoes
/// too, which end no line), until the stream ends. As containerd records them: a line longer
/// than [`MAX_LINE`] is cut into partial records (`P`) of that length, and what is left without
/// a newline at the end is a partial record too. A log file that cannot be written is given
/// up on (said once); the container's output is still read, so it never blocks on a full pipe.
pub async fn pump(
    mut source: impl AsyncRead + Unpin,
    stream: &'static str,
    path: PathBuf,
    live: broadcast::Sender<Bytes>,
) {
    let opened = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await;
    let mut file = match opened {
        Ok(file) => Some(file),
        Err(err) => {
            tracing::warn!("cannot write {}: {err}", path.display());
            None
        }
    };
    let mut buffer = vec![0u8; 32 * 1024];
    let mut pending = Vec::new();
    loop {
        let n = match source.read(&mut buffer).await {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        if n > 0 {
            // Nobody attached is no error.
            let _ = live.send(Bytes::copy_from_slice(&buffer[..n]));
            pending.extend_from_slice(&buffer[..n]);
        }
        let records = records(stream, &mut pending, n == 0);
        // tokio writes in the background; flushing waits until the lines are in the file.
        if let Some(open) = &mut file
            && !records.is_empty()
            && let Err(err) = async {
                open.write_all(&records).await?;
                open.flush().await
            }
            .await
        {
            tracing::warn!("cannot write {}: {err}", path.display());
            file = None;
        }
        if n == 0 {
            return;
        }
    }
}

/// The CRI records `pending` completes (taking their bytes from it): a full record per line, a
/// partial one per [`MAX_LINE`] bytes without a newline, and at the `end` a partial one of
/// what is left.
fn records(stream: &str, pending: &mut Vec<u8>, end: bool) -> Vec<u8> {
    let mut records = Vec::new();
    loop {
        let newline = pending.iter().position(|b| *b == b'\n');
        match newline {
            Some(at) if at <= MAX_LINE => {
                let line: Vec<u8> = pending.drain(..=at).collect();
                records.extend(record(stream, "F", &line[..at]));
            }
            _ if pending.len() > MAX_LINE => {
                let part: Vec<u8> = pending.drain(..MAX_LINE).collect();
                records.extend(record(stream, "P", &part));
            }
            _ => break,
        }
    }
    if end && !pending.is_empty() {
        records.extend(record(stream, "P", pending));
        pending.clear();
    }
    records
}

/// One CRI log record.
fn record(stream: &str, tag: &str, text: &[u8]) -> Vec<u8> {
    let mut record = format!("{} {stream} {tag} ", Timestamp::now()).into_bytes();
    record.extend_from_slice(text);
    record.push(b'\n');
    record
}

/// What `pods/log` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// Prefix each line with its time.
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail_lines: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<Timestamp>,
    /// At most this many bytes.
    pub limit_bytes: Option<usize>,
}

/// Turns CRI lines into what `kubectl logs` prints: partial records joined to the records that
/// end their line, a newline after each full one.
pub fn render(text: &str, options: &LogOptions) -> String {
    let mut lines: Vec<(&str, String, bool)> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        let Some((time, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some((_stream, rest)) = rest.split_once(' ') else {
            continue;
        };
        let (tag, message) = rest.split_once(' ').unwrap_or((rest, ""));
        let full = tag != "P";
        match lines.last_mut() {
            Some((at, joined, complete)) if open => {
                *at = time;
                joined.push_str(message);
                *complete = full;
            }
            _ => lines.push((time, message.to_owned(), full)),
        }
        open = !full;
    }
    let lines: Vec<(&str, String, bool)> = lines
        .into_iter()
        .filter(|(time, _, _)| match options.since {
            Some(since) => time.parse::<Timestamp>().is_ok_and(|t| t >= since),
            None => true,
        })
        .collect();
    let skip = options
        .tail_lines
        .map_or(0, |tail| lines.len().saturating_sub(tail));
    let mut out = String::new();
    for (time, message, full) in &lines[skip..] {
        if options.timestamps {
            out.push_str(time);
            out.push(' ');
        }
        out.push_str(message);
        if *full {
            out.push('\n');
        }
    }
    if let Some(limit) = options.limit_bytes
        && out.len() > limit
    {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "2026-11-01T10:00:00Z stdout F first\n\
                       2026-11-01T10:00:01Z stderr F second line\n\
                       2026-11-01T10:00:02Z stdout F \n\
                       2026-11-01T10:00:03Z stdout F last\n";

    #[test]
    fn lines_render_with_kubectls_options() {
        assert_eq!(
            render(LOG, &LogOptions::default()),
            "first\nsecond line\n\nlast\n"
        );
        let tail = LogOptions {
            tail_lines: Some(2),
            timestamps: true,
            ..LogOptions::default()
        };
        assert_eq!(
            render(LOG, &tail),
            "2026-11-01T10:00:02Z \n2026-11-01T10:00:03Z last\n"
        );
        let since = LogOptions {
            since: Some("2026-11-01T10:00:01Z".parse().unwrap()),
            limit_bytes: Some(8),
            ..LogOptions::default()
        };
        assert_eq!(render(LOG, &since), "second l");
    }

    #[test]
    fn long_lines_are_cut_into_partial_records_and_joined_again() {
        let mut pending = vec![b'x'; MAX_LINE + 10];
        pending.extend_from_slice(b"\nshort\nopen");
        let text = String::from_utf8(records("stdout", &mut pending, false)).unwrap();
        let tags: Vec<&str> = text.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
        assert_eq!(tags, ["P", "F", "F"], "{text}");
        assert_eq!(pending, b"open");
        let end = String::from_utf8(records("stdout", &mut pending, true)).unwrap();
        assert!(end.contains(" stdout P open"), "{end}");
        let rendered = render(&(text + &end), &LogOptions::default());
        assert_eq!(
            rendered,
            format!("{}\nshort\nopen", "x".repeat(MAX_LINE + 10))
        );
        let last = LogOptions {
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(
            render(&rendered_log(), &last),
            "second\nthird\n",
            "lines, not records"
        );
    }

    fn rendered_log() -> String {
        "2026-11-01T10:00:00Z stdout P fir\n2026-11-01T10:00:00Z stdout F st\n\
         2026-11-01T10:00:01Z stdout P sec\n2026-11-01T10:00:01Z stdout F ond\n\
         2026-11-01T10:00:02Z stdout F third\n"
            .to_owned()
    }

    #[tokio::test]
    async fn pumped_lines_are_recorded_with_time_and_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file(dir.path(), "app", 0);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let (live, mut attached) = broadcast::channel(16);
        pump(&b"hello\nworld"[..], "stderr", path.clone(), live).await;
        assert_eq!(attached.recv().await.unwrap(), &b"hello\nworld"[..]);
        let text = std::fs::read_to_string(&path).unwrap();
        let tags: Vec<&str> = text.lines().map(|l| l.split(' ').nth(2).unwrap()).collect();
        assert_eq!(tags, ["F", "P"], "{text}");
        assert!(text.lines().all(|l| l.contains(" stderr ")), "{text}");
        assert_eq!(
            render(&text, &LogOptions::default()),
            "hello\nworld",
            "the last line stays open: {text}"
        );
    }
}
