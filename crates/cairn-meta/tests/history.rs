//! File history in the state machine: versions kept per directory setting, trimmed to N,
//! deleted files leaving a deleted version and a grave, restore and undelete, references
//! held by versions and dropped with them, and a snapshot round trip.

mod common;
use cairn_core::wire::{ClientCommand, Command, Content, NewAttrs, Query, QueryReply, Reply, VersionInfo};
use cairn_core::Extent;
use cairn_core::{ChunkId, ErrorCode};
use common::{at, db};
use redb::{Database, ReadableDatabase};

fn run(db: &Database, cmd: ClientCommand) -> Result<Reply, cairn_core::ApiError> {
    cairn_meta::apply_committed(db, 5, &[Command::Client(cmd)]).unwrap().pop().unwrap()
}

fn put(db: &Database, p: &str, content: Content, size: u64) -> u64 {
    let cmd =
        ClientCommand::Commit { at: at(p), base_version: None, content, size, parents: true, attrs: NewAttrs::file() };
    match run(db, cmd).unwrap() {
        Reply::Inode(i) => i.version,
        other => panic!("{other:?}"),
    }
}

fn text(s: &str) -> (Content, u64) {
    (Content::Inline(s.as_bytes().to_vec()), s.len() as u64)
}

fn versions(db: &Database, p: &str) -> Vec<VersionInfo> {
    match cairn_meta::query(&db.begin_read().unwrap(), &Query::Versions(at(p)), 0).unwrap() {
        Ok(QueryReply::Versions(v)) => v,
        other => panic!("{other:?}"),
    }
}

fn content_of(db: &Database, p: &str, version: u64) -> Result<Content, cairn_core::ApiError> {
    match cairn_meta::query(&db.begin_read().unwrap(), &Query::Version { at: at(p), version }, 0).unwrap() {
        Ok(QueryReply::Inode(i)) => Ok(i.content),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    }
}

fn refs(db: &Database, id: &ChunkId) -> u64 {
    cairn_meta::chunk_record(&db.begin_read().unwrap(), id).unwrap().map_or(0, |r| r.refs)
}

