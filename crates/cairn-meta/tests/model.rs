//! The state machine against a naive oracle: random command sequences (by path, by name in a
//! directory, by inode number; with hard links, and files renamed or unlinked while open)
//! must succeed or fail exactly when the oracle's do, and leave the same tree, the same link
//! counts, the same orphans and the same chunk reference counts.

use cairn_core::wire::{ClientCommand, Content, InodeKind, NewAttrs, Query, QueryReply, Target};
use cairn_core::{ChunkId, Extent, FsPath};
use proptest::prelude::*;
use redb::{Database, ReadableDatabase};
use std::collections::BTreeMap;

/// What a name holds in the oracle: a directory, or a file inode (by its real number, so
/// inode-addressed commands can be checked).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Dir,
    File(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Mkdir(String, bool),
    Commit(String, Vec<u8>),
    Remove(String, bool),
    Rename(String, String),
    /// A hard link: (existing, new name).
    Link(String, String),
    /// A commit to the k-th live file inode (by number), whatever its names.
    CommitIno(usize, Vec<u8>),
    /// Open a handle on the file at a path.
    Open(String),
    /// Close the k-th open handle.
    Close(usize),
}

/// The oracle: a flat map from path to node, each live file inode's chunk seeds, and the
/// open handles (handle -> inode).
#[derive(Default)]
struct Model(BTreeMap<String, Node>, BTreeMap<u64, Vec<u8>>, BTreeMap<u64, u64>);

fn ancestors(p: &str) -> Vec<String> {
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    (0..parts.len())
        .map(|i| format!("/{}", parts[..i].join("/")))
        .map(|s| if s == "/" { s } else { s.trim_end_matches('/').to_string() })
        .collect()
}

fn under(p: &str, top: &str) -> bool {
    p == top || p.starts_with(&format!("{top}/")) || top == "/"
}

impl Model {
    fn new() -> Self {
        let mut m = Model::default();
        m.0.insert("/".into(), Node::Dir);
        m
    }
    fn is_dir(&self, p: &str) -> bool {
        self.0.get(p) == Some(&Node::Dir)
    }
    fn has_file_ancestor(&self, p: &str) -> bool {
        ancestors(p).iter().any(|a| matches!(self.0.get(a), Some(Node::File(_))))
    }
    /// Frees file inodes that no name points at any more.
    fn collect(&mut self) {
        let mut live: std::collections::BTreeSet<u64> =
            self.0.values().filter_map(|n| if let Node::File(i) = n { Some(*i) } else { None }).collect();
        live.extend(self.2.values().copied());
        self.1.retain(|i, _| live.contains(i));
    }
    /// The handle id the next `Open` uses.
    fn next_handle(&self) -> u64 {
        self.2.keys().next_back().map_or(1, |h| h + 1)
    }
    /// The k-th open handle, if any: (inode, handle).
    fn nth_handle(&self, k: usize) -> Option<(u64, u64)> {
        (!self.2.is_empty()).then(|| {
            let (h, i) = self.2.iter().nth(k % self.2.len()).unwrap();
            (*i, *h)
        })
    }
    /// The k-th live inode, if any.
    fn nth_ino(&self, k: usize) -> Option<u64> {
        (!self.1.is_empty()).then(|| *self.1.keys().nth(k % self.1.len()).unwrap())
    }
    fn parent_ok(&self, p: &str) -> bool {
        self.is_dir(ancestors(p).last().unwrap())
    }
    fn has_children(&self, p: &str) -> bool {
        self.0.keys().any(|k| k != p && under(k, p))
    }
    fn create_parents(&mut self, p: &str) {
        for a in ancestors(p) {
            self.0.entry(a).or_insert(Node::Dir);
        }
    }
    /// Applies `op`; `created` is the inode number the state machine gave a new file.
    fn apply(&mut self, op: &Op, created: Option<u64>) -> bool {
        let ok = self.apply_names(op, created);
        self.collect();
        ok
    }

