//! The change feed: which inodes and directory entries the metadata changed, in log order,
//! so clients holding cached metadata learn when to drop it.

use super::Inode;
use serde::{Deserialize, Serialize};

/// Most changes one feed answer carries; with more waiting, the answer is a reset.
pub const FEED_MAX: usize = 10_000;

/// One change the metadata went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The inode whose attributes, content or existence changed; with `name`, the directory
    /// whose entry changed.
    pub ino: u64,
    /// The entry of directory `ino` that appeared, went, or now names another inode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it became: for an inode, [`Inode::state`] of the stored record (0: freed); for an
    /// entry, the inode it names (0: none). A cache already holding that state keeps it.
    pub state: u64,
}

impl Inode {
    /// A fingerprint of this record as stored (64 bits of the BLAKE3 hash of its encoding,
    /// never 0): equal states mean equal records.
    pub fn state(&self) -> u64 {
        state_of(&crate::codec::encode(self))
    }
}

/// The state of an inode record from its encoding (see [`Inode::state`]).
pub fn state_of(encoded: &[u8]) -> u64 {
    let h = blake3::hash(encoded);
    let mut b = [0; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b).max(1)
}

/// A feed answer: the changes applied after the asked-for index, up to `index`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    /// The last applied log index the answer covers: the next question's `after`.
    pub index: u64,
    /// True when the node cannot say what changed since the asked-for index (it restarted,
    /// installed a snapshot, or more than [`FEED_MAX`] changes waited): drop every cache.
    pub reset: bool,
    /// The changes, oldest first (empty on a reset).
    pub changes: Vec<Change>,
}
