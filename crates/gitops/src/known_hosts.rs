//! ssh host keys as Argo CD trusts them: the ConfigMap `argocd-ssh-known-hosts-cm` of the
//! controller's namespace holds, under `ssh_known_hosts`, lines in OpenSSH's `known_hosts`
//! format (`host[,host2…] keytype base64key [comment]`). A host pattern is a name or address
//! (`*` and `?` wildcards, `!` negates), `[host]:port` for a port other than 22. Hashed names
//! (`|1|…`) and `@cert-authority` lines are skipped; a key on an `@revoked` line is refused for
//! every host.
//!
//! [`KnownHosts::check`] accepts a server's host key only when a line naming that host and
//! port holds the same key bytes, and refuses otherwise with Go's `knownhosts` wording, as
//! Argo CD reports it: `key is unknown` when no line names the host, `key mismatch` when lines
//! name it with other keys.

use base64::Engine as _;
use k8s_openapi::api::core::v1::ConfigMap;

/// The ConfigMap of trusted ssh host keys (Argo CD's name).
pub const CONFIG_MAP: &str = "argocd-ssh-known-hosts-cm";
/// Its key holding the `known_hosts` lines.
pub const KEY: &str = "ssh_known_hosts";

/// Why a host key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    /// No line names the host.
    #[error(
        "ssh: handshake failed: knownhosts: key is unknown (no line of ConfigMap {CONFIG_MAP} names {host})"
    )]
    Unknown {
        /// The host as known_hosts writes it (`host` or `[host]:port`).
        host: String,
    },
    /// Lines name the host, none with the key it presented.
    #[error(
        "ssh: handshake failed: knownhosts: key mismatch ({host} presented a host key of type {key_type} that ConfigMap {CONFIG_MAP} does not list for it)"
    )]
    Mismatch {
        /// The host as known_hosts writes it.
        host: String,
        /// The presented key's type (`ssh-ed25519`, …).
        key_type: String,
    },
    /// The key is on an `@revoked` line.
    #[error("ssh: handshake failed: knownhosts: key is revoked ({host})")]
    Revoked {
        /// The host as known_hosts writes it.
        host: String,
    },
}

/// One host pattern of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// Lower-cased host pattern (wildcards kept).
    host: String,
    port: u16,
    negated: bool,
}

/// One usable line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    patterns: Vec<Pattern>,
    key_type: String,
    key: Vec<u8>,
    revoked: bool,
}

/// The trusted host keys (public keys: nothing here is secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    lines: Vec<Line>,
}

impl KnownHosts {
    /// The lines of `text` that can be used; the others (comments, hashed names,
    /// `@cert-authority`, malformed lines) are skipped.
    pub fn parse(text: &str) -> Self {
        Self {
            lines: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// The ConfigMap's `ssh_known_hosts` (empty when it has none).
    pub fn from_config_map(map: &ConfigMap) -> Self {
        map.data
            .as_ref()
            .and_then(|d| d.get(KEY))
            .map(|text| Self::parse(text))
            .unwrap_or_default()
    }

    /// How many lines are usable.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// No usable line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Whether `key` (the ssh wire encoding of the server's host key, as in a known_hosts
    /// line's base64) of type `key_type` is trusted for `host` on `port`.
    pub fn check(
        &self,
        host: &str,
        port: u16,
        key_type: &str,
        key: &[u8],
    ) -> Result<(), HostKeyError> {
        let host = host.to_ascii_lowercase();
        let named = if port == 22 {
            host.clone()
        } else {
            format!("[{host}]:{port}")
        };
        if self.lines.iter().any(|l| l.revoked && l.key == key) {
            return Err(HostKeyError::Revoked { host: named });
        }
        let mut matched = self
            .lines
            .iter()
            .filter(|l| !l.revoked && l.matches(&host, port))
            .peekable();
        if matched.peek().is_none() {
            return Err(HostKeyError::Unknown { host: named });
        }
        if matched.any(|l| l.key == key) {
            return Ok(());
        }
        Err(HostKeyError::Mismatch {
            host: named,
            key_type: key_type.to_owned(),
        })
    }
}

impl Line {
    /// Some pattern matches and no negated one does (OpenSSH's rule).
    fn matches(&self, host: &str, port: u16) -> bool {
        let mut any = false;
        for p in &self.patterns {
            if p.port == port && glob(p.host.as_bytes(), host.as_bytes()) {
                if p.negated {
                    return false;
                }
                any = true;
            }
        }
        any
    }
}

fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace().peekable();
    let revoked = match fields.peek() {
        Some(&"@revoked") => {
            fields.next();
            true
        }
        Some(marker) if marker.starts_with('@') => return None,
        _ => false,
    };
    let hosts = fields.next()?;
    let key_type = fields.next()?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(fields.next()?)
        .ok()?;
    if hosts.starts_with('|') {
        return None;
    }
    let patterns = hosts
        .split(',')
        .filter_map(parse_pattern)
        .collect::<Vec<_>>();
    (!patterns.is_empty()).then(|| Line {
        patterns,
        key_type: key_type.to_owned(),
        key,
        revoked,
    })
}

fn parse_pattern(pattern: &str) -> Option<Pattern> {
    let (negated, pattern) = match pattern.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (host, port) = match pattern.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest.split_once("]:")?;
            (host, port.parse().ok()?)
        }
        None => (pattern, 22),
    };
    (!host.is_empty()).then(|| Pattern {
        host: host.to_ascii_lowercase(),
        port,
        negated,
    })
}

