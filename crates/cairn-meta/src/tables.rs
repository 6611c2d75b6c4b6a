//! Table definitions and the small typed accessors every command and query shares.

use crate::Result;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ApplyResult, Content, Inode, InodeKind, NodeState, WorkerSettings};
use cairn_core::{ApiError, ChunkId, ErrorCode, FsPath};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// Inode number of the root directory.
pub const ROOT_INO: u64 = 1;

/// ino -> encoded [`Inode`].
pub(crate) const INODES: TableDefinition<u64, &[u8]> = TableDefinition::new("inodes");
/// (parent ino, name) -> child ino.
pub(crate) const DIRENTS: TableDefinition<(u64, &str), u64> = TableDefinition::new("dirents");
/// chunk id (32 bytes) -> encoded [`ChunkRecord`].
pub(crate) const CHUNKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("chunks");
/// node id -> encoded [`NodeState`] (nodes never set are active).
pub(crate) const NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("nodes");
/// worker name -> encoded [`WorkerSettings`] (workers never set run unthrottled).
pub(crate) const WORKERS: TableDefinition<&str, &[u8]> = TableDefinition::new("workers");
/// Counters and settings of the state machine ("next_ino").
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// What the metadata knows about one chunk: its references and its entry in the durability
/// ledger (which nodes hold a verified copy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// How many times file chunk lists name this chunk.
    pub refs: u64,
    /// When `refs` last dropped to zero (ns since epoch), if it is zero (also set when a
    /// chunk is first reported stored, before any commit names it).
    pub zero_since: Option<i64>,
    /// Length in bytes, as reported by its holders.
    pub len: u32,
    /// Copies wanted: the largest policy of any file that committed it.
    pub want: u8,
    /// Nodes that reported a verified copy and have not reported losing it, ascending.
    pub holders: Vec<u64>,
}

impl ChunkRecord {
    /// A record for a chunk nothing references yet, as of `now`.
    pub(crate) fn new(now: i64) -> Self {
        ChunkRecord { refs: 0, zero_since: Some(now), len: 0, want: 0, holders: Vec::new() }
    }
}

/// The workers whose settings may be changed.
pub const WORKER_NAMES: [&str; 4] = ["repair", "scrub", "rebalance", "gc"];

/// Creates the tables and the root directory if they do not exist yet. Deterministic.
pub fn init(txn: &WriteTransaction) -> Result<()> {
    let mut inodes = txn.open_table(INODES)?;
    txn.open_table(DIRENTS)?;
    txn.open_table(CHUNKS)?;
    txn.open_table(NODES)?;
    txn.open_table(WORKERS)?;
    let mut counters = txn.open_table(COUNTERS)?;
    if inodes.get(ROOT_INO)?.is_none() {
        let root = Inode {
            ino: ROOT_INO,
            kind: InodeKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            ctime: 0,
            nlink: 2,
            version: 1,
            policy: None,
            chunk_size: None,
            content: Content::None,
        };
        inodes.insert(ROOT_INO, encode(&root).as_slice())?;
        counters.insert("next_ino", ROOT_INO + 1)?;
    }
    Ok(())
}

/// Shorthand for a command failure.
pub(crate) fn fail(code: ErrorCode, msg: impl Into<String>) -> ApplyResult {
    Err(ApiError::new(code, msg))
}

/// Reads one inode.
pub(crate) fn get_inode(t: &impl ReadableTable<u64, &'static [u8]>, ino: u64) -> Result<Option<Inode>> {
    match t.get(ino)? {
        Some(v) => Ok(Some(decode(v.value(), "inode")?)),
        None => Ok(None),
    }
}

/// Looks a name up in a directory.
pub(crate) fn lookup(t: &impl ReadableTable<(u64, &'static str), u64>, dir: u64, name: &str) -> Result<Option<u64>> {
    Ok(t.get((dir, name))?.map(|v| v.value()))
}

/// The outcome of walking a path.
pub(crate) enum Walk {
    /// Every component exists; the inodes from root to target.
    Found(Vec<Inode>),
    /// Components up to `existing.len()` exist (all directories); the next one is missing.
    Missing { existing: Vec<Inode> },
}

/// Walks `path` from the root. A non-directory in the middle of the path is an error.
pub(crate) fn walk(
    inodes: &impl ReadableTable<u64, &'static [u8]>,
    dirents: &impl ReadableTable<(u64, &'static str), u64>,
    path: &FsPath,
) -> Result<Result<Walk, ApiError>> {
    let root = get_inode(inodes, ROOT_INO)?.expect("root inode exists after init");
    let mut chain = vec![root];
    for name in path.components() {
        let dir = chain.last().expect("chain starts with root");
        if dir.kind != InodeKind::Dir {
            return Ok(Err(ApiError::new(
                ErrorCode::NotADirectory,
                format!("a component of {path} is not a directory"),
            )));
        }
        match lookup(dirents, dir.ino, name)? {
            Some(ino) => chain.push(get_inode(inodes, ino)?.expect("dirent points at an inode")),
            None => return Ok(Ok(Walk::Missing { existing: chain })),
        }
    }
    Ok(Ok(Walk::Found(chain)))
}

/// Resolves `path` to its inode, or a not-found / not-a-directory answer.
pub(crate) fn resolve(
    inodes: &impl ReadableTable<u64, &'static [u8]>,
    dirents: &impl ReadableTable<(u64, &'static str), u64>,
    path: &FsPath,
) -> Result<Result<Inode, ApiError>> {
    Ok(match walk(inodes, dirents, path)? {
        Ok(Walk::Found(mut chain)) => Ok(chain.pop().expect("non-empty chain")),
        Ok(Walk::Missing { .. }) => Err(ApiError::new(ErrorCode::NotFound, format!("{path} does not exist"))),
        Err(e) => Err(e),
    })
}

/// Reads a chunk record.
pub(crate) fn get_chunk(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &ChunkId,
) -> Result<Option<ChunkRecord>> {
    match t.get(id.0.as_slice())? {
        Some(v) => Ok(Some(decode(v.value(), "chunk record")?)),
        None => Ok(None),
    }
}

/// Reads a node's administrative state.
pub(crate) fn get_node_state(t: &impl ReadableTable<u64, &'static [u8]>, id: u64) -> Result<NodeState> {
    match t.get(id)? {
        Some(v) => Ok(decode(v.value(), "node state")?),
        None => Ok(NodeState::Active),
    }
}

/// Reads a worker's settings.
pub(crate) fn get_worker(t: &impl ReadableTable<&'static str, &'static [u8]>, name: &str) -> Result<WorkerSettings> {
    match t.get(name)? {
        Some(v) => Ok(decode(v.value(), "worker settings")?),
        None => Ok(WorkerSettings::default()),
    }
}
