//! `sluice image set`: the CI step that bumps an image in the CD repository. It finds the
//! image ([`locate`]), changes only the bytes of that value ([`edit`]), refuses downgrades
//! ([`semver_guard`]), and optionally commits and pushes with a bounded fetch–rebase–retry loop
//! ([`git`]) that re-applies the bump on whatever landed meanwhile. [`worktree`] reads the files
//! and writes them back.

mod edit;
mod git;
mod locate;
mod reference;
mod semver_guard;
mod worktree;
pub mod yaml;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use self::{
    git::{GitError, Pushed, Repo},
    reference::{Assignment, ImageRef},
    worktree::{File, Planned, plan, write},
};

const EXIT_CODES: &str = "\
Exit codes:
  0  changed (and committed/pushed when asked), or already set to that image
  1  bad input: unreadable file, YAML that does not parse, a value that cannot be edited in place
  2  nothing matched CONTAINER_OR_IMAGE (also clap's code for a malformed command line)
  3  more than one place matched and --all was not given; every candidate is listed
  4  the new semver tag is lower than the current one (without --allow-downgrade), or another
     pipeline pushed a newer version of the same image first: nothing was pushed
  5  git failed: not a repository, uncommitted changes, commit or push refused, or still behind
     the remote after --retries attempts

Examples:
  sluice image set deploy/rollout.yaml rollouts-demo=123456789012.dkr.ecr.eu-west-1.amazonaws.com/demo:1.4.0
  sluice image set deploy/ registry.example.com/team/app=:${GITHUB_SHA} --commit --push --skip-ci
  sluice image set charts/app/values.yaml --helm-value image.tag app=:1.4.0 --commit --push
";

/// Flags of `sluice image set`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 changed or already set, 1 bad input, 2 nothing matched, 3 ambiguous, \
                  4 downgrade refused or a newer version pushed first, 5 git failed (--help: more)",
    after_long_help = EXIT_CODES
)]
pub struct ImageSetArgs {
    /// A manifest, kustomization or Helm values file, or a directory searched for *.yaml and
    /// *.yml (hidden directories skipped; files that are not YAML skipped with a warning).
    #[arg(value_name = "FILE_OR_DIR")]
    path: PathBuf,
    /// A container name or image repository, and the new image: a whole reference
    /// (`registry/app:1.2.3`, `registry/app@sha256:…`) or only `:TAG` / `@DIGEST` to keep the
    /// repository already there.
    #[arg(value_name = "CONTAINER_OR_IMAGE=NEW_IMAGE", required = true)]
    assignments: Vec<String>,
    /// Edit the scalar at this Helm values path instead of containers (repeatable). A key ending
    /// in `tag` takes the tag, `digest` the digest, `repository`/`repo` the repository; any other
    /// key the whole reference. `\.` is a dot inside a key; a number indexes a sequence.
    #[arg(long, value_name = "PATH")]
    helm_value: Vec<String>,
    /// Change every match instead of refusing more than one.
    #[arg(long)]
    all: bool,
    /// Print the diff and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Allow a lower semantic version than the current one.
    #[arg(long)]
    allow_downgrade: bool,
    /// Commit the change (only the changed files) in the repository holding FILE_OR_DIR.
    #[arg(long)]
    commit: bool,
    /// Commit and push; when the remote moved on, fetch, rebase, re-apply and retry.
    #[arg(long)]
    push: bool,
    /// The remote to push to.
    #[arg(long, default_value = "origin", value_name = "NAME")]
    remote: String,
    /// The branch to push to [default: the checked-out branch].
    #[arg(long, value_name = "NAME")]
    branch: Option<String>,
    /// How many times to fetch, rebase and push again after a rejected push.
    #[arg(long, default_value_t = 5, value_name = "N")]
    retries: u32,
    /// Commit author, `Name <email>` [default: GIT_AUTHOR_*, then git config]
    #[arg(long, value_name = "IDENT")]
    author: Option<String>,
    /// Committer, `Name <email>` [default: GIT_COMMITTER_*, then git config]
    #[arg(long, value_name = "IDENT")]
    committer: Option<String>,
    /// Commit message; {selector}, {old}, {new}, {old_version}, {new_version} and {changes}
    /// are filled in (the first change's images for {old} and {new}).
    #[arg(
        long,
        value_name = "TEMPLATE",
        default_value = "Deploy {selector} {new_version}\n\n{changes}"
    )]
    message: String,
    /// Add `[skip ci]` to the commit subject.
    #[arg(long)]
    skip_ci: bool,
}

/// A failure, with its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// No place matches a selector (exit 2).
    #[error("{0}")]
    NothingMatched(String),
    /// A selector matches several places and `--all` was not given (exit 3).
    #[error("{0}")]
    Ambiguous(String),
    /// A lower semver, or a newer one pushed first (exit 4).
    #[error("{0}")]
    Downgrade(String),
    /// git failed or refused (exit 5).
    #[error(transparent)]
    Git(#[from] GitError),
    /// Unreadable input or a value that cannot be edited in place (exit 1).
    #[error(transparent)]
    Input(#[from] anyhow::Error),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Input(_) => 1,
            Failure::NothingMatched(_) => 2,
            Failure::Ambiguous(_) => 3,
            Failure::Downgrade(_) => 4,
            Failure::Git(_) => 5,
        }
    }
}

