//! Read-only queries over a consistent read transaction.

use crate::tables::{
    get_chunk, get_dir, get_inode, get_node_state, get_worker, inherited, linked_inode, resolve, walk, ChunkRecord,
    Walk, CHUNKS, COUNTERS, DIRENTS, HANDLES, HOLDINGS, HOLD_COUNTS, INODES, NODES, ORPHANS, UNREFERENCED, WORKERS,
    XATTRS,
};
use crate::Result;
use cairn_core::codec::decode;
use cairn_core::wire::{
    DirEntry, Inode, InodeKind, NodeState, Query, QueryReply, Target, WorkerSettings, WritePlan, LIST_MAX,
    QUERY_BATCH_MAX,
};
use cairn_core::{ApiError, ChunkId, ErrorCode, FsPath};
use redb::{ReadTransaction, ReadableTable};

/// Answers a query at time `now` (which locks are live). The outer `Result` is a storage
/// failure, the inner one the answer.
pub fn query(txn: &ReadTransaction, q: &Query, now: i64) -> Result<Result<QueryReply, ApiError>> {
    let inodes = txn.open_table(INODES)?;
    let dirents = txn.open_table(DIRENTS)?;
    let found = |at: &Target| resolve(&inodes, &dirents, at);
    match q {
        Query::Stat(at) => Ok(found(at)?.map(QueryReply::Inode)),
        Query::List { at, after, limit } => {
            let dir = match found(at)? {
                Ok(d) if d.kind == InodeKind::Dir => d,
                Ok(_) => return Ok(Err(ApiError::new(ErrorCode::NotADirectory, format!("{at} is not a directory")))),
                Err(e) => return Ok(Err(e)),
            };
            let limit = (*limit).clamp(1, LIST_MAX) as usize;
            let from = after.as_deref().unwrap_or("");
            let mut entries = Vec::with_capacity(limit.min(dir.size as usize));
            let mut next = None;
            for r in dirents.range((dir.ino, from)..(dir.ino + 1, ""))? {
                let (k, v) = r?;
                let name = k.value().1;
                if after.as_deref() == Some(name) {
                    continue;
                }
                if entries.len() == limit {
                    next = entries.last().map(|e: &DirEntry| e.name.clone());
                    break;
                }
                entries.push(DirEntry { name: name.to_string(), inode: linked_inode(&inodes, v.value())? });
            }
            Ok(Ok(QueryReply::Entries { entries, next }))
        }
        Query::WritePlan(at) => {
            let dir = match at {
                Target::Path(path) => {
                    if let Ok(Walk::Found(mut chain)) = walk(&inodes, &dirents, path)? {
                        let last = chain.pop().expect("non-empty");
                        if last.kind == InodeKind::File {
                            return Ok(Ok(QueryReply::Plan(own_plan(&last))));
                        }
                    }
                    // The nearest existing ancestor's settings win, then the defaults.
                    match walk(&inodes, &dirents, &path.parent().unwrap_or_else(FsPath::root))? {
                        Ok(Walk::Found(mut chain)) | Ok(Walk::Missing { existing: mut chain }) => {
                            chain.pop().expect("non-empty")
                        }
                        Err(e) => return Ok(Err(e)),
                    }
                }
                Target::Child { parent, .. } => match found(at)? {
                    Ok(file) if file.kind == InodeKind::File => return Ok(Ok(QueryReply::Plan(own_plan(&file)))),
                    _ => match get_dir(&inodes, *parent)? {
                        Ok(d) => d,
                        Err(e) => return Ok(Err(e)),
                    },
                },
                Target::Ino(_) => match found(at)? {
                    Ok(i) if i.kind == InodeKind::Dir => i,
                    Ok(i) => return Ok(Ok(QueryReply::Plan(own_plan(&i)))),
                    Err(e) => return Ok(Err(e)),
                },
            };
            if dir.kind != InodeKind::Dir {
                return Ok(Err(ApiError::new(
                    ErrorCode::NotADirectory,
                    format!("the parent of {at} is not a directory"),
                )));
            }
            let (policy, chunk_size) = inherited(&inodes, &dir)?;
            Ok(Ok(QueryReply::Plan(WritePlan { chunk_size, policy })))
        }
        Query::GetXattr { at, name } => {
            if let Err(e) = crate::data::check_xattr_name(name) {
                return Ok(Err(e));
            }
            let inode = match found(at)? {
                Ok(i) => i,
                Err(e) => return Ok(Err(e)),
            };
            Ok(match txn.open_table(XATTRS)?.get((inode.ino, name.as_str()))? {
                Some(v) => Ok(QueryReply::Xattr(v.value().to_vec())),
                None => Err(ApiError::new(ErrorCode::NotFound, format!("{at} has no xattr {name:?}"))),
            })
        }
        Query::ListXattrs(at) => {
            let inode = match found(at)? {
                Ok(i) => i,
                Err(e) => return Ok(Err(e)),
            };
            let mut names = Vec::new();
            for r in txn.open_table(XATTRS)?.range((inode.ino, "")..(inode.ino + 1, ""))? {
                names.push(r?.0.value().1.to_string());
            }
            Ok(Ok(QueryReply::Names(names)))
        }
        Query::Versions(at) => Ok(crate::history::versions(txn, at)?.map(QueryReply::Versions)),
        Query::Graves { at, after, limit } => {
            let dir = match found(at)? {
                Ok(d) if d.kind == InodeKind::Dir => d,
                Ok(_) => return Ok(Err(ApiError::new(ErrorCode::NotADirectory, format!("{at} is not a directory")))),
                Err(e) => return Ok(Err(e)),
            };
            Ok(Ok(QueryReply::Names(crate::history::graves(txn, dir.ino, after.as_deref(), *limit)?)))
        }
        Query::Batch(qs) => {
            if qs.len() > QUERY_BATCH_MAX || qs.iter().any(|q| matches!(q, Query::Batch(_))) {
                let msg = format!("a query batch holds at most {QUERY_BATCH_MAX} queries, none of them a batch");
                return Ok(Err(ApiError::new(ErrorCode::InvalidArgument, msg)));
            }
            let answers = qs.iter().map(|q| query(txn, q, now)).collect::<Result<Vec<_>>>()?;
            Ok(Ok(QueryReply::Batch(answers)))
        }
        Query::Version { at, version } => Ok(crate::history::version(txn, at, *version)?.map(QueryReply::Inode)),
        Query::Locks { path, ino, after, limit } => {
            let (locks, next) = crate::locks::locks(txn, path.as_ref(), *ino, *after, *limit, now)?;
            Ok(Ok(QueryReply::Locks { locks, next }))
        }
    }
}

