//! Where an object's file is, and storing one: the paths of [`crate::names`] made real.
//!
//! An object whose key is also a directory lives in that directory as `OBJECT_FILE`; a key
//! that needs a directory where an object's file is moves that file into the new directory
//! first (one atomic batch), and deleting the last key below such a directory moves the file
//! back. Every object is committed together with its S3 record (one batch: data and record
//! become visible in the same step).

use crate::errors::{is_not_found, s3};
use crate::meta::{ObjectMeta, META_XATTR};
use crate::names::{ObjectPath, OBJECT_FILE};
use cairn_client::{datapath, Backend, ClientError};
use cairn_core::lock::{Guard, Precondition};
use cairn_core::wire::{
    ClientCommand, Content, Inode, InodeKind, NewAttrs, Query, QueryReply, Reply, Target, XattrMode, QUERY_BATCH_MAX,
};
use cairn_core::{ApiError, ErrorCode, FsPath};
use s3s::{s3_error, S3Result};

/// A path as a target.
pub fn at(p: &FsPath) -> Target {
    Target::Path(p.clone())
}

/// The inode at `p`, if any.
pub async fn stat_opt<B: Backend>(b: &B, p: &FsPath) -> S3Result<Option<Inode>> {
    match datapath::stat(b, &at(p)).await {
        Ok(i) => Ok(Some(i)),
        Err(e) if is_not_found(&e) || e.code() == ErrorCode::NotADirectory => Ok(None),
        Err(e) => Err(s3(e)),
    }
}

/// The bucket's directory, or `NoSuchBucket`.
pub async fn bucket_dir<B: Backend>(b: &B, bucket: &FsPath) -> S3Result<Inode> {
    match stat_opt(b, bucket).await? {
        Some(i) if i.kind == InodeKind::Dir => Ok(i),
        _ => Err(s3_error!(NoSuchBucket, "no bucket {}", &bucket.to_string()[1..])),
    }
}

/// An object as found: its file's path and inode, and its stored S3 record (raw).
pub struct Found {
    /// The file holding the object.
    pub file: FsPath,
    /// Its inode (a directory's, for an empty directory's folder key).
    pub inode: Inode,
    /// The stored record, if any.
    pub meta: Option<Vec<u8>>,
}

/// An inode as read, with its S3 record (raw) if it has one.
pub type Seen = (Inode, Option<Vec<u8>>);

/// What lies where an object's key leads: the bucket's directory, the key's path, and
/// `OBJECT_FILE` inside it (with their S3 records, when asked for).
pub struct Place {
    /// The bucket's directory, if there is one.
    pub bucket: Option<Inode>,
    /// The inode at the key's path and its record.
    pub at: Option<Seen>,
    /// The inode of `OBJECT_FILE` inside it and its record.
    pub inner: Option<Seen>,
    /// The bucket keeps versions (S3 versioning enabled or suspended).
    pub versioned: bool,
    /// The directory the key's path is in.
    pub parent: Option<Inode>,
}

/// An inode from a batch answer: `None` if nothing is there.
fn inode_in(r: Option<Result<QueryReply, ApiError>>) -> S3Result<Option<Inode>> {
    match r {
        Some(Ok(QueryReply::Inode(i))) => Ok(Some(i)),
        Some(Err(e)) if matches!(e.code, ErrorCode::NotFound | ErrorCode::NotADirectory) => Ok(None),
        Some(Err(e)) => Err(s3(e.into())),
        _ => Err(s3_error!(InternalError, "unexpected answer to a stat")),
    }
}

/// A record from a batch answer: `None` if there is none.
fn record_in(r: Option<Result<QueryReply, ApiError>>) -> Option<Vec<u8>> {
    match r {
        Some(Ok(QueryReply::Xattr(v))) => Some(v),
        _ => None,
    }
}

/// Reads the [`Place`] of `o` in `bucket` (with records if `records`); `parent` stays `None`.
pub async fn look<B: Backend>(b: &B, bucket: &FsPath, o: &ObjectPath, records: bool) -> S3Result<Place> {
    look_with(b, bucket, o, records, false).await
}

/// One batch of queries; its answers in order.
async fn batch<B: Backend>(b: &B, qs: Vec<Query>) -> S3Result<std::vec::IntoIter<Result<QueryReply, ApiError>>> {
    match b.query(Query::Batch(qs)).await.map_err(s3)? {
        QueryReply::Batch(a) => Ok(a.into_iter()),
        _ => Err(s3_error!(InternalError, "unexpected answer to a query batch")),
    }
}

