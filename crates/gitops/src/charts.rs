//! Helm chart repositories, the source of an Application whose `source.chart` is set: the
//! repository's `index.yaml` fetched over HTTP(S) (with the repository Secret's basic
//! credentials and TLS client certificate, `insecure` skipping TLS verification), `targetRevision` resolved among the
//! chart's versions as Helm resolves `--version` (an exact version, or a Masterminds semver
//! constraint: `^1.2`, `~1.2.3`, `>=1.0 <2.0`, `1.2.x`, `1.0 - 1.4`, `a || b`; empty or `*` is the
//! newest release), and the chart's package downloaded once per version, its `digest` checked,
//! into the cache, where [`Charts::extract`] unpacks it for `helm template`.
//!
//! A chart version is immutable, so a package once downloaded is never fetched again; the index
//! is fetched again when older than the caller's `max_age`, as a git mirror is.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use serde::Deserialize;
use sluice_reconcile::{
    hash::{OFFSET, fnv1a},
    transport::{Transport, chain},
};

use crate::credentials::{Credentials, redact};

/// The largest index or package read (a big public index is some tens of MiB).
const MAX_BODY: usize = 128 << 20;

/// How long one download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a chart could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChartError {
    /// The index or a package could not be downloaded.
    #[error("failed to fetch {url}: {message}")]
    Fetch {
        /// What was asked for.
        url: String,
        /// Why not.
        message: String,
    },
    /// The index is not a Helm repository index.
    #[error("{url} is not a valid chart repository: {message}")]
    Index {
        /// The index's URL.
        url: String,
        /// The parser's message.
        message: String,
    },
    /// No version of the chart satisfies `targetRevision`.
    #[error("chart \"{chart}\" version \"{version}\" not found in {url} repository")]
    NotFound {
        /// The chart.
        chart: String,
        /// The version or constraint asked for.
        version: String,
        /// The repository.
        url: String,
    },
    /// The package's digest is not the index's.
    #[error("{url}: sha256 digest {actual} does not match the index's {expected}")]
    Digest {
        /// The package.
        url: String,
        /// The index's digest.
        expected: String,
        /// The download's.
        actual: String,
    },
    /// The package could not be kept or unpacked.
    #[error("chart package {path}: {message}")]
    Package {
        /// The package or directory.
        path: String,
        /// Why.
        message: String,
    },
}

/// One version of a chart in an index.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ChartVersion {
    version: String,
    urls: Vec<String>,
    digest: Option<String>,
}

/// A repository's `index.yaml`: its charts' versions.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Index {
    entries: BTreeMap<String, Vec<ChartVersion>>,
}

/// The chart repositories' indexes and packages under one cache directory.
#[derive(Debug)]
pub struct Charts {
    dir: PathBuf,
    transport: OnceLock<TransportCell>,
    /// Per repository URL: when its index was fetched, and the index.
    indexes: tokio::sync::Mutex<HashMap<String, (Instant, Arc<Index>)>>,
}

/// The shared clients (made when first needed: reading the system's roots costs).
struct TransportCell(Transport);

impl std::fmt::Debug for TransportCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transport")
    }
}

impl Charts {
    /// Packages live under `dir` (created when first needed).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            transport: OnceLock::new(),
            indexes: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The version of `chart` in the repository at `url` that `constraint` names, fetching the
    /// index when the last fetch is older than `max_age`, and the version's package when the
    /// cache does not hold it.
    pub async fn resolve(
        &self,
        url: &str,
        chart: &str,
        constraint: &str,
        max_age: Duration,
        credentials: &Credentials,
    ) -> Result<String, ChartError> {
        let index = self.index(url, max_age, credentials).await?;
        let not_found = || ChartError::NotFound {
            chart: chart.to_owned(),
            version: constraint.to_owned(),
            url: redact(url),
        };
        let versions = index.entries.get(chart).ok_or_else(not_found)?;
        let version =
            pick(versions.iter().map(|v| v.version.as_str()), constraint).ok_or_else(not_found)?;
        let entry = versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(not_found)?;
        let package = self.package_path(url, chart, &version);
        if !package.is_file() {
            let location = entry.urls.first().ok_or_else(|| ChartError::Index {
                url: redact(url),
                message: format!("{chart} {version} has no urls"),
            })?;
            let location = if location.contains("://") {
                location.clone()
            } else {
                format!("{}/{}", url.trim_end_matches('/'), location)
            };
            let bytes = self.get(&location, credentials).await?;
            if let Some(expected) = entry.digest.as_deref().filter(|d| !d.is_empty()) {
                let actual = hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
                if !actual.eq_ignore_ascii_case(expected) {
                    return Err(ChartError::Digest {
                        url: redact(&location),
                        expected: expected.to_owned(),
                        actual,
                    });
                }
            }
            write_atomically(&package, &bytes)?;
        }
        Ok(version)
    }

