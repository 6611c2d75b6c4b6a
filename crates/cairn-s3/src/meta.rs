//! What S3 knows of an object beyond its bytes, kept in one extended attribute of its file
//! ([`META_XATTR`], JSON, format in `docs/formats.md`): the ETag, the standard headers it was
//! stored with, its user metadata and checksums.
//!
//! The record names the content it describes by a fingerprint ([`fingerprint`]): a file
//! changed since through REST, the CLI or a mount no longer matches, and its ETag is then
//! the fingerprint itself rather than a stale MD5.

use cairn_core::wire::{Content, Inode};
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The extended attribute that holds an object's [`ObjectMeta`].
pub const META_XATTR: &str = "user.cairn.s3";

/// Most bytes of user metadata (names and values) one object may carry, as in S3.
pub const USER_META_MAX: usize = 2048;

/// An object's S3 record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMeta {
    /// Format version (1).
    pub v: u32,
    /// The ETag, without quotes: an MD5 (single part) or md5-of-md5s-N (multipart).
    pub etag: String,
    /// The fingerprint of the content this record describes.
    pub content: String,
    /// Standard headers the object was stored with (`content-type`, `cache-control`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// User metadata (`x-amz-meta-*`), names in lower case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// Checksums stored with the object (`crc32`, `crc32c`, `sha1`, `sha256`, `crc64nvme`:
    /// base64, as S3 returns them), and `type`: `FULL_OBJECT` or `COMPOSITE`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// Tags (`x-amz-tagging`, PutObjectTagging).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Number of parts of a multipart object (0: single part).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ObjectMeta {
    /// The record as stored.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("object meta serializes")
    }

    /// A stored record, if it is one this version reads (anything else is ignored: the
    /// object then shows as one written outside S3).
    pub fn decode(bytes: &[u8]) -> Option<ObjectMeta> {
        serde_json::from_slice::<ObjectMeta>(bytes).ok().filter(|m| m.v == 1)
    }

    /// Checks user metadata against S3's size limit.
    pub fn check_user(user: &BTreeMap<String, String>) -> S3Result<()> {
        let size: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > USER_META_MAX {
            return Err(s3_error!(MetadataTooLarge, "user metadata is {size} bytes, over {USER_META_MAX}"));
        }
        Ok(())
    }
}

/// A short, stable name of a file's content: 16 bytes of BLAKE3 over its chunk ids and
/// ranges (or its inline bytes), as hex.
pub fn fingerprint(content: &Content) -> String {
    let mut h = blake3::Hasher::new();
    match content {
        Content::None | Content::Symlink(_) => {
            h.update(b"n");
        }
        Content::Inline(bytes) => {
            h.update(b"i");
            h.update(bytes);
        }
        Content::Extents(extents) => {
            h.update(b"e");
            for e in extents {
                h.update(e.chunk.as_ref().map_or(&[0u8; 32], |c| &c.0));
                h.update(&e.offset.to_le_bytes());
                h.update(&e.len.to_le_bytes());
            }
        }
    }
    hex::encode(&h.finalize().as_bytes()[..16])
}

/// The record that describes `inode` as it is now: the stored one if it matches the content,
/// else one with the fingerprint as its ETag and nothing else.
pub fn current(inode: &Inode, stored: Option<&[u8]>) -> ObjectMeta {
    let content = fingerprint(&inode.content);
    match stored.and_then(ObjectMeta::decode) {
        Some(m) if m.content == content => m,
        _ => ObjectMeta { v: 1, etag: content.clone(), content, ..Default::default() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_describes_only_the_content_it_was_made_for() {
        let mut inode = Inode {
            ino: 2,
            kind: cairn_core::wire::InodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 5,
            atime: 0,
            mtime: 0,
            ctime: 0,
            nlink: 1,
            parent: 0,
            version: 1,
            policy: None,
            chunk_size: None,
            content: Content::Inline(b"hello".to_vec()),
        };
        let meta = ObjectMeta {
            v: 1,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            content: fingerprint(&inode.content),
            ..Default::default()
        };
        assert_eq!(current(&inode, Some(&meta.encode())), meta);
        inode.content = Content::Inline(b"hello!".to_vec());
        let changed = current(&inode, Some(&meta.encode()));
        assert_eq!(changed.etag, fingerprint(&inode.content));
        assert!(changed.user.is_empty());
        assert_eq!(current(&inode, Some(b"{not json")).etag, changed.etag);
    }
}
