//! Cluster status and the OpenAPI document.

use super::{AppState, HttpError};
use crate::peers::{NodeInfo, PeerState};
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
        "workers": node.worker_status(),
        "uptime_secs": node.started.elapsed().map(|d| d.as_secs()).unwrap_or(0),
    })))
}

/// `GET /v1/node`: this node's id, URL, zone and space (what peers poll for liveness).
pub async fn node(State(st): State<AppState>) -> Json<NodeInfo> {
    Json(st.node.info())
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
