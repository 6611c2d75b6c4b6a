//! The durability ledger, node states and worker settings: what each command records.

mod common;
use cairn_core::wire::{
    ClientCommand, ClusterCommand, Command, Content, HolderChange, NewAttrs, NodeState, Part, Reply, Target,
};
use cairn_core::{ChunkId, Extent, FsPath, Policy};
use cairn_meta::Holder;
use common::db;
use redb::{Database, ReadableDatabase};

fn run(db: &Database, now: i64, cmd: impl Into<Command>) -> Reply {
    let txn = db.begin_write().unwrap();
    let reply = cairn_meta::apply(&txn, now, &cmd.into()).unwrap().expect("command succeeds");
    txn.commit().unwrap();
    reply
}

fn path(p: &str) -> FsPath {
    FsPath::parse(p).unwrap()
}

fn at(p: &str) -> Target {
    Target::Path(path(p))
}

fn copies(nodes: &[u64]) -> Vec<Holder> {
    nodes.iter().map(|&node| Holder { node, part: Part::Copy }).collect()
}

fn held(id: ChunkId, node: u64, held: bool) -> HolderChange {
    HolderChange { id, node, part: Part::Copy, len: 100, held }
}

/// Commits a one-chunk file of 100 bytes.
fn commit(db: &Database, p: &str, id: ChunkId) {
    let content = Content::Extents(vec![Extent::whole(id, 100)]);
    let cmd = ClientCommand::Commit {
        at: at(p),
        base_version: None,
        content,
        size: 100,
        parents: true,
        attrs: NewAttrs::file(),
    };
    run(db, 1, cmd);
}

#[test]
fn holders_are_recorded_and_dropped_and_survive_snapshots() {
    let (_d, db) = db();
    let (a, b) = (ChunkId::of(b"a"), ChunkId::of(b"b"));
    // Stored before any commit: a record with no references, collectable after the grace.
    run(&db, 5, ClusterCommand::ChunkHolders { changes: vec![held(a, 2, true), held(a, 1, true), held(a, 2, true)] });
    let rec = cairn_meta::chunk_record(&db.begin_read().unwrap(), &a).unwrap().unwrap();
    assert_eq!((rec.refs, rec.zero_since, rec.holders.clone()), (0, Some(5), copies(&[1, 2])));
    assert!(
        cairn_meta::ledger(&db.begin_read().unwrap()).unwrap().is_empty(),
        "unreferenced chunks are not in the ledger"
    );
    // Committing references it and records the policy's copies.
    run(&db, 6, ClientCommand::SetDirPolicy { at: at("/"), policy: Some(Policy::Replicas(2)), chunk_size: None });
    commit(&db, "/f", a);
    let ledger = cairn_meta::ledger(&db.begin_read().unwrap()).unwrap();
    assert_eq!(ledger.len(), 1);
    assert_eq!((ledger[0].1.refs, ledger[0].1.policy, ledger[0].1.zero_since), (1, Some(Policy::Replicas(2)), None));
    // A loss report removes only that holder; a report about an unknown chunk is ignored.
    let r = run(&db, 7, ClusterCommand::ChunkHolders { changes: vec![held(a, 1, false), held(b, 1, false)] });
    assert_eq!(r, Reply::Count(1));
    run(&db, 8, ClusterCommand::ChunkHolders { changes: vec![held(b, 3, true)] });
    commit(&db, "/g", b);
    let held_by = |node| -> Vec<ChunkId> {
        cairn_meta::chunks_of_node(&db.begin_read().unwrap(), node).unwrap().into_iter().map(|(id, _)| id).collect()
    };
    assert_eq!((held_by(1), held_by(2), held_by(3)), (vec![], vec![a], vec![b]), "the per-node index follows");
    let txn = db.begin_read().unwrap();
    let held: Vec<(u64, u64)> = cairn_meta::held_counts(&txn).unwrap().into_iter().collect();
    assert_eq!(held, vec![(2, 1), (3, 1)], "per-node counts follow the holders");
    let below: Vec<ChunkId> = cairn_meta::chunks_below(&txn, 3).unwrap().into_iter().map(|(id, _)| id).collect();
    assert!(below.contains(&a) && below.contains(&b), "one holder each, two wanted");
    assert!(cairn_meta::chunks_below(&txn, 1).unwrap().is_empty(), "one node: one copy is the target");
    assert!(cairn_meta::chunks_above(&txn, 3).unwrap().is_empty());
    assert_eq!(cairn_meta::chunk_totals(&txn).unwrap(), (2, 200));
    drop(txn);
    // Forgetting a node drops it everywhere.
    assert_eq!(run(&db, 9, ClusterCommand::ForgetNode { node: 2 }), Reply::Count(1));
    assert!(held_by(2).is_empty());
    let mut snap = Vec::new();
    cairn_meta::export(&db.begin_read().unwrap(), &mut snap).unwrap();
    let (_d2, other) = self::db();
    let txn = other.begin_write().unwrap();
    cairn_meta::import(&txn, &snap[..]).unwrap();
    txn.commit().unwrap();
    let holders: Vec<Vec<Holder>> =
        cairn_meta::ledger(&other.begin_read().unwrap()).unwrap().into_iter().map(|(_, r)| r.holders).collect();
    assert_eq!(holders.len(), 2);
    assert!(holders.contains(&vec![]) && holders.contains(&copies(&[3])));
    let ids: Vec<ChunkId> =
        cairn_meta::chunks_of_node(&other.begin_read().unwrap(), 3).unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![b], "the index is rebuilt from an installed snapshot");
}

