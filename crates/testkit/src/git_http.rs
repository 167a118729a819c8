//! A smart-HTTP git server for tests: `git http-backend` (git's own CGI program) behind a
//! minimal HTTP/1.1 listener on 127.0.0.1, one connection per request, request bodies with a
//! Content-Length or chunked (libgit2 sends both). Serves every repository under a root
//! directory at `http://ADDR/<name>`, optionally only to clients sending HTTP basic
//! credentials ([`GitHttp::start_private`]; others get `401` with `WWW-Authenticate`). A `GET`
//! of a plain file under the root is answered with the file, so the same server is a Helm chart
//! repository too (`index.yaml` and packages).

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::Command,
};

/// A running server; stops when dropped.
pub struct GitHttp {
    /// Where it listens.
    pub address: SocketAddr,
    advertisements: Arc<AtomicUsize>,
    rejected: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GitHttp {
    /// Serves the repositories under `root` to anyone.
    pub async fn start(root: PathBuf) -> std::io::Result<Self> {
        Self::serving(root, None).await
    }

    /// Serves the repositories under `root` only to requests with HTTP basic credentials
    /// `username` and `password`.
    pub async fn start_private(
        root: PathBuf,
        username: &str,
        password: &str,
    ) -> std::io::Result<Self> {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        Self::serving(root, Some(format!("Basic {token}"))).await
    }

    async fn serving(root: PathBuf, authorization: Option<String>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let advertisements = Arc::new(AtomicUsize::new(0));
        let rejected = Arc::new(AtomicUsize::new(0));
        let counters = (advertisements.clone(), rejected.clone());
        let authorization = Arc::new(authorization);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (root, counters, authorization) =
                    (root.clone(), counters.clone(), authorization.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, root, &counters, authorization.as_deref()).await;
                });
            }
        });
        Ok(Self {
            address,
            advertisements,
            rejected,
            task,
        })
    }

    /// How many requests were refused for lacking the right credentials.
    pub fn rejected(&self) -> usize {
        self.rejected.load(Ordering::Relaxed)
    }

    /// How many times clients asked for a repository's references (`GET …/info/refs`): one
    /// per fetch or `ls-remote`.
    pub fn fetches(&self) -> usize {
        self.advertisements.load(Ordering::Relaxed)
    }

    /// The URL of repository `name`.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.address)
    }
}

async fn serve(
    stream: TcpStream,
    root: PathBuf,
    (fetches, rejected): &(Arc<AtomicUsize>, Arc<AtomicUsize>),
    authorization: Option<&str>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path.ends_with("/info/refs") {
        fetches.fetch_add(1, Ordering::Relaxed);
    }
    let (mut length, mut chunked, mut content_type) = (0usize, false, String::new());
    let mut sent_authorization = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-type" => content_type = value.trim().to_owned(),
            "authorization" => sent_authorization = value.trim().to_owned(),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if size == 0 {
                line.clear();
                reader.read_line(&mut line).await?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    }
    if authorization.is_some_and(|wanted| wanted != sent_authorization) {
        rejected.fetch_add(1, Ordering::Relaxed);
        let response = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        write.write_all(response.as_bytes()).await?;
        return write.shutdown().await;
    }
    let file = root.join(path.trim_start_matches('/'));
    if method == "GET" && !path.contains("..") && file.is_file() {
        let content = tokio::fs::read(&file).await?;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            content.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(&content).await?;
        return write.shutdown().await;
    }
    let mut child = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &method)
        .env("CONTENT_TYPE", &content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await?;
    let _ = writer.await;
    let text = output.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, content) = match split {
        Some((i, n)) => (&text[..i], &text[i + n..]),
        None => (&text[..0], &text[..]),
    };
    let mut status = "200 OK".to_owned();
    let mut headers = String::new();
    for header in String::from_utf8_lossy(head).lines() {
        match header.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                status = value.trim().to_owned();
            }
            Some(_) => headers.push_str(&format!("{header}\r\n")),
            None => {}
        }
    }
    let response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    write.write_all(response.as_bytes()).await?;
    write.write_all(content).await?;
    write.shutdown().await
}
