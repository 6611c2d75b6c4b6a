//! The Raft state machine: cairn-meta's deterministic apply, plus snapshots, on redb.

use super::records::{self, put, SnapshotMetaRec, Stored};
use super::{sto_err, StorageError, TypeConfig, RAFT_STATE};
use cairn_core::codec::{decode, encode};
use cairn_core::wire::ApplyResult;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, StoredMembership};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::Arc;

type Membership = StoredMembership<u64, BasicNode>;

/// A snapshot as stored: its metadata and the encoded state machine.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMetaRec,
    data: Vec<u8>,
}

/// The state machine; clones share the database.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
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
    /// Opens the state machine in `db`, creating the metadata tables and root if new.
    pub fn open(db: Arc<Database>) -> Result<Self, cairn_meta::MetaError> {
        let txn = db.begin_write()?;
        cairn_meta::init(&txn)?;
        txn.open_table(RAFT_STATE)?;
        txn.commit()?;
        Ok(StateMachine { db })
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

    fn build(db: &Database) -> Result<Snapshot<TypeConfig>, String> {
        let txn = db.begin_read().map_err(|e| e.to_string())?;
        let t = txn.open_table(RAFT_STATE).map_err(|e| e.to_string())?;
        let applied: Option<LogId<u64>> = get(&t, "applied")?.flatten();
        let membership: Membership = get(&t, "membership")?.unwrap_or_default();
        let data = cairn_meta::export(&txn).map_err(|e| e.to_string())?;
        drop(t);
        drop(txn);
        let snapshot_id = match applied {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, rand::random::<u32>()),
            None => format!("empty-{}", rand::random::<u32>()),
        };
        let meta = SnapshotMeta { last_log_id: applied, last_membership: membership, snapshot_id };
        let stored = StoredSnapshot { meta: meta.to_rec(), data };
        // Storing the snapshot durably also makes every earlier apply durable (see mod docs).
        let mut w = db.begin_write().map_err(|e| e.to_string())?;
        w.set_durability(Durability::Immediate).map_err(|e| e.to_string())?;
        {
            let mut t = w.open_table(RAFT_STATE).map_err(|e| e.to_string())?;
            t.insert("snapshot", encode(&stored).as_slice()).map_err(|e| e.to_string())?;
        }
        w.commit().map_err(|e| e.to_string())?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(stored.data)) })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let db = self.db.clone();
        blocking(move || StateMachine::build(&db), ErrorVerb::Write).await
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
        let db = self.db.clone();
        blocking(
            move || {
                let mut membership = None;
                let mut txn = db.begin_write().map_err(|e| e.to_string())?;
                // Durable with the next log append or snapshot; see the module docs.
                txn.set_durability(Durability::None).map_err(|e| e.to_string())?;
                let mut out = Vec::with_capacity(entries.len());
                let mut applied = None;
                for e in entries {
                    applied = Some(e.log_id);
                    out.push(match e.payload {
                        EntryPayload::Blank => Vec::new(),
                        EntryPayload::Normal(req) => req
                            .cmds
                            .iter()
                            .map(|cmd| cairn_meta::apply(&txn, req.now, cmd))
                            .collect::<Result<_, _>>()
                            .map_err(|e| e.to_string())?,
                        EntryPayload::Membership(m) => {
                            membership = Some(StoredMembership::new(Some(e.log_id), m));
                            Vec::new()
                        }
                    });
                }
                StateMachine::set_applied(&txn, applied, membership.as_ref()).map_err(|e| e.to_string())?;
                txn.commit().map_err(|e| e.to_string())?;
                tracing::trace!(entries = out.len(), "state machine batch applied");
                Ok(out)
            },
            ErrorVerb::Write,
        )
        .await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let db = self.db.clone();
        let stored = StoredSnapshot { meta: meta.to_rec(), data: snapshot.into_inner() };
        let (applied, membership) = (meta.last_log_id, meta.last_membership.clone());
        blocking(
            move || {
                let mut txn = db.begin_write().map_err(|e| e.to_string())?;
                txn.set_durability(Durability::Immediate).map_err(|e| e.to_string())?;
                cairn_meta::import(&txn, &stored.data).map_err(|e| e.to_string())?;
                StateMachine::set_applied(&txn, applied, Some(&membership)).map_err(|e| e.to_string())?;
                txn.open_table(RAFT_STATE)
                    .map_err(|e| e.to_string())?
                    .insert("snapshot", encode(&stored).as_slice())
                    .map_err(|e| e.to_string())?;
                txn.commit().map_err(|e| e.to_string())
            },
            ErrorVerb::Write,
        )
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let db = self.db.clone();
        blocking(
            move || {
                let txn = db.begin_read().map_err(|e| e.to_string())?;
                let t = txn.open_table(RAFT_STATE).map_err(|e| e.to_string())?;
                let s = get_snapshot(&t)?;
                Ok(s.map(|s| Snapshot {
                    meta: SnapshotMeta::from_rec(s.meta),
                    snapshot: Box::new(Cursor::new(s.data)),
                }))
            },
            ErrorVerb::Read,
        )
        .await
    }
}