    fn apply_names(&mut self, op: &Op, created: Option<u64>) -> bool {
        match op {
            Op::Mkdir(p, parents) => {
                if p == "/" || self.has_file_ancestor(p) {
                    return *parents && p == "/";
                }
                if let Some(n) = self.0.get(p) {
                    return *n == Node::Dir && *parents;
                }
                if !self.parent_ok(p) && !parents {
                    return false;
                }
                self.create_parents(p);
                self.0.insert(p.clone(), Node::Dir);
                true
            }
            Op::Commit(p, seeds) => {
                if p == "/" || self.has_file_ancestor(p) || self.is_dir(p) {
                    return false;
                }
                self.create_parents(p);
                let ino = match self.0.get(p) {
                    Some(Node::File(i)) => *i,
                    _ => created.expect("a new file has an inode number"),
                };
                self.0.insert(p.clone(), Node::File(ino));
                self.1.insert(ino, seeds.clone());
                true
            }
            Op::CommitIno(k, seeds) => match self.nth_ino(*k) {
                Some(ino) => {
                    self.1.insert(ino, seeds.clone());
                    true
                }
                None => false,
            },
            Op::Open(p) => match self.0.get(p) {
                Some(Node::File(ino)) => {
                    let h = self.next_handle();
                    self.2.insert(h, *ino);
                    true
                }
                _ => false,
            },
            Op::Close(k) => {
                if let Some((_, h)) = self.nth_handle(*k) {
                    self.2.remove(&h);
                }
                true
            }
            Op::Link(from, to) => {
                let Some(Node::File(ino)) = self.0.get(from).cloned() else { return false };
                if to == "/" || self.0.contains_key(to) || self.has_file_ancestor(to) || !self.parent_ok(to) {
                    return false;
                }
                self.0.insert(to.clone(), Node::File(ino));
                true
            }
            Op::Remove(p, recursive) => {
                if p == "/" || !self.0.contains_key(p) || (self.has_children(p) && !recursive) {
                    return false;
                }
                self.0.retain(|k, _| !under(k, p));
                true
            }
            Op::Rename(f, t) => {
                if f == "/" || t == "/" || !self.0.contains_key(f) {
                    return false;
                }
                if f == t {
                    return true;
                }
                if under(t, f) || self.has_file_ancestor(t) || !self.parent_ok(t) {
                    return false;
                }
                let src_dir = self.is_dir(f);
                if self.0.contains_key(t) && self.0.get(t) == self.0.get(f) && !src_dir {
                    return true; // two names of one file: rename does nothing
                }
                if let Some(dst) = self.0.get(t) {
                    if src_dir != (*dst == Node::Dir) || (src_dir && self.has_children(t)) {
                        return false;
                    }
                }
                self.0.retain(|k, _| !under(k, t));
                let moved: Vec<(String, Node)> =
                    self.0.iter().filter(|(k, _)| under(k, f)).map(|(k, v)| (k.clone(), v.clone())).collect();
                self.0.retain(|k, _| !under(k, f));
                for (k, v) in moved {
                    self.0.insert(format!("{t}{}", &k[f.len()..]), v);
                }
                true
            }
        }
    }
}

fn chunk(seed: u8) -> Extent {
    Extent::whole(ChunkId::of(&[seed]), 65536)
}

fn to_cmd(op: &Op, model: &Model) -> ClientCommand {
    let p = |s: &str| Target::Path(FsPath::parse(s).unwrap());
    match op {
        Op::Mkdir(s, parents) => ClientCommand::Mkdir { at: p(s), parents: *parents, attrs: NewAttrs::dir() },
        Op::Commit(s, seeds) => ClientCommand::Commit {
            at: p(s),
            base_version: None,
            content: content(seeds),
            size: seeds.len() as u64 * 65536,
            parents: true,
            attrs: NewAttrs::file(),
        },
        Op::Remove(s, recursive) => ClientCommand::Remove { at: p(s), recursive: *recursive },
        Op::Rename(a, b) => ClientCommand::Rename { from: p(a), to: p(b) },
        Op::Link(a, b) => ClientCommand::Link { from: p(a), to: p(b) },
        Op::Open(a) => ClientCommand::Open { at: p(a), handle: model.next_handle(), lease: 1 << 40 },
        Op::Close(k) => {
            ClientCommand::Close { handles: model.nth_handle(*k).into_iter().collect(), expired_only: false }
        }
        Op::CommitIno(k, seeds) => ClientCommand::Commit {
            at: Target::Ino(model.nth_ino(*k).unwrap_or(u64::MAX >> 1)),
            base_version: None,
            content: content(seeds),
            size: seeds.len() as u64 * 65536,
            parents: false,
            attrs: NewAttrs::file(),
        },
    }
}

fn content(seeds: &[u8]) -> Content {
    if seeds.is_empty() {
        Content::None
    } else {
        Content::Extents(seeds.iter().map(|&s| chunk(s)).collect())
    }
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..4).prop_map(|v| format!("/{}", v.join("/")))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (path_strategy(), any::<bool>()).prop_map(|(p, b)| Op::Mkdir(p, b)),
        (path_strategy(), prop::collection::vec(0u8..4, 0..3)).prop_map(|(p, s)| Op::Commit(p, s)),
        (path_strategy(), any::<bool>()).prop_map(|(p, b)| Op::Remove(p, b)),
        (path_strategy(), path_strategy()).prop_map(|(a, b)| Op::Rename(a, b)),
        (path_strategy(), path_strategy()).prop_map(|(a, b)| Op::Link(a, b)),
        (0usize..8, prop::collection::vec(0u8..4, 0..3)).prop_map(|(k, s)| Op::CommitIno(k, s)),
        path_strategy().prop_map(Op::Open),
        (0usize..8).prop_map(Op::Close),
    ]
}

