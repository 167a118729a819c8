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

/// Copies a container's stdout or stderr into its log file, a CRI line per line of output, and
/// every chunk as it arrives to `live` (what `attach` sessions read: prompts and echoes too,
/// which end no line), until the stream ends. A last line without a newline is recorded at
/// the end.
pub async fn pump(
    mut source: impl AsyncRead + Unpin,
    stream: &'static str,
    path: PathBuf,
    live: broadcast::Sender<Bytes>,
) {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await;
    let mut file = match file {
        Ok(file) => file,
        Err(err) => {
            tracing::warn!("cannot write {}: {err}", path.display());
            return;
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
        let mut records = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            records.extend(record(stream, "F", &line[..end]));
        }
        if pending.len() > MAX_LINE || (n == 0 && !pending.is_empty()) {
            let tag = if n == 0 { "F" } else { "P" };
            records.extend(record(stream, tag, &pending));
            pending.clear();
        }
        // tokio writes in the background; flushing waits until the lines are in the file.
        if !records.is_empty()
            && (file.write_all(&records).await.is_err() || file.flush().await.is_err())
        {
            return;
        }
        if n == 0 {
            return;
        }
    }
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

/// Turns CRI lines into what `kubectl logs` prints.
pub fn render(text: &str, options: &LogOptions) -> String {
    let lines: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|line| {
            let (time, rest) = line.split_once(' ')?;
            let (_stream, rest) = rest.split_once(' ')?;
            let (_tag, message) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((time, message))
        })
        .filter(|(time, _)| match options.since {
            Some(since) => time.parse::<Timestamp>().is_ok_and(|t| t >= since),
            None => true,
        })
        .collect();
    let skip = options
        .tail_lines
        .map_or(0, |tail| lines.len().saturating_sub(tail));
    let mut out = String::new();
    for (time, message) in &lines[skip..] {
        if options.timestamps {
            out.push_str(time);
            out.push(' ');
        }
        out.push_str(message);
        out.push('\n');
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

    #[tokio::test]
    async fn pumped_lines_are_recorded_with_time_and_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_file(dir.path(), "app", 0);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let (live, mut attached) = broadcast::channel(16);
        pump(&b"hello\nworld"[..], "stderr", path.clone(), live).await;
        assert_eq!(attached.recv().await.unwrap(), &b"hello\nworld"[..]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().all(|l| l.contains(" stderr F ")), "{text}");
        assert_eq!(
            render(&text, &LogOptions::default()),
            "hello\nworld\n",
            "{text}"
        );
    }
}
