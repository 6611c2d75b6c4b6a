//! Room: what this node and the cluster can still take, checked before bytes arrive.
//!
//! `--capacity` is a promise to the operator: the chunk store never grows past it (a chunk
//! that would cross it is refused with `no_space`), and placement skips full nodes. An upload
//! whose declared length cannot fit anywhere is refused before its body is read.

use super::ChunkService;
use crate::peers::disk_space;
use cairn_core::wire::Part;
use cairn_core::{ApiError, ChunkId, ErrorCode, INLINE_MAX, MAX_CHUNK_SIZE, MAX_EXTENTS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Free bytes of a node's data disk that chunks never take (without `--capacity`): the
/// metadata's Raft log and database must stay writable after chunks have filled the disk,
/// so a full disk refuses chunk writes with `no_space` instead of failing metadata writes.
pub const METADATA_RESERVE: u64 = 8 << 20;

/// Longest file: every extent a whole chunk of the largest size.
pub const MAX_FILE_SIZE: u64 = MAX_EXTENTS as u64 * MAX_CHUNK_SIZE as u64;

/// Room set aside for one chunk write until it is stored (then the store counts it).
pub(crate) struct Reservation {
    reserved: Option<Arc<AtomicU64>>,
    len: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(r) = &self.reserved {
            r.fetch_sub(self.len, Ordering::AcqRel);
        }
    }
}

impl ChunkService {
    /// Sets aside room for a part of a chunk of `len` bytes, or refuses it if it would take this
    /// node's store past `--capacity`, or (without one) its disk into the metadata's reserve
    /// ([`METADATA_RESERVE`]), counting the writes already admitted (concurrent writes cannot
    /// all squeeze into the last free bytes); one already stored costs nothing.
    pub(crate) async fn check_room(&self, id: ChunkId, part: Part, len: u64) -> Result<Reservation, ApiError> {
        let free = Reservation { reserved: None, len: 0 };
        let (room, limit) = match self.config.capacity {
            Some(cap) => (cap.saturating_sub(self.store.used_bytes()), format!("its capacity of {cap}")),
            None => match disk_space(&self.config.data) {
                Some((_, avail)) => (avail.saturating_sub(METADATA_RESERVE), "its disk's free space".to_string()),
                None => return Ok(free),
            },
        };
        let fits = |r: u64| r.saturating_add(len) <= room;
        let taken = self.reserved.fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| fits(r).then(|| r + len));
        if taken.is_ok() {
            return Ok(Reservation { reserved: Some(self.reserved.clone()), len });
        }
        let store = self.store.clone();
        if tokio::task::spawn_blocking(move || store.contains(&id, part)).await.ok().and_then(Result::ok) == Some(true)
        {
            return Ok(free);
        }
        let msg = format!("node {} is full: {len} more bytes would pass {limit}", self.id);
        Err(ApiError::new(ErrorCode::NoSpace, msg))
    }

    /// Why chunk `id` found no node to go to: `no_space` if a node is full, or if this node,
    /// which takes chunks while it is active, was left out (it had no room when placement
    /// looked, even if a concurrent write's leftovers were freed since); else `unavailable`.
    pub(crate) fn nowhere(&self, id: ChunkId) -> ApiError {
        let me = self.meta.node_states(std::iter::once(self.id)).get(&self.id).copied().unwrap_or_default();
        if me == cairn_core::wire::NodeState::Active || self.any_node_full() {
            return ApiError::new(ErrorCode::NoSpace, format!("chunk {id}: every node that is up is full"));
        }
        crate::unavailable(format!("chunk {id}: no node is up to take it"))
    }

    /// True if this node, or a peer that is up, has no room left.
    pub(crate) fn any_node_full(&self) -> bool {
        self.info().free == 0
            || self.meta.members().iter().any(|(id, _)| {
                *id != self.id && self.peers.usable(*id) && self.peers.get(*id).1.is_some_and(|i| i.free == 0)
            })
    }

    /// Refuses at once an upload declared `len` bytes long that cannot be stored: longer than
    /// any file may be (`too_large`), or, unless it is small enough to be kept inline, than
    /// the free space of every usable node together (`no_space`).
    pub fn admit_upload(&self, len: u64) -> Result<(), ApiError> {
        if len > MAX_FILE_SIZE {
            let msg = format!("{len} bytes is more than the largest file ({MAX_FILE_SIZE} bytes)");
            return Err(ApiError::new(ErrorCode::TooLarge, msg));
        }
        // Small files live in the metadata, not in chunks.
        if len <= INLINE_MAX {
            return Ok(());
        }
        // Placement weighs each node that has room by its free bytes.
        let free: u64 = self.candidates(None).iter().map(|c| c.weight as u64).sum();
        if len > free {
            return Err(ApiError::new(
                ErrorCode::NoSpace,
                format!("{len} bytes do not fit: the cluster has {free} free"),
            ));
        }
        Ok(())
    }
}