/// Reads the whole tree back from the state machine: names, and each file inode's seeds
/// (checking that its link count is its number of names).
fn dump(db: &Database) -> (BTreeMap<String, Node>, BTreeMap<u64, Vec<u8>>) {
    let txn = db.begin_read().unwrap();
    let (mut out, mut inodes) = (BTreeMap::new(), BTreeMap::new());
    let mut nlinks: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    let mut stack = vec!["/".to_string()];
    while let Some(dir) = stack.pop() {
        out.insert(dir.clone(), Node::Dir);
        let q = Query::List { at: Target::Path(FsPath::parse(&dir).unwrap()), after: None, limit: 10_000 };
        let Ok(QueryReply::Entries { entries, .. }) = cairn_meta::query(&txn, &q, 0).unwrap() else {
            panic!("list {dir}")
        };
        for e in entries {
            let child = if dir == "/" { format!("/{}", e.name) } else { format!("{dir}/{}", e.name) };
            match e.inode.kind {
                InodeKind::Dir => stack.push(child),
                _ => {
                    let seeds =
                        e.inode.chunk_ids().map(|c| (0u8..4).find(|&s| chunk(s).chunk == Some(c)).unwrap()).collect();
                    out.insert(child, Node::File(e.inode.ino));
                    inodes.insert(e.inode.ino, seeds);
                    nlinks.entry(e.inode.ino).or_insert((e.inode.nlink, 0)).1 += 1;
                }
            }
        }
    }
    for (ino, (nlink, names)) in nlinks {
        assert_eq!(nlink, names, "inode {ino}: nlink is its number of names");
    }
    // Orphans: nameless inodes kept by open handles.
    for ino in cairn_meta::orphans(&txn).unwrap() {
        let Ok(QueryReply::Inode(i)) = cairn_meta::query(&txn, &Query::Stat(Target::Ino(ino)), 0).unwrap() else {
            panic!("orphan {ino} has no inode")
        };
        assert_eq!(i.nlink, 0, "orphan {ino} has no names");
        let seeds = i.chunk_ids().map(|c| (0u8..4).find(|&s| chunk(s).chunk == Some(c)).unwrap()).collect();
        inodes.insert(ino, seeds);
    }
    (out, inodes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn state_machine_matches_oracle(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("m.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        cairn_meta::init(&txn).unwrap();
        txn.commit().unwrap();
        let mut model = Model::new();
        for (i, op) in ops.iter().enumerate() {
            let txn = db.begin_write().unwrap();
            let got = cairn_meta::apply(&txn, i as i64, &to_cmd(op, &model).into()).unwrap();
            txn.commit().unwrap();
            let created = match &got {
                Ok(cairn_core::wire::Reply::Inode(i)) => Some(i.ino),
                _ => None,
            };
            let want = model.apply(op, created);
            prop_assert_eq!(got.is_ok(), want, "op {:?} gave {:?}", op, got);
        }
        prop_assert_eq!(dump(&db), (model.0.clone(), model.1.clone()));
        let txn = db.begin_read().unwrap();
        for s in 0u8..4 {
            let want = model.1.values().map(|v| v.iter().filter(|&&x| x == s).count() as u64).sum::<u64>();
            let got = cairn_meta::chunk_record(&txn, &chunk(s).chunk.unwrap()).unwrap().map_or(0, |r| r.refs);
            prop_assert_eq!(got, want, "refs of chunk {}", s);
        }
        // The counters and the holder-count index follow the records (no holders here).
        let referenced = (0u8..4).filter(|s| model.1.values().any(|v| v.contains(s))).count() as u64;
        prop_assert_eq!(cairn_meta::chunk_totals(&txn).unwrap().0, referenced);
        prop_assert_eq!(cairn_meta::chunks_below(&txn, 1).unwrap().len() as u64, referenced);
        let unreferenced = cairn_meta::unreferenced_chunks(&txn, i64::MAX).unwrap();
        for s in 0u8..4 {
            let id = chunk(s).chunk.unwrap();
            let zero = cairn_meta::chunk_record(&txn, &id).unwrap().is_some_and(|r| r.refs == 0);
            prop_assert_eq!(unreferenced.contains(&id), zero, "unreferenced index for chunk {}", s);
        }
        // A snapshot restores the same tree into a fresh database.
        let mut bytes = Vec::new();
        cairn_meta::export(&txn, &mut bytes).unwrap();
        cairn_meta::validate(&bytes[..]).unwrap();
        let db2 = Database::create(dir.path().join("n.redb")).unwrap();
        let w = db2.begin_write().unwrap();
        cairn_meta::init(&w).unwrap();
        cairn_meta::import(&w, &bytes[..]).unwrap();
        w.commit().unwrap();
        prop_assert_eq!(dump(&db2), (model.0, model.1));
    }
}
