//! The Raft state machine: cairn-meta's deterministic apply, plus snapshots, on redb.
//!
//! Snapshots are files in `<data>/snapshots/` (`cairn_meta::export`'s streamed format),
//! written to a temp name, fsync'd and renamed; openraft reads and sends them in chunks and
//! writes received ones into a file, so no snapshot is ever whole in memory. A received
//! snapshot is validated end to end (every record, the checksum) before it replaces anything.
//! `raft_state["snapshot"]` names the current file; anything else in the directory is left
//! over from a crash and is removed at start-up.

use super::feed::ChangeFeed;
use super::records::{self, put, SnapshotMetaRec, Stored};
use super::{sto_err, StorageError, TypeConfig, RAFT_STATE};
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ApplyResult, Reply};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, StoredMembership};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type Membership = StoredMembership<u64, super::Member>;

/// The current snapshot as recorded: its metadata and its file's name in the snapshot dir.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMetaRec,
    file: String,
}

/// The state machine; clones share the database and the snapshot directory.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    /// Where snapshot files live.
    dir: PathBuf,
    /// The file a snapshot is being received into, if any.
    incoming: Arc<Mutex<Option<PathBuf>>>,
    /// What the applies changed, for clients' caches.
    feed: Arc<ChangeFeed>,
}

/// fsyncs a directory, so renames and deletions in it are durable.
fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("syncing {}: {e}", dir.display()))
}

/// A snapshot file's name for a snapshot id (ids are made of digits, letters and dashes).
fn file_name(snapshot_id: &str) -> String {
    let safe: String =
        snapshot_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("{safe}.snap")
}

fn sm_err(verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    sto_err(ErrorSubject::StateMachine, verb, e)
}

fn get<T: Stored>(table: &impl ReadableTable<&'static str, &'static [u8]>, key: &str) -> Result<Option<T>, String> {
    match table.get(key).map_err(|e| e.to_string())? {
        Some(v) => Ok(Some(records::get(v.value(), "raft state").map_err(|e| e.to_string())?)),
        None => Ok(None),
    }
}

/// The stored snapshot, if any.
fn get_snapshot(table: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<Option<StoredSnapshot>, String> {
    match table.get("snapshot").map_err(|e| e.to_string())? {
        Some(v) => Ok(Some(decode(v.value(), "raft snapshot").map_err(|e| e.to_string())?)),
        None => Ok(None),
    }
}

/// Runs blocking database work off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
    verb: ErrorVerb,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| sm_err(verb, e))?.map_err(|e| sm_err(verb, e))
}

impl StateMachine {
    /// Applies entries in one write transaction. A batch refused part-way (its earlier
    /// operations wrote) aborts the transaction; the entries are applied again with that
    /// batch answered `BatchFailed` and not applied, so it changed nothing, on every replica.
    fn apply_entries(&self, entries: &[Entry<TypeConfig>]) -> Result<Vec<Vec<ApplyResult>>, String> {
        let db = &self.db;
        let mut answered: BTreeMap<(usize, usize), ApplyResult> = BTreeMap::new();
        'again: loop {
            let mut membership = None;
            let mut changes = Vec::new();
            let mut txn = db.begin_write().map_err(|e| e.to_string())?;
            // Durable with the next log append or snapshot; see the module docs.
            txn.set_durability(Durability::None).map_err(|e| e.to_string())?;
            let mut out = Vec::with_capacity(entries.len());
            let mut applied = None;
            for (at, e) in entries.iter().enumerate() {
                applied = Some(e.log_id);
                out.push(match &e.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(req) => {
                        let mine: BTreeMap<usize, ApplyResult> =
                            answered.range((at, 0)..(at + 1, 0)).map(|(k, a)| (k.1, a.clone())).collect();
                        match cairn_meta::apply_all_except(&txn, req.now, &req.cmds, &mine, &mut changes) {
                            Ok(answers) => answers,
                            Err(cairn_meta::MetaError::Undo { command, index, error }) => {
                                answered.insert((at, command), Ok(Reply::BatchFailed { index, error }));
                                txn.abort().map_err(|e| e.to_string())?;
                                continue 'again;
                            }
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    EntryPayload::Membership(m) => {
                        membership = Some(StoredMembership::new(Some(e.log_id), m.clone()));
                        Vec::new()
                    }
                });
            }
            StateMachine::set_applied(&txn, applied, membership.as_ref()).map_err(|e| e.to_string())?;
            txn.commit().map_err(|e| e.to_string())?;
            if let Some(applied) = applied {
                self.feed.record(applied.index, changes);
            }
            tracing::trace!(entries = out.len(), "state machine batch applied");
            return Ok(out);
        }
    }
    /// Opens the state machine in `db`, creating the metadata tables and root if new.
    /// Snapshot files go to `snapshots` (created if missing; leftovers of a crash removed).
    pub fn open(db: Arc<Database>, snapshots: &Path) -> Result<Self, cairn_meta::MetaError> {
        let txn = db.begin_write()?;
        cairn_meta::init(&txn)?;
        txn.open_table(RAFT_STATE)?;
        txn.commit()?;
        let io = |e: std::io::Error| cairn_meta::MetaError::Snapshot(format!("{}: {e}", snapshots.display()));
        std::fs::create_dir_all(snapshots).map_err(io)?;
        let current = {
            let txn = db.begin_read()?;
            let t = txn.open_table(RAFT_STATE)?;
            get_snapshot(&t).map_err(cairn_meta::MetaError::Snapshot)?.map(|s| s.file)
        };
        for entry in std::fs::read_dir(snapshots).map_err(io)? {
            let entry = entry.map_err(io)?;
            if Some(entry.file_name().to_string_lossy().into_owned()) != current {
                std::fs::remove_file(entry.path()).map_err(io)?;
            }
        }
        let applied = StateMachine::applied(&db).map_err(cairn_meta::MetaError::Snapshot)?.0;
        let feed = Arc::new(ChangeFeed::new(applied.map_or(0, |l| l.index)));
        Ok(StateMachine { db, dir: snapshots.to_path_buf(), incoming: Arc::default(), feed })
    }

