//! Objects: PUT (streamed into chunks, checksummed, committed with its record), GET and HEAD
//! (conditions, ranges), DELETE, and COPY (which shares the source's chunks: no byte moves).

use crate::errors::s3;
use crate::meta::{current, fingerprint, ObjectMeta};
use crate::names::ObjectPath;
use crate::store::{self, at, Found};
use crate::sums;
use bytes::Bytes;
use cairn_client::{datapath, Backend};
use cairn_core::wire::{ClientCommand, Content, Inode, InodeKind, NewAttrs};
use cairn_core::{ErrorCode, FsPath, INLINE_MAX};
use futures::StreamExt;
use s3s::dto::{Checksum, ETag, ETagCondition, StreamingBlob, Timestamp};
use s3s::{s3_error, S3Result, TrailingHeaders};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The ETag of no bytes.
pub const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// What a PUT brings beside its bytes.
#[derive(Default)]
pub struct Upload {
    /// Standard headers to keep (`content-type`, ...).
    pub headers: BTreeMap<String, String>,
    /// User metadata.
    pub user: BTreeMap<String, String>,
    /// `Content-MD5`.
    pub content_md5: Option<String>,
    /// Checksums claimed in headers.
    pub claimed: Checksum,
    /// Algorithms named (`x-amz-sdk-checksum-algorithm`, `x-amz-trailer`).
    pub named: Vec<String>,
    /// The trailer of an `aws-chunked` body, once read.
    pub trailers: Option<TrailingHeaders>,
    /// Write only if the key is free (`If-None-Match: *`).
    pub if_none_match: bool,
    /// Write only over this ETag (`If-Match`).
    pub if_match: Option<ETagCondition>,
    /// Tags (`x-amz-tagging`).
    pub tags: BTreeMap<String, String>,
}

/// An inode's modification time as an S3 timestamp.
pub fn modified(inode: &Inode) -> Timestamp {
    let t = UNIX_EPOCH + Duration::from_nanos(inode.mtime.max(0) as u64);
    Timestamp::from(t)
}

/// The quoted form S3 sends an ETag in.
pub fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.clone())
}

fn matches(cond: &ETagCondition, meta: &ObjectMeta) -> bool {
    match cond.as_etag() {
        Some(e) => e.value() == meta.etag,
        None => true,
    }
}

/// The version a write over `existing` (an inode and its record) must find, given its
/// conditions.
fn guard(existing: Option<&store::Seen>, up: &Upload) -> S3Result<Option<u64>> {
    if up.if_none_match {
        if existing.is_some() {
            return Err(s3_error!(PreconditionFailed, "the key already exists (If-None-Match: *)"));
        }
        return Ok(Some(0));
    }
    let Some(cond) = &up.if_match else { return Ok(None) };
    let Some((inode, record)) = existing else {
        return Err(s3_error!(NoSuchKey, "If-Match on a key that does not exist"));
    };
    if !matches(cond, &current(inode, record.as_deref())) {
        return Err(s3_error!(PreconditionFailed, "the object's ETag is not the one given in If-Match"));
    }
    Ok(Some(inode.version))
}

/// Stores an object; answers its record and its version id.
pub async fn put<B: Backend>(
    b: &Arc<B>,
    bucket: &FsPath,
    o: &ObjectPath,
    body: Option<StreamingBlob>,
    up: Upload,
) -> S3Result<(ObjectMeta, u64)> {
    ObjectMeta::check_user(&up.user)?;
    let conditional = up.if_match.is_some() || up.if_none_match;
    let (file, base_version) = if conditional || o.folder {
        let place = store::look(b.as_ref(), bucket, o, up.if_match.is_some()).await?;
        place.bucket(bucket)?;
        if o.folder {
            return put_folder(b.as_ref(), o, body).await.map(|m| (m, 0));
        }
        let (file, existing) = place.target(o);
        (file, guard(existing.as_ref(), &up)?)
    } else {
        // No conditions: nothing to read first. The commit checks that the bucket exists
        // and finds out itself whether the key's path is a directory.
        (o.path.clone(), None)
    };
    let sums = Arc::new(Mutex::new(sums::wanted(&up.named, &up.claimed)));
    let fed = sums.clone();
    let body = body.map(|s| s.boxed()).unwrap_or_else(|| futures::stream::empty().boxed());
    let body = body.map(move |piece| {
        if let Ok(bytes) = &piece {
            fed.lock().expect("sums").update(bytes);
        }
        piece
    });
    let (content, size) = store_body(b, &file, bucket, body, false).await?;
    let finished = Arc::try_unwrap(sums).map_err(|_| s3_error!(InternalError, "checksums still shared"))?;
    let (md5, raw_md5, computed) = finished.into_inner().expect("sums").finish();
    let claimed = with_trailer(up.claimed.clone(), up.trailers.as_ref());
    sums::verify(&raw_md5, &computed, up.content_md5.as_deref(), &claimed)?;
    let mut checksums = sums::to_map(&computed);
    if !checksums.is_empty() {
        checksums.insert("type".into(), "FULL_OBJECT".into());
    }
    let meta = ObjectMeta {
        v: 1,
        etag: md5,
        content: fingerprint(&content),
        headers: up.headers,
        user: up.user,
        checksums,
        tags: up.tags,
        parts: 0,
    };
    let inode = store::commit(b.as_ref(), bucket, &file, content, size, NewAttrs::file(), base_version, &meta).await?;
    Ok((meta, inode.version))
}

