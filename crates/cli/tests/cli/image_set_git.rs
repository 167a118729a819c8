//! `sluice image set --commit --push` against real bare repositories, over `file://` and over
//! smart HTTP (`git http-backend` as CGI behind a tiny server on 127.0.0.1 that wants a token
//! for pushes, which git gets from a `GIT_ASKPASS` script reading it from the environment): a bump on a fresh clone changes exactly the
//! tag; pipelines bumping different services all land; two racing on one image leave the newer
//! version, and the loser exits 4; with commit-SHA tags the later bump lands and says what it
//! replaced.

use std::{
    convert::Infallible,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Bytes};
use tempfile::TempDir;

const TOKEN: &str = "s3cret-token";

/// Identity variables a developer's or CI's environment may carry; the tests set their own.
const IDENTITY: [&str; 4] = [
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
];

/// `command` isolated from the machine's git configuration and identity.
fn isolated(mut command: Command, home: &Path) -> Command {
    for variable in IDENTITY {
        command.env_remove(variable);
    }
    command
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("XDG_CONFIG_HOME");
    command
}

const ROLLOUTS: &str = "# services of the shop, bumped by CI\n---\nkind: Rollout\nmetadata: {name: cart}\nspec:\n  template:\n    spec:\n      containers:\n      - name: cart\n        image: registry.example.com/cart:1.0.0 # cart\n---\nkind: Rollout\nmetadata: {name: pay}\nspec:\n  template:\n    spec:\n      containers:\n      - name: pay\n        image: \"registry.example.com/pay:1.0.0\"\n---\nkind: Rollout\nmetadata: {name: ship}\nspec:\n  template:\n    spec:\n      containers:\n      - name: ship\n        image: registry.example.com/ship:0badcafe\n";

/// A bare CD repository, its home directory for git, and how clones reach it.
struct Remote {
    dir: TempDir,
    url: String,
    _server: Option<tokio::runtime::Runtime>,
}

impl Remote {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn bare(&self) -> PathBuf {
        self.dir.path().join("srv/cd.git")
    }

    /// Runs git in `dir` with this test's HOME (no user config, no identity).
    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = isolated(Command::new("git"), &self.home())
            .current_dir(dir)
            .args(args)
            .env("GIT_ASKPASS", self.dir.path().join("askpass"))
            .env("CD_TOKEN", TOKEN)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A shallow clone, as CI checks out.
    fn clone(&self, name: &str) -> PathBuf {
        self.git(
            self.dir.path(),
            &["clone", "--quiet", "--depth", "1", &self.url, name],
        );
        self.dir.path().join(name)
    }

    /// `sluice image set rollouts.yaml ARGS… --push` in `clone`, not waited for.
    fn bump(&self, clone: &Path, args: &[&str]) -> std::process::Child {
        isolated(Command::new(env!("CARGO_BIN_EXE_sluice")), &self.home())
            .current_dir(clone)
            .args(["image", "set", "rollouts.yaml"])
            .args(args)
            .args(["--push", "--skip-ci"])
            .env("GIT_ASKPASS", self.dir.path().join("askpass"))
            .env("CD_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sluice image set")
    }

    /// The file on the remote's main branch.
    fn file(&self) -> String {
        self.git(&self.bare(), &["show", "main:rollouts.yaml"])
    }
}

/// A bare repository holding `rollouts.yaml` on `main`, served over `transport`.
fn remote(http: bool) -> Remote {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("home")).unwrap();
    fs::create_dir_all(dir.path().join("srv")).unwrap();
    let askpass = dir.path().join("askpass");
    fs::write(
        &askpass,
        "#!/bin/sh\ncase \"$1\" in Username*) echo ci ;; *) echo \"$CD_TOKEN\" ;; esac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&askpass, fs::Permissions::from_mode(0o755)).unwrap();
    let (url, server) = if http {
        let (url, runtime) = serve(dir.path().join("srv"));
        (format!("{url}/cd.git"), Some(runtime))
    } else {
        (
            format!("file://{}", dir.path().join("srv/cd.git").display()),
            None,
        )
    };
    let remote = Remote {
        dir,
        url,
        _server: server,
    };
    remote.git(
        &remote.dir.path().join("srv"),
        &["init", "--quiet", "--bare", "-b", "main", "cd.git"],
    );
    let seed = remote.clone("seed");
    fs::write(seed.join("rollouts.yaml"), ROLLOUTS).unwrap();
    remote.git(&seed, &["add", "rollouts.yaml"]);
    remote.git(
        &seed,
        &[
            "-c",
            "user.name=seed",
            "-c",
            "user.email=seed@localhost",
            "commit",
            "--quiet",
            "-m",
            "seed",
        ],
    );
    remote.git(&seed, &["push", "--quiet", "origin", "HEAD:main"]);
    remote
}

