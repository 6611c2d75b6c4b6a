//! `POST /v1/batch`: operations applied all or none, in one Raft command.
//!
//! Body: `{"ops": [{"op": "mkdir", "path": "/a"}, {"op": "rename", "path": "/x", "to": "/y",
//! "if_match": "ETAG"}, ...]}`. Operations: `mkdir` (`parents`), `put` (create or replace a
//! file from `data`, base64 of at most 16 KiB, or from already uploaded `chunks`, whole, in
//! order: `[{"id": HEX, "len": N}]`), `rename` (`to`), `delete` (`recursive`), `setattr`
//! (`mode` octal, `uid`, `gid`, `atime`, `mtime` in seconds), `lock` (`paths`, `mode`
//! shared|exclusive, `ttl`) and `unlock` (`lock_id`). Each may carry preconditions:
//! `if_match` (an ETag, or `*`), `if_none_match` (`*`: absent) and `lock_id` (a lock that
//! must be held, presented for the write). The first failure fails the whole batch with its
//! error and index (`{"error": {...}, "index": N}`), and nothing changes.

use super::rest::bad;
use super::{AppState, HttpError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use cairn_client::json::{inode_json, lock_json};
use cairn_core::access::{Access, AccessKey};
use cairn_core::lock::{parse_lock_id, ttl_ns, Guard, LockItem, Precondition};
use cairn_core::wire::{ClientCommand, Content, NewAttrs, Reply, SetAttrs, Target, BATCH_MAX};
use cairn_core::{ApiError, ChunkId, ErrorCode, Extent, FsPath, INLINE_MAX};
use serde::Deserialize;
use serde_json::{json, Value};

/// Body of `POST /v1/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    ops: Vec<Op>,
}

/// One operation of a batch, as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Op {
    op: String,
    path: Option<String>,
    to: Option<String>,
    paths: Option<Vec<String>>,
    parents: Option<bool>,
    recursive: Option<bool>,
    data: Option<String>,
    chunks: Option<Vec<ChunkRef>>,
    mode: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
    atime: Option<i64>,
    mtime: Option<i64>,
    ttl: Option<u64>,
    lock_id: Option<String>,
    if_match: Option<String>,
    if_none_match: Option<String>,
}

/// A whole chunk already stored, as a `put` names it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkRef {
    id: String,
    len: u32,
}

fn path_of(s: Option<&str>, op: &str, field: &str) -> Result<FsPath, HttpError> {
    Ok(FsPath::parse(s.ok_or_else(|| bad(format!("{op} needs \"{field}\"")))?)?)
}

fn secs(v: Option<i64>) -> Result<Option<i64>, HttpError> {
    v.map(|s| s.checked_mul(1_000_000_000).ok_or_else(|| bad("time out of range"))).transpose()
}

/// The content a `put` commits, and its size.
fn content(op: &Op) -> Result<(Content, u64), HttpError> {
    match (&op.data, &op.chunks) {
        (Some(data), None) => {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| bad("put: data is not base64"))?;
            if bytes.len() as u64 > INLINE_MAX {
                return Err(bad(format!("put: data holds at most {INLINE_MAX} bytes; upload chunks for more")));
            }
            let size = bytes.len() as u64;
            Ok((if bytes.is_empty() { Content::None } else { Content::Inline(bytes) }, size))
        }
        (None, Some(chunks)) => {
            let mut extents = Vec::with_capacity(chunks.len());
            for c in chunks {
                if c.len == 0 {
                    return Err(bad("put: a chunk's len is at least 1"));
                }
                extents.push(Extent::whole(ChunkId::from_hex(&c.id)?, c.len));
            }
            let size = extents.iter().map(|e| e.len).sum();
            Ok((if extents.is_empty() { Content::None } else { Content::Extents(extents) }, size))
        }
        _ => Err(bad("put needs one of \"data\" (base64) or \"chunks\"")),
    }
}

