//! The Raft log store on redb, with group commit.
//!
//! All writes (appends, truncations, purges, votes) go through one writer thread in order.
//! The thread drains every queued operation into a single write transaction and one fsync, so
//! many concurrent client writes share a disk flush. Appended entries are readable at once
//! from the `pending` map until the thread has made them durable.

use super::records::{get, put, Stored};
use super::{sto_err, StorageError, TypeConfig, RAFT_LOG, RAFT_STATE};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, ErrorSubject, ErrorVerb, LogId, RaftLogReader, Vote};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

/// One queued write.
enum Op {
    Append(Vec<Entry<TypeConfig>>, LogFlushed<TypeConfig>),
    Truncate(u64, oneshot::Sender<Result<(), String>>),
    Purge(LogId<u64>, oneshot::Sender<Result<(), String>>),
    State(&'static str, Vec<u8>, oneshot::Sender<Result<(), String>>),
}

struct Shared {
    db: Arc<Database>,
    /// Entries appended but not yet durable, by index.
    pending: Mutex<BTreeMap<u64, Entry<TypeConfig>>>,
    writer: Mutex<mpsc::Sender<Op>>,
}

/// The log store; cheap to clone (clones share the writer thread).
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

fn read_state<T: Stored>(db: &Database, key: &str) -> Result<Option<T>, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = match txn.open_table(RAFT_STATE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    match table.get(key).map_err(|e| e.to_string())? {
        Some(v) => Ok(Some(get(v.value(), "raft state").map_err(|e| e.to_string())?)),
        None => Ok(None),
    }
}

impl LogStore {
    /// Opens the log in `db`, starting its writer thread.
    pub fn open(db: Arc<Database>) -> Result<Self, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(RAFT_LOG)?;
        txn.open_table(RAFT_STATE)?;
        txn.commit()?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared { db, pending: Mutex::new(BTreeMap::new()), writer: Mutex::new(tx) });
        let for_thread = shared.clone();
        std::thread::Builder::new()
            .name("cairn-raft-log".into())
            .spawn(move || writer_loop(for_thread, rx))
            .expect("spawn raft log writer");
        Ok(LogStore { shared })
    }

    fn send(&self, op: Op) -> Result<(), StorageError> {
        self.shared
            .writer
            .lock()
            .expect("writer lock")
            .send(op)
            .map_err(|_| sto_err(ErrorSubject::Logs, ErrorVerb::Write, "raft log writer stopped"))
    }

    async fn roundtrip(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Op,
        subject: ErrorSubject<u64>,
    ) -> Result<(), StorageError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(sto_err(subject, ErrorVerb::Write, e)),
            Err(_) => Err(sto_err(subject, ErrorVerb::Write, "raft log writer stopped")),
        }
    }

    fn last_durable(&self) -> Result<Option<LogId<u64>>, String> {
        let txn = self.shared.db.begin_read().map_err(|e| e.to_string())?;
        let table = txn.open_table(RAFT_LOG).map_err(|e| e.to_string())?;
        let last = match table.last().map_err(|e| e.to_string())? {
            Some((_, v)) => {
                let e: Entry<TypeConfig> = get(v.value(), "raft entry").map_err(|e| e.to_string())?;
                Some(e.log_id)
            }
            None => None,
        };
        Ok(last)
    }
}

/// The writer thread: group-commits queued operations until every sender is gone.
fn writer_loop(shared: Arc<Shared>, rx: mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let started = std::time::Instant::now();
        let result = write_batch(&shared.db, &batch).map_err(|e| e.to_string());
        tracing::trace!(
            ops = batch.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "raft log batch committed"
        );
        for op in batch {
            match op {
                Op::Append(entries, cb) => {
                    if result.is_ok() {
                        let mut pending = shared.pending.lock().expect("pending lock");
                        for e in &entries {
                            if pending.get(&e.log_id.index).is_some_and(|p| p.log_id == e.log_id) {
                                pending.remove(&e.log_id.index);
                            }
                        }
                    }
                    cb.log_io_completed(result.clone().map_err(std::io::Error::other));
                }
                Op::Truncate(_, tx) | Op::Purge(_, tx) | Op::State(_, _, tx) => {
                    let _ = tx.send(result.clone());
                }
            }
        }
    }
}

fn write_batch(db: &Database, batch: &[Op]) -> Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut log = txn.open_table(RAFT_LOG)?;
        let mut state = txn.open_table(RAFT_STATE)?;
        for op in batch {
            match op {
                Op::Append(entries, _) => {
                    for e in entries {
                        log.insert(e.log_id.index, put(e).as_slice())?;
                    }
                }
                Op::Truncate(from, _) => {
                    log.retain_in(*from.., |_, _| false)?;
                }
                Op::Purge(upto, _) => {
                    log.retain_in(..=upto.index, |_, _| false)?;
                    state.insert("last_purged", put(upto).as_slice())?;
                }
                Op::State(key, value, _) => {
                    state.insert(*key, value.as_slice())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        // Pending first: an entry leaving `pending` is already durable, so reading the table
        // second cannot miss it.
        let mut out: BTreeMap<u64, Entry<TypeConfig>> = {
            let pending = self.shared.pending.lock().expect("pending lock");
            pending.range(range.clone()).map(|(k, v)| (*k, v.clone())).collect()
        };
        let read = || -> Result<Vec<Entry<TypeConfig>>, String> {
            let txn = self.shared.db.begin_read().map_err(|e| e.to_string())?;
            let table = txn.open_table(RAFT_LOG).map_err(|e| e.to_string())?;
            let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
            let mut v = Vec::new();
            for r in table.range::<u64>(bounds).map_err(|e| e.to_string())? {
                let (_, val) = r.map_err(|e| e.to_string())?;
                v.push(get(val.value(), "raft entry").map_err(|e| e.to_string())?);
            }
            Ok(v)
        };
        for e in read().map_err(|e| sto_err(ErrorSubject::Logs, ErrorVerb::Read, e))? {
            out.entry(e.log_id.index).or_insert(e);
        }
        Ok(out.into_values().collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let err = |e| sto_err(ErrorSubject::Logs, ErrorVerb::Read, e);
        let last_purged: Option<LogId<u64>> = read_state(&self.shared.db, "last_purged").map_err(err)?;
        let last_pending = self.shared.pending.lock().expect("pending lock").values().last().map(|e| e.log_id);
        let last = match last_pending {
            Some(id) => Some(id),
            None => self.last_durable().map_err(err)?.or(last_purged),
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let bytes = put(vote);
        self.roundtrip(|tx| Op::State("vote", bytes, tx), ErrorSubject::Vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        read_state(&self.shared.db, "vote").map_err(|e| sto_err(ErrorSubject::Vote, ErrorVerb::Read, e))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        {
            let mut pending = self.shared.pending.lock().expect("pending lock");
            for e in &entries {
                pending.insert(e.log_id.index, e.clone());
            }
        }
        self.send(Op::Append(entries, callback))
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.shared.pending.lock().expect("pending lock").retain(|i, _| *i < log_id.index);
        self.roundtrip(|tx| Op::Truncate(log_id.index, tx), ErrorSubject::Logs).await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.shared.pending.lock().expect("pending lock").retain(|i, _| *i > log_id.index);
        self.roundtrip(|tx| Op::Purge(log_id, tx), ErrorSubject::Logs).await
    }
}
