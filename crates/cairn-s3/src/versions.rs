//! Bucket versioning on cairn's file history (`versions:N`). Enabling versioning keeps
//! [`VERSIONS_MAX`] earlier versions of every object below the bucket; a version id is the
//! object file's version number (decimal); a delete marker is the mark a deletion leaves in
//! the history, and a deleted key is a grave that keeps it. Suspending records the state and
//! keeps the history as it is (cairn drops no version on suspension; `cairn policy set
//! /BUCKET versions:0` stops keeping them, trimming what was kept).
//!
//! Only the current version carries the object's S3 record: an earlier version is served
//! with its content's fingerprint as its ETag and no stored headers.

use crate::errors::{is_not_found, s3};
use crate::meta::{current, ObjectMeta};
use crate::names::{bucket_path, ObjectPath};
use crate::store::{self, at, Found};
use crate::walk::Item;
use cairn_client::{datapath, Backend};
use cairn_core::wire::{
    ClientCommand, Inode, InodeKind, Query, QueryReply, Target, VersionInfo, XattrMode, VERSIONS_MAX,
};
use cairn_core::{ErrorCode, FsPath};
use s3s::{s3_error, S3Result};

/// The attribute of a bucket's directory recording its S3 versioning state (`Enabled` or
/// `Suspended`).
pub const VERSIONING_XATTR: &str = "user.cairn.s3.versioning";

/// Sets a bucket's versioning state.
pub async fn set_status<B: Backend>(b: &B, bucket: &str, enabled: bool) -> S3Result<()> {
    let dir = bucket_path(bucket)?;
    store::bucket_dir(b, &dir).await?;
    let value = if enabled { "Enabled" } else { "Suspended" };
    let mut ops = vec![ClientCommand::SetXattr {
        at: at(&dir),
        name: VERSIONING_XATTR.into(),
        value: value.into(),
        mode: XattrMode::Any,
    }];
    if enabled {
        ops.push(ClientCommand::SetDirVersions { at: at(&dir), versions: VERSIONS_MAX });
    }
    datapath::batch(b, ops).await.map_err(s3)?;
    Ok(())
}

/// A bucket's versioning state (`None`: never enabled).
pub async fn status<B: Backend>(b: &B, bucket: &str) -> S3Result<Option<String>> {
    let dir = bucket_path(bucket)?;
    store::bucket_dir(b, &dir).await?;
    match b.query(Query::GetXattr { at: at(&dir), name: VERSIONING_XATTR.into() }).await {
        Ok(QueryReply::Xattr(v)) => Ok(String::from_utf8(v).ok()),
        Ok(_) => Ok(None),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(s3(e)),
    }
}

/// A version id as cairn's version number.
pub fn parse_id(id: &str) -> S3Result<u64> {
    id.parse().map_err(|_| s3_error!(InvalidArgument, "Invalid version id specified"))
}

/// The path whose history key `o` has (its file, or the object file inside a directory
/// there; a deleted key's name), and the live inode there, if any.
async fn history_of<B: Backend>(
    b: &B,
    bucket: &FsPath,
    o: &ObjectPath,
) -> S3Result<(FsPath, Option<Inode>, Option<Vec<u8>>)> {
    let place = store::look(b, bucket, o, true).await?;
    place.bucket(bucket)?;
    let (file, seen) = place.target(o);
    let (inode, record) = match seen {
        Some((i, r)) if i.kind == InodeKind::File => (Some(i), r),
        _ => (None, None),
    };
    Ok((file, inode, record))
}

/// Version `id` of key `o`, and its record.
pub async fn get<B: Backend>(b: &B, bucket: &FsPath, o: &ObjectPath, id: &str) -> S3Result<(Found, ObjectMeta)> {
    let version = parse_id(id)?;
    let (file, live, record) = history_of(b, bucket, o).await?;
    if let Some(inode) = live.filter(|i| i.version == version) {
        let meta = current(&inode, record.as_deref());
        return Ok((Found { file, inode, meta: record }, meta));
    }
    match b.query(Query::Version { at: at(&file), version }).await {
        Ok(QueryReply::Inode(inode)) => {
            let meta = current(&inode, None);
            Ok((Found { file, inode, meta: None }, meta))
        }
        Ok(_) => Err(s3_error!(InternalError, "unexpected answer to a version query")),
        Err(e) if is_not_found(&e) || e.code() == ErrorCode::IsADirectory => {
            let all = versions_at(b, at(&file)).await?;
            match all.iter().any(|v| v.version == version && v.deleted) {
                true => Err(s3_error!(MethodNotAllowed, "version {id} is a delete marker")),
                false => Err(s3_error!(NoSuchVersion)),
            }
        }
        Err(e) => Err(s3(e)),
    }
}

