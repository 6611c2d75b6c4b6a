//! The data path: cutting streams into chunks, storing them, committing, and reading back.
//!
//! Write ordering is intent -> data -> commit: chunks are stored durably first (each put
//! refreshes the chunk's age so the garbage collector keeps it), then one metadata command
//! makes the new version visible atomically. A write that dies before its commit leaves only
//! unreferenced chunks, which the garbage collector removes after its grace period.

use crate::{Backend, ClientError, Result};
use bytes::{Bytes, BytesMut};
use cairn_core::wire::{ChunkRef, Command, Content, Inode, InodeKind, NewAttrs, Query, QueryReply, Reply, WritePlan};
use cairn_core::{ChunkId, ErrorCode, FsPath, Policy, INLINE_MAX, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use futures::stream::{self, FuturesOrdered, Stream, StreamExt};
use std::sync::Arc;

/// Chunk transfers kept in flight by one stream (bounds memory to this many chunks).
pub const PARALLEL_CHUNKS: usize = 4;

/// How a write commits.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// Create missing parent directories.
    pub parents: bool,
    /// Optimistic concurrency: the version the file must have (0: must not exist).
    pub base_version: Option<u64>,
    /// Attributes if the file is created.
    pub attrs: NewAttrs,
    /// Chunk size for this file, overriding the one inherited from its directory.
    pub chunk_size: Option<u32>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { parents: true, base_version: None, attrs: NewAttrs::file(), chunk_size: None }
    }
}

fn expect_inode(r: Reply) -> Result<Inode> {
    match r {
        Reply::Inode(i) => Ok(i),
        other => Err(ClientError::Protocol(format!("expected an inode, got {other:?}"))),
    }
}

/// The inode at `path`.
pub async fn stat<B: Backend>(b: &B, path: &FsPath) -> Result<Inode> {
    match b.query(Query::Stat(path.clone())).await? {
        QueryReply::Inode(i) => Ok(i),
        other => Err(ClientError::Protocol(format!("expected an inode, got {other:?}"))),
    }
}

/// Chunk size and policy for a new file at `path`.
pub async fn plan<B: Backend>(b: &B, path: &FsPath) -> Result<WritePlan> {
    match b.query(Query::WritePlan(path.clone())).await? {
        QueryReply::Plan(p) => Ok(p),
        other => Err(ClientError::Protocol(format!("expected a plan, got {other:?}"))),
    }
}

/// Commits new content for `path` (the last step of every write).
pub async fn commit<B: Backend>(
    b: &B,
    path: &FsPath,
    content: Content,
    size: u64,
    opts: WriteOptions,
) -> Result<Inode> {
    let cmd = Command::Commit {
        path: path.clone(),
        base_version: opts.base_version,
        content,
        size,
        parents: opts.parents,
        attrs: opts.attrs,
    };
    expect_inode(b.write(cmd).await?)
}

/// Hashes and stores one chunk with `policy`, returning its reference.
pub async fn put_chunk<B: Backend>(b: &B, data: Bytes, policy: Policy) -> Result<ChunkRef> {
    let (id, data) = tokio::task::spawn_blocking(move || (ChunkId::of(&data), data))
        .await
        .map_err(|e| ClientError::Protocol(format!("hashing task failed: {e}")))?;
    let len = data.len() as u32;
    b.put_chunk(id, data, policy).await?;
    Ok(ChunkRef { id, len })
}

