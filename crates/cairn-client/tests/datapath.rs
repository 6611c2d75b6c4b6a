//! The data path against an in-memory backend (chunk map + the real metadata state machine):
//! any way of slicing a stream writes a file that reads back identically, whole or by range;
//! any sequence of in-place writes, appends, truncations and concatenations leaves the file
//! equal, byte for byte, to the same edits on a plain in-memory buffer.

use bytes::Bytes;
use cairn_client::datapath::{self, WriteOptions};
use cairn_client::{edit, Backend, ClientError, Frames, Result};
use cairn_core::wire::{ClientCommand, Query, QueryReply, Reply, Target};
use cairn_core::{ChunkId, ErrorCode, FsPath, Policy, MIN_CHUNK_SIZE};
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
    async fn write(&self, cmd: ClientCommand) -> Result<Reply> {
        let txn = self.db.begin_write().unwrap();
        let r = cairn_meta::apply(&txn, 1, &cmd.into()).unwrap();
        txn.commit().unwrap();
        Ok(r?)
    }
    async fn query(&self, q: Query) -> Result<QueryReply> {
        let txn = self.db.begin_read().unwrap();
        Ok(cairn_meta::query(&txn, &q, 0).unwrap()?)
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

async fn read_all(b: &Arc<MemBackend>, path: &FsPath, start: u64, end: u64) -> Vec<u8> {
    let inode = datapath::stat(b.as_ref(), &Target::Path(path.clone())).await.unwrap();
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
        let at = Target::Path(path.clone());
        let inode = run(datapath::write_stream(&b, &at, futures::stream::iter(parts), WriteOptions::default())).unwrap();
        prop_assert_eq!(inode.size, len as u64);
        prop_assert_eq!(run(read_all(&b, &path, 0, u64::MAX)), data.clone());
        let (s, e) = (range.0.min(range.1), range.0.max(range.1));
        let want = if (s as usize) < len { data[s as usize..(e as usize).min(len)].to_vec() } else { vec![] };
        prop_assert_eq!(run(read_all(&b, &path, s, e)), want);
    }
}

/// One edit of the oracle test.
#[derive(Debug, Clone)]
enum Edit {
    WriteAt(u64, usize, u8),
    Append(usize, u8),
    Truncate(u64),
    /// Rename the file away, write a new file of (len, seed), make the file their concatenation.
    Concat(usize, u8),
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed) | 1).collect()
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let len = prop_oneof![0usize..64, 0usize..(20 << 10), 0usize..(200 << 10)];
    prop_oneof![
        (0u64..(400 << 10), len.clone(), any::<u8>()).prop_map(|(o, n, s)| Edit::WriteAt(o, n, s)),
        (len.clone(), any::<u8>()).prop_map(|(n, s)| Edit::Append(n, s)),
        prop_oneof![0u64..64, 0u64..(20 << 10), 0u64..(500 << 10)].prop_map(Edit::Truncate),
        (len, any::<u8>()).prop_map(|(n, s)| Edit::Concat(n, s)),
    ]
}

async fn apply_edit(b: &Arc<MemBackend>, edit: &Edit, oracle: &mut Vec<u8>) {
    let f = Target::Path(FsPath::parse("/d/f").unwrap());
    let body = |data: Vec<u8>| edit::body_of(Bytes::from(data));
    match *edit {
        Edit::WriteAt(off, n, seed) => {
            let data = bytes(n, seed);
            edit::write_at(b, &f, Some(off), body(data.clone())).await.unwrap();
            if n > 0 {
                let end = off as usize + n;
                oracle.resize(oracle.len().max(end), 0);
                oracle[off as usize..end].copy_from_slice(&data);
            }
        }
        Edit::Append(n, seed) => {
            let data = bytes(n, seed);
            edit::write_at(b, &f, None, body(data.clone())).await.unwrap();
            oracle.extend_from_slice(&data);
        }
        Edit::Truncate(size) => {
            edit::truncate(b.as_ref(), &f, size).await.unwrap();
            oracle.resize(size as usize, 0);
        }
        Edit::Concat(n, seed) => {
            let (a, c) = (Target::Path(FsPath::parse("/d/a").unwrap()), Target::Path(FsPath::parse("/d/c").unwrap()));
            b.write(ClientCommand::Rename { from: f.clone(), to: a.clone() }).await.unwrap();
            let data = bytes(n, seed);
            datapath::write_stream(b, &c, body(data.clone()), WriteOptions::default()).await.unwrap();
            edit::concat(b.as_ref(), &f, &[a.clone(), c.clone()]).await.unwrap();
            for gone in [a, c] {
                let e = datapath::stat(b.as_ref(), &gone).await.unwrap_err();
                assert_eq!(e.code(), ErrorCode::NotFound, "concat removes its sources");
            }
            oracle.extend_from_slice(&data);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn edits_match_an_oracle_buffer(initial in 0usize..(300 << 10), edits in prop::collection::vec(edit_strategy(), 1..12)) {
        let b = MemBackend::new();
        let d = Target::Path(FsPath::parse("/d").unwrap());
        let path = FsPath::parse("/d/f").unwrap();
        run(async {
            b.write(ClientCommand::Mkdir { at: d.clone(), parents: false, attrs: cairn_core::wire::NewAttrs::dir() }).await.unwrap();
            // Small chunks, so edits cross chunk boundaries often.
            b.write(ClientCommand::SetDirPolicy { at: d, policy: None, chunk_size: Some(MIN_CHUNK_SIZE) }).await.unwrap();
            let body = edit::body_of(Bytes::from(bytes(initial, 0)));
            datapath::write_stream(&b, &Target::Path(path.clone()), body, WriteOptions::default()).await.unwrap();
        });
        let mut oracle = bytes(initial, 0);
        for e in &edits {
            run(apply_edit(&b, e, &mut oracle));
            let got = run(read_all(&b, &path, 0, u64::MAX));
            prop_assert_eq!(got.len(), oracle.len(), "size after {:?}", e);
            prop_assert!(got == oracle, "bytes differ after {:?}", e);
        }
        // Reference counts follow every splice: once the file is gone, nothing is referenced.
        run(b.write(ClientCommand::Remove { at: Target::Path(FsPath::parse("/d").unwrap()), recursive: true })).unwrap();
        let txn = b.db.begin_read().unwrap();
        prop_assert!(cairn_meta::ledger(&txn).unwrap().is_empty(), "chunks still referenced after removal");
    }
}