#[test]
fn node_states_and_worker_settings_are_kept() {
    let (_d, db) = db();
    assert_eq!(cairn_meta::node_state(&db.begin_read().unwrap(), 7).unwrap(), NodeState::Active);
    run(&db, 1, ClusterCommand::SetNodeState { node: 7, state: NodeState::Draining });
    assert_eq!(cairn_meta::node_state(&db.begin_read().unwrap(), 7).unwrap(), NodeState::Draining);
    run(&db, 2, ClusterCommand::SetWorker { name: "repair".into(), paused: Some(true), rate: None });
    run(&db, 3, ClusterCommand::SetWorker { name: "repair".into(), paused: None, rate: Some(1 << 20) });
    let w = cairn_meta::worker_settings(&db.begin_read().unwrap(), "repair").unwrap();
    assert!(w.paused);
    assert_eq!(w.rate, 1 << 20);
    let txn = db.begin_write().unwrap();
    let answer = cairn_meta::apply(
        &txn,
        4,
        &ClusterCommand::SetWorker { name: "nope".into(), paused: Some(true), rate: None }.into(),
    );
    assert!(answer.unwrap().is_err(), "unknown workers are refused");
}

#[test]
fn files_below_lists_chunked_files_in_order() {
    let (_d, db) = db();
    let (a, b) = (ChunkId::of(b"a"), ChunkId::of(b"b"));
    commit(&db, "/d/x", a);
    commit(&db, "/d/e/y", b);
    commit(&db, "/z", a);
    let files = cairn_meta::files_below(&db.begin_read().unwrap(), &path("/d")).unwrap().unwrap();
    let names: Vec<String> = files.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(names, ["/d/e/y", "/d/x"]);
    assert!(cairn_meta::files_below(&db.begin_read().unwrap(), &path("/missing")).unwrap().is_err());
}

#[test]
fn shards_count_by_index_and_usage_follows_the_records() {
    let (_d, db) = db();
    let c = ChunkId::of(b"striped");
    let shard = |index| Part::Shard(cairn_core::wire::Shard { index, k: 2, m: 1 });
    let put = |node, index, held| HolderChange { id: c, node, part: shard(index), len: 100, held };
    // Node 1 holds two shards (a small cluster): its chunk is counted once for it.
    run(&db, 1, ClusterCommand::ChunkHolders { changes: vec![put(1, 0, true), put(1, 2, true), put(2, 1, true)] });
    run(&db, 2, ClientCommand::SetDirPolicy { at: at("/"), policy: Some(Policy::Ec { k: 2, m: 1 }), chunk_size: None });
    commit(&db, "/f", c);
    let txn = db.begin_read().unwrap();
    let counts: Vec<(u64, u64)> = cairn_meta::held_counts(&txn).unwrap().into_iter().collect();
    assert_eq!(counts, vec![(1, 1), (2, 1)]);
    let rec = cairn_meta::chunk_record(&txn, &c).unwrap().unwrap();
    assert_eq!((rec.useful(), rec.want()), (3, 3));
    assert!(cairn_meta::chunks_below(&txn, 3).unwrap().is_empty(), "three distinct shards of three");
    let usage = cairn_meta::policy_usage(&txn).unwrap();
    assert_eq!(usage, vec![cairn_meta::PolicyUsage { policy: "ec:2+1".into(), stored: 100, raw: 150 }]);
    drop(txn);
    // A copy beside the shards is a part the policy does not use: listed until released.
    run(&db, 3, ClusterCommand::ChunkHolders { changes: vec![held(c, 3, true)] });
    let txn = db.begin_read().unwrap();
    assert_eq!(cairn_meta::chunks_above(&txn, 3).unwrap().len(), 1);
    assert_eq!(cairn_meta::policy_usage(&txn).unwrap()[0].raw, 250);
    drop(txn);
    // Node 1 forgotten: both its shards go, and its count with them.
    run(&db, 4, ClusterCommand::ForgetNode { node: 1 });
    let txn = db.begin_read().unwrap();
    let counts: Vec<(u64, u64)> = cairn_meta::held_counts(&txn).unwrap().into_iter().collect();
    assert_eq!(counts, vec![(2, 1), (3, 1)]);
    assert_eq!(cairn_meta::policy_usage(&txn).unwrap()[0].raw, 150);
    drop(txn);
    // A policy no parser makes (decoded from bytes) is refused.
    let txn = db.begin_write().unwrap();
    let cmd: Command =
        ClientCommand::SetDirPolicy { at: at("/"), policy: Some(Policy::Ec { k: 0, m: 1 }), chunk_size: None }.into();
    assert!(cairn_meta::apply(&txn, 5, &cmd).unwrap().is_err(), "ec:0+1 refused");
    drop(txn);
    // The file deleted: nothing is kept at any policy.
    run(&db, 5, ClientCommand::Remove { at: at("/f"), recursive: false });
    assert!(cairn_meta::policy_usage(&db.begin_read().unwrap()).unwrap().is_empty());
}
