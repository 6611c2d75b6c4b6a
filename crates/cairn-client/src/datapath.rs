//! The data path: cutting streams into chunks, storing them, committing, and reading back.
//!
//! Write ordering is intent -> data -> commit: chunks are stored durably first (each put
//! refreshes the chunk's age so the garbage collector keeps it), then one metadata command
//! makes the new version visible atomically. A write that dies before its commit leaves only
//! unreferenced chunks, which the garbage collector removes after its grace period.

use crate::{Backend, ClientError, Result};
use bytes::{Bytes, BytesMut};
use cairn_core::extent::{self, Extent};
use cairn_core::wire::{
    ClientCommand, Content, Inode, InodeKind, NewAttrs, Query, QueryReply, Reply, Target, WritePlan,
};
use cairn_core::{ChunkId, ErrorCode, Policy, INLINE_MAX, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};
use futures::stream::{self, FuturesOrdered, Stream, StreamExt};
use std::sync::Arc;

/// Chunk transfers kept in flight by one stream (bounds memory to this many chunks).
pub const PARALLEL_CHUNKS: usize = 4;

/// Reads of at most this many bytes of a chunk fetch just those bytes (a range), not the
/// whole chunk.
pub const SMALL_READ: usize = 128 << 10;

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

/// The inode at `at`.
pub async fn stat<B: Backend>(b: &B, at: &Target) -> Result<Inode> {
    match b.query(Query::Stat(at.clone())).await? {
        QueryReply::Inode(i) => Ok(i),
        other => Err(ClientError::Protocol(format!("expected an inode, got {other:?}"))),
    }
}

/// Chunk size and policy for a new file at `at` (an existing file's own).
pub async fn plan<B: Backend>(b: &B, at: &Target) -> Result<WritePlan> {
    match b.query(Query::WritePlan(at.clone())).await? {
        QueryReply::Plan(p) => Ok(p),
        other => Err(ClientError::Protocol(format!("expected a plan, got {other:?}"))),
    }
}

/// Applies a command that answers with an inode.
pub async fn write_inode<B: Backend>(b: &B, cmd: ClientCommand) -> Result<Inode> {
    expect_inode(b.write(cmd).await?)
}

/// Applies `ops` all or none, in one step (see `ClientCommand::Batch`): every operation's
/// answer, or the first refusal as an error naming its operation.
pub async fn batch<B: Backend>(b: &B, ops: Vec<ClientCommand>) -> Result<Vec<Reply>> {
    match b.write(ClientCommand::Batch { ops }).await? {
        Reply::Batch(replies) => Ok(replies),
        Reply::BatchFailed { index, error } => {
            Err(ClientError::api(error.code, format!("batch operation {index}: {}", error.message)))
        }
        other => Err(ClientError::Protocol(format!("expected a batch answer, got {other:?}"))),
    }
}

/// Commits new content for `at` (the last step of every whole-file write).
pub async fn commit<B: Backend>(b: &B, at: &Target, content: Content, size: u64, opts: WriteOptions) -> Result<Inode> {
    let cmd = ClientCommand::Commit {
        at: at.clone(),
        base_version: opts.base_version,
        content,
        size,
        parents: opts.parents,
        attrs: opts.attrs,
    };
    write_inode(b, cmd).await
}

/// Hashes and stores one chunk with `policy`, returning the extent of all its bytes.
pub async fn put_chunk<B: Backend>(b: &B, data: Bytes, policy: Policy) -> Result<Extent> {
    let (id, data) = tokio::task::spawn_blocking(move || (ChunkId::of(&data), data))
        .await
        .map_err(|e| ClientError::Protocol(format!("hashing task failed: {e}")))?;
    let len = data.len() as u32;
    b.put_chunk(id, data, policy).await?;
    Ok(Extent::whole(id, len))
}

/// Writes a whole file from a stream of byte buffers, replacing any file at `path` atomically.
/// Memory stays bounded by [`PARALLEL_CHUNKS`] chunks whatever the stream's length.
pub async fn write_stream<B, S, E>(b: &Arc<B>, at: &Target, body: S, opts: WriteOptions) -> Result<Inode>
where
    B: Backend,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    if matches!(at, Target::Path(p) if p.is_root()) {
        return Err(ClientError::api(ErrorCode::IsADirectory, "/ is a directory"));
    }
    let mut body = std::pin::pin!(body);
    let (head, size, done) = read_head(&mut body).await?;
    if done {
        let content = if head.is_empty() { Content::None } else { Content::Inline(head.to_vec()) };
        return commit(b.as_ref(), at, content, size, opts).await;
    }
    let plan = plan(b.as_ref(), at).await?;
    let chunk_size = opts.chunk_size.unwrap_or(plan.chunk_size);
    let (extents, size) = store_stream(b, head, body, chunk_size, plan.policy).await?;
    let opts = WriteOptions { attrs: NewAttrs { chunk_size: Some(chunk_size), ..opts.attrs }, ..opts };
    commit(b.as_ref(), at, Content::Extents(extents), size, opts).await
}

