//! Internal endpoints: raw chunk transfer, codec-encoded metadata commands and queries, and
//! Raft RPCs. Command failures are encoded answers (HTTP 200); transport-level problems
//! (bad id, undecodable body) are JSON errors.

use super::{query_params, AppState, HttpError};
use crate::JoinRequest;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ClientCommand, Command, Query as MetaQuery};
use cairn_core::Policy;
use cairn_core::{ApiError, ChunkId, ErrorCode};
use serde::Deserialize;
use std::net::SocketAddr;

/// Header of `/v1/meta/write` answers naming the metadata leader's URL.
pub const LEADER_HEADER: &str = "x-cairn-leader";

fn binary(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

fn chunk_id(hex: &str) -> Result<ChunkId, HttpError> {
    Ok(ChunkId::from_hex(hex)?)
}

/// Query of `PUT /v1/chunks/{id}` on the client door.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutChunkParams {
    /// The file's redundancy policy (`replicas:N`); placement stores what it asks for.
    policy: Option<String>,
    /// The older form of `policy=replicas:N`; default 1 copy when neither is given.
    replicas: Option<u8>,
}

/// `PUT /v1/chunks/{id}[?policy=P | ?replicas=N]` (client door): store a chunk, verified
/// against its id, durably on the nodes placement picks.
pub async fn put_chunk(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    q: Result<Query<PutChunkParams>, QueryRejection>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let p = query_params(q)?;
    let id = chunk_id(&hex)?;
    let policy = match (p.policy, p.replicas) {
        (Some(text), _) => Policy::parse(&text)?,
        (None, n) => Policy::parse(&format!("replicas:{}", n.unwrap_or(1)))?,
    };
    st.node.put_chunk(id, body, policy, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Query of `PUT /v1/chunks/{id}` on the peer door.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerPutParams {
    /// Store on this node only (how nodes hand each other copies).
    local: Option<bool>,
    /// Store here and pass the chunk on down this chain (comma-separated peer URLs of
    /// members, may be empty); answers `{"stored": [node ids]}`.
    chain: Option<String>,
}

/// `PUT /v1/chunks/{id}?local=true | ?chain=URLS` (peer door): store a chunk (verified
/// against its id) on this node only, or on this node and down a chain of others.
pub async fn peer_put_chunk(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    q: Result<Query<PeerPutParams>, QueryRejection>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let p = query_params(q)?;
    let id = chunk_id(&hex)?;
    if let Some(chain) = p.chain {
        let next: Vec<String> = chain.split(',').filter(|u| !u.is_empty()).map(str::to_string).collect();
        st.node.check_members(&next, "chain")?;
        let stored = st.node.put_chunk_chained(id, body, &next, false).await?;
        return Ok(axum::Json(serde_json::json!({ "stored": stored })).into_response());
    }
    if !p.local.unwrap_or(false) {
        return Err(HttpError(ApiError::new(ErrorCode::InvalidArgument, "a peer stores with ?local=true or ?chain=")));
    }
    st.node.put_chunk_local(id, body, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1/chunks/{id}/touch`: refresh a chunk's age here; says whether it is here.
pub async fn touch_chunk(State(st): State<AppState>, Path(hex): Path<String>) -> Result<Response, HttpError> {
    let present = st.node.touch_chunk_local(chunk_id(&hex)?).await?;
    Ok(axum::Json(serde_json::json!({ "present": present })).into_response())
}

/// `POST /v1/chunks/{id}/copy` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    /// URLs of nodes holding the chunk, tried in order.
    from: Vec<String>,
}

/// `POST /v1/chunks/{id}/copy`: fetch a chunk from one of the given nodes and store it here,
/// verified (how repair, drain and rebalance make copies). Answers `{"len": N}`.
pub async fn copy_chunk(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let id = chunk_id(&hex)?;
    let req: CopyRequest = serde_json::from_slice(&body)
        .map_err(|e| HttpError(ApiError::new(ErrorCode::InvalidArgument, format!("bad copy request: {e}"))))?;
    st.node.check_members(&req.from, "copy source")?;
    let len = st.node.copy_chunk_from(id, &req.from).await?;
    Ok(axum::Json(serde_json::json!({ "len": len })).into_response())
}

/// `DELETE /v1/chunks/{id}`: delete this node's copy and tell the ledger (how rebalance
/// moves a copy away once the new one is recorded).
pub async fn delete_chunk(State(st): State<AppState>, Path(hex): Path<String>) -> Result<StatusCode, HttpError> {
    st.node.delete_chunk_local(chunk_id(&hex)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /v1/chunks/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkParams {
    /// Only this node's own store: do not fetch from other nodes (how nodes ask each other).
    local: Option<bool>,
}

/// `GET /v1/chunks/{id}[?local=true]`: a chunk's bytes, CRC-checked here; the reader checks
/// the BLAKE3. A chunk this node lacks is fetched from the other nodes unless `local`.
pub async fn get_chunk(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    q: Result<Query<ChunkParams>, QueryRejection>,
) -> Result<Response, HttpError> {
    let local = query_params(q)?.local;
    let data = st.node.get_chunk_for_transfer(chunk_id(&hex)?, local.unwrap_or(false)).await?;
    st.node.chunks_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

/// `POST /v1/meta/write`: apply a codec-encoded [`ClientCommand`] (a cluster command cannot be
/// sent here: it does not decode as one). The answer names the metadata
/// leader (header [`LEADER_HEADER`]), where clients send their next writes.
pub async fn meta_write(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let cmd: ClientCommand = decode(&body, "command")?;
    let mut resp = binary(encode(&st.node.write(cmd).await));
    if let Some(value) = st.node.leader_url().and_then(|u| header::HeaderValue::from_str(&u).ok()) {
        resp.headers_mut().insert(LEADER_HEADER, value);
    }
    Ok(resp)
}

/// `POST /v1/meta/query`: answer a codec-encoded [`Query`].
pub async fn meta_query(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let q: MetaQuery = decode(&body, "query")?;
    let answer: Result<_, ApiError> = st.node.query(q).await;
    Ok(binary(encode(&answer)))
}

/// `POST /v1/meta/propose`: propose a codec-encoded batch of commands as one Raft entry
/// (how followers forward writes to the leader; chunks were already checked where the write
/// arrived).
pub async fn meta_propose(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let cmds: Vec<Command> = decode(&body, "command batch")?;
    Ok(binary(encode(&st.node.propose(cmds).await)))
}

/// `POST /v1/raft/read-index`: the leader's read index, for linearizable reads on followers.
pub async fn raft_read_index(State(st): State<AppState>) -> Response {
    binary(encode(&st.node.read_index().await))
}

/// `POST /v1/cluster/join`: admit a node that presents the cluster secret.
pub async fn cluster_join(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let req: JoinRequest = serde_json::from_slice(&body)
        .map_err(|e| HttpError(ApiError::new(ErrorCode::InvalidArgument, format!("bad join request: {e}"))))?;
    Ok(axum::Json(st.node.handle_join(req).await?).into_response())
}

/// `POST /v1/cluster/ca`: the cluster CA, for a joining node that presents the secret.
pub async fn cluster_ca(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let req: crate::pki::CaRequest = serde_json::from_slice(&body)
        .map_err(|e| HttpError(ApiError::new(ErrorCode::InvalidArgument, format!("bad CA request: {e}"))))?;
    st.node.check_secret(&req.secret)?;
    let (ca_cert, ca_key) = (st.node.pki.ca_pem.clone(), st.node.pki.ca_key_pem().to_string());
    Ok(axum::Json(crate::pki::CaReply { ca_cert, ca_key }).into_response())
}

/// `GET /v1/cluster/secret`: the cluster secret, to callers on this machine only.
pub async fn cluster_secret(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response, HttpError> {
    if !peer.ip().is_loopback() {
        return Err(HttpError(ApiError::new(
            ErrorCode::PermissionDenied,
            "the secret is only shown on the node's own machine",
        )));
    }
    Ok(axum::Json(serde_json::json!({ "secret": st.node.secret(), "token": st.node.join_token() })).into_response())
}

/// `GET /v1/node/chunk-dir`: where this node keeps its chunk files, for clients on the same
/// machine that read them directly (short-circuit reads). Loopback callers only.
pub async fn chunk_dir(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Response, HttpError> {
    if !peer.ip().is_loopback() {
        return Err(HttpError(ApiError::new(ErrorCode::PermissionDenied, "only for clients on the node's machine")));
    }
    let dir = std::fs::canonicalize(st.node.config.data.join("chunks"))
        .map_err(|e| HttpError(ApiError::new(ErrorCode::Internal, e.to_string())))?;
    Ok(axum::Json(serde_json::json!({ "dir": dir })).into_response())
}

/// `POST /v1/raft/append`.
pub async fn raft_append(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let req = decode(&body, "append entries")?;
    Ok(binary(encode(&st.node.raft().append_entries(req).await)))
}

/// `POST /v1/raft/vote`.
pub async fn raft_vote(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let req = decode(&body, "vote")?;
    Ok(binary(encode(&st.node.raft().vote(req).await)))
}

/// `POST /v1/raft/snapshot`: one piece of a snapshot. Pieces must come in order (offset 0
/// starts a snapshot, each next one starts where the last ended; the last may be sent again
/// when its answer was lost) and the whole must fit in this node's free disk space; anything
/// else is refused before it is written.
pub async fn raft_snapshot(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let req: openraft::raft::InstallSnapshotRequest<crate::raft::TypeConfig> = decode(&body, "install snapshot")?;
    let id = req.meta.snapshot_id.clone();
    let end = req.offset.checked_add(req.data.len() as u64).ok_or_else(|| bad_piece("offset overflows"))?;
    if req.offset != 0 {
        let rx = st.snapshot_rx.lock().expect("snapshot lock");
        let in_order = rx.as_ref().is_some_and(|r| r.id == id && (req.offset == r.next || req.offset == r.last));
        if !in_order {
            return Err(bad_piece(&format!("piece at offset {} is out of order", req.offset)));
        }
    }
    let room = crate::peers::disk_space(&st.node.config.data).map(|(_, free)| free).unwrap_or(u64::MAX);
    if end > room {
        return Err(HttpError(ApiError::new(ErrorCode::NoSpace, format!("a snapshot of {end} bytes does not fit"))));
    }
    let (start, done) = (req.offset, req.done);
    let answer = st.node.raft().install_snapshot(req).await;
    *st.snapshot_rx.lock().expect("snapshot lock") =
        (answer.is_ok() && !done).then_some(super::SnapshotReceipt { id, last: start, next: end });
    Ok(binary(encode(&answer)))
}

fn bad_piece(why: &str) -> HttpError {
    HttpError(ApiError::new(ErrorCode::InvalidArgument, format!("snapshot piece refused: {why}")))
}