/// Writes a whole file from a stream of byte buffers, replacing any file at `path` atomically.
/// Memory stays bounded by [`PARALLEL_CHUNKS`] chunks whatever the stream's length.
pub async fn write_stream<B, S, E>(b: &Arc<B>, path: &FsPath, body: S, opts: WriteOptions) -> Result<Inode>
where
    B: Backend,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    if path.is_root() {
        return Err(ClientError::api(ErrorCode::IsADirectory, "/ is a directory"));
    }
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    let mut size = 0u64;
    let read_err = |e: E| ClientError::api(ErrorCode::InvalidArgument, format!("reading the body: {e}"));
    // Small files stay inline: read up to the inline limit before deciding anything, so a
    // small write costs one metadata command and nothing else.
    let mut done = false;
    while size <= INLINE_MAX {
        match body.next().await {
            Some(piece) => {
                let piece = piece.map_err(read_err)?;
                size += piece.len() as u64;
                buf.extend_from_slice(&piece);
            }
            None => {
                done = true;
                break;
            }
        }
    }
    if done {
        let content = if buf.is_empty() { Content::None } else { Content::Inline(buf.to_vec()) };
        return commit(b.as_ref(), path, content, size, opts).await;
    }
    let plan = plan(b.as_ref(), path).await?;
    let chunk_size = opts.chunk_size.unwrap_or(plan.chunk_size);
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        let msg = format!("chunk size {chunk_size} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}");
        return Err(ClientError::api(ErrorCode::InvalidArgument, msg));
    }
    let cut = chunk_size as usize;
    let mut refs = Vec::new();
    let mut in_flight = FuturesOrdered::new();
    loop {
        while buf.len() >= cut || (done && !buf.is_empty()) {
            let data = buf.split_to(buf.len().min(cut)).freeze();
            let b = b.clone();
            in_flight.push_back(async move { put_chunk(b.as_ref(), data, plan.policy).await });
            if in_flight.len() >= PARALLEL_CHUNKS {
                refs.push(in_flight.next().await.expect("non-empty")?);
            }
        }
        if done {
            break;
        }
        match body.next().await {
            Some(piece) => {
                let piece = piece.map_err(read_err)?;
                size += piece.len() as u64;
                buf.extend_from_slice(&piece);
            }
            None => done = true,
        }
    }
    while let Some(r) = in_flight.next().await {
        refs.push(r?);
    }
    let content = Content::Chunks { chunk_size, chunks: refs };
    commit(b.as_ref(), path, content, size, opts).await
}

/// Streams bytes `start..end` of a file's content, fetching up to [`PARALLEL_CHUNKS`] chunks
/// ahead. Every chunk is verified by the backend before any of its bytes is yielded.
pub fn read_stream<B: Backend>(
    b: Arc<B>,
    inode: &Inode,
    start: u64,
    end: u64,
) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    let end = end.min(inode.size);
    let pieces: Vec<(Option<ChunkId>, Bytes, u64, u64)> = match &inode.content {
        Content::Inline(data) if start < end => {
            vec![(None, Bytes::copy_from_slice(&data[start as usize..end as usize]), 0, end - start)]
        }
        Content::Chunks { chunk_size, chunks } if start < end => {
            let cs = *chunk_size as u64;
            let first = (start / cs) as usize;
            let last = ((end - 1) / cs) as usize;
            (first..=last)
                .map(|i| {
                    let base = i as u64 * cs;
                    let from = start.max(base) - base;
                    let to = end.min(base + chunks[i].len as u64) - base;
                    (Some(chunks[i].id), Bytes::new(), from, to)
                })
                .collect()
        }
        _ => Vec::new(),
    };
    stream::iter(pieces)
        .map(move |(id, inline, from, to)| {
            let b = b.clone();
            async move {
                match id {
                    None => Ok(vec![inline]),
                    Some(id) => Ok(b.get_chunk(id).await?.slice(from as usize, to as usize)),
                }
            }
        })
        .buffered(PARALLEL_CHUNKS)
        .flat_map(|r: Result<Vec<Bytes>>| match r {
            Ok(views) => stream::iter(views.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => stream::iter(vec![Err(e)]),
        })
}

/// Checks that `inode` is a regular file.
pub fn require_file(inode: &Inode, path: &FsPath) -> Result<()> {
    match inode.kind {
        InodeKind::File => Ok(()),
        InodeKind::Dir => Err(ClientError::api(ErrorCode::IsADirectory, format!("{path} is a directory"))),
        InodeKind::Symlink => Err(ClientError::api(ErrorCode::InvalidArgument, format!("{path} is a symlink"))),
    }
}