fn finish(child: std::process::Child) -> Output {
    child.wait_with_output().expect("wait for sluice")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh clone: exactly the tag changes, one commit with the old and new image in its
/// message, `[skip ci]`, the author given and sluice's committer fallback.
#[test]
fn image_set_commits_and_pushes_exactly_the_tag_over_file() {
    let remote = remote(false);
    let clone = remote.clone("ci");
    let out = finish(remote.bump(
        &clone,
        &["cart=:1.1.0", "--author", "CI Bot <ci@example.com>"],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("pushed"), "{}", stderr(&out));
    assert_eq!(
        remote.file(),
        ROLLOUTS.replace("cart:1.0.0", "cart:1.1.0"),
        "only the tag changes"
    );
    let log = remote.git(
        &remote.bare(),
        &["log", "-1", "--format=%an <%ae>|%cn|%B", "main"],
    );
    assert!(
        log.starts_with("CI Bot <ci@example.com>|sluice|Deploy cart 1.1.0 [skip ci]\n"),
        "{log}"
    );
    assert!(
        log.contains("rollouts.yaml: Rollout cart, container cart: registry.example.com/cart:1.0.0 -> registry.example.com/cart:1.1.0"),
        "{log}"
    );
    let files = remote.git(
        &remote.bare(),
        &["show", "--name-only", "--format=", "main"],
    );
    assert_eq!(files.trim(), "rollouts.yaml");

    // --commit alone commits locally; GIT_COMMITTER_* from the environment is honoured.
    let out = isolated(Command::new(env!("CARGO_BIN_EXE_sluice")), &remote.home())
        .current_dir(&clone)
        .args([
            "image",
            "set",
            "rollouts.yaml",
            "pay=:1.0.1",
            "--commit",
            "--message",
            "bump {old} to {new}",
        ])
        .env("GIT_COMMITTER_NAME", "Release Train")
        .env("GIT_COMMITTER_EMAIL", "train@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let log = remote.git(&clone, &["log", "-1", "--format=%cn <%ce>|%s"]);
    assert_eq!(
        log.trim(),
        "Release Train <train@example.com>|bump registry.example.com/pay:1.0.0 to registry.example.com/pay:1.0.1"
    );
    assert_eq!(remote.git(&clone, &["status", "--porcelain"]), "");
}

fn different_services_all_land(http: bool) {
    let remote = remote(http);
    let (a, b, stale) = (remote.clone("a"), remote.clone("b"), remote.clone("c"));
    // Two pipelines at once, then one whose clone is behind both.
    let first = remote.bump(&a, &["cart=:1.1.0"]);
    let second = remote.bump(&b, &["pay=:2.0.0"]);
    let (first, second) = (finish(first), finish(second));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(second.status.success(), "{}", stderr(&second));
    let late = finish(remote.bump(&stale, &["ship=:feedf00d"]));
    assert!(late.status.success(), "{}", stderr(&late));
    assert!(stderr(&late).contains("push rejected"), "{}", stderr(&late));
    assert_eq!(
        remote.file(),
        ROLLOUTS
            .replace("cart:1.0.0", "cart:1.1.0")
            .replace("pay:1.0.0", "pay:2.0.0")
            .replace("ship:0badcafe", "ship:feedf00d")
    );
    let subjects = remote.git(&remote.bare(), &["log", "--format=%s", "main"]);
    assert_eq!(subjects.lines().count(), 4, "{subjects}");
}

fn same_image_newer_semver_wins(http: bool) {
    let remote = remote(http);
    let (newer, older) = (remote.clone("newer"), remote.clone("older"));
    let won = finish(remote.bump(&newer, &["cart=:1.2.0"]));
    assert!(won.status.success(), "{}", stderr(&won));
    let lost = finish(remote.bump(&older, &["cart=:1.1.0"]));
    assert_eq!(lost.status.code(), Some(4), "{}", stderr(&lost));
    assert!(stderr(&lost).contains("lost the race"), "{}", stderr(&lost));
    assert!(
        stderr(&lost).contains("1.1.0 is older than 1.2.0"),
        "{}",
        stderr(&lost)
    );
    assert_eq!(remote.file(), ROLLOUTS.replace("cart:1.0.0", "cart:1.2.0"));

    // Both at once: whichever pushes first, the newer version is what stays.
    let (c, d) = (remote.clone("c"), remote.clone("d"));
    let high = remote.bump(&c, &["registry.example.com/cart=:2.0.0"]);
    let low = remote.bump(&d, &["cart=:1.5.0"]);
    let (high, low) = (finish(high), finish(low));
    assert!(high.status.success(), "{}", stderr(&high));
    assert!(matches!(low.status.code(), Some(0 | 4)), "{}", stderr(&low));
    assert_eq!(remote.file(), ROLLOUTS.replace("cart:1.0.0", "cart:2.0.0"));
}

#[test]
fn image_set_different_services_all_land_over_file() {
    different_services_all_land(false);
}

#[test]
fn image_set_different_services_all_land_over_http() {
    different_services_all_land(true);
}

#[test]
fn image_set_same_image_newer_semver_wins_over_file() {
    same_image_newer_semver_wins(false);
}

#[test]
fn image_set_same_image_newer_semver_wins_over_http() {
    same_image_newer_semver_wins(true);
}

/// Commit-SHA tags are not ordered: the later pipeline's bump lands on top and says which
/// image it replaced.
#[test]
fn image_set_sha_tags_land_and_say_what_they_replaced() {
    let remote = remote(false);
    let (first, second) = (remote.clone("first"), remote.clone("second"));
    let out = finish(remote.bump(&first, &["ship=:1111aaaa"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = finish(remote.bump(&second, &["ship=:2222bbbb"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("was registry.example.com/ship:0badcafe, is now registry.example.com/ship:1111aaaa; replacing"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        remote.file(),
        ROLLOUTS.replace("ship:0badcafe", "ship:2222bbbb")
    );
}

/// With a wrong token the HTTP remote refuses the push: exit 5, and the error is git's.
#[test]
fn image_set_push_failure_is_a_git_error() {
    let remote = remote(true);
    let clone = remote.clone("ci");
    let out = isolated(Command::new(env!("CARGO_BIN_EXE_sluice")), &remote.home())
        .current_dir(&clone)
        .args(["image", "set", "rollouts.yaml", "cart=:1.1.0", "--push"])
        .env("GIT_ASKPASS", remote.dir.path().join("askpass"))
        .env("CD_TOKEN", "not-the-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("git push"), "{}", stderr(&out));
    assert_eq!(remote.file(), ROLLOUTS);

    // Behind the remote with no retries left: exit 5, the commit stays local.
    let stale = remote.clone("stale");
    let ahead = finish(remote.bump(&remote.clone("ahead"), &["pay=:1.1.0"]));
    assert!(ahead.status.success(), "{}", stderr(&ahead));
    let out = finish(remote.bump(&stale, &["cart=:1.1.0", "--retries", "0"]));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("push still rejected after 0 retries"),
        "{}",
        stderr(&out)
    );
    assert_eq!(remote.file(), ROLLOUTS.replace("pay:1.0.0", "pay:1.1.0"));

    // A detached HEAD (a CI checkout of a commit) needs --branch.
    let detached = remote.clone("detached");
    remote.git(&detached, &["checkout", "--quiet", "--detach"]);
    let out = finish(remote.bump(&detached, &["ship=:abcdef0"]));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("--branch"), "{}", stderr(&out));
    let out = finish(remote.bump(&detached, &["ship=:abcdef0", "--branch", "main"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(remote.file().contains("ship:abcdef0"));

    // A dirty work tree is refused before anything is edited.
    fs::write(clone.join("rollouts.yaml"), "dirty: true\n").unwrap();
    let out = finish(remote.bump(&clone, &["cart=:1.1.0"]));
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("uncommitted changes"),
        "{}",
        stderr(&out)
    );
}

/// Serves `root` with `git http-backend` on 127.0.0.1; pushes need Basic `ci:TOKEN`.
fn serve(root: PathBuf) -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let root = root.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let root = root.clone();
                    async move { Ok::<_, Infallible>(cgi(root, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, runtime)
}

async fn cgi(root: PathBuf, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let path = parts.uri.path().to_owned();
    let push = query.contains("service=git-receive-pack") || path.ends_with("/git-receive-pack");
    let headers = parts.headers.clone();
    let header = move |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let expected = format!("Basic {}", basic("ci", TOKEN));
    if push && header("authorization").as_deref() != Some(expected.as_str()) {
        return Response::builder()
            .status(401)
            .header("WWW-Authenticate", "Basic realm=\"cd\"")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    let method = parts.method.to_string();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new("git");
        command
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("PATH_INFO", &path)
            .env("QUERY_STRING", &query)
            .env("REQUEST_METHOD", &method)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", "ci")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (name, variable) in [
            ("content-type", "CONTENT_TYPE"),
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
            ("git-protocol", "GIT_PROTOCOL"),
        ] {
            if let Some(value) = header(name) {
                command.env(variable, value);
            }
        }
        let mut child = command.spawn().expect("run git http-backend");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&body));
        let output = child.wait_with_output().unwrap();
        let _ = writer.join();
        let split = output
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| {
                output
                    .stdout
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .map(|i| (i, 2))
            })
            .unwrap_or((output.stdout.len(), 0));
        let head = String::from_utf8_lossy(&output.stdout[..split.0]).into_owned();
        let mut response = Response::builder();
        for line in head.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("status") {
                let code: u16 = value
                    .split(' ')
                    .next()
                    .unwrap_or("200")
                    .parse()
                    .unwrap_or(500);
                response = response.status(code);
            } else {
                response = response.header(name, value);
            }
        }
        let rest = output.stdout[(split.0 + split.1).min(output.stdout.len())..].to_vec();
        response.body(Full::new(Bytes::from(rest))).unwrap()
    })
    .await
    .unwrap()
}

/// `user:password` in base64, for the Basic scheme.
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
