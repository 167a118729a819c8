//! The YAML files of the CD repository's work tree: read (a file, or every `*.yaml`/`*.yml`
//! under a directory), every edit decided before anything is written, and the changed files
//! written back only after they read back with the new images.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context;

use super::{
    Failure, ImageSetArgs, edit,
    edit::Edit,
    locate,
    locate::Site,
    reference::{Assignment, ImageRef},
    semver_guard,
    semver_guard::Verdict,
    yaml,
};

/// One YAML file of the CD repository.
pub struct File {
    /// As given, or as found under the directory given.
    pub path: PathBuf,
    /// The text as read.
    pub source: String,
    /// Its documents.
    pub documents: Vec<yaml::Node>,
}

/// One site that will change.
pub struct Planned {
    /// Index into the files.
    pub file: usize,
    /// The place, as it is now.
    pub site: Site,
    /// The CONTAINER_OR_IMAGE that picked it.
    pub selector: String,
    /// The image it will hold.
    pub target: ImageRef,
    /// The bytes to change (none when it already holds `target`).
    pub edits: Vec<Edit>,
}

/// Reads the files and decides every edit (nothing is written).
pub fn plan(
    args: &ImageSetArgs,
    assignments: &[Assignment],
) -> Result<(Vec<File>, Vec<Planned>), Failure> {
    let files = load(&args.path)?;
    let mut sites: Vec<(usize, Site)> = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let kustomization = is_kustomization_file(&file.path);
        for document in &file.documents {
            if args.helm_value.is_empty() {
                sites.extend(locate::containers(document).into_iter().map(|s| (index, s)));
                sites.extend(
                    locate::kustomize_images(document, kustomization)
                        .into_iter()
                        .map(|s| (index, s)),
                );
            } else {
                sites.extend(
                    args.helm_value
                        .iter()
                        .filter_map(|path| locate::helm_value(document, path))
                        .map(|s| (index, s)),
                );
            }
        }
    }
    let line = |file: usize, site: &Site| {
        let file = &files[file];
        format!(
            "{}:{}",
            file.path.display(),
            yaml::line_of(&file.source, site.offset)
        )
    };
    let place = |file: usize, site: &Site| {
        format!(
            "{}: {} ({})",
            line(file, site),
            site.description,
            site.current
        )
    };
    let mut plans = Vec::new();
    for assignment in assignments {
        let mut matched: Vec<&(usize, Site)> = sites
            .iter()
            .filter(|(_, s)| s.matches(&assignment.selector))
            .collect();
        // An alias and its anchor are one place.
        let mut seen = std::collections::HashSet::new();
        matched.retain(|(file, site)| seen.insert((*file, site.offset)));
        if matched.is_empty() {
            let mut message = format!(
                "nothing in {} matches {:?}",
                args.path.display(),
                assignment.selector
            );
            if !sites.is_empty() {
                message.push_str("; images there:");
                for (file, site) in sites.iter().take(20) {
                    let _ = write!(message, "\n  {}", place(*file, site));
                }
            }
            return Err(Failure::NothingMatched(message));
        }
        // Each `--helm-value` path holds one part of one image: several paths are one place, the
        // same path in several files or documents is not.
        let ambiguous = match args.helm_value.len() {
            0 => matched.len() > 1,
            paths => {
                matched.len() > paths || {
                    let mut paths = std::collections::HashSet::new();
                    !matched.iter().all(|(_, site)| match &site.holder {
                        locate::Holder::Helm { path, .. } => paths.insert(path.clone()),
                        _ => true,
                    })
                }
            }
        };
        if ambiguous && !args.all {
            let mut message = format!(
                "{:?} matches {} places; name a container, a file, or pass --all:",
                assignment.selector,
                matched.len()
            );
            for (file, site) in &matched {
                let _ = write!(message, "\n  {}", place(*file, site));
            }
            return Err(Failure::Ambiguous(message));
        }
        for (file, site) in matched {
            let (target, edits) = edit::plan(site, &assignment.image, &files[*file].source)
                .map_err(|err| anyhow::anyhow!("{}: {err}", line(*file, site)))?;
            if !args.allow_downgrade
                && !edits.is_empty()
                && let Verdict::Downgrade { current, new } =
                    semver_guard::check(site.current.tag.as_deref(), target.tag.as_deref())
            {
                return Err(Failure::Downgrade(format!(
                    "{}: {new} is older than {current}; refusing to downgrade (--allow-downgrade to force)",
                    place(*file, site)
                )));
            }
            if !edits.is_empty() {
                // An anchored image changes everywhere it is aliased: say where.
                for (_, other) in sites.iter().filter(|(f, other)| {
                    f == file
                        && other.offset == site.offset
                        && other.description != site.description
                }) {
                    eprintln!(
                        "sluice image set: note: {} shares this value through a YAML anchor and changes too",
                        other.description
                    );
                }
            }
            plans.push(Planned {
                file: *file,
                site: site.clone(),
                selector: assignment.selector.clone(),
                target,
                edits,
            });
        }
    }
    Ok((files, plans))
}