    /// Unpacks version `version` of `chart` (resolved before by [`Self::resolve`]) under
    /// `dest`, returning the chart's directory.
    pub async fn extract(
        &self,
        url: &str,
        chart: &str,
        version: &str,
        dest: &Path,
    ) -> Result<PathBuf, ChartError> {
        let package = self.package_path(url, chart, version);
        let dest = dest.to_owned();
        tokio::task::spawn_blocking(move || unpack(&package, &dest))
            .await
            .unwrap_or_else(|e| {
                Err(ChartError::Package {
                    path: String::new(),
                    message: e.to_string(),
                })
            })
    }

    fn package_path(&self, url: &str, chart: &str, version: &str) -> PathBuf {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        self.dir
            .join(format!("{:08x}", fnv1a(url.as_bytes(), OFFSET)))
            .join(format!("{}-{}.tgz", safe(chart), safe(version)))
    }

    async fn index(
        &self,
        url: &str,
        max_age: Duration,
        credentials: &Credentials,
    ) -> Result<Arc<Index>, ChartError> {
        if let Some((at, index)) = self.indexes.lock().await.get(url)
            && at.elapsed() < max_age
        {
            return Ok(index.clone());
        }
        // Fetched without the lock held: one slow repository does not hold up the others.
        let location = format!("{}/index.yaml", url.trim_end_matches('/'));
        let bytes = self.get(&location, credentials).await?;
        let text = String::from_utf8_lossy(&bytes);
        let index: Index = serde_saphyr::from_str(&text).map_err(|e| ChartError::Index {
            url: redact(url),
            message: e.to_string(),
        })?;
        let index = Arc::new(index);
        self.indexes
            .lock()
            .await
            .insert(url.to_owned(), (Instant::now(), index.clone()));
        Ok(index)
    }