/// An existing file's own plan: the policy and chunk size it was created with.
fn own_plan(file: &Inode) -> WritePlan {
    WritePlan {
        chunk_size: file.chunk_size.unwrap_or(cairn_core::DEFAULT_CHUNK_SIZE),
        policy: file.policy.unwrap_or_default(),
    }
}

/// What the metadata knows of a chunk, if anything.
pub fn chunk_record(txn: &ReadTransaction, id: &ChunkId) -> Result<Option<ChunkRecord>> {
    get_chunk(&txn.open_table(CHUNKS)?, id)
}

/// A chunk id from a stored key.
pub(crate) fn chunk_key(k: &[u8]) -> Result<ChunkId> {
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

/// The chunks `node` holds a part of, by the ledger (read through the per-node index).
pub fn chunks_of_node(txn: &ReadTransaction, node: u64) -> Result<Vec<(ChunkId, ChunkRecord)>> {
    let chunks = txn.open_table(CHUNKS)?;
    let mut out = Vec::new();
    for r in txn.open_table(HOLDINGS)?.range((node, [0u8; 0].as_slice())..(node + 1, [0u8; 0].as_slice()))? {
        let id = chunk_key(r?.0.value().1)?;
        if let Some(rec) = get_chunk(&chunks, &id)? {
            out.push((id, rec));
        }
    }
    Ok(out)
}

/// A file and the chunks it references.
pub type FileChunks = (FsPath, Vec<ChunkId>);

/// The directories that carry extended attribute `name`, with its value (a scan of every
/// extended attribute: for rules set on a few directories, read by a background worker).
pub fn dirs_with_xattr(txn: &ReadTransaction, name: &str) -> Result<Vec<(u64, Vec<u8>)>> {
    let inodes = txn.open_table(INODES)?;
    let mut out = Vec::new();
    for r in txn.open_table(XATTRS)?.iter()? {
        let (k, v) = r?;
        let (ino, n) = k.value();
        if n == name && get_inode(&inodes, ino)?.is_some_and(|i| i.kind == InodeKind::Dir) {
            out.push((ino, v.value().to_vec()));
        }
    }
    Ok(out)
}

/// The chunked files below directory `dir`, not descending into the directories in `skip`.
pub fn files_under(txn: &ReadTransaction, dir: u64, skip: &std::collections::BTreeSet<u64>) -> Result<Vec<Inode>> {
    let inodes = txn.open_table(INODES)?;
    let dirents = txn.open_table(DIRENTS)?;
    let (mut out, mut stack) = (Vec::new(), vec![dir]);
    while let Some(d) = stack.pop() {
        for r in dirents.range((d, "")..(d + 1, ""))? {
            let child = linked_inode(&inodes, r?.1.value())?;
            match child.kind {
                InodeKind::Dir if !skip.contains(&child.ino) => stack.push(child.ino),
                InodeKind::File if child.chunk_ids().next().is_some() => out.push(child),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Every chunked file at or below `path`, with its chunks, in path order.
pub fn files_below(txn: &ReadTransaction, path: &FsPath) -> Result<Result<Vec<FileChunks>, ApiError>> {
    let inodes = txn.open_table(INODES)?;
    let dirents = txn.open_table(DIRENTS)?;
    let top = match resolve(&inodes, &dirents, &Target::Path(path.clone()))? {
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
                    let child = linked_inode(&inodes, v.value())?;
                    children.push((p.join(k.value().1).expect("stored names are valid"), child));
                }
                stack.extend(children.into_iter().rev());
            }
            _ if !inode.extents().is_empty() => {
                let ids: Vec<ChunkId> = inode.chunk_ids().collect();
                if !ids.is_empty() {
                    out.push((p, ids));
                }
            }
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

/// Chunks whose reference count has been zero since at or before `before` (ns since epoch),
/// read through the `unreferenced` index.
pub fn unreferenced_chunks(txn: &ReadTransaction, before: i64) -> Result<Vec<ChunkId>> {
    let mut out = Vec::new();
    let end: (i64, &[u8]) = (before, &[0xff; 33]);
    for r in txn.open_table(UNREFERENCED)?.range((i64::MIN, &[][..])..end)? {
        out.push(chunk_key(r?.0.value().1)?);
    }
    Ok(out)
}

/// Open handles whose lease ended at or before `now` (ns since the epoch): (inode, handle).
pub fn expired_handles(txn: &ReadTransaction, now: i64) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for r in txn.open_table(HANDLES)?.iter()? {
        let (k, v) = r?;
        if v.value() <= now {
            out.push(k.value());
        }
    }
    Ok(out)
}

/// Inodes without a name, kept alive by open handles.
pub fn orphans(txn: &ReadTransaction) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for r in txn.open_table(ORPHANS)?.iter()? {
        out.push(r?.0.value());
    }
    Ok(out)
}

/// Referenced chunks and their bytes (counters kept by apply).
pub fn chunk_totals(txn: &ReadTransaction) -> Result<(u64, u64)> {
    let t = txn.open_table(COUNTERS)?;
    let get = |k: &str| -> Result<u64> { Ok(t.get(k)?.map_or(0, |v| v.value())) };
    Ok((get("chunks")?, get("chunk_bytes")?))
}

/// How many chunks each node holds a part of (counters kept by apply).
pub fn held_counts(txn: &ReadTransaction) -> Result<std::collections::BTreeMap<u64, u64>> {
    let mut out = std::collections::BTreeMap::new();
    for r in txn.open_table(COUNTERS)?.range("held/".."held0")? {
        let (k, v) = r?;
        if let Some(n) = k.value().strip_prefix("held/").and_then(|n| n.parse().ok()) {
            out.insert(n, v.value());
        }
    }
    Ok(out)
}

/// Reads the records of the `hold_counts` keys in `range`.
fn counted(
    txn: &ReadTransaction,
    range: std::ops::Range<(u8, u8, &[u8])>,
    out: &mut Vec<(ChunkId, ChunkRecord)>,
) -> Result<()> {
    let chunks = txn.open_table(CHUNKS)?;
    for r in txn.open_table(HOLD_COUNTS)?.range(range)? {
        let id = chunk_key(r?.0.value().2)?;
        if let Some(rec) = get_chunk(&chunks, &id)? {
            out.push((id, rec));
        }
    }
    Ok(())
}

/// Referenced chunks with fewer holders than their policy wants, clipped to `active` nodes:
/// read through the `hold_counts` index, so the cost is theirs, not the ledger's.
pub fn chunks_below(txn: &ReadTransaction, active: usize) -> Result<Vec<(ChunkId, ChunkRecord)>> {
    let none: &[u8] = &[];
    let mut out = Vec::new();
    for h in 0..active.min(255) as u8 {
        counted(txn, (h, h.saturating_add(1), none)..(h + 1, 0, none), &mut out)?;
    }
    Ok(out)
}

/// Referenced chunks with more holders than their policy wants, clipped to `active` nodes.
pub fn chunks_above(txn: &ReadTransaction, active: usize) -> Result<Vec<(ChunkId, ChunkRecord)>> {
    let none: &[u8] = &[];
    let mut out = Vec::new();
    for h in 1..=255u8 {
        match (h as usize) > active {
            true if h == 255 => counted(txn, (h, 0, none)..(h, 255, &[0xff; 33][..]), &mut out)?,
            true => counted(txn, (h, 0, none)..(h + 1, 0, none), &mut out)?,
            false => counted(txn, (h, 0, none)..(h, h, none), &mut out)?,
        }
    }
    Ok(out)
}
