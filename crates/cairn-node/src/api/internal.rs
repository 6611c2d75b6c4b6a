//! The client's data path (raw chunk transfer, codec-encoded metadata commands and queries),
//! joining, and the peer door's one route (`POST /v1/peer`, see `transport`). Command failures
//! are encoded answers (HTTP 200); transport-level problems (bad id, undecodable body) are JSON
//! errors.

use super::{query_params, AppState, HttpError};
use crate::JoinRequest;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{ClientCommand, Query as MetaQuery};
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
    st.node.chunks.put_chunk(id, body, policy, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/chunks/{id}`: a chunk's bytes, CRC-checked here; the reader checks the BLAKE3.
/// A chunk this node lacks is fetched from the other nodes (or decoded from its shards).
/// With `Range: bytes=A-B` only those bytes are read and sent (`206`): of an erasure-coded
/// chunk, only the shards that hold them.
pub async fn get_chunk(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, HttpError> {
    let id = chunk_id(&hex)?;
    let octets = [(header::CONTENT_TYPE, "application/octet-stream")];
    if let Some(range) = headers.get(header::RANGE) {
        let (from, to) = parse_range(range.to_str().unwrap_or(""))?;
        let data = st.node.chunks.read_range(id, from, to).await?;
        st.node.chunks.served_one();
        return Ok((StatusCode::PARTIAL_CONTENT, octets, data).into_response());
    }
    let data = st.node.chunks.get_chunk_for_transfer(id, false).await?;
    st.node.chunks.served_one();
    Ok((octets, data).into_response())
}

/// The bytes `A..B + 1` of a `bytes=A-B` range (one range, both ends given, within a chunk).
fn parse_range(text: &str) -> Result<(u64, u64), HttpError> {
    let bad = || {
        HttpError(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("bad chunk range {:?}", text.chars().take(64).collect::<String>()),
        ))
    };
    let (a, b) = text.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b || b >= cairn_core::MAX_CHUNK_SIZE as u64 {
        return Err(bad());
    }
    Ok((a, b + 1))
}

/// `POST /v1/meta/write`: apply a codec-encoded [`ClientCommand`] (a cluster command cannot be
/// sent here: it does not decode as one; lock commands get the caller's key as owner). The answer names the metadata
/// leader (header [`LEADER_HEADER`]), where clients send their next writes.
pub async fn meta_write(
    State(st): State<AppState>,
    axum::Extension(key): axum::Extension<cairn_core::access::AccessKey>,
    body: Bytes,
) -> Result<Response, HttpError> {
    let mut cmd: ClientCommand = decode(&body, "command")?;
    // Lock commands act for the caller's key, whatever owner they name.
    super::locks::stamp(&mut cmd, &key);
    let mut resp = binary(encode(&st.node.write(cmd).await));
    if let Some(value) = st.node.meta.leader_url().and_then(|u| header::HeaderValue::from_str(&u).ok()) {
        resp.headers_mut().insert(LEADER_HEADER, value);
    }
    Ok(resp)
}

/// `POST /v1/meta/query`: answer a codec-encoded [`Query`].
pub async fn meta_query(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let q: MetaQuery = decode(&body, "query")?;
    let answer: Result<_, ApiError> = st.node.meta.query(q).await;
    Ok(binary(encode(&answer)))
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

/// `POST /v1/peer`: one framed message from another node (the `members_only` layer has
/// checked its certificate), answered with one framed reply.
pub async fn peer_message(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    use crate::transport::http::{attach, frame_body, unframe};
    let (mut req, payload): (crate::transport::PeerRequest, _) = unframe(body, "peer message")?;
    let name = req.name();
    attach(req.payload_mut(), payload, name)?;
    let mut answer = crate::transport::serve::handle(&st.node, req).await;
    let payload = answer.as_mut().ok().and_then(|r| r.payload_mut()).map(std::mem::take).unwrap_or_default();
    st.node.chunks.link.send(payload.len()).await;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], frame_body(&answer, payload)).into_response())
}
