//! The SQLite log behind a persistent [`Store`](super::Store), in the manner of k3s's kine: one
//! append-only table whose integer primary key is the resourceVersion. The latest row of each key
//! is the object (or its deletion); older rows are history, compacted away once they fall out of
//! the watch window.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use rusqlite::{Connection, params};

use super::{EventType, ObjectKey, ResourceKey, StoreError, StoredObject, WatchEvent};

/// How hard each write is pushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged write survives a crash of the process and of the
    /// machine (each commit waits for the disk).
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process; a power loss may lose the last
    /// writes. For benchmarks and tests.
    Normal,
}

/// What a log holds at start-up.
pub(super) struct Loaded {
    pub rv: u64,
    /// Every change above this resourceVersion is in `history`.
    pub history_floor: u64,
    pub objects: Vec<(ResourceKey, Arc<StoredObject>)>,
    pub history: Vec<Arc<WatchEvent>>,
}

pub(super) struct Log {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    rev      INTEGER PRIMARY KEY,
    grp      TEXT NOT NULL,
    resource TEXT NOT NULL,
    ns       TEXT NOT NULL,
    name     TEXT NOT NULL,
    deleted  INTEGER NOT NULL,
    value    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key ON log (grp, resource, ns, name, rev);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

impl Log {
    pub(super) fn open(
        path: &Path,
        durability: Durability,
        history: usize,
    ) -> Result<(Self, Loaded), StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.execute_batch(SCHEMA)?;
        let log = Self { conn };
        let loaded = log.load(history)?;
        Ok((log, loaded))
    }

    fn load(&self, history: usize) -> Result<Loaded, StoreError> {
        let rv = self
            .conn
            .query_row("SELECT COALESCE(MAX(rev), 0) FROM log", [], |r| {
                r.get::<_, i64>(0)
            })? as u64;
        let mut objects = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT l.rev, l.grp, l.resource, l.ns, l.name, l.value FROM log l
             JOIN (SELECT grp, resource, ns, name, MAX(rev) AS rev FROM log
                   GROUP BY grp, resource, ns, name) latest ON l.rev = latest.rev
             WHERE l.deleted = 0",
        )?;
        let rows = stmt.query_map([], row)?;
        let mut current: HashMap<u64, Arc<StoredObject>> = HashMap::new();
        for row in rows {
            let (rev, resource, key, value) = row?;
            let object = Arc::new(stored(rev, key, value)?);
            current.insert(rev, object.clone());
            objects.push((resource, object));
        }
        let mut stmt = self.conn.prepare(
            "SELECT rev, grp, resource, ns, name, value, deleted FROM
               (SELECT * FROM log ORDER BY rev DESC LIMIT ?1) ORDER BY rev",
        )?;
        let rows = stmt.query_map([history as i64], |r| Ok((row(r)?, r.get::<_, bool>(6)?)))?;
        let mut latest: HashMap<(ResourceKey, ObjectKey), Arc<StoredObject>> = HashMap::new();
        let mut events = Vec::new();
        for row in rows {
            let ((rev, resource, key, value), deleted) = row?;
            let object = match current.get(&rev) {
                Some(object) => object.clone(),
                None => Arc::new(stored(rev, key.clone(), value)?),
            };
            let slot = (resource.clone(), key);
            let prev = latest.get(&slot).cloned();
            let kind = match (deleted, &prev) {
                (true, _) => EventType::Deleted,
                (false, Some(_)) => EventType::Modified,
                // The first row seen in the window may update an object created before it;
                // watchers treat an unknown predecessor like a creation, which is what a
                // re-list would show them too.
                (false, None) => EventType::Added,
            };
            if deleted {
                latest.remove(&slot);
            } else {
                latest.insert(slot, object.clone());
            }
            events.push(Arc::new(WatchEvent {
                resource,
                kind,
                object,
                prev,
            }));
        }
        let compacted = self.conn.query_row(
            "SELECT COALESCE(MAX(value), 0) FROM meta WHERE key = 'compacted'",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64;
        let history_floor = events.first().map_or(rv, |e| e.rv() - 1).max(compacted);
        Ok(Loaded {
            rv,
            history_floor,
            objects,
            history: events,
        })
    }

    pub(super) fn append(&mut self, events: &[WatchEvent]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO log (rev, grp, resource, ns, name, deleted, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for event in events {
                let object = &event.object;
                insert.execute(params![
                    object.rv as i64,
                    event.resource.group,
                    event.resource.resource,
                    object.key.namespace,
                    object.key.name,
                    event.kind == EventType::Deleted,
                    &object.json[..],
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Removes rows at or below `floor` that a later row of the same key supersedes, and
    /// deletions at or below it.
    pub(super) fn compact(&mut self, floor: u64) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('compacted', ?1)
             ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
            [floor as i64],
        )?;
        let removed = tx.execute(
            "DELETE FROM log WHERE rev <= ?1 AND (deleted = 1 OR EXISTS (
                SELECT 1 FROM log newer WHERE newer.grp = log.grp AND newer.resource = log.resource
                  AND newer.ns = log.ns AND newer.name = log.name AND newer.rev > log.rev))",
            [floor as i64],
        )?;
        tx.commit()?;
        Ok(removed)
    }
}

type Row = (u64, ResourceKey, ObjectKey, Vec<u8>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get::<_, i64>(0)? as u64,
        ResourceKey {
            group: r.get(1)?,
            resource: r.get(2)?,
        },
        ObjectKey {
            namespace: r.get(3)?,
            name: r.get(4)?,
        },
        r.get(5)?,
    ))
}

fn stored(rev: u64, key: ObjectKey, json: Vec<u8>) -> Result<StoredObject, StoreError> {
    StoredObject::from_json(rev, key, json.into())
        .map_err(|source| StoreError::Corrupt { rev, source })
}
