//! The `git` binary, run for `sluice image set --commit --push`. Shelling out keeps every
//! credential path git itself has: `GIT_ASKPASS`, credential helpers holding a token, an SSH
//! agent, `insteadOf` rewrites. Prompts are off (`GIT_TERMINAL_PROMPT=0`): CI has no terminal.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The binary could not be run.
    #[error("running git: {0}")]
    Spawn(#[from] std::io::Error),
    /// A command exited non-zero.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// The arguments, joined.
        command: String,
        /// What git printed on stderr.
        stderr: String,
    },
    /// Something the command line asked for does not fit the repository.
    #[error("{0}")]
    Refused(String),
}

/// What a push did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// The branch now holds our commit.
    Landed,
    /// Someone else pushed first (non-fast-forward, or lost the ref lock): fetch and retry.
    Behind(String),
}

/// A work tree, and the identity its commits are made with.
#[derive(Debug)]
pub struct Repo {
    /// The work tree's top directory.
    pub root: PathBuf,
    env: Vec<(String, String)>,
}

impl Repo {
    /// The repository holding `path` (a file or directory).
    pub fn discover(path: &Path) -> Result<Repo, GitError> {
        let dir = if path.is_dir() {
            path
        } else {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
        };
        let mut repo = Repo {
            root: dir.to_path_buf(),
            env: Vec::new(),
        };
        let top = repo.run(["rev-parse", "--show-toplevel"])?;
        repo.root = PathBuf::from(top.trim());
        Ok(repo)
    }

    /// Commits as `author`/`committer` (`Name <email>`) when given; otherwise git's own rules
    /// (`GIT_AUTHOR_*`, `GIT_COMMITTER_*`, `user.*` config), and `sluice <sluice@localhost>` when
    /// those name nobody.
    pub fn set_identity(
        &mut self,
        author: Option<&str>,
        committer: Option<&str>,
    ) -> Result<(), GitError> {
        for (role, given) in [("AUTHOR", author), ("COMMITTER", committer)] {
            let (name, email) = match given {
                Some(ident) => parse_ident(ident)
                    .ok_or_else(|| GitError::Refused(format!("{ident:?} is not `Name <email>`")))?,
                None if self.run(["var", &format!("GIT_{role}_IDENT")]).is_err() => {
                    ("sluice".to_owned(), "sluice@localhost".to_owned())
                }
                None => continue,
            };
            self.env.push((format!("GIT_{role}_NAME"), name));
            self.env.push((format!("GIT_{role}_EMAIL"), email));
        }
        Ok(())
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.root).args(args);
        if std::env::var_os("GIT_TERMINAL_PROMPT").is_none() {
            command.env("GIT_TERMINAL_PROMPT", "0");
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn output<I, S>(&self, args: I) -> Result<(String, Output), GitError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let line = args
            .clone()
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let output = self.command(args).output()?;
        Ok((line, output))
    }

    /// Runs git; its stdout on success.
    fn run<I, S>(&self, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let (command, output) = self.output(args)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(GitError::Failed {
                command,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// Whether tracked files have no uncommitted changes.
    pub fn is_clean(&self) -> Result<bool, GitError> {
        Ok(self
            .run(["status", "--porcelain", "--untracked-files=no"])?
            .trim()
            .is_empty())
    }

    /// The checked-out branch, `None` on a detached HEAD.
    pub fn branch(&self) -> Option<String> {
        self.run(["symbolic-ref", "--short", "-q", "HEAD"])
            .ok()
            .map(|b| b.trim().to_owned())
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> Result<String, GitError> {
        Ok(self.run(["rev-parse", "HEAD"])?.trim().to_owned())
    }

    /// Commits exactly `files` with `message`.
    pub fn commit(&self, files: &[PathBuf], message: &str) -> Result<(), GitError> {
        let mut add: Vec<&OsStr> = vec![OsStr::new("add"), OsStr::new("--")];
        add.extend(files.iter().map(|f| f.as_os_str()));
        self.run(add)?;
        let mut commit: Vec<&OsStr> = ["commit", "--quiet", "-m", message, "--"]
            .into_iter()
            .map(OsStr::new)
            .collect();
        commit.extend(files.iter().map(|f| f.as_os_str()));
        self.run(commit)?;
        Ok(())
    }

    /// Pushes HEAD to `branch` of `remote`.
    pub fn push(&self, remote: &str, branch: &str) -> Result<Pushed, GitError> {
        let refspec = format!("HEAD:refs/heads/{branch}");
        let (command, output) = self.output(["push", "--porcelain", remote, &refspec])?;
        if output.status.success() {
            return Ok(Pushed::Landed);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // `--porcelain` prints `!\tHEAD:refs/heads/main\t[rejected] (fetch first)`.
        let race = [
            "fetch first",
            "non-fast-forward",
            "failed to update ref",
            "cannot lock ref",
            "failed to lock",
            "stale info",
            "incorrect old value",
        ];
        match stdout.lines().find(|line| line.starts_with('!')) {
            Some(line) if race.iter().any(|r| line.contains(r)) => Ok(Pushed::Behind(
                line.rsplit('\t').next().unwrap_or(line).to_owned(),
            )),
            _ => Err(GitError::Failed {
                command,
                stderr: format!("{}\n{}", stdout.trim(), stderr.trim())
                    .trim()
                    .to_owned(),
            }),
        }
    }

    /// Fetches `branch` of `remote` into its remote-tracking ref and returns that ref.
    pub fn fetch(&self, remote: &str, branch: &str) -> Result<String, GitError> {
        let tracking = format!("refs/remotes/{remote}/{branch}");
        self.run([
            "fetch",
            "--quiet",
            remote,
            &format!("+refs/heads/{branch}:{tracking}"),
        ])?;
        Ok(tracking)
    }

    /// Drops our bump commit (`base` is where it started) and replays any other local commits on
    /// `upstream`; on a conflict the rebase is aborted.
    pub fn rebase_onto(&self, base: &str, upstream: &str) -> Result<(), GitError> {
        self.run(["reset", "--quiet", "--hard", base])?;
        if let Err(err) = self.run(["rebase", "--quiet", upstream]) {
            let _ = self.run(["rebase", "--abort"]);
            return Err(err);
        }
        Ok(())
    }
}

/// `Name <email>` split.
fn parse_ident(ident: &str) -> Option<(String, String)> {
    let (name, rest) = ident.split_once('<')?;
    let email = rest.strip_suffix('>')?;
    let name = name.trim();
    (!name.is_empty() && !email.is_empty()).then(|| (name.to_owned(), email.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::parse_ident;

    #[test]
    fn identities_are_name_and_email() {
        assert_eq!(
            parse_ident("CI Bot <ci@example.com>"),
            Some(("CI Bot".into(), "ci@example.com".into()))
        );
        assert_eq!(parse_ident("ci@example.com"), None);
        assert_eq!(parse_ident("<ci@example.com>"), None);
    }
}
