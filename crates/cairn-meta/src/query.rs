//! Read-only queries over a consistent read transaction.

use crate::tables::{
    get_chunk, get_inode, get_node_state, get_worker, resolve, walk, ChunkRecord, Walk, CHUNKS, DIRENTS, INODES, NODES,
    WORKERS,
};
use crate::Result;
use cairn_core::codec::decode;
use cairn_core::wire::{ChunkRef, DirEntry, InodeKind, NodeState, Query, QueryReply, WorkerSettings, WritePlan};
use cairn_core::{ApiError, ChunkId, ErrorCode, FsPath, DEFAULT_CHUNK_SIZE};
use redb::{ReadTransaction, ReadableTable};

/// Answers a query. The outer `Result` is a storage failure, the inner one the answer.
pub fn query(txn: &ReadTransaction, q: &Query) -> Result<Result<QueryReply, ApiError>> {
    let inodes = txn.open_table(INODES)?;
    let dirents = txn.open_table(DIRENTS)?;
    match q {
        Query::Stat(path) => Ok(resolve(&inodes, &dirents, path)?.map(QueryReply::Inode)),
        Query::List(path) => {
            let dir = match resolve(&inodes, &dirents, path)? {
                Ok(d) => d,
                Err(e) => return Ok(Err(e)),
            };
            if dir.kind != InodeKind::Dir {
                return Ok(Err(ApiError::new(ErrorCode::NotADirectory, format!("{path} is not a directory"))));
            }
            let mut entries = Vec::with_capacity(dir.size as usize);
            for r in dirents.range((dir.ino, "")..(dir.ino + 1, ""))? {
                let (k, v) = r?;
                let inode = get_inode(&inodes, v.value())?.expect("dirent points at an inode");
                entries.push(DirEntry { name: k.value().1.to_string(), inode });
            }
            Ok(Ok(QueryReply::Entries(entries)))
        }
        Query::WritePlan(path) => {
            // The nearest existing ancestor's settings win, then the defaults.
            let chain = match walk(&inodes, &dirents, &path.parent().unwrap_or_else(cairn_core::FsPath::root))? {
                Ok(Walk::Found(chain)) | Ok(Walk::Missing { existing: chain }) => chain,
                Err(e) => return Ok(Err(e)),
            };
            let policy = chain.iter().rev().find_map(|i| i.policy).unwrap_or_default();
            let chunk_size = chain.iter().rev().find_map(|i| i.chunk_size).unwrap_or(DEFAULT_CHUNK_SIZE);
            Ok(Ok(QueryReply::Plan(WritePlan { chunk_size, policy })))
        }
    }
}

/// What the metadata knows of a chunk, if anything.
pub fn chunk_record(txn: &ReadTransaction, id: &ChunkId) -> Result<Option<ChunkRecord>> {
    get_chunk(&txn.open_table(CHUNKS)?, id)
}

fn chunk_key(k: &[u8]) -> Result<ChunkId> {
    let id: [u8; 32] = k.try_into().map_err(|_| cairn_core::Error::InvalidChunkId("stored key".into()))?;
    Ok(ChunkId(id))
}

/// The durability ledger: every chunk some file references, with its record.
pub fn ledger(txn: &ReadTransaction) -> Result<Vec<(ChunkId, ChunkRecord)>> {
    let chunks = txn.open_table(CHUNKS)?;
    let mut out = Vec::new();
    for r in chunks.iter()? {
        let (k, v) = r?;
        let rec: ChunkRecord = decode(v.value(), "chunk record")?;
        if rec.refs > 0 {
            out.push((chunk_key(k.value())?, rec));
        }
    }
    Ok(out)
}

/// A file and its chunks.
pub type FileChunks = (FsPath, Vec<ChunkRef>);

/// Every chunked file at or below `path`, with its chunks, in path order.
pub fn files_below(txn: &ReadTransaction, path: &FsPath) -> Result<Result<Vec<FileChunks>, ApiError>> {
    let inodes = txn.open_table(INODES)?;
    let dirents = txn.open_table(DIRENTS)?;
    let top = match resolve(&inodes, &dirents, path)? {
        Ok(i) => i,
        Err(e) => return Ok(Err(e)),
    };
    let mut out = Vec::new();
    let mut stack = vec![(path.clone(), top)];
    while let Some((p, inode)) = stack.pop() {
        match inode.kind {
            InodeKind::Dir => {
                let mut children = Vec::new();
                for r in dirents.range((inode.ino, "")..(inode.ino + 1, ""))? {
                    let (k, v) = r?;
                    let child = get_inode(&inodes, v.value())?.expect("dirent points at an inode");
                    children.push((p.join(k.value().1).expect("stored names are valid"), child));
                }
                stack.extend(children.into_iter().rev());
            }
            _ if !inode.chunks().is_empty() => out.push((p, inode.chunks().to_vec())),
            _ => {}
        }
    }
    Ok(Ok(out))
}

/// A node's administrative state (active unless set).
pub fn node_state(txn: &ReadTransaction, id: u64) -> Result<NodeState> {
    get_node_state(&txn.open_table(NODES)?, id)
}

/// A worker's settings (running, default rate, unless set).
pub fn worker_settings(txn: &ReadTransaction, name: &str) -> Result<WorkerSettings> {
    get_worker(&txn.open_table(WORKERS)?, name)
}

/// Chunks whose reference count has been zero since at or before `before` (ns since epoch).
pub fn unreferenced_chunks(txn: &ReadTransaction, before: i64) -> Result<Vec<ChunkId>> {
    let chunks = txn.open_table(CHUNKS)?;
    let mut out = Vec::new();
    for r in chunks.iter()? {
        let (k, v) = r?;
        let rec: ChunkRecord = decode(v.value(), "chunk record")?;
        if rec.refs == 0 && rec.zero_since.is_some_and(|t| t <= before) {
            out.push(chunk_key(k.value())?);
        }
    }
    Ok(out)
}
