//! Object tags: kept in the object's S3 record (so a PUT's `x-amz-tagging` lands with its
//! bytes in one step), set and removed on their own with a guard that the object did not
//! change in between.

use crate::errors::s3;
use crate::meta::{current, ObjectMeta, META_XATTR};
use crate::names::{bucket_path, object_path};
use crate::objects;
use crate::store::at;
use cairn_client::{datapath, Backend};
use cairn_core::lock::{Guard, Precondition};
use cairn_core::wire::{ClientCommand, InodeKind, XattrMode};
use s3s::dto::{Tag, TagSet};
use s3s::{s3_error, S3Result};
use std::collections::BTreeMap;

/// Most tags on one object, as in S3.
pub const MAX_TAGS: usize = 10;

/// Checks a tag set against S3's limits.
pub fn check(tags: &BTreeMap<String, String>) -> S3Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(s3_error!(InvalidTag, "at most {MAX_TAGS} tags per object"));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "tag keys are 1 to 128 characters, values at most 256"));
        }
    }
    Ok(())
}

/// The tags of an `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded).
pub fn from_header(h: &str) -> S3Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(h.as_bytes()) {
        if tags.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(s3_error!(InvalidTag, "a tag key appears twice"));
        }
    }
    check(&tags)?;
    Ok(tags)
}

/// A tag set as S3 sends it.
pub fn to_set(tags: &BTreeMap<String, String>) -> TagSet {
    tags.iter().map(|(k, v)| Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect()
}

/// A tag set as S3 received it.
pub fn from_set(set: TagSet) -> S3Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for t in set {
        let (Some(k), Some(v)) = (t.key, t.value) else {
            return Err(s3_error!(InvalidTag, "a tag needs a key and a value"));
        };
        if tags.insert(k, v).is_some() {
            return Err(s3_error!(InvalidTag, "a tag key appears twice"));
        }
    }
    check(&tags)?;
    Ok(tags)
}

/// The tags of object `key`.
pub async fn get<B: Backend>(b: &B, bucket: &str, key: &str) -> S3Result<BTreeMap<String, String>> {
    let (_, meta) = objects::get(b, &bucket_path(bucket)?, &object_path(bucket, key)?).await?;
    Ok(meta.tags)
}

/// Replaces the tags of object `key`.
pub async fn set<B: Backend>(b: &B, bucket: &str, key: &str, tags: BTreeMap<String, String>) -> S3Result<()> {
    check(&tags)?;
    let (found, _) = objects::get(b, &bucket_path(bucket)?, &object_path(bucket, key)?).await?;
    if found.inode.kind != InodeKind::File {
        return Err(s3_error!(InvalidRequest, "a folder key has no tags"));
    }
    let meta = ObjectMeta { tags, ..current(&found.inode, found.meta.as_deref()) };
    let guard = Guard { preconditions: vec![Precondition::EtagIn(vec![found.inode.etag()])], ..Default::default() };
    let cmd = ClientCommand::SetXattr {
        at: at(&found.file),
        name: META_XATTR.into(),
        value: meta.encode(),
        mode: XattrMode::Any,
    };
    datapath::batch(b, vec![guard.wrap(cmd)]).await.map_err(|e| match e.code() {
        cairn_core::ErrorCode::PreconditionFailed => {
            s3_error!(OperationAborted, "the object changed meanwhile: try again")
        }
        _ => s3(e),
    })?;
    Ok(())
}