/// The checksums claimed in headers, with those of an `aws-chunked` body's trailer (read
/// once the body has been).
pub fn with_trailer(claimed: Checksum, trailers: Option<&TrailingHeaders>) -> Checksum {
    let Some(trailer) = trailers.and_then(TrailingHeaders::take) else { return claimed };
    let mut all = sums::to_map(&claimed);
    all.extend(sums::to_map(&sums::from_headers(&trailer)));
    sums::from_map(&all)
}

/// Reads a body into chunks (or inline bytes, when small and `extents` is not asked for):
/// the content to commit and its size.
pub async fn store_body<B, S>(
    b: &Arc<B>,
    file: &FsPath,
    bucket: &FsPath,
    body: S,
    extents: bool,
) -> S3Result<(Content, u64)>
where
    B: Backend,
    S: futures::Stream<Item = Result<Bytes, s3s::StdError>> + Send,
{
    let mut body = std::pin::pin!(body);
    let mut head = bytes::BytesMut::new();
    let mut size = 0u64;
    let mut done = false;
    while size <= INLINE_MAX {
        match body.next().await {
            Some(Ok(piece)) => {
                size += piece.len() as u64;
                head.extend_from_slice(&piece);
            }
            Some(Err(e)) => return Err(s3_error!(IncompleteBody, "reading the body: {e}")),
            None => {
                done = true;
                break;
            }
        }
    }
    if done && (!extents || head.is_empty()) {
        let content = if head.is_empty() { Content::None } else { Content::Inline(head.to_vec()) };
        return Ok((content, size));
    }
    let plan = match datapath::plan(b.as_ref(), &at(file)).await {
        Ok(p) => p,
        Err(_) => datapath::plan(b.as_ref(), &at(bucket)).await.map_err(s3)?,
    };
    let (extents, size) = datapath::store_stream(b, head, body, plan.chunk_size, plan.policy).await.map_err(|e| {
        if e.code() == ErrorCode::InvalidArgument {
            s3_error!(IncompleteBody, "{e}")
        } else {
            s3(e)
        }
    })?;
    Ok((Content::Extents(extents), size))
}

/// A folder key (`dir/`): an empty body makes the directory.
async fn put_folder<B: Backend>(b: &B, o: &ObjectPath, body: Option<StreamingBlob>) -> S3Result<ObjectMeta> {
    if let Some(mut body) = body {
        while let Some(piece) = body.next().await {
            let piece = piece.map_err(|e| s3_error!(IncompleteBody, "reading the body: {e}"))?;
            if !piece.is_empty() {
                return Err(s3_error!(InvalidArgument, "a key ending in '/' is a directory: its body must be empty"));
            }
        }
    }
    let cmd = ClientCommand::Mkdir { at: at(&o.path), parents: true, attrs: NewAttrs::dir() };
    let dir = datapath::write_inode(b, cmd).await.map_err(s3)?;
    Ok(ObjectMeta { v: 1, etag: EMPTY_MD5.into(), content: fingerprint(&dir.content), ..Default::default() })
}

