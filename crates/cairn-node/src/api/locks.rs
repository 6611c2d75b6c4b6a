//! The lock service over REST: `POST /v1/locks` (take, optionally waiting), `POST
//! /v1/locks/{id}?op=renew`, `DELETE /v1/locks/{id}`, `GET /v1/locks[?path=]`.
//!
//! A lock records the access key that took it; only that key (or an admin) may renew or
//! release it, and only they see its id in listings, since the id lets writes through.

use super::rest::bad;
use super::{query_params, AppState, HttpError};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cairn_client::json::lock_json;
use cairn_core::access::{Access, AccessKey};
use cairn_core::lock::{parse_lock_id, ttl_ns, ByteRange, LockInfo, LockItem, LockMode};
use cairn_core::wire::{ClientCommand, Query as MetaQuery, QueryReply, Reply, LIST_DEFAULT, LIST_MAX};
use cairn_core::{ApiError, ErrorCode, FsPath};
use serde::Deserialize;
use serde_json::json;
use std::time::{Duration, Instant};

/// Longest a lock request may wait for its locks.
const MAX_WAIT_SECS: u64 = 300;
/// Default lock lifetime, in seconds.
const DEFAULT_TTL_SECS: u64 = 30;

/// Body of `POST /v1/locks`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRequest {
    paths: Vec<String>,
    #[serde(default)]
    mode: Option<String>,
    ttl: Option<u64>,
    /// Seconds to wait for the locks (also `?wait=`).
    wait: Option<u64>,
    /// A byte range of each path instead of the whole (`length` 0 or absent: to the end).
    start: Option<u64>,
    length: Option<u64>,
}

/// Query of the lock routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockParams {
    wait: Option<u64>,
    op: Option<String>,
    ttl: Option<u64>,
    path: Option<String>,
    after: Option<String>,
    limit: Option<u32>,
}

type Params = Result<Query<LockParams>, QueryRejection>;

/// The owner recorded with, and checked against, a lock (`None` for admins: any lock).
fn owner(key: &AccessKey) -> Option<String> {
    (!key.admin).then(|| key.name.clone())
}

/// Makes every lock command in `cmd` (batches included) act for `key`: a lock is taken in
/// its name, and only its own locks (any, for an admin) are renewed or released.
pub(super) fn stamp(cmd: &mut ClientCommand, key: &AccessKey) {
    match cmd {
        ClientCommand::Lock { owner, .. } => *owner = key.name.clone(),
        ClientCommand::RenewLock { owner: o, .. } | ClientCommand::Unlock { owner: o, .. } => *o = owner(key),
        ClientCommand::Batch { ops } => ops.iter_mut().for_each(|op| stamp(op, key)),
        _ => {}
    }
}

pub(super) fn mode(m: Option<&str>) -> Result<LockMode, HttpError> {
    match m.unwrap_or("exclusive") {
        "exclusive" => Ok(LockMode::Exclusive),
        "shared" => Ok(LockMode::Shared),
        other => Err(bad(format!("mode {:?} is not shared or exclusive", other.chars().take(32).collect::<String>()))),
    }
}

fn lock_reply(r: Reply) -> Result<LockInfo, HttpError> {
    match r {
        Reply::Lock(l) => Ok(l),
        _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to a lock command"))),
    }
}

