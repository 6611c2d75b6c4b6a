//! Raft RPCs between nodes, as messages of the node's peer [`Transport`].

use super::{Member, TypeConfig};
use crate::transport::{PeerReply, PeerRequest, Transport};
use cairn_core::{ApiError, ErrorCode};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use std::sync::Arc;

/// Creates connections to peers.
#[derive(Clone)]
pub struct Network {
    net: Arc<dyn Transport>,
}

impl Network {
    /// A network sending Raft messages over `net`.
    pub fn new(net: Arc<dyn Transport>) -> Self {
        Network { net }
    }
}

/// A connection to one peer.
pub struct Conn {
    net: Arc<dyn Transport>,
    target: u64,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: u64, node: &Member) -> Conn {
        Conn { net: self.net.clone(), target, addr: node.peer.clone() }
    }
}

impl Conn {
    async fn call<E: std::error::Error>(
        &self,
        req: PeerRequest,
        opt: &RPCOption,
    ) -> Result<PeerReply, RPCError<u64, Member, E>> {
        self.net.call(self.target, &self.addr, req, opt.hard_ttl()).await.map_err(|e| {
            let e: ApiError = e.into();
            match e.code {
                ErrorCode::Unavailable => RPCError::Unreachable(Unreachable::new(&e)),
                _ => RPCError::Network(NetworkError::new(&e)),
            }
        })
    }

    fn remote<T, E: std::error::Error>(&self, answer: Result<T, E>) -> Result<T, RPCError<u64, Member, E>> {
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn unfit<E: std::error::Error>(reply: PeerReply) -> RPCError<u64, Member, E> {
    RPCError::Network(NetworkError::new(&reply.unexpected()))
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        match self.call(PeerRequest::Append(rpc), &option).await? {
            PeerReply::Append(answer) => self.remote(answer),
            r => Err(unfit(r)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RPCError<u64, Member, RaftError<u64, InstallSnapshotError>>> {
        match self.call(PeerRequest::Snapshot(rpc), &option).await? {
            PeerReply::Snapshot(answer) => self.remote(answer),
            r => Err(unfit(r)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        match self.call(PeerRequest::Vote(rpc), &option).await? {
            PeerReply::Vote(answer) => self.remote(answer),
            r => Err(unfit(r)),
        }
    }
}
