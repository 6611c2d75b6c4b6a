//! cairn's own on-disk records for Raft's state, so an openraft upgrade that changes the
//! serde shape of its types cannot silently change (or misread) what is on disk.
//!
//! Every openraft value the log store and state machine persist (log entries, the vote, log
//! ids, memberships, snapshot metadata) is converted to a record type defined here, encoded
//! with cairn's versioned codec, and converted back when read. The records are documented
//! in `docs/formats.md`.

use super::{Member, TypeConfig};
use cairn_core::codec::{decode, encode};
use cairn_core::wire::Request;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership, Vote};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A value stored through its cairn record.
pub(crate) trait Stored: Sized {
    /// The record written to disk.
    type Rec: Serialize + DeserializeOwned;
    /// This value as its record.
    fn to_rec(&self) -> Self::Rec;
    /// The value a record stands for.
    fn from_rec(rec: Self::Rec) -> Self;
}

/// Encodes `v` as its versioned record.
pub(crate) fn put<T: Stored>(v: &T) -> Vec<u8> {
    encode(&v.to_rec())
}

/// Decodes a versioned record written by [`put`].
pub(crate) fn get<T: Stored>(bytes: &[u8], what: &'static str) -> Result<T, cairn_core::Error> {
    decode::<T::Rec>(bytes, what).map(T::from_rec)
}

/// A log id: the term and node of the leader that wrote it, and its index.
#[derive(Serialize, Deserialize)]
pub(crate) struct LogIdRec {
    term: u64,
    node: u64,
    index: u64,
}

impl Stored for LogId<u64> {
    type Rec = LogIdRec;
    fn to_rec(&self) -> LogIdRec {
        LogIdRec { term: self.leader_id.term, node: self.leader_id.node_id, index: self.index }
    }
    fn from_rec(r: LogIdRec) -> Self {
        LogId::new(CommittedLeaderId::new(r.term, r.node), r.index)
    }
}

impl<T: Stored> Stored for Option<T> {
    type Rec = Option<T::Rec>;
    fn to_rec(&self) -> Self::Rec {
        self.as_ref().map(T::to_rec)
    }
    fn from_rec(r: Self::Rec) -> Self {
        r.map(T::from_rec)
    }
}

/// A vote: for whom, in which term, and whether a quorum granted it.
#[derive(Serialize, Deserialize)]
pub(crate) struct VoteRec {
    term: u64,
    node: u64,
    committed: bool,
}

impl Stored for Vote<u64> {
    type Rec = VoteRec;
    fn to_rec(&self) -> VoteRec {
        VoteRec { term: self.leader_id.term, node: self.leader_id.node_id, committed: self.committed }
    }
    fn from_rec(r: VoteRec) -> Self {
        match r.committed {
            true => Vote::new_committed(r.term, r.node),
            false => Vote::new(r.term, r.node),
        }
    }
}

/// A membership: the voter sets (two during a joint change) and every member's addresses.
#[derive(Serialize, Deserialize)]
pub(crate) struct MembershipRec {
    configs: Vec<BTreeSet<u64>>,
    nodes: BTreeMap<u64, MemberRec>,
}

/// A member's addresses: client URL, peer URL.
#[derive(Serialize, Deserialize)]
pub(crate) struct MemberRec {
    url: String,
    peer: String,
}

impl Stored for Membership<u64, Member> {
    type Rec = MembershipRec;
    fn to_rec(&self) -> MembershipRec {
        MembershipRec {
            configs: self.get_joint_config().clone(),
            nodes: self.nodes().map(|(id, n)| (*id, MemberRec { url: n.url.clone(), peer: n.peer.clone() })).collect(),
        }
    }
    fn from_rec(r: MembershipRec) -> Self {
        let nodes: BTreeMap<u64, Member> =
            r.nodes.into_iter().map(|(id, m)| (id, Member { url: m.url, peer: m.peer })).collect();
        Membership::new(r.configs, nodes)
    }
}

/// A membership and the log id that set it.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredMembershipRec {
    log_id: Option<LogIdRec>,
    membership: MembershipRec,
}

impl Stored for StoredMembership<u64, Member> {
    type Rec = StoredMembershipRec;
    fn to_rec(&self) -> StoredMembershipRec {
        StoredMembershipRec { log_id: self.log_id().to_rec(), membership: self.membership().to_rec() }
    }
    fn from_rec(r: StoredMembershipRec) -> Self {
        StoredMembership::new(Option::<LogId<u64>>::from_rec(r.log_id), Membership::from_rec(r.membership))
    }
}

/// What a log entry carries.
#[derive(Serialize, Deserialize)]
pub(crate) enum PayloadRec {
    /// A no-op (a new leader's first entry).
    Blank,
    /// A batch of metadata commands.
    Normal(Request),
    /// A membership change.
    Membership(MembershipRec),
}

/// A log entry.
#[derive(Serialize, Deserialize)]
pub(crate) struct EntryRec {
    log_id: LogIdRec,
    payload: PayloadRec,
}

impl Stored for Entry<TypeConfig> {
    type Rec = EntryRec;
    fn to_rec(&self) -> EntryRec {
        let payload = match &self.payload {
            EntryPayload::Blank => PayloadRec::Blank,
            EntryPayload::Normal(r) => PayloadRec::Normal(r.clone()),
            EntryPayload::Membership(m) => PayloadRec::Membership(m.to_rec()),
        };
        EntryRec { log_id: self.log_id.to_rec(), payload }
    }
    fn from_rec(r: EntryRec) -> Self {
        let payload = match r.payload {
            PayloadRec::Blank => EntryPayload::Blank,
            PayloadRec::Normal(req) => EntryPayload::Normal(req),
            PayloadRec::Membership(m) => EntryPayload::Membership(Membership::from_rec(m)),
        };
        Entry { log_id: LogId::from_rec(r.log_id), payload }
    }
}

/// A snapshot's metadata: the last entry it covers, the membership then, and its id.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotMetaRec {
    last_log_id: Option<LogIdRec>,
    last_membership: StoredMembershipRec,
    snapshot_id: String,
}

impl Stored for SnapshotMeta<u64, Member> {
    type Rec = SnapshotMetaRec;
    fn to_rec(&self) -> SnapshotMetaRec {
        SnapshotMetaRec {
            last_log_id: self.last_log_id.to_rec(),
            last_membership: self.last_membership.to_rec(),
            snapshot_id: self.snapshot_id.clone(),
        }
    }
    fn from_rec(r: SnapshotMetaRec) -> Self {
        SnapshotMeta {
            last_log_id: Option::<LogId<u64>>::from_rec(r.last_log_id),
            last_membership: StoredMembership::from_rec(r.last_membership),
            snapshot_id: r.snapshot_id,
        }
    }
}
