//! The data path against an in-memory backend (chunk map + the real metadata state machine):
//! any way of slicing a stream writes a file that reads back identically, whole or by range.

use bytes::Bytes;
use cairn_client::datapath::{self, WriteOptions};
use cairn_client::{Backend, ClientError, Frames, Result};
use cairn_core::wire::{Command, Query, QueryReply, Reply};
use cairn_core::{ChunkId, ErrorCode, FsPath, Policy};
use futures::StreamExt;
use proptest::prelude::*;
use redb::ReadableDatabase;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct MemBackend {
    chunks: Mutex<HashMap<ChunkId, Bytes>>,
    db: redb::Database,
    _dir: tempfile::TempDir,
}

impl MemBackend {
    fn new() -> Arc<Self> {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("m.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        cairn_meta::init(&txn).unwrap();
        txn.commit().unwrap();
        Arc::new(MemBackend { chunks: Mutex::default(), db, _dir: dir })
    }
}

impl Backend for MemBackend {
    async fn put_chunk(&self, id: ChunkId, data: Bytes, _policy: Policy) -> Result<()> {
        assert_eq!(ChunkId::of(&data), id, "data path sends chunks under their hash");
        self.chunks.lock().unwrap().insert(id, data);
        Ok(())
    }
    async fn get_chunk(&self, id: ChunkId) -> Result<Frames> {
        let c = self.chunks.lock().unwrap().get(&id).cloned();
        // Hand the chunk back in uneven frames, as a network would.
        let c = c.ok_or_else(|| ClientError::api(ErrorCode::NotFound, "no chunk"))?;
        let cut = c.len() / 3;
        Ok(Frames(vec![c.slice(..cut), c.slice(cut..cut + 1.min(c.len() - cut)), c.slice((cut + 1).min(c.len())..)]))
    }
    async fn write(&self, cmd: Command) -> Result<Reply> {
        let txn = self.db.begin_write().unwrap();
        let r = cairn_meta::apply(&txn, 1, &cmd).unwrap();
        txn.commit().unwrap();
        Ok(r?)
    }
    async fn query(&self, q: Query) -> Result<QueryReply> {
        let txn = self.db.begin_read().unwrap();
        Ok(cairn_meta::query(&txn, &q).unwrap()?)
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

async fn read_all(b: &Arc<MemBackend>, path: &FsPath, start: u64, end: u64) -> Vec<u8> {
    let inode = datapath::stat(b.as_ref(), path).await.unwrap();
    let mut s = Box::pin(datapath::read_stream(b.clone(), &inode, start, end));
    let mut out = Vec::new();
    while let Some(p) = s.next().await {
        out.extend_from_slice(&p.unwrap());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_slicing_roundtrips(len in 0usize..(9 << 20), pieces in prop::collection::vec(1usize..(3 << 20), 1..8),
                              range in (0u64..(10 << 20), 0u64..(10 << 20))) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 253) as u8).collect();
        let b = MemBackend::new();
        let path = FsPath::parse("/dir/file").unwrap();
        // Cut the data into the generated piece sizes, cycling.
        let mut parts = Vec::new();
        let (mut at, mut k) = (0, 0);
        while at < len {
            let n = pieces[k % pieces.len()].min(len - at);
            parts.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(&data[at..at + n])));
            at += n;
            k += 1;
        }
        let inode = run(datapath::write_stream(&b, &path, futures::stream::iter(parts), WriteOptions::default())).unwrap();
        prop_assert_eq!(inode.size, len as u64);
        prop_assert_eq!(run(read_all(&b, &path, 0, u64::MAX)), data.clone());
        let (s, e) = (range.0.min(range.1), range.0.max(range.1));
        let want = if (s as usize) < len { data[s as usize..(e as usize).min(len)].to_vec() } else { vec![] };
        prop_assert_eq!(run(read_all(&b, &path, s, e)), want);
    }
}
