//! Multipart uploads. An upload is a directory `UPLOADS_DIR/BUCKET/ID` whose attribute
//! [`UPLOAD_XATTR`] says which key it is for and what the object will keep; each part is a
//! file `NNNNN` in it, always in chunks (never inline), with its own S3 record (MD5,
//! checksums). Completing concatenates the chosen parts' chunk lists into the object without
//! copying a byte, sets its record and removes the upload, all in one step; parts left out
//! go with the upload directory and their chunks to the garbage collector. Uploads older than
//! a day are swept by [`sweep`].

use crate::errors::{is_not_found, s3};
use crate::meta::{fingerprint, ObjectMeta, META_XATTR};
use crate::names::{bucket_path, object_path, UPLOADS_DIR};
use crate::objects::{store_body, Upload};
use crate::store::{self, at, Found};
use crate::sums;
use cairn_client::{datapath, Backend};
use cairn_core::lock::{Guard, Precondition};
use cairn_core::wire::{ClientCommand, Content, Inode, InodeKind, NewAttrs, Query, QueryReply, Target, XattrMode};
use cairn_core::{extent, FsPath};
use futures::{Stream, StreamExt};
use s3s::crypto::{Checksum as _, Md5};
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The attribute of an upload's directory holding its [`UploadInfo`].
pub const UPLOAD_XATTR: &str = "user.cairn.s3.upload";

/// Smallest part but the last, as in S3.
pub const MIN_PART: u64 = 5 << 20;

/// Most parts of one upload, as in S3.
pub const MAX_PARTS: i32 = 10_000;

/// What an upload is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadInfo {
    /// Format version (1).
    pub v: u32,
    /// The object's key.
    pub key: String,
    /// Standard headers the object will keep.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Its user metadata.
    #[serde(default)]
    pub user: BTreeMap<String, String>,
    /// When the upload began (ns since the epoch).
    pub created: i64,
    /// Its tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The checksum algorithm every part carries (`crc32`, ...), if one was asked for.
    #[serde(default)]
    pub checksum: Option<String>,
    /// The object's checksum is of the whole object (`FULL_OBJECT`) rather than of the
    /// parts' checksums (`COMPOSITE`).
    #[serde(default)]
    pub full_object: bool,
}

/// How an upload's object is checksummed.
#[derive(Debug, Clone, Default)]
pub struct Checksumming {
    /// The algorithm, lower case.
    pub algorithm: Option<String>,
    /// `FULL_OBJECT` rather than `COMPOSITE`.
    pub full_object: bool,
}

/// One part as listed.
#[derive(Debug, Clone)]
pub struct PartInfo {
    /// Its number.
    pub number: i32,
    /// Its record.
    pub meta: ObjectMeta,
    /// Its inode.
    pub inode: Inode,
}

fn uploads_of(bucket: &str) -> S3Result<FsPath> {
    let root: FsPath = UPLOADS_DIR.parse().map_err(crate::errors::path)?;
    root.join(bucket).map_err(crate::errors::path)
}

fn upload_dir(bucket: &str, id: &str) -> S3Result<FsPath> {
    if id.len() != 32 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(s3_error!(NoSuchUpload));
    }
    uploads_of(bucket)?.join(id).map_err(crate::errors::path)
}

