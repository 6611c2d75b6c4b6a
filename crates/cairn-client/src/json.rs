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

use cairn_core::lock::LockOn;

/// The JSON form of a lock; `with_id` shows its id (to its owner and admins only: the id
/// lets writes through the lock).
pub fn lock_json(l: &cairn_core::lock::LockInfo, with_id: bool) -> Value {
    let paths: Vec<Value> = l
        .items
        .iter()
        .map(|i| {
            let mut v = match &i.on {
                LockOn::Path(p) => json!({ "path": p.to_string() }),
                LockOn::Ino(n) => json!({ "ino": n }),
            };
            if let Some(r) = i.range {
                v["start"] = json!(r.start);
                v["length"] = json!(r.len);
            }
            v
        })
        .collect();
    let mut v = json!({
        "mode": l.mode.as_str(),
        "owner": l.owner,
        "paths": paths,
        "fencing_token": l.fence,
        "ttl": l.ttl / 1_000_000_000,
        "expires": humantime::format_rfc3339_millis(time(l.expires)).to_string(),
        "expires_ns": l.expires,
    });
    if with_id {
        v["lock_id"] = json!(l.id_hex());
    }
    v
}
