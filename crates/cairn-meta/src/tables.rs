//! Table definitions and the small typed accessors every command and query shares.

use crate::Result;
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ApplyResult, Content, Inode, InodeKind};
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
/// chunk id (32 bytes) -> encoded (copies stored, copies wanted): chunks written below policy.
pub(crate) const UNDER_REPLICATED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("under_replicated");
/// Counters and settings of the state machine ("next_ino").
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// What the metadata knows about one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// How many times file chunk lists name this chunk.
    pub refs: u64,
    /// When `refs` last dropped to zero (ns since epoch), if it is zero.
    pub zero_since: Option<i64>,
}

/// Creates the tables and the root directory if they do not exist yet. Deterministic.
pub fn init(txn: &WriteTransaction) -> Result<()> {
    let mut inodes = txn.open_table(INODES)?;
    txn.open_table(DIRENTS)?;
    txn.open_table(CHUNKS)?;
    txn.open_table(UNDER_REPLICATED)?;
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
