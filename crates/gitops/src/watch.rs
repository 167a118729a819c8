//! Local repositories watched on disk — beyond Argo CD, which only polls or takes webhooks: an
//! Application whose `repoURL` is a `file://` URL (or a plain path) has its git directory's
//! references watched (inotify through `notify`), so a `git commit` there marks the mirror
//! stale and wakes the Applications on that repository at once.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use kube::runtime::reflector::Store;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use sluice_api::Application;
use tokio::sync::mpsc::UnboundedSender;

use crate::repository::Repositories;

/// Whether an event of `kind` can be a commit. Reads are not: a fetch from the repository opens
/// its `HEAD` and references, and taking those opens as changes would fetch again at once,
/// forever (inotify reports opens and closes as `Access`).
fn changes(kind: notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        // A file opened for writing and closed: written in place.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The watch of every local repository an Application names; stops when dropped.
pub struct RepoWatcher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RepoWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RepoWatcher {
    /// Watches the repositories of the Applications in `apps` (looked at every second for new
    /// ones); a change records when it was seen in `stale` and sends the repository URL on
    /// `wake`.
    pub fn start(
        apps: Store<Application>,
        wake: UnboundedSender<String>,
        stale: Arc<Mutex<HashMap<String, Instant>>>,
    ) -> Self {
        let task = tokio::spawn(async move {
            let dirs: Arc<Mutex<HashMap<PathBuf, String>>> = Arc::default();
            let (events, mut changed) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
            let handler = move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && changes(event.kind)
                {
                    for path in event.paths {
                        let _ = events.send(path);
                    }
                }
            };
            let Ok(mut watcher) = RecommendedWatcher::new(handler, notify::Config::default())
            else {
                tracing::warn!("cannot watch local repositories on disk; they are polled");
                return;
            };
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        for app in apps.state() {
                            let Some(url) = app.source().map(|s| s.repo_url.clone()) else { continue };
                            let Some(git_dir) = Repositories::local_git_dir(&url) else { continue };
                            let mut known = dirs.lock().unwrap_or_else(|e| e.into_inner());
                            if known.contains_key(&git_dir) {
                                continue;
                            }
                            let refs = git_dir.join("refs");
                            let ok = watcher.watch(&refs, RecursiveMode::Recursive).is_ok()
                                && watcher.watch(&git_dir, RecursiveMode::NonRecursive).is_ok();
                            if ok {
                                // A commit made before the watch began sent no event: fetch
                                // once now that it has.
                                stale
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(url.clone(), Instant::now());
                                let _ = wake.send(url.clone());
                                known.insert(git_dir, url);
                            }
                        }
                    }
                    Some(path) = changed.recv() => {
                        let relevant = path.components().any(|c| c.as_os_str() == "refs")
                            || path.file_name().is_some_and(|n| n == "packed-refs" || n == "HEAD");
                        if !relevant {
                            continue;
                        }
                        let known = dirs.lock().unwrap_or_else(|e| e.into_inner());
                        for (dir, url) in known.iter() {
                            if path.starts_with(dir) {
                                stale
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(url.clone(), Instant::now());
                                let _ = wake.send(url.clone());
                            }
                        }
                    }
                }
            }
        });
        Self { task }
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, EventKind, ModifyKind};

    use super::changes;

    #[test]
    fn reads_are_not_changes() {
        assert!(!changes(EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!changes(EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(changes(EventKind::Create(CreateKind::File)));
        assert!(changes(EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(changes(EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
    }
}
