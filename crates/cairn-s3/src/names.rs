//! How S3 names map onto cairn's namespace.
//!
//! A bucket is a top-level directory (`/BUCKET`); an object key is a path below it, each `/`
//! a directory level: key `photos/2024/a.jpg` of bucket `pics` is the file
//! `/pics/photos/2024/a.jpg`. S3 lets one key be both an object and a prefix of others (`a`
//! beside `a/b`); a path cannot be both a file and a directory, so such an object lives inside
//! the directory of the same name, as the file [`OBJECT_FILE`] (`/pics/a/.cairn-s3-object`).
//! A key ending in `/` with an empty body (what consoles create for "folders") is a directory;
//! an empty directory lists as that zero-byte object.
//!
//! Keys that cannot be paths are refused with `InvalidArgument`: an empty segment (`a//b`, a
//! leading `/`), a `.` or `..` segment, a segment over 255 bytes, a NUL byte, or a segment
//! named [`OBJECT_FILE`].

use cairn_core::FsPath;
use s3s::{s3_error, S3Result};

/// The file inside directory `D` that holds the object whose key is `D`'s own key.
pub const OBJECT_FILE: &str = ".cairn-s3-object";

/// Where multipart uploads keep their parts until they complete (not a bucket: bucket names
/// cannot start with a dot).
pub const UPLOADS_DIR: &str = "/.cairn-s3/uploads";

/// Where an object key leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The path the key names (`/bucket/k/e/y`).
    pub path: FsPath,
    /// The key ends in `/`: it names a directory ("folder" object).
    pub folder: bool,
}

impl ObjectPath {
    /// The file that holds this object when its path is also a directory.
    pub fn inner(&self) -> FsPath {
        self.path.join(OBJECT_FILE).expect("a valid name under a valid path")
    }
}

/// The directory of `bucket` (whose name s3s has already checked against S3's rules).
pub fn bucket_path(bucket: &str) -> S3Result<FsPath> {
    FsPath::root().join(bucket).map_err(|_| s3_error!(InvalidBucketName))
}

/// The path of `key` in `bucket`, or `InvalidArgument` if the key cannot be a path.
pub fn object_path(bucket: &str, key: &str) -> S3Result<ObjectPath> {
    let bad = |why: &str| s3_error!(InvalidArgument, "object key {:?} cannot be stored: {why}", short(key));
    if key.is_empty() {
        return Err(bad("empty key"));
    }
    if key.len() > 1024 {
        return Err(s3_error!(KeyTooLongError));
    }
    let (body, folder) = match key.strip_suffix('/') {
        Some(b) => (b, true),
        None => (key, false),
    };
    let mut path = bucket_path(bucket)?;
    for segment in body.split('/') {
        if segment == OBJECT_FILE {
            return Err(bad("a segment is a name cairn reserves"));
        }
        path = path.join(segment).map_err(|e| bad(&e.to_string()))?;
    }
    Ok(ObjectPath { path, folder })
}

/// The key of a path below a bucket's directory (`rel` holds the names below it).
pub fn key_of(rel: &[String]) -> String {
    rel.join("/")
}

/// The first 128 characters of a key, for error messages.
fn short(key: &str) -> String {
    key.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_become_paths_below_their_bucket() {
        let p = object_path("pics", "photos/2024/a.jpg").unwrap();
        assert_eq!(p.path.to_string(), "/pics/photos/2024/a.jpg");
        assert!(!p.folder);
        assert_eq!(p.inner().to_string(), "/pics/photos/2024/a.jpg/.cairn-s3-object");
        let f = object_path("pics", "photos/").unwrap();
        assert_eq!((f.path.to_string().as_str(), f.folder), ("/pics/photos", true));
    }

    #[test]
    fn keys_that_cannot_be_paths_are_refused() {
        for key in ["", "/a", "a//b", "a/./b", "..", "a/../b", "a/.cairn-s3-object", "x\0y", "//"] {
            assert!(object_path("b", key).is_err(), "{key:?}");
        }
        assert!(object_path("b", &"x".repeat(256)).is_err());
        assert!(object_path("b", &"x/".repeat(600)).is_err());
    }

    proptest! {
        /// A key that maps to a path comes back from that path's names unchanged.
        #[test]
        fn keys_round_trip(key in "[a-z0-9./_ -]{1,40}(/[a-z0-9._-]{1,10}){0,3}/?") {
            if let Ok(p) = object_path("bkt", &key) {
                let rel = &p.path.components()[1..];
                let back = if p.folder { format!("{}/", key_of(rel)) } else { key_of(rel) };
                prop_assert_eq!(back, key);
            }
        }
    }
}