fn part_path(dir: &FsPath, n: i32) -> S3Result<FsPath> {
    if !(1..=MAX_PARTS).contains(&n) {
        return Err(s3_error!(InvalidArgument, "part numbers run from 1 to {MAX_PARTS}"));
    }
    dir.join(&format!("{n:05}")).map_err(crate::errors::path)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Begins an upload of `key`: its id.
pub async fn create<B: Backend>(b: &B, bucket: &str, key: &str, up: &Upload, sum: Checksumming) -> S3Result<String> {
    store::bucket_dir(b, &bucket_path(bucket)?).await?;
    object_path(bucket, key)?;
    ObjectMeta::check_user(&up.user)?;
    let id = format!("{:032x}", rand::random::<u128>());
    let dir = upload_dir(bucket, &id)?;
    let info = UploadInfo {
        v: 1,
        key: key.into(),
        headers: up.headers.clone(),
        user: up.user.clone(),
        created: now_ns(),
        tags: up.tags.clone(),
        checksum: sum.algorithm,
        full_object: sum.full_object,
    };
    let ops = vec![
        ClientCommand::Mkdir { at: at(&dir), parents: true, attrs: NewAttrs::dir() },
        ClientCommand::SetXattr {
            at: at(&dir),
            name: UPLOAD_XATTR.into(),
            value: serde_json::to_vec(&info).expect("upload info serializes"),
            mode: XattrMode::Any,
        },
    ];
    datapath::batch(b, ops).await.map_err(s3)?;
    Ok(id)
}

/// The upload `id` of `key`, or `NoSuchUpload`.
pub async fn info<B: Backend>(b: &B, bucket: &str, key: &str, id: &str) -> S3Result<(FsPath, UploadInfo)> {
    let dir = upload_dir(bucket, id)?;
    let q = Query::GetXattr { at: at(&dir), name: UPLOAD_XATTR.into() };
    let info = match b.query(q).await {
        Ok(QueryReply::Xattr(v)) => serde_json::from_slice::<UploadInfo>(&v).ok(),
        Ok(_) => None,
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(s3(e)),
    };
    match info {
        Some(i) if i.key == key => Ok((dir, i)),
        _ => Err(s3_error!(NoSuchUpload)),
    }
}

/// Stores part `n` of upload `id` from `body`.
pub async fn upload_part<B, S>(
    b: &Arc<B>,
    bucket: &str,
    key: &str,
    id: &str,
    n: i32,
    body: S,
    up: Upload,
) -> S3Result<ObjectMeta>
where
    B: Backend,
    S: Stream<Item = Result<bytes::Bytes, s3s::StdError>> + Send,
{
    let (dir, info) = info(b.as_ref(), bucket, key, id).await?;
    let part = part_path(&dir, n)?;
    let named: Vec<String> = up.named.iter().cloned().chain(info.checksum).collect();
    let sums = Arc::new(Mutex::new(sums::wanted(&named, &up.claimed)));
    let fed = sums.clone();
    let body = body.map(move |piece| {
        if let Ok(bytes) = &piece {
            fed.lock().expect("sums").update(bytes);
        }
        piece
    });
    let (content, size) = store_body(b, &part, &bucket_path(bucket)?, body, true).await?;
    let finished = Arc::try_unwrap(sums).map_err(|_| s3_error!(InternalError, "checksums still shared"))?;
    let (md5, raw_md5, computed) = finished.into_inner().expect("sums").finish();
    let claimed = crate::objects::with_trailer(up.claimed.clone(), up.trailers.as_ref());
    sums::verify(&raw_md5, &computed, up.content_md5.as_deref(), &claimed)?;
    let meta = ObjectMeta {
        v: 1,
        etag: md5,
        content: fingerprint(&content),
        checksums: sums::to_map(&computed),
        ..Default::default()
    };
    commit_part(b.as_ref(), &part, content, size, &meta).await?;
    Ok(meta)
}

/// Makes part `n` of upload `id` from bytes `range` of an existing object (its chunks
/// shared, not copied). Its ETag is the fingerprint of those chunks, not an MD5: no byte is
/// read to compute one.
pub async fn copy_part<B: Backend>(
    b: &B,
    bucket: &str,
    key: &str,
    id: &str,
    n: i32,
    source: &Found,
    range: Option<std::ops::Range<u64>>,
) -> S3Result<(ObjectMeta, Inode)> {
    let (dir, _) = info(b, bucket, key, id).await?;
    let part = part_path(&dir, n)?;
    let size = source.inode.size;
    let r = range.unwrap_or(0..size);
    if r.start > r.end || r.end > size {
        return Err(s3_error!(InvalidRange, "the copy range lies outside the source"));
    }
    let content = match &source.inode.content {
        Content::Extents(e) => Content::Extents(extent::slice(e, r.start, r.end)),
        Content::Inline(bytes) if r.start < r.end => {
            let data = bytes::Bytes::copy_from_slice(&bytes[r.start as usize..r.end as usize]);
            let plan = datapath::plan(b, &at(&bucket_path(bucket)?)).await.map_err(s3)?;
            Content::Extents(vec![datapath::put_chunk(b, data, plan.policy).await.map_err(s3)?])
        }
        _ => Content::None,
    };
    let fp = fingerprint(&content);
    let meta = ObjectMeta { v: 1, etag: fp.clone(), content: fp, ..Default::default() };
    let inode = commit_part(b, &part, content, r.end - r.start, &meta).await?;
    Ok((meta, inode))
}

async fn commit_part<B: Backend>(
    b: &B,
    part: &FsPath,
    content: Content,
    size: u64,
    meta: &ObjectMeta,
) -> S3Result<Inode> {
    let ops = vec![
        ClientCommand::Commit {
            at: at(part),
            base_version: None,
            content,
            size,
            parents: false,
            attrs: NewAttrs::file(),
        },
        ClientCommand::SetXattr { at: at(part), name: META_XATTR.into(), value: meta.encode(), mode: XattrMode::Any },
    ];
    match datapath::batch(b, ops).await {
        Ok(mut r) => match r.drain(..).next() {
            Some(cairn_core::wire::Reply::Inode(i)) => Ok(i),
            _ => Err(s3_error!(InternalError, "unexpected answer to a part's commit")),
        },
        Err(e) if is_not_found(&e) => Err(s3_error!(NoSuchUpload, "the upload was completed or aborted meanwhile")),
        Err(e) => Err(s3(e)),
    }
}

/// Parts of upload `id` after part `after`, at most `max`: the parts, and whether more follow.
pub async fn parts<B: Backend>(
    b: &B,
    bucket: &str,
    key: &str,
    id: &str,
    after: i32,
    max: usize,
) -> S3Result<(Vec<PartInfo>, bool)> {
    let (dir, _) = info(b, bucket, key, id).await?;
    let q =
        Query::List { at: at(&dir), after: Some(format!("{:05}", after.clamp(0, MAX_PARTS))), limit: max as u32 + 1 };
    let (mut entries, next) = match b.query(q).await.map_err(s3)? {
        QueryReply::Entries { entries, next } => (entries, next),
        _ => return Err(s3_error!(InternalError, "unexpected answer to a listing")),
    };
    let more = entries.len() > max || (entries.len() == max + 1 && next.is_some());
    entries.truncate(max);
    let inodes: Vec<&Inode> = entries.iter().map(|e| &e.inode).collect();
    let records = store::records(b, &inodes).await?;
    let mut parts = Vec::with_capacity(entries.len());
    for (e, record) in entries.iter().zip(records) {
        let number: i32 = e.name.parse().map_err(|_| s3_error!(InternalError, "a stray file in an upload"))?;
        let meta = crate::meta::current(&e.inode, record.as_deref());
        parts.push(PartInfo { number, meta, inode: e.inode.clone() });
    }
    Ok((parts, more))
}

/// What completing asks: the parts (number and ETag, in order) and the conditions.
pub struct Completion {
    /// The parts.
    pub parts: Vec<(i32, String)>,
    /// `If-None-Match: *`.
    pub if_none_match: bool,
    /// `If-Match`.
    pub if_match: Option<s3s::dto::ETagCondition>,
    /// The object's checksum as the client computed it.
    pub claimed: s3s::dto::Checksum,
}

/// Completes upload `id`: the object's record.
pub async fn complete<B: Backend>(b: &B, bucket: &str, key: &str, id: &str, c: Completion) -> S3Result<ObjectMeta> {
    let (dir, info) = info(b, bucket, key, id).await?;
    if c.parts.is_empty() {
        return Err(s3_error!(MalformedXML, "a completion names at least one part"));
    }
    if c.parts.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(s3_error!(InvalidPartOrder));
    }
    let (found, _) = parts(b, bucket, key, id, 0, MAX_PARTS as usize).await?;
    let by_number: BTreeMap<i32, &PartInfo> = found.iter().map(|p| (p.number, p)).collect();
    let mut md5s = Md5::new();
    let mut part_sums = Vec::new();
    let mut sources = Vec::new();
    let mut extents = Vec::new();
    let last = c.parts.len() - 1;
    for (i, (n, etag)) in c.parts.iter().enumerate() {
        let part = by_number.get(n).ok_or_else(|| s3_error!(InvalidPart, "part {n} was not uploaded"))?;
        if part.meta.etag != etag.trim_matches('"') {
            return Err(s3_error!(InvalidPart, "part {n} has another ETag"));
        }
        if i < last && part.inode.size < MIN_PART {
            return Err(s3_error!(EntityTooSmall, "part {n} is under 5 MiB and not the last"));
        }
        let raw = hex::decode(&part.meta.etag).unwrap_or_default();
        md5s.update(&raw);
        if let Some(alg) = &info.checksum {
            let sum = part.meta.checksums.get(alg).and_then(|v| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(v).ok()
            });
            let sum = sum.ok_or_else(|| s3_error!(InvalidRequest, "part {n} has no {alg} checksum"))?;
            part_sums.push((sum, part.inode.size));
        }
        sources.push(at(&part_path(&dir, *n)?));
        extents.extend(part.inode.extents().iter().cloned());
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), c.parts.len());
    let o = object_path(bucket, key)?;
    let bucket_dir = bucket_path(bucket)?;
    let (file, existing) = store::look(b, &bucket_dir, &o, c.if_match.is_some()).await?.target(&o);
    let mut preconditions = Vec::new();
    if c.if_none_match {
        preconditions.push(Precondition::Absent);
    }
    if let Some(cond) = &c.if_match {
        let Some((inode, record)) = &existing else {
            return Err(s3_error!(NoSuchKey, "If-Match on a key that does not exist"));
        };
        let meta = crate::meta::current(inode, record.as_deref());
        if cond.as_etag().is_some_and(|e| e.value() != meta.etag) {
            return Err(s3_error!(PreconditionFailed, "the object's ETag is not the one given in If-Match"));
        }
        preconditions.push(Precondition::EtagIn(vec![inode.etag()]));
    }
    let mut checksums = BTreeMap::new();
    if let Some(alg) = &info.checksum {
        let value = sums::combine(alg, info.full_object, &part_sums)
            .ok_or_else(|| s3_error!(InvalidRequest, "{alg} checksums cannot be combined that way"))?;
        if let Some(claimed) = sums::value(&c.claimed, alg) {
            if claimed.split('-').next() != value.split('-').next() {
                return Err(s3_error!(BadDigest, "the {alg} checksum you specified did not match the parts'"));
            }
        }
        checksums.insert(alg.clone(), value);
        checksums.insert("type".into(), if info.full_object { "FULL_OBJECT" } else { "COMPOSITE" }.into());
    }
    let content = Content::Extents(extents);
    let meta = ObjectMeta {
        v: 1,
        etag,
        content: fingerprint(&content),
        headers: info.headers,
        user: info.user,
        tags: info.tags,
        checksums,
        parts: c.parts.len() as u32,
    };
    store::ensure_parent(b, &bucket_dir, &file).await?;
    let guard = Guard { preconditions, ..Default::default() };
    let ops = vec![
        guard.wrap(ClientCommand::Concat { at: at(&file), sources }),
        ClientCommand::SetXattr { at: at(&file), name: META_XATTR.into(), value: meta.encode(), mode: XattrMode::Any },
        ClientCommand::Remove { at: at(&dir), recursive: true },
    ];
    datapath::batch(b, ops).await.map_err(|e| match e.code() {
        cairn_core::ErrorCode::PreconditionFailed => s3_error!(PreconditionFailed, "{e}"),
        _ => s3(e),
    })?;
    Ok(meta)
}

