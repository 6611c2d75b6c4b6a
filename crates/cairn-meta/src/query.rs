//! Read-only queries over a consistent read transaction.

use crate::tables::{get_chunk, get_inode, resolve, walk, Walk, CHUNKS, DIRENTS, INODES, UNDER_REPLICATED};
use crate::Result;
use cairn_core::codec::decode;
use cairn_core::wire::{DirEntry, InodeKind, Query, QueryReply, WritePlan};
use cairn_core::{ApiError, ChunkId, ErrorCode, DEFAULT_CHUNK_SIZE};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata};

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
pub fn chunk_record(txn: &ReadTransaction, id: &ChunkId) -> Result<Option<crate::ChunkRecord>> {
    get_chunk(&txn.open_table(CHUNKS)?, id)
}

/// How many chunks are recorded as stored below their policy.
pub fn under_replicated_count(txn: &ReadTransaction) -> Result<u64> {
    Ok(txn.open_table(UNDER_REPLICATED)?.len()?)
}

/// Chunks whose reference count has been zero since at or before `before` (ns since epoch).
pub fn unreferenced_chunks(txn: &ReadTransaction, before: i64) -> Result<Vec<ChunkId>> {
    let chunks = txn.open_table(CHUNKS)?;
    let mut out = Vec::new();
    for r in chunks.iter()? {
        let (k, v) = r?;
        let rec: crate::ChunkRecord = decode(v.value(), "chunk record")?;
        if rec.refs == 0 && rec.zero_since.is_some_and(|t| t <= before) {
            let id: [u8; 32] =
                k.value().try_into().map_err(|_| cairn_core::Error::InvalidChunkId("stored key".into()))?;
            out.push(ChunkId(id));
        }
    }
    Ok(out)
}