/// The object `o` and its record, or `NoSuchKey`.
pub async fn get<B: Backend>(b: &B, bucket: &FsPath, o: &ObjectPath) -> S3Result<(Found, ObjectMeta)> {
    let place = store::look(b, bucket, o, true).await?;
    place.bucket(bucket)?;
    match place.found(o) {
        Some(found) => {
            let meta = if found.inode.kind == InodeKind::Dir {
                ObjectMeta { v: 1, etag: EMPTY_MD5.into(), ..Default::default() }
            } else {
                current(&found.inode, found.meta.as_deref())
            };
            Ok((found, meta))
        }
        None => Err(s3_error!(NoSuchKey)),
    }
}

/// The conditions of a GET or HEAD, against the object as it is.
pub struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a ETagCondition>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a ETagCondition>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a Timestamp>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn seconds(t: &Timestamp) -> i64 {
    let t: SystemTime = time_of(t);
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn time_of(t: &Timestamp) -> SystemTime {
    let dt: time::OffsetDateTime = t.clone().into();
    dt.into()
}

impl Conditions<'_> {
    /// Checks them as RFC 9110 orders it: `PreconditionFailed` or `NotModified`.
    pub fn check(&self, meta: &ObjectMeta, inode: &Inode) -> S3Result<()> {
        let mtime = inode.mtime.div_euclid(1_000_000_000);
        match (self.if_match, self.if_unmodified_since) {
            (Some(c), _) if !matches(c, meta) => return Err(s3_error!(PreconditionFailed)),
            (None, Some(t)) if mtime > seconds(t) => return Err(s3_error!(PreconditionFailed)),
            _ => {}
        }
        match (self.if_none_match, self.if_modified_since) {
            (Some(c), _) if matches(c, meta) => Err(s3_error!(NotModified)),
            (None, Some(t)) if mtime <= seconds(t) => Err(s3_error!(NotModified)),
            _ => Ok(()),
        }
    }
}

/// Deletes the object `o` (a missing one is no error, as in S3). In a versioned bucket the
/// deletion is kept as a version: its number (the delete marker's id) is returned.
pub async fn delete<B: Backend>(b: &B, bucket: &FsPath, o: &ObjectPath) -> S3Result<Option<u64>> {
    let place = store::look_with(b, bucket, o, false, true).await?;
    place.bucket(bucket)?;
    let versioned = place.versioned;
    // Entries of the directory the object's file is in, before it goes: over two, nothing
    // is left to tidy.
    let (parent_size, dir_size) = (place.parent.as_ref().map(|p| p.size), place.at.as_ref().map(|(i, _)| i.size));
    let Some(found) = place.found(o) else { return Ok(None) };
    let entries = if found.file == o.path { parent_size } else { dir_size };
    let cmd = ClientCommand::Remove { at: at(&found.file), recursive: false };
    match b.write(cmd).await {
        Ok(_) => {}
        Err(e) if crate::errors::is_not_found(&e) || e.code() == ErrorCode::NotEmpty => return Ok(None),
        Err(e) => return Err(s3(e)),
    }
    // A versioned bucket keeps its directories: the history of deleted keys lives in them.
    if versioned {
        return Ok((found.inode.kind == InodeKind::File).then_some(found.inode.version + 1));
    }
    if entries.is_none_or(|n| n <= 2) {
        store::tidy(b, bucket, &found.file).await?;
    }
    Ok(None)
}

/// Writes `content` of `source` (its chunks shared, not copied) as the object `o`.
pub async fn copy<B: Backend>(
    b: &B,
    bucket: &FsPath,
    o: &ObjectPath,
    source: &Found,
    meta: ObjectMeta,
    up: &Upload,
) -> S3Result<(ObjectMeta, Inode)> {
    if o.folder {
        return Err(s3_error!(InvalidArgument, "cannot copy onto a key ending in '/'"));
    }
    let place = store::look(b, bucket, o, up.if_match.is_some()).await?;
    place.bucket(bucket)?;
    let (file, existing) = place.target(o);
    let base_version = guard(existing.as_ref(), up)?;
    let content = source.inode.content.clone();
    let meta = ObjectMeta { content: fingerprint(&content), ..meta };
    let attrs = NewAttrs { chunk_size: source.inode.chunk_size, ..NewAttrs::file() };
    let inode = store::commit(b, bucket, &file, content, source.inode.size, attrs, base_version, &meta).await?;
    Ok((meta, inode))
}