#[test]
fn versions_are_kept_trimmed_restored_and_undeleted() {
    let (_d, db) = db();
    run(&db, ClientCommand::Mkdir { at: at("/h"), parents: false, attrs: NewAttrs::dir() }).unwrap();
    // Off by default: nothing kept.
    let (c, n) = text("a");
    put(&db, "/plain", c, n);
    let (c, n) = text("b");
    put(&db, "/plain", c, n);
    assert_eq!(versions(&db, "/plain").len(), 1);
    assert_eq!(
        run(&db, ClientCommand::SetDirVersions { at: at("/h"), versions: 2000 }).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    run(&db, ClientCommand::SetDirVersions { at: at("/h"), versions: 2 }).unwrap();
    for s in ["one", "two", "three", "four"] {
        let (c, n) = text(s);
        put(&db, "/h/f", c, n);
    }
    let v = versions(&db, "/h/f");
    assert_eq!(v.iter().map(|v| (v.version, v.current)).collect::<Vec<_>>(), vec![(4, true), (3, false), (2, false)]);
    assert_eq!(content_of(&db, "/h/f", 2).unwrap(), text("two").0);
    assert_eq!(content_of(&db, "/h/f", 1).unwrap_err().code, ErrorCode::NotFound, "trimmed to 2 kept versions");
    // Restore makes an old version current again, as a new commit.
    let Reply::Inode(restored) = run(&db, ClientCommand::Restore { at: at("/h/f"), version: 2 }).unwrap() else {
        panic!()
    };
    assert_eq!((restored.version, restored.content.clone()), (5, text("two").0));
    // A deleted file becomes a deleted version; its history stays readable by name.
    run(&db, ClientCommand::Remove { at: at("/h/f"), recursive: false }).unwrap();
    let v = versions(&db, "/h/f");
    assert!(v[0].deleted && !v[0].current, "{v:?}");
    assert_eq!(v[1].version, 5);
    assert_eq!(content_of(&db, "/h/f", 5).unwrap(), text("two").0);
    assert_eq!(
        run(&db, ClientCommand::Restore { at: at("/h/f"), version: 6 }).unwrap_err().code,
        ErrorCode::InvalidArgument
    );
    // Undelete: the file comes back under its old inode, and its history carries on.
    let Reply::Inode(back) = run(&db, ClientCommand::Restore { at: at("/h/f"), version: 5 }).unwrap() else { panic!() };
    assert_eq!((back.ino, back.version), (restored.ino, 7));
    assert_eq!(versions(&db, "/h/f")[0].version, 7);
    assert_eq!(
        run(&db, ClientCommand::Restore { at: at("/h/nothing"), version: 1 }).unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[test]
fn versions_hold_their_chunks_until_trimmed() {
    let (_d, db) = db();
    run(&db, ClientCommand::Mkdir { at: at("/h"), parents: false, attrs: NewAttrs::dir() }).unwrap();
    run(&db, ClientCommand::SetDirVersions { at: at("/h"), versions: 1 }).unwrap();
    let (a, b, c) = (ChunkId::of(b"a"), ChunkId::of(b"b"), ChunkId::of(b"c"));
    let file = |id| Content::Extents(vec![Extent::whole(id, 100)]);
    put(&db, "/h/f", file(a), 100);
    put(&db, "/h/f", file(b), 100);
    assert_eq!((refs(&db, &a), refs(&db, &b)), (1, 1), "version 1 keeps a");
    put(&db, "/h/f", file(c), 100);
    assert_eq!((refs(&db, &a), refs(&db, &b), refs(&db, &c)), (0, 1, 1), "a trimmed away");
    // Deleting keeps the content as a version, plus a deletion mark that does not count
    // towards the depth: the last content stays restorable.
    run(&db, ClientCommand::Remove { at: at("/h/f"), recursive: false }).unwrap();
    assert_eq!((refs(&db, &b), refs(&db, &c)), (0, 1));
    assert_eq!(versions(&db, "/h/f").len(), 2);
    // Turning history off and deleting a file drops what it kept.
    run(&db, ClientCommand::SetDirVersions { at: at("/h"), versions: 3 }).unwrap();
    put(&db, "/h/g", file(a), 100);
    put(&db, "/h/g", file(b), 100);
    assert_eq!(refs(&db, &a), 1);
    let mut snap = Vec::new();
    cairn_meta::export(&db.begin_read().unwrap(), &mut snap).unwrap();
    cairn_meta::validate(snap.as_slice()).unwrap();
    run(&db, ClientCommand::SetDirVersions { at: at("/h"), versions: 0 }).unwrap();
    run(&db, ClientCommand::Remove { at: at("/h/g"), recursive: false }).unwrap();
    assert_eq!((refs(&db, &a), refs(&db, &b)), (0, 0));
    assert!(cairn_meta::query(&db.begin_read().unwrap(), &Query::Versions(at("/h/g")), 0).unwrap().is_err());
    // The snapshot taken before carries the history.
    let (_d2, copy) = common::db();
    let txn = copy.begin_write().unwrap();
    cairn_meta::import(&txn, snap.as_slice()).unwrap();
    txn.commit().unwrap();
    assert_eq!(versions(&copy, "/h/g").len(), 2);
    assert_eq!(content_of(&copy, "/h/g", 1).unwrap(), file(a));
}

#[test]
fn a_kept_version_can_be_dropped_and_a_graves_last_one_takes_the_grave() {
    let (_d, db) = db();
    run(&db, ClientCommand::Mkdir { at: at("/v"), parents: false, attrs: NewAttrs::dir() }).unwrap();
    run(&db, ClientCommand::SetDirVersions { at: at("/v"), versions: 10 }).unwrap();
    let id = ChunkId([9; 32]);
    let v1 = put(&db, "/v/f", Content::Extents(vec![Extent::whole(id, 100)]), 100);
    assert_eq!(refs(&db, &id), 1);
    let (c, n) = text("two");
    let v2 = put(&db, "/v/f", c, n);
    assert_eq!(refs(&db, &id), 1, "the kept version holds the chunk");
    let current = ClientCommand::DropVersion { at: at("/v/f"), version: v2 };
    assert_eq!(run(&db, current).unwrap_err().code, ErrorCode::InvalidArgument, "never the current content");
    assert!(matches!(run(&db, ClientCommand::DropVersion { at: at("/v/f"), version: v1 }), Ok(Reply::Done)));
    assert_eq!(refs(&db, &id), 0, "its references go with it");
    assert_eq!(versions(&db, "/v/f").len(), 1);
    let again = ClientCommand::DropVersion { at: at("/v/f"), version: v1 };
    assert_eq!(run(&db, again).unwrap_err().code, ErrorCode::NotFound);

    // A deleted file: its grave is listed until its last version goes.
    run(&db, ClientCommand::Remove { at: at("/v/f"), recursive: false }).unwrap();
    let graves = |db: &Database| match cairn_meta::query(
        &db.begin_read().unwrap(),
        &Query::Graves { at: at("/v"), after: None, limit: 100 },
        0,
    )
    .unwrap()
    {
        Ok(QueryReply::Names(n)) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(graves(&db), vec!["f".to_string()]);
    for v in versions(&db, "/v/f") {
        run(&db, ClientCommand::DropVersion { at: at("/v/f"), version: v.version }).unwrap();
    }
    assert!(graves(&db).is_empty(), "no history, no grave");
    let gone = cairn_meta::query(&db.begin_read().unwrap(), &Query::Versions(at("/v/f")), 0).unwrap();
    assert!(matches!(gone, Err(e) if e.code == ErrorCode::NotFound));
}