/// Reads a body up to just past the inline limit: (the bytes, their count, whether the body
/// ended). Small writes are decided on this alone and cost one metadata command.
pub(crate) async fn read_head<S, E>(body: &mut std::pin::Pin<&mut S>) -> Result<(BytesMut, u64, bool)>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    let mut size = 0u64;
    while size <= INLINE_MAX {
        match body.next().await {
            Some(piece) => {
                let piece = piece
                    .map_err(|e| ClientError::api(ErrorCode::InvalidArgument, format!("reading the body: {e}")))?;
                size += piece.len() as u64;
                buf.extend_from_slice(&piece);
            }
            None => return Ok((buf, size, true)),
        }
    }
    Ok((buf, size, false))
}

/// Cuts `head` and then the rest of `body` into chunks of `chunk_size`, stores them with
/// `policy` ([`PARALLEL_CHUNKS`] in flight), and returns their extents and total length.
pub async fn store_stream<B, S, E>(
    b: &Arc<B>,
    head: BytesMut,
    body: std::pin::Pin<&mut S>,
    chunk_size: u32,
    policy: Policy,
) -> Result<(Vec<Extent>, u64)>
where
    B: Backend,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + ?Sized,
    E: std::fmt::Display,
{
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        let msg = format!("chunk size {chunk_size} outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}");
        return Err(ClientError::api(ErrorCode::InvalidArgument, msg));
    }
    let mut body = body;
    let read_err = |e: E| ClientError::api(ErrorCode::InvalidArgument, format!("reading the body: {e}"));
    let mut size = head.len() as u64;
    let mut buf = head;
    let mut done = false;
    let cut = chunk_size as usize;
    let mut refs = Vec::new();
    let mut in_flight = FuturesOrdered::new();
    loop {
        while buf.len() >= cut || (done && !buf.is_empty()) {
            let data = buf.split_to(buf.len().min(cut)).freeze();
            let b = b.clone();
            in_flight.push_back(async move { put_chunk(b.as_ref(), data, policy).await });
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
    Ok((refs, size))
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
    let (inline, extents) = match &inode.content {
        Content::Inline(data) if start < end => {
            (Some(Bytes::copy_from_slice(&data[start as usize..end as usize])), Vec::new())
        }
        Content::Extents(e) if start < end => (None, extent::slice(e, start, end)),
        _ => (None, Vec::new()),
    };
    let pieces = inline.map(Piece::Ready).into_iter().chain(extents.into_iter().flat_map(|e| {
        let pieces: Box<dyn Iterator<Item = Piece> + Send> = match e.chunk {
            Some(id) => {
                Box::new(std::iter::once(Piece::Chunk(id, e.offset as usize, e.offset as usize + e.len as usize)))
            }
            None => Box::new(zeros(e.len).map(Piece::Ready)),
        };
        pieces
    }));
    stream::iter(pieces)
        .map(move |piece| {
            let b = b.clone();
            async move {
                match piece {
                    Piece::Ready(bytes) => Ok(vec![bytes]),
                    Piece::Chunk(id, from, to) if to - from <= SMALL_READ => b.get_chunk_range(id, from, to).await,
                    Piece::Chunk(id, from, to) => b.get_chunk(id).await?.checked_slice(id, from, to),
                }
            }
        })
        .buffered(PARALLEL_CHUNKS)
        .flat_map(|r: Result<Vec<Bytes>>| match r {
            Ok(views) => stream::iter(views.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => stream::iter(vec![Err(e)]),
        })
}

/// One piece of a read: bytes at hand (inline data, zeros of a hole), or a slice of a chunk.
enum Piece {
    Ready(Bytes),
    Chunk(ChunkId, usize, usize),
}

/// Zeros served for holes.
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// `len` zero bytes, in pieces of at most 64 KiB (a hole may be larger than memory).
fn zeros(len: u64) -> impl Iterator<Item = Bytes> + Send {
    let z = ZEROS.len() as u64;
    (0..len.div_ceil(z)).map(move |i| Bytes::from_static(&ZEROS[..(len - i * z).min(z) as usize]))
}

/// Checks that `inode` is a regular file.
pub fn require_file(inode: &Inode, path: &Target) -> Result<()> {
    match inode.kind {
        InodeKind::File => Ok(()),
        InodeKind::Dir => Err(ClientError::api(ErrorCode::IsADirectory, format!("{path} is a directory"))),
        InodeKind::Symlink => Err(ClientError::api(ErrorCode::InvalidArgument, format!("{path} is a symlink"))),
    }
}
