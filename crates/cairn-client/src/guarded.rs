//! A backend that presents a [`Guard`] with every metadata write: the locks the writer
//! holds, its fencing token, and preconditions, checked by the metadata in the same step as
//! the write.

use crate::{Backend, Frames, Result};
use bytes::Bytes;
use cairn_core::lock::Guard;
use cairn_core::wire::{ClientCommand, Query, QueryReply, Reply};
use cairn_core::{ChunkId, Policy};
use std::future::Future;
use std::sync::Arc;

/// Wraps a backend so that its writes carry `guard`.
pub struct Guarded<B> {
    inner: Arc<B>,
    guard: Guard,
}

impl<B> Guarded<B> {
    /// Writes through `inner` will present `guard`.
    pub fn new(inner: Arc<B>, guard: Guard) -> Self {
        Guarded { inner, guard }
    }
}

impl<B: Backend> Backend for Guarded<B> {
    fn put_chunk(&self, id: ChunkId, data: Bytes, policy: Policy) -> impl Future<Output = Result<()>> + Send {
        self.inner.put_chunk(id, data, policy)
    }

    fn get_chunk(&self, id: ChunkId) -> impl Future<Output = Result<Frames>> + Send {
        self.inner.get_chunk(id)
    }

    fn get_chunk_range(&self, id: ChunkId, from: usize, to: usize) -> impl Future<Output = Result<Vec<Bytes>>> + Send {
        self.inner.get_chunk_range(id, from, to)
    }

    fn write(&self, cmd: ClientCommand) -> impl Future<Output = Result<Reply>> + Send {
        self.inner.write(self.guard.wrap(cmd))
    }

    fn query(&self, q: Query) -> impl Future<Output = Result<QueryReply>> + Send {
        self.inner.query(q)
    }
}