/// `POST /v1/locks[?wait=SECONDS]`: take locks on every path or on none; 409 `locked` when
/// they are held (after waiting up to `wait` seconds for them).
pub async fn take(
    State(st): State<AppState>,
    Extension(key): Extension<AccessKey>,
    q: Params,
    body: Bytes,
) -> Result<Response, HttpError> {
    let q = query_params(q)?;
    let req: LockRequest =
        serde_json::from_slice(&body).map_err(|e| bad(format!("a lock request is {{\"paths\": [...], ...}}: {e}")))?;
    let paths = req.paths.iter().map(|p| FsPath::parse(p)).collect::<Result<Vec<_>, _>>()?;
    if !key.allows(Access::Write, Some(&paths)) {
        return Err(HttpError(ApiError::new(ErrorCode::PermissionDenied, "the key may not write all of these paths")));
    }
    let range = match (req.start, req.length) {
        (None, None) => None,
        (start, len) => Some(ByteRange { start: start.unwrap_or(0), len: len.unwrap_or(0) }),
    };
    let items: Vec<LockItem> = paths.into_iter().map(|path| LockItem::path(path, range)).collect();
    let ttl = ttl_ns(req.ttl.unwrap_or(DEFAULT_TTL_SECS))?;
    let mode = mode(req.mode.as_deref())?;
    let owner = key.name.clone();
    cairn_core::lock::check_request(&items, &owner, ttl)?;
    let wait = q.wait.or(req.wait).unwrap_or(0);
    if wait > MAX_WAIT_SECS {
        return Err(bad(format!("wait is at most {MAX_WAIT_SECS} seconds")));
    }
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut pause = Duration::from_millis(20);
    loop {
        let cmd = ClientCommand::Lock { id: rand::random(), owner: owner.clone(), mode, items: items.clone(), ttl };
        match st.node.write(cmd).await {
            Ok(r) => return Ok(Json(lock_json(&lock_reply(r)?, true)).into_response()),
            Err(e) if e.code == ErrorCode::Locked && Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) if e.code == ErrorCode::Locked => {
                return Ok((StatusCode::CONFLICT, Json(json!({ "error": e }))).into_response());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `POST /v1/locks/{id}?op=renew[&ttl=SECONDS]`: extend a live lock by its lifetime (or a
/// new one) from now.
pub async fn renew(
    State(st): State<AppState>,
    Extension(key): Extension<AccessKey>,
    Path(id): Path<String>,
    q: Params,
) -> Result<Response, HttpError> {
    let q = query_params(q)?;
    if q.op.as_deref() != Some("renew") {
        return Err(bad("POST /v1/locks/{id} takes ?op=renew"));
    }
    let id = parse_lock_id(&id)?;
    let ttl = match q.ttl {
        Some(secs) => ttl_ns(secs)?,
        None => current(&st, id).await?.map_or(ttl_ns(DEFAULT_TTL_SECS)?, |l| l.ttl),
    };
    let l = lock_reply(st.node.write(ClientCommand::RenewLock { id, owner: owner(&key), ttl }).await?)?;
    Ok(Json(lock_json(&l, true)).into_response())
}

/// The live lock `id`, if there is one.
async fn current(st: &AppState, id: u64) -> Result<Option<LockInfo>, HttpError> {
    let q = MetaQuery::Locks { path: None, ino: None, after: id.checked_sub(1), limit: 1 };
    match st.node.meta.query(q).await? {
        QueryReply::Locks { locks, .. } => Ok(locks.into_iter().find(|l| l.id == id)),
        _ => Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to a lock query"))),
    }
}

/// `DELETE /v1/locks/{id}`: release a lock.
pub async fn release(
    State(st): State<AppState>,
    Extension(key): Extension<AccessKey>,
    Path(id): Path<String>,
) -> Result<StatusCode, HttpError> {
    let id = parse_lock_id(&id)?;
    st.node.write(ClientCommand::Unlock { id, owner: owner(&key) }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/locks[?path=P][&after=ID][&limit=N]`: live locks (on one path), a page at a time.
pub async fn list(
    State(st): State<AppState>,
    Extension(key): Extension<AccessKey>,
    q: Params,
) -> Result<Response, HttpError> {
    let q = query_params(q)?;
    let path = q.path.as_deref().map(FsPath::parse).transpose()?;
    let after = q.after.as_deref().map(parse_lock_id).transpose()?;
    let limit = q.limit.unwrap_or(LIST_DEFAULT);
    if limit == 0 || limit > LIST_MAX {
        return Err(bad(format!("limit must be 1..={LIST_MAX}")));
    }
    let (locks, next) = match st.node.meta.query(MetaQuery::Locks { path, ino: None, after, limit }).await? {
        QueryReply::Locks { locks, next } => (locks, next),
        _ => return Err(HttpError(ApiError::new(ErrorCode::Internal, "unexpected reply to a lock query"))),
    };
    let shown: Vec<_> = locks.iter().map(|l| lock_json(l, key.admin || l.owner == key.name)).collect();
    let next = next.map(cairn_core::lock::lock_id_hex);
    Ok(Json(json!({ "locks": shown, "next": next })).into_response())
}