/// Whether kustomize reads `path` as a kustomization (documents there may leave out `kind`).
fn is_kustomization_file(path: &Path) -> bool {
    matches!(
        path.file_name().and_then(|n| n.to_str()),
        Some("kustomization.yaml" | "kustomization.yml" | "Kustomization")
    )
}

/// Reads `path`, or every YAML file under it.
fn load(path: &Path) -> Result<Vec<File>, Failure> {
    if !path.is_dir() {
        let source =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let documents =
            yaml::parse_stream(&source).with_context(|| format!("parsing {}", path.display()))?;
        return Ok(vec![File {
            path: path.to_path_buf(),
            source,
            documents,
        }]);
    }
    let mut paths = Vec::new();
    walk(path, &mut paths).with_context(|| format!("reading {}", path.display()))?;
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let source = match std::fs::read_to_string(&path) {
            Ok(source) => source,
            Err(err) => {
                eprintln!("sluice image set: skipping {}: {err}", path.display());
                continue;
            }
        };
        match yaml::parse_stream(&source) {
            Ok(documents) => files.push(File {
                path,
                source,
                documents,
            }),
            // Helm templates and other YAML-like files are not manifests.
            Err(err) => eprintln!("sluice image set: skipping {}: {err}", path.display()),
        }
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization" {
            out.push(path);
        }
    }
    Ok(())
}

/// Prints the diff and (unless dry-running) writes the changed files; returns their paths.
/// Every file is edited and read back before the first is written.
pub fn write(
    args: &ImageSetArgs,
    files: &[File],
    plans: &[Planned],
) -> Result<Vec<PathBuf>, Failure> {
    let mut edited = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let mine: Vec<&Planned> = plans.iter().filter(|p| p.file == index).collect();
        let edits: Vec<Edit> = mine.iter().flat_map(|p| p.edits.iter().cloned()).collect();
        if edits.is_empty() {
            continue;
        }
        let text = edit::apply(&file.source, &edits)
            .map_err(|err| anyhow::anyhow!("{}: {err}", file.path.display()))?;
        verify(&file.path, &text, &mine)?;
        edited.push((file, edits, text));
    }
    let mut changed = Vec::new();
    for (file, edits, text) in edited {
        let display = file.path.display().to_string();
        print!("{}", edit::diff(&display, &file.source, &edits));
        if !args.dry_run {
            std::fs::write(&file.path, &text).with_context(|| format!("writing {display}"))?;
        }
        changed.push(file.path.clone());
    }
    for plan in plans.iter().filter(|p| p.edits.is_empty()) {
        eprintln!(
            "sluice image set: {}: {} already is {}",
            files[plan.file].path.display(),
            plan.site.description,
            plan.target
        );
    }
    Ok(changed)
}

/// Whether `site` holds `target`, or for a Helm value the part of it the value holds (the
/// repository beside a tag may have changed in the same run).
fn holds(site: &Site, target: &ImageRef) -> bool {
    match &site.holder {
        locate::Holder::Helm { part, .. } => match part {
            locate::Part::Tag => site.current.tag == target.tag,
            locate::Part::Digest => site.current.digest == target.digest,
            locate::Part::Repository => site.current.repository == target.repository,
            locate::Part::Whole => site.current == *target,
        },
        _ => site.current == *target,
    }
}

/// Reads the edited text back: it must parse, and each changed place must hold its new image.
fn verify(path: &Path, text: &str, plans: &[&Planned]) -> Result<(), Failure> {
    let documents = yaml::parse_stream(text).map_err(|err| {
        anyhow::anyhow!(
            "{}: the edit would break the YAML ({err}); nothing written",
            path.display()
        )
    })?;
    let kustomization = is_kustomization_file(path);
    for plan in plans {
        let found = documents.iter().any(|document| {
            let sites = match &plan.site.holder {
                locate::Holder::Helm { path, .. } => {
                    locate::helm_value(document, path).into_iter().collect()
                }
                _ => {
                    let mut sites = locate::containers(document);
                    sites.extend(locate::kustomize_images(document, kustomization));
                    sites
                }
            };
            sites
                .iter()
                .any(|s| s.description == plan.site.description && holds(s, &plan.target))
        });
        if !found {
            return Err(anyhow::anyhow!(
                "{}: {} does not read back as {} after the edit; nothing written",
                path.display(),
                plan.site.description,
                plan.target
            )
            .into());
        }
    }
    Ok(())
}
