//! In-place edits of existing files: writes at an offset, appends, truncation and
//! concatenation, each one metadata command over chunks stored first.
//!
//! New bytes become new chunks (cut at the file's chunk size) spliced into the file's extents;
//! untouched chunks stay referenced, so a write costs what it writes. Small files stay inline
//! while they fit. When a file's layout changed under a write (an inline file grew into
//! chunks), the command is refused with `conflict` and retried on a fresh view.

use crate::datapath::{self, stat, write_inode, WriteOptions};
use crate::{Backend, ClientError, Result};
use bytes::Bytes;
use cairn_core::wire::{ClientCommand, Content, Inode, SetAttrs, Target};
use cairn_core::{ErrorCode, INLINE_MAX};
use futures::stream::Stream;
use std::sync::Arc;

/// Most times an edit retries after the file's layout changed under it.
const LAYOUT_RETRIES: usize = 8;

/// True if `e` says the file changed shape under the command (worth a retry).
fn is_conflict(e: &ClientError) -> bool {
    e.code() == ErrorCode::Conflict
}

/// True if `inode` keeps its bytes in itself (inline, or none yet): a write that stays
/// under [`INLINE_MAX`] may go straight into it.
pub fn holds_bytes_inline(inode: &Inode) -> bool {
    matches!(inode.content, Content::None | Content::Inline(_))
}

/// Moves a small file's inline bytes into a chunk, so chunks can be spliced in; a file that
/// changed meanwhile makes this fail with `conflict`.
pub async fn uninline<B: Backend>(b: &B, inode: &Inode) -> Result<Inode> {
    let Content::Inline(data) = &inode.content else { return Ok(inode.clone()) };
    let policy = inode.policy.unwrap_or_default();
    let extent = datapath::put_chunk(b, Bytes::copy_from_slice(data), policy).await?;
    let opts = WriteOptions { base_version: Some(inode.version), parents: false, ..WriteOptions::default() };
    datapath::commit(b, &Target::Ino(inode.ino), Content::Extents(vec![extent]), inode.size, opts).await
}

/// Writes `body` into the existing file `at` at `offset` (`None`: appends at the end, as of
/// the commit), extending it if needed.
pub async fn write_at<B, S, E>(b: &Arc<B>, at: &Target, offset: Option<u64>, body: S) -> Result<Inode>
where
    B: Backend,
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let mut body = std::pin::pin!(body);
    let (head, len, done) = datapath::read_head(&mut body).await?;
    let mut inode = stat(b.as_ref(), at).await?;
    datapath::require_file(&inode, at)?;
    let at = Target::Ino(inode.ino);
    if done {
        // The whole body is small: it may stay inline.
        for _ in 0..LAYOUT_RETRIES {
            let end = offset.unwrap_or(inode.size).saturating_add(len);
            if end <= INLINE_MAX && holds_bytes_inline(&inode) {
                let cmd = ClientCommand::Write {
                    at: at.clone(),
                    base_version: None,
                    offset,
                    data: Content::Inline(head.to_vec()),
                };
                match write_inode(b.as_ref(), cmd).await {
                    Err(e) if is_conflict(&e) => inode = stat(b.as_ref(), &at).await?,
                    other => return other,
                }
            } else {
                break;
            }
        }
    }
    let plan = datapath::plan(b.as_ref(), &at).await?;
    let (extents, _) = datapath::store_stream(b, head, body, plan.chunk_size, plan.policy).await?;
    let data = Content::Extents(extents);
    for _ in 0..LAYOUT_RETRIES {
        let ready = match &inode.content {
            Content::Inline(d) if !d.is_empty() => uninline(b.as_ref(), &inode).await.map(drop),
            _ => Ok(()),
        };
        let cmd = ClientCommand::Write { at: at.clone(), base_version: None, offset, data: data.clone() };
        let result = match ready {
            Ok(()) => write_inode(b.as_ref(), cmd).await,
            Err(e) => Err(e),
        };
        match result {
            Err(e) if is_conflict(&e) => inode = stat(b.as_ref(), &at).await?,
            other => return other,
        }
    }
    Err(ClientError::api(ErrorCode::Conflict, format!("{at} kept changing; write not applied")))
}

/// Cuts `at` to `size` bytes, or extends it with zeros (a hole: no bytes are stored).
pub async fn truncate<B: Backend>(b: &B, at: &Target, size: u64) -> Result<Inode> {
    set_attr(b, at, SetAttrs { size: Some(size), ..SetAttrs::default() }).await
}

/// Changes attributes; a size past the inline limit first moves inline bytes into a chunk.
pub async fn set_attr<B: Backend>(b: &B, at: &Target, attrs: SetAttrs) -> Result<Inode> {
    for _ in 0..LAYOUT_RETRIES {
        if attrs.size.is_some_and(|s| s > INLINE_MAX) {
            let inode = stat(b, at).await?;
            if matches!(&inode.content, Content::Inline(d) if !d.is_empty()) {
                match uninline(b, &inode).await {
                    Err(e) if is_conflict(&e) => continue,
                    other => drop(other?),
                }
            }
        }
        match write_inode(b, ClientCommand::SetAttr { at: at.clone(), attrs }).await {
            Err(e) if is_conflict(&e) => continue,
            other => return other,
        }
    }
    Err(ClientError::api(ErrorCode::Conflict, format!("{at} kept changing; attributes not set")))
}

/// Makes `at` the concatenation of `sources` (which are removed), sharing their chunks.
pub async fn concat<B: Backend>(b: &B, at: &Target, sources: &[Target]) -> Result<Inode> {
    for _ in 0..LAYOUT_RETRIES {
        for s in sources {
            let inode = stat(b, s).await?;
            datapath::require_file(&inode, s)?;
            match uninline(b, &inode).await {
                Err(e) if is_conflict(&e) => {}
                other => drop(other?),
            }
        }
        match write_inode(b, ClientCommand::Concat { at: at.clone(), sources: sources.to_vec() }).await {
            Err(e) if is_conflict(&e) => continue,
            other => return other,
        }
    }
    Err(ClientError::api(ErrorCode::Conflict, format!("the sources of {at} kept changing; not concatenated")))
}

/// The bytes of a small body, for callers that hold it already.
pub fn body_of(data: Bytes) -> impl Stream<Item = std::result::Result<Bytes, std::convert::Infallible>> + Send {
    futures::stream::iter([Ok(data)])
}
