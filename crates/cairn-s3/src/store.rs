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
use cairn_core::wire::{
    ClientCommand, Content, Inode, InodeKind, NewAttrs, Query, QueryReply, Reply, Target, XattrMode,
};
use cairn_core::{ErrorCode, FsPath};
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

/// The object `o`, or `None`.
pub async fn find<B: Backend>(b: &B, o: &ObjectPath) -> S3Result<Option<Found>> {
    let Some(inode) = stat_opt(b, &o.path).await? else { return Ok(None) };
    let (file, inode) = match (inode.kind, o.folder) {
        (InodeKind::File, false) => (o.path.clone(), inode),
        (InodeKind::Dir, true) if inode.size == 0 => (o.path.clone(), inode),
        (InodeKind::Dir, false) => match stat_opt(b, &o.inner()).await? {
            Some(i) if i.kind == InodeKind::File => (o.inner(), i),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    let meta = if inode.kind == InodeKind::File { xattr(b, &file).await? } else { None };
    Ok(Some(Found { file, inode, meta }))
}

/// The S3 record of the file at `p`, if it has one.
pub async fn xattr<B: Backend>(b: &B, p: &FsPath) -> S3Result<Option<Vec<u8>>> {
    xattr_at(b, at(p)).await
}

/// The S3 record of the file `t`, if it has one.
pub async fn xattr_at<B: Backend>(b: &B, t: Target) -> S3Result<Option<Vec<u8>>> {
    match b.query(Query::GetXattr { at: t, name: META_XATTR.into() }).await {
        Ok(QueryReply::Xattr(v)) => Ok(Some(v)),
        Ok(_) => Ok(None),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(s3(e)),
    }
}

/// The file an upload of `o` goes to: the key's own path, or `OBJECT_FILE` inside the
/// directory there.
pub async fn file_for<B: Backend>(b: &B, o: &ObjectPath) -> S3Result<(FsPath, Option<Inode>)> {
    match stat_opt(b, &o.path).await? {
        Some(i) if i.kind == InodeKind::Dir => {
            let inner = o.inner();
            let existing = stat_opt(b, &inner).await?;
            Ok((inner, existing))
        }
        found => Ok((o.path.clone(), found)),
    }
}

/// Commits `content` as the file `file` with its S3 record, in one step. `base_version`
/// guards the commit (0: the file must not exist). Makes room first if a directory the key
/// needs is an object's file.
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
    let ops = || {
        vec![
            ClientCommand::Commit { at: at(file), base_version, content: content.clone(), size, parents: true, attrs },
            ClientCommand::SetXattr {
                at: at(file),
                name: META_XATTR.into(),
                value: meta.encode(),
                mode: XattrMode::Any,
            },
        ]
    };
    let first = datapath::batch(b, ops()).await;
    let replies = match first {
        Err(e) if e.code() == ErrorCode::NotADirectory => {
            make_room(b, bucket, file).await?;
            datapath::batch(b, ops()).await
        }
        other => other,
    }
    .map_err(|e| match e.code() {
        ErrorCode::Conflict | ErrorCode::Exists => s3_error!(PreconditionFailed, "the object changed: {e}"),
        _ => s3(e),
    })?;
    match replies.into_iter().next() {
        Some(Reply::Inode(i)) => Ok(i),
        other => Err(s3(ClientError::Protocol(format!("expected an inode, got {other:?}")))),
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
