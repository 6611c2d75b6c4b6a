//! `/v1/keys`: access keys, for admin keys only (the guard in `auth` sees to that).

use super::{AppState, HttpError};
use crate::keys::{KeyPair, KeySpec};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use cairn_core::{ApiError, ErrorCode};
use serde_json::{json, Value};

/// `POST /v1/keys` with `{"name", "read", "write", "admin", "prefixes"}`: a new key; the
/// answer is the only time its secret is shown.
pub async fn create(State(st): State<AppState>, body: axum::body::Bytes) -> Result<Json<Value>, HttpError> {
    let spec: KeySpec = serde_json::from_slice(&body)
        .map_err(|e| HttpError(ApiError::new(ErrorCode::InvalidArgument, format!("bad key request: {e}"))))?;
    let name = spec.name.clone();
    let KeyPair { access_key_id, secret_access_key } = st.node.create_key(spec).await?;
    Ok(Json(json!({ "name": name, "access_key_id": access_key_id, "secret_access_key": secret_access_key })))
}

/// `GET /v1/keys`: every key's name, id and rights (never a secret).
pub async fn list(State(st): State<AppState>) -> Result<Json<Value>, HttpError> {
    let keys: Vec<Value> = st
        .node
        .keys()
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "name": k.name, "access_key_id": k.id, "read": k.read, "write": k.write, "admin": k.admin,
                "prefixes": k.prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

/// `DELETE /v1/keys/{name}`.
pub async fn delete(State(st): State<AppState>, Path(name): Path<String>) -> Result<StatusCode, HttpError> {
    st.node.delete_key(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