/// Reads the [`Place`] of `o` in `bucket`, with records if `records` and the directory the
/// key's path is in if `parent`. One round for a key that is a file or absent; a key whose
/// path is a directory takes a second round for the object file inside it.
pub async fn look_with<B: Backend>(
    b: &B,
    bucket: &FsPath,
    o: &ObjectPath,
    records: bool,
    parent: bool,
) -> S3Result<Place> {
    let mut qs = vec![
        Query::Stat(at(bucket)),
        Query::Stat(at(&o.path)),
        Query::GetXattr { at: at(bucket), name: crate::versions::VERSIONING_XATTR.into() },
    ];
    if records {
        qs.push(Query::GetXattr { at: at(&o.path), name: META_XATTR.into() });
    }
    if parent {
        qs.push(Query::Stat(at(&o.path.parent().unwrap_or_else(|| bucket.clone()))));
    }
    let mut a = batch(b, qs).await?;
    let bucket = inode_in(a.next())?.filter(|i| i.kind == InodeKind::Dir);
    let path_inode = inode_in(a.next())?;
    let versioned = record_in(a.next()).is_some();
    let path_record = if records { record_in(a.next()) } else { None };
    let parent = if parent { inode_in(a.next())? } else { None };
    let mut inner = None;
    if path_inode.as_ref().is_some_and(|i| i.kind == InodeKind::Dir) {
        let file = o.inner();
        let mut qs = vec![Query::Stat(at(&file))];
        if records {
            qs.push(Query::GetXattr { at: at(&file), name: META_XATTR.into() });
        }
        let mut a = batch(b, qs).await?;
        let inode = inode_in(a.next())?;
        let record = if records { record_in(a.next()) } else { None };
        inner = inode.map(|i| (i, record));
    }
    Ok(Place { bucket, at: path_inode.map(|i| (i, path_record)), inner, versioned, parent })
}

impl Place {
    /// The bucket's directory, or `NoSuchBucket`.
    pub fn bucket(&self, bucket: &FsPath) -> S3Result<&Inode> {
        self.bucket.as_ref().ok_or_else(|| s3_error!(NoSuchBucket, "no bucket {}", &bucket.to_string()[1..]))
    }

    /// The object, if the key names one.
    pub fn found(self, o: &ObjectPath) -> Option<Found> {
        let (inode, meta) = self.at?;
        match (inode.kind, o.folder) {
            (InodeKind::File, false) => Some(Found { file: o.path.clone(), inode, meta }),
            (InodeKind::Dir, true) if inode.size == 0 => Some(Found { file: o.path.clone(), inode, meta: None }),
            (InodeKind::Dir, false) => match self.inner {
                Some((i, meta)) if i.kind == InodeKind::File => Some(Found { file: o.inner(), inode: i, meta }),
                _ => None,
            },
            _ => None,
        }
    }

    /// The file an upload of `o` goes to (the key's own path, or `OBJECT_FILE` inside the
    /// directory there), and what is there now with its record.
    pub fn target(self, o: &ObjectPath) -> (FsPath, Option<Seen>) {
        match self.at {
            Some((i, _)) if i.kind == InodeKind::Dir => (o.inner(), self.inner),
            found => (o.path.clone(), found),
        }
    }
}

/// The S3 records of `inodes` (by number), [`QUERY_BATCH_MAX`] to a read.
pub async fn records<B: Backend>(b: &B, inodes: &[&Inode]) -> S3Result<Vec<Option<Vec<u8>>>> {
    let mut out = Vec::with_capacity(inodes.len());
    for group in inodes.chunks(QUERY_BATCH_MAX) {
        let qs = group.iter().map(|i| Query::GetXattr { at: Target::Ino(i.ino), name: META_XATTR.into() }).collect();
        match b.query(Query::Batch(qs)).await.map_err(s3)? {
            QueryReply::Batch(answers) => out.extend(answers.into_iter().map(|a| record_in(Some(a)))),
            _ => return Err(s3_error!(InternalError, "unexpected answer to a query batch")),
        }
    }
    Ok(out)
}