/// OpenSSH's pattern match: `*` any run, `?` any one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((&c, rest)) => text
            .split_first()
            .is_some_and(|(&t, tail)| (c == b'?' || c == t) && glob(rest, tail)),
    }
}

/// The port an ssh repository URL connects to: `ssh://[user@]host[:port]/path` (also
/// `ssh+git://`, `git+ssh://`) or scp-like `[user@]host:path` (22). `None` for other URLs.
pub fn ssh_port(url: &str) -> Option<u16> {
    let url = url.trim();
    if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(
            scheme.to_ascii_lowercase().as_str(),
            "ssh" | "ssh+git" | "git+ssh"
        ) {
            return None;
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let port = match host_port.strip_prefix('[') {
            Some(rest) => rest.split_once("]:").map(|(_, p)| p),
            None => host_port.split_once(':').map(|(_, p)| p),
        };
        return match port {
            Some(p) if !p.is_empty() => p.parse().ok(),
            _ => Some(22),
        };
    }
    is_scp_like(url).then_some(22)
}

/// `[user@]host:path`: no scheme, a colon before any slash, and not a local path.
pub fn is_scp_like(url: &str) -> bool {
    !url.contains("://")
        && !url.starts_with('/')
        && !url.starts_with('.')
        && url
            .split_once(':')
            .is_some_and(|(host, _)| !host.is_empty() && !host.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const RSA: &str =
        "AAAAB3NzaC1yc2EAAAADAQABAAABAQDByAO8uj+kXicj6C2ODMspgmUoVyl5eaw8vR6a1yEnFuJF";

    fn key(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    #[test]
    fn lines_parse_and_skip_what_cannot_be_used() {
        let hosts = KnownHosts::parse(&format!(
            "# a comment\n\n\
             github.com ssh-ed25519 {ED}\n\
             |1|c2FsdA==|aGFzaA== ssh-ed25519 {ED}\n\
             @cert-authority *.example.com ssh-ed25519 {ED}\n\
             broken-line ssh-ed25519\n\
             bad-base64 ssh-ed25519 !!!\n\
             [127.0.0.1]:2222,git.example.com ssh-rsa {RSA} a comment\n"
        ));
        assert_eq!(hosts.len(), 2);
        assert!(KnownHosts::parse("").is_empty());
    }

    #[test]
    fn a_known_key_for_the_host_and_port_is_accepted() {
        let hosts = KnownHosts::parse(&format!(
            "github.com ssh-ed25519 {ED}\n[127.0.0.1]:2222,GIT.example.com ssh-rsa {RSA}\n"
        ));
        assert_eq!(
            hosts.check("github.com", 22, "ssh-ed25519", &key(ED)),
            Ok(())
        );
        assert_eq!(
            hosts.check("GitHub.com", 22, "ssh-ed25519", &key(ED)),
            Ok(())
        );
        assert_eq!(hosts.check("127.0.0.1", 2222, "ssh-rsa", &key(RSA)), Ok(()));
        assert_eq!(
            hosts.check("git.example.com", 22, "ssh-rsa", &key(RSA)),
            Ok(())
        );
    }

    #[test]
    fn an_unknown_host_or_port_and_a_different_key_are_refused() {
        let hosts = KnownHosts::parse(&format!(
            "github.com ssh-ed25519 {ED}\n[127.0.0.1]:2222 ssh-ed25519 {ED}\n"
        ));
        let unknown = hosts
            .check("127.0.0.1", 2223, "ssh-ed25519", &key(ED))
            .unwrap_err();
        assert_eq!(
            unknown,
            HostKeyError::Unknown {
                host: "[127.0.0.1]:2223".into()
            }
        );
        assert!(
            unknown.to_string().contains("knownhosts: key is unknown"),
            "{unknown}"
        );
        // A line for port 22 does not name another port, nor the reverse.
        assert!(matches!(
            hosts.check("github.com", 2222, "ssh-ed25519", &key(ED)),
            Err(HostKeyError::Unknown { .. })
        ));
        assert!(matches!(
            hosts.check("127.0.0.1", 22, "ssh-ed25519", &key(ED)),
            Err(HostKeyError::Unknown { .. })
        ));
        let mismatch = hosts
            .check("github.com", 22, "ssh-rsa", &key(RSA))
            .unwrap_err();
        assert!(
            mismatch
                .to_string()
                .starts_with("ssh: handshake failed: knownhosts: key mismatch (github.com"),
            "{mismatch}"
        );
        assert!(matches!(
            KnownHosts::default().check("github.com", 22, "ssh-ed25519", &key(ED)),
            Err(HostKeyError::Unknown { .. })
        ));
    }

    #[test]
    fn wildcards_negations_and_revocations() {
        let hosts = KnownHosts::parse(&format!(
            "*.example.com,!evil.example.com ssh-ed25519 {ED}\n\
             [git?.example.org]:7999 ssh-ed25519 {ED}\n\
             @revoked * ssh-rsa {RSA}\n\
             old.example.net ssh-rsa {RSA}\n"
        ));
        assert_eq!(
            hosts.check("git.example.com", 22, "ssh-ed25519", &key(ED)),
            Ok(())
        );
        assert!(matches!(
            hosts.check("evil.example.com", 22, "ssh-ed25519", &key(ED)),
            Err(HostKeyError::Unknown { .. })
        ));
        assert_eq!(
            hosts.check("git1.example.org", 7999, "ssh-ed25519", &key(ED)),
            Ok(())
        );
        assert!(matches!(
            hosts.check("git12.example.org", 7999, "ssh-ed25519", &key(ED)),
            Err(HostKeyError::Unknown { .. })
        ));
        assert!(matches!(
            hosts.check("old.example.net", 22, "ssh-rsa", &key(RSA)),
            Err(HostKeyError::Revoked { .. })
        ));
    }

    #[test]
    fn ssh_urls_name_their_port() {
        assert_eq!(
            ssh_port("ssh://git@127.0.0.1:2222/srv/repo.git"),
            Some(2222)
        );
        assert_eq!(ssh_port("ssh://git@github.com/org/repo"), Some(22));
        assert_eq!(ssh_port("git+ssh://[::1]:2200/repo"), Some(2200));
        assert_eq!(ssh_port("git@github.com:org/repo.git"), Some(22));
        assert_eq!(ssh_port("github.com:org/repo.git"), Some(22));
        assert_eq!(ssh_port("https://github.com/org/repo"), None);
        assert_eq!(ssh_port("file:///srv/repo"), None);
        assert_eq!(ssh_port("/srv/repo"), None);
        assert_eq!(ssh_port("./a:b"), None);
        assert!(is_scp_like("git@host:path/repo"));
        assert!(!is_scp_like("/srv/a:b"));
    }
}
