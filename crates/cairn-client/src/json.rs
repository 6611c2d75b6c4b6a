//! The JSON form of inodes, shared by the REST API and the CLI's `--json` output.

use cairn_core::wire::{Content, Inode};
use cairn_core::FsPath;
use serde_json::{json, Value};
use std::time::{Duration, UNIX_EPOCH};

/// A time in ns since the epoch as a `SystemTime`.
pub fn time(ns: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

/// The JSON form of an inode, as returned by stat and listings.
pub fn inode_json(path: &FsPath, i: &Inode) -> Value {
    let mut v = json!({
        "path": path.to_string(),
        "name": path.name().unwrap_or("/"),
        "type": i.kind.as_str(),
        "size": i.size,
        "mode": format!("{:04o}", i.mode),
        "uid": i.uid,
        "gid": i.gid,
        "atime": humantime::format_rfc3339_nanos(time(i.atime)).to_string(),
        "mtime": humantime::format_rfc3339_nanos(time(i.mtime)).to_string(),
        "ctime": humantime::format_rfc3339_nanos(time(i.ctime)).to_string(),
        "atime_ns": i.atime,
        "mtime_ns": i.mtime,
        "ctime_ns": i.ctime,
        "nlink": i.nlink,
        "ino": i.ino,
        "version": i.version,
        "etag": i.etag(),
    });
    match &i.content {
        Content::Extents(extents) => {
            v["extents"] = json!(extents.len());
            v["chunks"] = json!(i.chunk_ids().collect::<std::collections::BTreeSet<_>>().len());
        }
        Content::Inline(_) => v["inline"] = json!(true),
        Content::Symlink(t) => v["target"] = json!(t),
        Content::None => {}
    }
    if let Some(cs) = i.chunk_size {
        v["chunk_size"] = json!(cs);
    }
    if let Some(p) = i.policy {
        v["policy"] = json!(p.to_string());
    }
    v
}
