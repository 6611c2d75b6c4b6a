//! Internal endpoints: raw chunk transfer, codec-encoded metadata commands and queries, and
//! Raft RPCs. Command failures are encoded answers (HTTP 200); transport-level problems
//! (bad id, undecodable body) are JSON errors.

use super::{AppState, HttpError};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_core::codec::{decode, encode};
use cairn_core::wire::{Command, Query};
use cairn_core::{ApiError, ChunkId};

fn binary(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
}

fn chunk_id(hex: &str) -> Result<ChunkId, HttpError> {
    Ok(ChunkId::from_hex(hex)?)
}

/// `PUT /v1/chunks/{id}`: store a chunk (verified against its id) durably.
pub async fn put_chunk(
    State(st): State<AppState>,
    Path(hex): Path<String>,
    body: Bytes,
) -> Result<StatusCode, HttpError> {
    st.node.put_chunk(chunk_id(&hex)?, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/chunks/{id}`: a chunk's bytes, CRC-checked here; the reader checks the BLAKE3.
pub async fn get_chunk(State(st): State<AppState>, Path(hex): Path<String>) -> Result<Response, HttpError> {
    let data = st.node.get_chunk_for_transfer(chunk_id(&hex)?).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

/// `POST /v1/meta/write`: apply a codec-encoded [`Command`].
pub async fn meta_write(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let cmd: Command = decode(&body, "command")?;
    Ok(binary(encode(&st.node.write(cmd).await)))
}

/// `POST /v1/meta/query`: answer a codec-encoded [`Query`].
pub async fn meta_query(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let q: Query = decode(&body, "query")?;
    let answer: Result<_, ApiError> = st.node.query(q).await;
    Ok(binary(encode(&answer)))
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

/// `POST /v1/raft/snapshot`.
pub async fn raft_snapshot(State(st): State<AppState>, body: Bytes) -> Result<Response, HttpError> {
    let req = decode(&body, "install snapshot")?;
    Ok(binary(encode(&st.node.raft().install_snapshot(req).await)))
}
