//! Handles and orphans: leases, renewals, and the reaper's `Close { expired_only }`.

use cairn_core::wire::{ClientCommand, Command, Content, NewAttrs, Query, QueryReply, Reply, Target};
use cairn_core::{ChunkId, Extent, FsPath};
use redb::{Database, ReadableDatabase};

fn run(db: &Database, now: i64, cmd: impl Into<Command>) -> Result<Reply, cairn_core::ApiError> {
    let txn = db.begin_write().unwrap();
    let reply = cairn_meta::apply(&txn, now, &cmd.into()).unwrap();
    txn.commit().unwrap();
    reply
}

#[test]
fn an_orphan_lives_while_a_lease_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("m.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    cairn_meta::init(&txn).unwrap();
    txn.commit().unwrap();
    let at = Target::Path(FsPath::parse("/f").unwrap());
    let id = ChunkId::of(b"x");
    let content = Content::Extents(vec![Extent::whole(id, 100)]);
    let cmd = ClientCommand::Commit {
        at: at.clone(),
        base_version: None,
        content,
        size: 100,
        parents: false,
        attrs: NewAttrs::file(),
    };
    let Reply::Inode(file) = run(&db, 1, cmd).unwrap() else { panic!() };
    assert!(run(&db, 1, ClientCommand::Open { at: at.clone(), handle: 7, lease: 0 }).is_err(), "leases are positive");
    run(&db, 1, ClientCommand::Open { at: at.clone(), handle: 7, lease: 10 }).unwrap();
    run(&db, 2, ClientCommand::Remove { at, recursive: false }).unwrap();
    let refs = || cairn_meta::chunk_record(&db.begin_read().unwrap(), &id).unwrap().unwrap().refs;
    assert_eq!((cairn_meta::orphans(&db.begin_read().unwrap()).unwrap(), refs()), (vec![file.ino], 1));
    // Renewed at 5: lives until 15; the reaper at 12 leaves it, at 20 closes it.
    assert_eq!(run(&db, 5, ClientCommand::Renew { handles: vec![(file.ino, 7)], lease: 10 }).unwrap(), Reply::Count(1));
    assert_eq!(cairn_meta::expired_handles(&db.begin_read().unwrap(), 12).unwrap(), vec![]);
    let reap = ClientCommand::Close { handles: vec![(file.ino, 7)], expired_only: true };
    assert_eq!(run(&db, 12, reap.clone()).unwrap(), Reply::Count(0));
    let stat = Query::Stat(Target::Ino(file.ino));
    assert!(matches!(cairn_meta::query(&db.begin_read().unwrap(), &stat, 0).unwrap(), Ok(QueryReply::Inode(_))));
    assert_eq!(cairn_meta::expired_handles(&db.begin_read().unwrap(), 20).unwrap(), vec![(file.ino, 7)]);
    assert_eq!(run(&db, 20, reap).unwrap(), Reply::Count(1));
    assert!(cairn_meta::orphans(&db.begin_read().unwrap()).unwrap().is_empty());
    assert!(cairn_meta::query(&db.begin_read().unwrap(), &stat, 0).unwrap().is_err(), "freed with its last handle");
    assert_eq!(refs(), 0);
}