/// Runs `sluice image set`; the exit code follows [`EXIT_CODES`].
pub fn run(args: ImageSetArgs) -> ExitCode {
    match execute(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("sluice image set: {failure:#}");
            ExitCode::from(failure.code())
        }
    }
}

fn execute(args: &ImageSetArgs) -> Result<(), Failure> {
    let assignments = args
        .assignments
        .iter()
        .map(|a| Assignment::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::from)?;
    let committing = args.commit || args.push;
    if !committing {
        let (files, plans) = plan(args, &assignments)?;
        return write(args, &files, &plans).map(|_| ());
    }

    let mut repo = Repo::discover(&args.path)?;
    if !repo.is_clean()? {
        return Err(GitError::Refused(format!(
            "{} has uncommitted changes; --commit and --push need a clean work tree",
            repo.root.display()
        ))
        .into());
    }
    repo.set_identity(args.author.as_deref(), args.committer.as_deref())?;
    let branch = match args.branch.clone().or_else(|| repo.branch()) {
        Some(branch) => branch,
        None => {
            return Err(GitError::Refused(
                "HEAD is detached: name the branch with --branch".into(),
            )
            .into());
        }
    };

    let mut first_seen: Option<Vec<(String, ImageRef)>> = None;
    let mut attempt = 0;
    loop {
        let base = repo.head()?;
        let (files, plans) = match plan(args, &assignments) {
            Err(Failure::Downgrade(why)) if attempt > 0 => {
                return Err(Failure::Downgrade(format!(
                    "lost the race: another push to {}/{branch} set a newer version first; nothing pushed\n  {why}",
                    args.remote
                )));
            }
            other => other?,
        };
        let seen: Vec<(String, ImageRef)> = plans
            .iter()
            .map(|p| (p.site.description.clone(), p.site.current.clone()))
            .collect();
        if let Some(first) = &first_seen {
            for (what, now) in &seen {
                let before = first.iter().find(|(w, _)| w == what).map(|(_, b)| b);
                if let Some(before) = before.filter(|before| *before != now) {
                    eprintln!(
                        "sluice image set: {} moved on meanwhile: {what} was {before}, is now {now}; replacing {now}",
                        args.remote
                    );
                }
            }
        }
        first_seen.get_or_insert(seen);
        let changed = write(args, &files, &plans)?;
        if args.dry_run || changed.is_empty() {
            return Ok(());
        }
        repo.commit(&changed, &message(args, &files, &plans, &repo.root))?;
        if !args.push {
            eprintln!("sluice image set: committed {}", short(&repo.head()?));
            return Ok(());
        }
        match repo.push(&args.remote, &branch)? {
            Pushed::Landed => {
                eprintln!(
                    "sluice image set: pushed {} to {}/{branch}",
                    short(&repo.head()?),
                    args.remote
                );
                return Ok(());
            }
            Pushed::Behind(reason) if attempt < args.retries => {
                attempt += 1;
                eprintln!(
                    "sluice image set: push rejected ({reason}); fetching {}/{branch} and re-applying (retry {attempt} of {})",
                    args.remote, args.retries
                );
                std::thread::sleep(backoff(attempt));
                let upstream = repo.fetch(&args.remote, &branch)?;
                repo.rebase_onto(&base, &upstream)?;
            }
            Pushed::Behind(reason) => {
                return Err(GitError::Refused(format!(
                    "push still rejected after {} retries ({reason}); the commit is left in {}",
                    args.retries,
                    repo.root.display()
                ))
                .into());
            }
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200 * u64::from(attempt) + fastrand::u64(0..300))
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// The commit message from `--message`, with `[skip ci]` when asked.
fn message(args: &ImageSetArgs, files: &[File], plans: &[Planned], root: &Path) -> String {
    let changes: Vec<String> = plans
        .iter()
        .filter(|p| !p.edits.is_empty())
        .map(|p| {
            let path = &files[p.file].path;
            let shown = std::fs::canonicalize(path)
                .ok()
                .and_then(|abs| abs.strip_prefix(root).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| path.clone());
            format!(
                "{}: {}: {} -> {}",
                shown.display(),
                p.site.description,
                p.site.current,
                p.target
            )
        })
        .collect();
    let first = plans.iter().find(|p| !p.edits.is_empty());
    let field = |f: fn(&Planned) -> String| first.map(f).unwrap_or_default();
    let mut text = args
        .message
        .replace("{selector}", &field(|p| p.selector.clone()))
        .replace("{old}", &field(|p| p.site.current.to_string()))
        .replace("{new}", &field(|p| p.target.to_string()))
        .replace(
            "{old_version}",
            &field(|p| p.site.current.version().to_owned()),
        )
        .replace("{new_version}", &field(|p| p.target.version().to_owned()))
        .replace("{changes}", &changes.join("\n"));
    if args.skip_ci {
        let subject_end = text.find('\n').unwrap_or(text.len());
        text.insert_str(subject_end, " [skip ci]");
    }
    text.trim_end().to_owned() + "\n"
}