/// Aborts upload `id`: its parts go.
pub async fn abort<B: Backend>(b: &B, bucket: &str, key: &str, id: &str) -> S3Result<()> {
    let (dir, _) = info(b, bucket, key, id).await?;
    match b.write(ClientCommand::Remove { at: at(&dir), recursive: true }).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Err(s3_error!(NoSuchUpload)),
        Err(e) => Err(s3(e)),
    }
}

/// The uploads in progress in `bucket` whose keys start with `prefix`: (key, id, created),
/// by key then id, at most `max`, and whether more follow.
pub async fn uploads<B: Backend>(
    b: &B,
    bucket: &str,
    prefix: &str,
    max: usize,
) -> S3Result<(Vec<(String, String, i64)>, bool)> {
    store::bucket_dir(b, &bucket_path(bucket)?).await?;
    let dir = uploads_of(bucket)?;
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let q = Query::List { at: at(&dir), after, limit: 1000 };
        let (entries, next) = match b.query(q).await {
            Ok(QueryReply::Entries { entries, next }) => (entries, next),
            Err(e) if is_not_found(&e) => break,
            Ok(_) => return Err(s3_error!(InternalError, "unexpected answer to a listing")),
            Err(e) => return Err(s3(e)),
        };
        for e in entries {
            let q = Query::GetXattr { at: Target::Ino(e.inode.ino), name: UPLOAD_XATTR.into() };
            if let Ok(QueryReply::Xattr(v)) = b.query(q).await {
                if let Ok(i) = serde_json::from_slice::<UploadInfo>(&v) {
                    if i.key.starts_with(prefix) {
                        all.push((i.key, e.name, i.created));
                    }
                }
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    all.sort();
    let more = all.len() > max;
    all.truncate(max);
    Ok((all, more))
}

/// Removes uploads begun more than `older_than` ago, in every bucket: how many went.
pub async fn sweep<B: Backend>(b: &B, older_than: std::time::Duration) -> S3Result<usize> {
    let root: FsPath = UPLOADS_DIR.parse().map_err(crate::errors::path)?;
    let cutoff = now_ns() - older_than.as_nanos() as i64;
    let mut removed = 0;
    let buckets = match b.query(Query::List { at: at(&root), after: None, limit: 10_000 }).await {
        Ok(QueryReply::Entries { entries, .. }) => entries,
        Ok(_) => return Ok(0),
        Err(e) if is_not_found(&e) => return Ok(0),
        Err(e) => return Err(s3(e)),
    };
    for bucket in buckets.into_iter().filter(|e| e.inode.kind == InodeKind::Dir) {
        let q = Query::List { at: Target::Ino(bucket.inode.ino), after: None, limit: 10_000 };
        let Ok(QueryReply::Entries { entries, .. }) = b.query(q).await else { continue };
        for e in entries {
            if e.inode.ctime < cutoff {
                let dir = root.join(&bucket.name).and_then(|d| d.join(&e.name)).map_err(crate::errors::path)?;
                if b.write(ClientCommand::Remove { at: at(&dir), recursive: true }).await.is_ok() {
                    removed += 1;
                }
            }
        }
    }
    Ok(removed)
}