/// One JSON operation as a command, with the paths it names.
fn command(op: &Op, paths: &mut Vec<FsPath>) -> Result<ClientCommand, HttpError> {
    let name = op.op.as_str();
    let at = |paths: &mut Vec<FsPath>| -> Result<Target, HttpError> {
        let p = path_of(op.path.as_deref(), name, "path")?;
        paths.push(p.clone());
        Ok(Target::Path(p))
    };
    let cmd = match name {
        "mkdir" => {
            ClientCommand::Mkdir { at: at(paths)?, parents: op.parents.unwrap_or(false), attrs: NewAttrs::dir() }
        }
        "put" => {
            let (content, size) = content(op)?;
            let attrs = NewAttrs::file();
            ClientCommand::Commit { at: at(paths)?, base_version: None, content, size, parents: true, attrs }
        }
        "rename" => {
            let from = at(paths)?;
            let to = path_of(op.to.as_deref(), name, "to")?;
            paths.push(to.clone());
            ClientCommand::Rename { from, to: Target::Path(to) }
        }
        "delete" => ClientCommand::Remove { at: at(paths)?, recursive: op.recursive.unwrap_or(false) },
        "setattr" => {
            let mode = op
                .mode
                .as_deref()
                .map(|m| u32::from_str_radix(m, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| bad("mode is octal")))
                .transpose()?;
            let attrs =
                SetAttrs { mode, uid: op.uid, gid: op.gid, atime: secs(op.atime)?, mtime: secs(op.mtime)?, size: None };
            ClientCommand::SetAttr { at: at(paths)?, attrs }
        }
        "lock" => {
            let list = op.paths.as_ref().ok_or_else(|| bad("lock needs \"paths\""))?;
            let mut items = Vec::with_capacity(list.len());
            for p in list {
                let path = FsPath::parse(p)?;
                paths.push(path.clone());
                items.push(LockItem::path(path, None));
            }
            let ttl = ttl_ns(op.ttl.unwrap_or(30))?;
            let mode = super::locks::mode(op.mode.as_deref())?;
            ClientCommand::Lock { id: rand::random(), owner: String::new(), mode, items, ttl }
        }
        "unlock" => {
            let id = parse_lock_id(op.lock_id.as_deref().ok_or_else(|| bad("unlock needs \"lock_id\""))?)?;
            return Ok(ClientCommand::Unlock { id, owner: None });
        }
        other => {
            let known = "mkdir, put, rename, delete, setattr, lock, unlock";
            return Err(bad(format!(
                "unknown batch op {:?} (known: {known})",
                other.chars().take(32).collect::<String>()
            )));
        }
    };
    let mut guard = Guard::default();
    if let Some(id) = op.lock_id.as_deref() {
        let id = parse_lock_id(id)?;
        guard.locks.push(id);
        guard.preconditions.push(Precondition::LockHeld(id));
    }
    match op.if_match.as_deref().map(str::trim) {
        Some("*") => guard.preconditions.push(Precondition::Exists),
        Some(tag) => guard.preconditions.push(Precondition::EtagIn(vec![tag.to_string()])),
        None => {}
    }
    match op.if_none_match.as_deref().map(str::trim) {
        Some("*") => guard.preconditions.push(Precondition::Absent),
        Some(tag) => guard.preconditions.push(Precondition::EtagNotIn(vec![tag.to_string()])),
        None => {}
    }
    Ok(guard.wrap(cmd))
}

/// The JSON answer of one operation.
fn result_json(op: &Op, reply: &Reply) -> Value {
    match reply {
        Reply::Inode(inode) => {
            let shown = if op.op == "rename" { op.to.as_deref() } else { op.path.as_deref() };
            match shown.map(FsPath::parse) {
                Some(Ok(p)) => inode_json(&p, inode),
                _ => Value::Null,
            }
        }
        Reply::Lock(l) => lock_json(l, true),
        _ => Value::Null,
    }
}

/// `POST /v1/batch`: apply every operation, or none.
pub async fn batch(
    State(st): State<AppState>,
    Extension(key): Extension<AccessKey>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let body: BatchBody =
        serde_json::from_slice(&body).map_err(|e| bad(format!("a batch is {{\"ops\": [...]}}: {e}")))?;
    if body.ops.is_empty() || body.ops.len() > BATCH_MAX {
        return Err(bad(format!("a batch holds 1 to {BATCH_MAX} operations")));
    }
    let mut paths = Vec::new();
    let mut ops = Vec::with_capacity(body.ops.len());
    for (i, op) in body.ops.iter().enumerate() {
        let cmd = command(op, &mut paths)
            .map_err(|HttpError(e)| HttpError(ApiError::new(e.code, format!("operation {i}: {}", e.message))))?;
        ops.push(cmd);
    }
    if !key.allows(Access::Write, Some(&paths)) {
        return Err(HttpError(ApiError::new(ErrorCode::PermissionDenied, "the key may not write all of these paths")));
    }
    let mut cmd = ClientCommand::Batch { ops };
    super::locks::stamp(&mut cmd, &key);
    match st.node.write(cmd).await? {
        Reply::Batch(replies) => {
            let results: Vec<Value> = body.ops.iter().zip(&replies).map(|(op, r)| result_json(op, r)).collect();
            Ok(Json(json!({ "results": results })).into_response())
        }
        Reply::BatchFailed { index, error } => {
            let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok((status, Json(json!({ "error": error, "index": index }))).into_response())
        }
        _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to a batch"))),
    }
}