/// The versions of the file or grave at `t`, newest first (none if it has no history).
async fn versions_at<B: Backend>(b: &B, t: Target) -> S3Result<Vec<VersionInfo>> {
    match b.query(Query::Versions(t)).await {
        Ok(QueryReply::Versions(v)) => Ok(v),
        Ok(_) => Err(s3_error!(InternalError, "unexpected answer to a versions query")),
        Err(e) if is_not_found(&e) || e.code() == ErrorCode::IsADirectory => Ok(Vec::new()),
        Err(e) => Err(s3(e)),
    }
}

/// Removes version `id` of key `o` for good. Removing the current version (or the latest
/// delete marker) makes the newest earlier version with content current again, as S3 does.
/// Answers whether the version was a delete marker.
pub async fn delete<B: Backend>(b: &B, bucket: &FsPath, o: &ObjectPath, id: &str) -> S3Result<bool> {
    let version = parse_id(id)?;
    let (file, _, _) = history_of(b, bucket, o).await?;
    let all = versions_at(b, at(&file)).await?;
    let Some(pos) = all.iter().position(|v| v.version == version) else { return Err(s3_error!(NoSuchVersion)) };
    let target = &all[pos];
    let latest = pos == 0;
    let f = || at(&file);
    let mut ops = Vec::new();
    if target.current {
        // The file goes (its deletion leaves its content and a mark, dropped at once).
        ops.push(ClientCommand::Remove { at: f(), recursive: false });
        ops.push(ClientCommand::DropVersion { at: f(), version });
        ops.push(ClientCommand::DropVersion { at: f(), version: version + 1 });
    }
    let previous = all[pos + 1..].iter().find(|v| !v.deleted).map(|v| v.version);
    match (latest, previous) {
        (true, Some(p)) if target.current || target.deleted => {
            if target.deleted {
                ops.push(ClientCommand::Restore { at: f(), version: p });
                ops.push(ClientCommand::DropVersion { at: f(), version });
            } else {
                ops.push(ClientCommand::Restore { at: f(), version: p });
            }
            ops.push(ClientCommand::DropVersion { at: f(), version: p });
        }
        _ if !target.current => ops.push(ClientCommand::DropVersion { at: f(), version }),
        _ => {}
    }
    datapath::batch(b, ops).await.map_err(s3)?;
    Ok(target.deleted)
}

/// One entry of a version listing.
pub struct Listed {
    /// The key.
    pub key: String,
    /// The version.
    pub version: VersionInfo,
    /// Its ETag (a delete marker has none).
    pub etag: Option<String>,
    /// It is its key's newest version.
    pub latest: bool,
}

/// The versions of the listed keys (live objects and deleted keys), newest first per key.
pub async fn expand<B: Backend>(b: &B, items: &[Item]) -> S3Result<Vec<Listed>> {
    let mut out = Vec::new();
    for item in items {
        let (key, t, live) = match item {
            Item::Object { key, inode } if inode.kind == InodeKind::File => (key, Target::Ino(inode.ino), Some(inode)),
            Item::Object { key, inode } => {
                // An empty directory's folder key: one version, its only one.
                let version =
                    VersionInfo { version: inode.version, size: 0, mtime: inode.mtime, deleted: false, current: true };
                out.push(Listed {
                    key: key.clone(),
                    version,
                    etag: Some(crate::objects::EMPTY_MD5.into()),
                    latest: true,
                });
                continue;
            }
            Item::Deleted { key, dir, name } => (key, Target::Child { parent: *dir, name: name.clone() }, None),
            Item::Dir { .. } => continue,
        };
        let versions = versions_at(b, t.clone()).await?;
        let record = match live {
            Some(inode) => store::records(b, &[inode]).await?.pop().flatten(),
            None => None,
        };
        for (n, v) in versions.into_iter().enumerate() {
            let etag = if v.deleted {
                None
            } else if v.current {
                live.map(|i| current(i, record.as_deref()).etag)
            } else {
                match b.query(Query::Version { at: t.clone(), version: v.version }).await {
                    Ok(QueryReply::Inode(i)) => Some(current(&i, None).etag),
                    _ => None,
                }
            };
            out.push(Listed { key: key.clone(), version: v, etag, latest: n == 0 });
        }
    }
    Ok(out)
}
