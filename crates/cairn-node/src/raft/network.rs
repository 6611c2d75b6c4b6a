//! Raft RPCs between nodes over HTTP, with codec-encoded bodies.
//!
//! Each RPC is `POST {node}/v1/raft/{append,vote,snapshot}`; the body is the encoded request
//! and the answer is the encoded `Result` of the remote Raft call.

use super::{Member, TypeConfig};
use cairn_core::codec::{decode, encode};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Creates connections to peers.
#[derive(Clone)]
pub struct Network {
    http: reqwest::Client,
}

impl Network {
    /// A network using `http` for all peer connections.
    pub fn new(http: reqwest::Client) -> Self {
        Network { http }
    }
}

/// A connection to one peer.
pub struct Conn {
    http: reqwest::Client,
    target: u64,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: u64, node: &Member) -> Conn {
        Conn { http: self.http.clone(), target, addr: node.peer.clone() }
    }
}

impl Conn {
    async fn call<Req, Resp, E>(&self, rpc: &str, req: &Req, opt: &RPCOption) -> Result<Resp, RPCError<u64, Member, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}/v1/raft/{rpc}", self.addr);
        let resp = self
            .http
            .post(url)
            .timeout(opt.hard_ttl())
            .body(encode(req))
            .send()
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        if !resp.status().is_success() {
            let io = std::io::Error::other(format!("raft rpc {rpc} answered HTTP {}", resp.status()));
            return Err(RPCError::Network(NetworkError::new(&io)));
        }
        let bytes = resp.bytes().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let result: Result<Resp, E> =
            decode(&bytes, "raft rpc reply").map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, Member, RaftError<u64, InstallSnapshotError>>> {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        self.call("vote", &rpc, &option).await
    }
}
