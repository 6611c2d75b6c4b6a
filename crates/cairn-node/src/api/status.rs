//! Cluster status and the OpenAPI document.

use super::{AppState, HttpError};
use crate::peers::PeerState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The OpenAPI description of the public REST API.
const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// `GET /v1/cluster`: nodes, their health, and the metadata's Raft state.
pub async fn cluster(State(st): State<AppState>) -> Result<Json<Value>, HttpError> {
    let node = &st.node;
    let m = node.meta().metrics();
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let states = node.node_states();
    let (view, ledger) = node.ledger_here().await?;
    let held = &ledger.held;
    let nodes: Vec<Value> = membership
        .nodes()
        .map(|(id, n)| {
            let (state, info) = if *id == node.id { (PeerState::Up, Some(node.info())) } else { node.peers.get(*id) };
            let mut v = json!({
                "id": id.to_string(),
                "url": if *id == node.id { node.url.clone() } else { n.url.clone() },
                "peer_url": if *id == node.id { node.peer_url.clone() } else { n.peer.clone() },
                "state": state,
                "admin_state": states.get(id).copied().unwrap_or_default().as_str(),
                "chunks": held.get(id).copied().unwrap_or(0),
                "voter": voters.contains(id),
                "this": *id == node.id,
                "s3_url": if *id == node.id { node.s3_url.clone() } else { None },
                "log_index": m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten()).map(|l| l.index),
            });
            if let Some(i) = info {
                v["zone"] = json!(i.zone);
                v["capacity"] = json!(i.capacity);
                v["used"] = json!(i.used);
                v["free"] = json!(i.free);
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "cluster_id": node.cluster_id(),
        "node_id": node.id.to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "healthy": m.current_leader.is_some(),
        "nodes": nodes,
        "raft": {
            "leader": m.current_leader.map(|l| l.to_string()),
            "term": m.current_term,
            "state": format!("{:?}", m.state),
            "last_log_index": m.last_log_index,
            "last_applied": m.last_applied.map(|l| l.index),
            "snapshot": m.snapshot.map(|l| l.index),
            "purged": m.purged.map(|l| l.index),
        },
        "chunks": view.summarize(&ledger),
        "policies": node.meta.read_local(cairn_meta::policy_usage).await?,
        "workers": node.worker_status(),
        "uptime_secs": node.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
    })))
}

/// `GET /v1/node`: this node's id, URL, zone and space (what peers poll for liveness), and
/// the URL of its S3 door (`s3_url`, absent when S3 is off).
pub async fn node(State(st): State<AppState>) -> Json<Value> {
    let mut v = serde_json::to_value(st.node.info()).unwrap_or_default();
    if let Some(s3) = &st.node.s3_url {
        v["s3_url"] = json!(s3);
    }
    Json(v)
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Longest `GET /v1/changes` waits for a change.
const FEED_WAIT_MAX: u64 = 30_000;

/// The query of `GET /v1/changes`.
#[derive(serde::Deserialize)]
pub struct FeedParams {
    /// Answer with the changes after this log index.
    after: u64,
    /// Wait up to this many milliseconds for one (default 0, at most 30,000).
    #[serde(default)]
    wait_ms: u64,
}

/// `GET /v1/changes?after=N&wait_ms=MS`: the inodes and directory entries changed after log
/// index N (a [`cairn_core::wire::ChangeBatch`]), waiting up to MS for one. Like
/// `/v1/meta/query`, it needs a read key without prefixes (it names any inode and entry).
pub async fn changes(
    State(st): State<AppState>,
    q: Result<axum::extract::Query<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<cairn_core::wire::ChangeBatch>, HttpError> {
    let q = super::query_params(q)?;
    let wait = std::time::Duration::from_millis(q.wait_ms.min(FEED_WAIT_MAX));
    let batch = st.node.meta.feed().since(q.after, wait).await;
    // A node that knows no leader may be cut off and falling behind: it does not vouch for
    // anyone's cache (the asker tries another node, or stops trusting what it cached).
    if st.node.meta.leader().is_none() {
        return Err(HttpError(cairn_core::ApiError::new(
            cairn_core::ErrorCode::Unavailable,
            "this node knows no metadata leader; its changes may be behind",
        )));
    }
    Ok(Json(batch))
}