    /// Records `stored` as the current snapshot (durably, which also makes every earlier
    /// apply durable; see the module docs), then deletes older snapshot files.
    fn set_current(&self, txn: WriteTransaction, stored: &StoredSnapshot) -> Result<(), String> {
        txn.open_table(RAFT_STATE)
            .map_err(|e| e.to_string())?
            .insert("snapshot", encode(stored).as_slice())
            .map_err(|e| e.to_string())?;
        txn.commit().map_err(|e| e.to_string())?;
        for entry in std::fs::read_dir(&self.dir).map_err(|e| e.to_string())?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != stored.file && name.ends_with(".snap") && !name.starts_with("incoming-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Opens a snapshot file for openraft to read.
    fn open_file(&self, name: &str) -> Result<Box<tokio::fs::File>, String> {
        let f = std::fs::File::open(self.dir.join(name)).map_err(|e| format!("snapshot {name}: {e}"))?;
        Ok(Box::new(tokio::fs::File::from_std(f)))
    }

    /// The change feed of this state machine.
    pub fn feed(&self) -> &Arc<ChangeFeed> {
        &self.feed
    }

    /// The shared database, for read-only queries.
    pub fn db(&self) -> &Arc<Database> {
        &self.db
    }

    fn applied(db: &Database) -> Result<(Option<LogId<u64>>, Membership), String> {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let t = txn.open_table(RAFT_STATE).map_err(|e| e.to_string())?;
        Ok((get(&t, "applied")?.flatten(), get(&t, "membership")?.unwrap_or_default()))
    }

    /// Records the last applied log id and, if it changed, the membership.
    fn set_applied(
        txn: &WriteTransaction,
        applied: Option<LogId<u64>>,
        m: Option<&Membership>,
    ) -> Result<(), redb::Error> {
        let mut t = txn.open_table(RAFT_STATE)?;
        t.insert("applied", put(&applied).as_slice())?;
        if let Some(m) = m {
            t.insert("membership", put(m).as_slice())?;
        }
        Ok(())
    }

    fn build(&self) -> Result<Snapshot<TypeConfig>, String> {
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let t = txn.open_table(RAFT_STATE).map_err(|e| e.to_string())?;
        let applied: Option<LogId<u64>> = get(&t, "applied")?.flatten();
        let membership: Membership = get(&t, "membership")?.unwrap_or_default();
        drop(t);
        let snapshot_id = match applied {
            Some(id) => {
                format!("{}-{}-{}-{:08x}", id.leader_id.term, id.leader_id.node_id, id.index, rand::random::<u32>())
            }
            None => format!("empty-{:08x}", rand::random::<u32>()),
        };
        // Written to a temp name, fsync'd, renamed, the directory fsync'd: a snapshot file is
        // whole or absent.
        let file = file_name(&snapshot_id);
        let tmp = self.dir.join(format!("{file}.tmp"));
        let io = |e: std::io::Error| format!("writing snapshot {}: {e}", tmp.display());
        let out = std::fs::File::create(&tmp).map_err(io)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
        cairn_meta::export(&txn, &mut w).map_err(|e| e.to_string())?;
        drop(txn);
        let out = w.into_inner().map_err(|e| e.to_string())?;
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, self.dir.join(&file)).map_err(io)?;
        sync_dir(&self.dir)?;
        let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id };
        let mut w = self.db.begin_write().map_err(|e| e.to_string())?;
        w.set_durability(Durability::Immediate).map_err(|e| e.to_string())?;
        self.set_current(w, &StoredSnapshot { meta: meta.to_rec(), file: file.clone() })?;
        Ok(Snapshot { meta, snapshot: self.open_file(&file)? })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let sm = self.clone();
        blocking(move || sm.build(), ErrorVerb::Write).await
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId<u64>>, Membership), StorageError> {
        let db = self.db.clone();
        blocking(move || StateMachine::applied(&db), ErrorVerb::Read).await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<ApplyResult>>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let sm = self.clone();
        blocking(move || sm.apply_entries(&entries), ErrorVerb::Write).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.dir.join(format!("incoming-{:016x}.snap", rand::random::<u64>()));
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let previous = self.incoming.lock().expect("incoming lock").replace(path);
        if let Some(old) = previous {
            let _ = tokio::fs::remove_file(old).await;
        }
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, super::Member>,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        use tokio::io::AsyncWriteExt;
        snapshot.flush().await.map_err(|e| sm_err(ErrorVerb::Write, e))?;
        let mut received = snapshot.into_std().await;
        let incoming = self.incoming.lock().expect("incoming lock").take();
        let (sm, meta) = (self.clone(), meta.clone());
        blocking(
            move || {
                use std::io::{Seek, SeekFrom};
                let mut rewind = || received.seek(SeekFrom::Start(0)).map(drop).map_err(|e| e.to_string());
                rewind()?;
                // Nothing is replaced unless the whole snapshot reads back good.
                let checked = cairn_meta::validate(std::io::BufReader::with_capacity(1 << 20, &received));
                if let Err(e) = checked {
                    if let Some(path) = &incoming {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(format!("refusing snapshot {}: {e}", meta.snapshot_id));
                }
                // Kept as this node's current snapshot: copied into place, fsync'd, renamed.
                received.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
                let file = file_name(&meta.snapshot_id);
                let tmp = sm.dir.join(format!("{file}.tmp"));
                let mut out = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
                std::io::copy(&mut received, &mut out).map_err(|e| e.to_string())?;
                out.sync_all().map_err(|e| e.to_string())?;
                drop(received);
                if let Some(path) = &incoming {
                    let _ = std::fs::remove_file(path);
                }
                std::fs::rename(&tmp, sm.dir.join(&file)).map_err(|e| e.to_string())?;
                sync_dir(&sm.dir)?;
                let read = std::fs::File::open(sm.dir.join(&file)).map_err(|e| e.to_string())?;
                let mut txn = sm.db.begin_write().map_err(|e| e.to_string())?;
                txn.set_durability(Durability::Immediate).map_err(|e| e.to_string())?;
                cairn_meta::import(&txn, std::io::BufReader::with_capacity(1 << 20, read))
                    .map_err(|e| e.to_string())?;
                StateMachine::set_applied(&txn, meta.last_log_id, Some(&meta.last_membership))
                    .map_err(|e| e.to_string())?;
                sm.set_current(txn, &StoredSnapshot { meta: meta.to_rec(), file })?;
                sm.feed.reset(meta.last_log_id.map_or(0, |l| l.index));
                Ok(())
            },
            ErrorVerb::Write,
        )
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let sm = self.clone();
        blocking(
            move || {
                let txn = sm.db.begin_read().map_err(|e| e.to_string())?;
                let t = txn.open_table(RAFT_STATE).map_err(|e| e.to_string())?;
                match get_snapshot(&t)? {
                    Some(s) => {
                        Ok(Some(Snapshot { meta: SnapshotMeta::from_rec(s.meta), snapshot: sm.open_file(&s.file)? }))
                    }
                    None => Ok(None),
                }
            },
            ErrorVerb::Read,
        )
        .await
    }
}