    /// `GET location`, with HTTP basic credentials when the Secret has a username or password.
    async fn get(&self, location: &str, credentials: &Credentials) -> Result<Bytes, ChartError> {
        let failed = |message: String| ChartError::Fetch {
            url: redact(location),
            message,
        };
        let transport = &self
            .transport
            .get_or_init(|| TransportCell(Transport::new()))
            .0;
        let mut request = http::Request::get(location);
        if credentials.username.is_some() || credentials.password.is_some() {
            let pair = format!(
                "{}:{}",
                credentials.username.as_deref().unwrap_or_default(),
                credentials.password.as_deref().unwrap_or_default()
            );
            let token = base64::engine::general_purpose::STANDARD.encode(pair);
            request = request.header(http::header::AUTHORIZATION, format!("Basic {token}"));
        }
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let own;
        let client = match credentials.client_certificate() {
            Some((cert, key)) => {
                own = Transport::with_client_certificate(
                    cert.as_bytes(),
                    key.as_bytes(),
                    credentials.insecure,
                )
                .map_err(failed)?;
                &own
            }
            None => transport.client(credentials.insecure),
        };
        let download = async {
            let response = client
                .request(request)
                .await
                .map_err(|e| failed(chain(&e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(failed(status.to_string()));
            }
            Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map(|body| body.to_bytes())
                .map_err(|e| failed(e.to_string()))
        };
        tokio::time::timeout(DOWNLOAD_TIMEOUT, download)
            .await
            .unwrap_or_else(|_| Err(failed(format!("timed out after {DOWNLOAD_TIMEOUT:?}"))))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ChartError> {
    let failed = |e: std::io::Error| ChartError::Package {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    // A file of its own per download: two resolutions of one version never mix their bytes.
    let mut partial = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    std::io::Write::write_all(&mut partial, bytes).map_err(failed)?;
    partial.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

/// Unpacks the gzipped tarball `package` under `dest` (entries leaving `dest` are refused by
/// the `tar` crate) and finds the chart: the directory holding `Chart.yaml`.
fn unpack(package: &Path, dest: &Path) -> Result<PathBuf, ChartError> {
    let failed = |message: String| ChartError::Package {
        path: package.display().to_string(),
        message,
    };
    let file = std::fs::File::open(package).map_err(|e| failed(e.to_string()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(dest)
        .map_err(|e| failed(e.to_string()))?;
    let mut found = std::fs::read_dir(dest)
        .map_err(|e| failed(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Chart.yaml").is_file());
    found
        .next()
        .ok_or_else(|| failed("no Chart.yaml in the package".into()))
}

/// A version as Masterminds' semver reads it: an optional `v`, missing minor or patch 0.
fn lenient(version: &str) -> Option<semver::Version> {
    let version = version.trim().trim_start_matches('v');
    if let Ok(parsed) = semver::Version::parse(version) {
        return Some(parsed);
    }
    let (core, rest) = match version.find(['-', '+']) {
        Some(i) => version.split_at(i),
        None => (version, ""),
    };
    let padded = match core.split('.').count() {
        1 => format!("{core}.0.0{rest}"),
        2 => format!("{core}.0{rest}"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

/// One `||` alternative of a constraint: comparators all of which must hold (`!=` is
/// Masterminds' own; the rest make one `semver` requirement, so that a prerelease admitted by
/// one comparator is admitted by the whole, as in Masterminds).
struct Alternative {
    required: semver::VersionReq,
    excluded: Vec<semver::Version>,
}

impl Alternative {
    fn matches(&self, version: &semver::Version) -> bool {
        self.required.matches(version) && !self.excluded.contains(version)
    }
}

/// Reads one alternative.
fn alternative(text: &str) -> Option<Alternative> {
    // A hyphen range `a - b` is `>=a, <=b`.
    if let Some((low, high)) = text.split_once(" - ") {
        let required = format!(">={}, <={}", low.trim(), high.trim());
        return Some(Alternative {
            required: semver::VersionReq::parse(&required).ok()?,
            excluded: Vec::new(),
        });
    }
    // Operators may stand apart from their version (`>= 1.2`): glue them back.
    let mut tokens: Vec<String> = Vec::new();
    for token in text.split([' ', ',']).filter(|t| !t.is_empty()) {
        match tokens.last_mut() {
            Some(last) if last.chars().all(|c| "<>=!~^".contains(c)) => last.push_str(token),
            _ => tokens.push(token.to_owned()),
        }
    }
    let mut required = Vec::new();
    let mut excluded = Vec::new();
    for token in &tokens {
        let split = token
            .find(|c: char| !"<>=!~^".contains(c))
            .unwrap_or(token.len());
        let (op, version) = token.split_at(split);
        let version = version.trim_start_matches('v');
        let wildcard = version.split('.').any(|p| matches!(p, "x" | "X" | "*"));
        let op = match op {
            "!=" => {
                excluded.push(lenient(version)?);
                continue;
            }
            "=<" => "<=",
            "=>" => ">=",
            "~>" => "~",
            // A bare version is exact in Masterminds (`semver` would read it as `^`), and a
            // bare wildcard is a wildcard.
            "" | "=" if wildcard => "",
            "" => "=",
            other => other,
        };
        let version = if wildcard && !op.is_empty() {
            version
                .split('.')
                .take_while(|p| !matches!(*p, "x" | "X" | "*"))
                .collect::<Vec<_>>()
                .join(".")
        } else {
            version.to_owned()
        };
        required.push(if version.is_empty() {
            "*".to_owned()
        } else {
            format!("{op}{version}")
        });
    }
    let required = if required.is_empty() {
        semver::VersionReq::STAR
    } else {
        semver::VersionReq::parse(&required.join(", ")).ok()?
    };
    Some(Alternative { required, excluded })
}

/// The newest of `versions` that `constraint` admits, as Helm picks a chart version: an exact
/// version matches itself (prereleases included); a constraint skips prereleases unless it
/// names one; empty, `*` and `latest` take the newest release.
pub fn pick<'a>(versions: impl Iterator<Item = &'a str>, constraint: &str) -> Option<String> {
    let constraint = constraint.trim();
    let versions: Vec<(&str, semver::Version)> = versions
        .filter_map(|v| lenient(v).map(|parsed| (v, parsed)))
        .collect();
    let newest = |admits: &dyn Fn(&semver::Version) -> bool| {
        versions
            .iter()
            .filter(|(_, v)| admits(v))
            .max_by(|a, b| a.1.cmp(&b.1))
            .map(|(raw, _)| (*raw).to_owned())
    };
    if constraint.is_empty() || constraint == "*" || constraint == "latest" {
        return newest(&|v| v.pre.is_empty());
    }
    if let Some(exact) = versions.iter().find(|(raw, _)| *raw == constraint) {
        return Some(exact.0.to_owned());
    }
    if let Ok(exact) = semver::Version::parse(constraint.trim_start_matches('v')) {
        return newest(&|v| *v == exact);
    }
    let alternatives: Vec<Alternative> = constraint
        .split("||")
        .map(|a| alternative(a.trim()))
        .collect::<Option<_>>()?;
    newest(&|v| alternatives.iter().any(|a| a.matches(v)))
}

#[cfg(test)]
pub(crate) mod tests;