/// Commits `content` as the file `file` with its S3 record, in one step, and only while the
/// bucket exists (a PUT never makes a bucket). `base_version` guards the commit (0: the file
/// must not exist). If a directory the key needs is an object's file, that file is moved
/// into it first; if the key's own path is a directory, the object goes in it as
/// `OBJECT_FILE`.
#[allow(clippy::too_many_arguments)]
pub async fn commit<B: Backend>(
    b: &B,
    bucket: &FsPath,
    file: &FsPath,
    content: Content,
    size: u64,
    attrs: NewAttrs,
    base_version: Option<u64>,
    meta: &ObjectMeta,
) -> S3Result<Inode> {
    let bucket_there = Guard { preconditions: vec![Precondition::Exists], ..Default::default() };
    let ops = |file: &FsPath| {
        vec![
            bucket_there.wrap(ClientCommand::Mkdir { at: at(bucket), parents: true, attrs: NewAttrs::dir() }),
            ClientCommand::Commit { at: at(file), base_version, content: content.clone(), size, parents: true, attrs },
            ClientCommand::SetXattr {
                at: at(file),
                name: META_XATTR.into(),
                value: meta.encode(),
                mode: XattrMode::Any,
            },
        ]
    };
    let mut file = file.clone();
    let mut moved = false;
    loop {
        let error = match b.write(ClientCommand::Batch { ops: ops(&file) }).await.map_err(s3)? {
            // The record's reply: the inode as it ends up (its version is the object's).
            Reply::Batch(replies) => match replies.into_iter().last() {
                Some(Reply::Inode(i)) => return Ok(i),
                other => return Err(s3(ClientError::Protocol(format!("expected an inode, got {other:?}")))),
            },
            Reply::BatchFailed { index: 0, .. } => {
                return Err(s3_error!(NoSuchBucket, "no bucket {}", &bucket.to_string()[1..]));
            }
            Reply::BatchFailed { error, .. } => error,
            other => return Err(s3(ClientError::Protocol(format!("expected a batch answer, got {other:?}")))),
        };
        match error.code {
            ErrorCode::NotADirectory if !moved => {
                make_room(b, bucket, &file).await?;
                moved = true;
            }
            ErrorCode::IsADirectory if file.name() != Some(OBJECT_FILE) => {
                file = file.join(OBJECT_FILE).map_err(crate::errors::path)?;
            }
            ErrorCode::Conflict | ErrorCode::Exists | ErrorCode::PreconditionFailed => {
                return Err(s3_error!(PreconditionFailed, "the object changed: {}", error.message));
            }
            _ => return Err(s3(error.into())),
        }
    }
}

/// Makes the directory `file` goes in (and its ancestors), moving objects' files out of the
/// way.
pub async fn ensure_parent<B: Backend>(b: &B, bucket: &FsPath, file: &FsPath) -> S3Result<()> {
    let Some(parent) = file.parent() else { return Ok(()) };
    let mkdir = || ClientCommand::Mkdir { at: at(&parent), parents: true, attrs: NewAttrs::dir() };
    match b.write(mkdir()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == ErrorCode::NotADirectory || e.code() == ErrorCode::Exists => {
            make_room(b, bucket, file).await?;
            b.write(mkdir()).await.map(|_| ()).map_err(s3)
        }
        Err(e) => Err(s3(e)),
    }
}

/// Turns every object's file on the way from `bucket` to `file` into a directory holding it
/// as `OBJECT_FILE`.
async fn make_room<B: Backend>(b: &B, bucket: &FsPath, file: &FsPath) -> S3Result<()> {
    let names = &file.components()[bucket.components().len()..];
    let mut dir = bucket.clone();
    for name in &names[..names.len().saturating_sub(1)] {
        let path = dir.join(name).map_err(crate::errors::path)?;
        match stat_opt(b, &path).await? {
            Some(i) if i.kind == InodeKind::File => {
                let tmp =
                    dir.join(&format!(".cairn-s3-move-{:016x}", rand::random::<u64>())).map_err(crate::errors::path)?;
                let inner = path.join(OBJECT_FILE).map_err(crate::errors::path)?;
                let ops = vec![
                    ClientCommand::Rename { from: at(&path), to: at(&tmp) },
                    ClientCommand::Mkdir { at: at(&path), parents: false, attrs: NewAttrs::dir() },
                    ClientCommand::Rename { from: at(&tmp), to: at(&inner) },
                ];
                datapath::batch(b, ops).await.map_err(s3)?;
            }
            Some(_) => {}
            None => return Ok(()),
        }
        dir = path;
    }
    Ok(())
}

/// After the object at `file` went: removes the directories it leaves empty, up to the
/// bucket, and moves an `OBJECT_FILE` left alone in its directory back to the directory's
/// name.
pub async fn tidy<B: Backend>(b: &B, bucket: &FsPath, file: &FsPath) -> S3Result<()> {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d.components().len() <= bucket.components().len() {
            break;
        }
        let Some(inode) = stat_opt(b, &d).await? else { break };
        let inner = d.join(OBJECT_FILE).map_err(crate::errors::path)?;
        let tidied = match inode.size {
            0 => b.write(ClientCommand::Remove { at: at(&d), recursive: false }).await.map(|_| ()),
            1 if stat_opt(b, &inner).await?.is_some() => {
                let parent = d.parent().expect("below the bucket");
                let tmp = parent
                    .join(&format!(".cairn-s3-move-{:016x}", rand::random::<u64>()))
                    .map_err(crate::errors::path)?;
                let ops = vec![
                    ClientCommand::Rename { from: at(&inner), to: at(&tmp) },
                    ClientCommand::Remove { at: at(&d), recursive: false },
                    ClientCommand::Rename { from: at(&tmp), to: at(&d) },
                ];
                datapath::batch(b, ops).await.map(|_| ())
            }
            _ => break,
        };
        // Someone else wrote here meanwhile: what is left is theirs.
        if tidied.is_err() {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}
