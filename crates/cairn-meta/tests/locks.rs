//! The lock table in the state machine: grants all or none, lifetimes judged by the entry's
//! clock, fencing tokens, enforcement on writes by path and by inode, preconditions, and a
//! snapshot round trip.

mod common;
use cairn_core::lock::{ByteRange, Guard, LockInfo, LockItem, LockMode, Precondition};
use cairn_core::wire::{ClientCommand, Command, Content, NewAttrs, Query, QueryReply, Reply, Target};
use cairn_core::{ApiError, ErrorCode, FsPath};
use common::db;
use redb::{Database, ReadableDatabase};

const S: i64 = 1_000_000_000;

fn run(db: &Database, now: i64, cmd: ClientCommand) -> Result<Reply, ApiError> {
    let txn = db.begin_write().unwrap();
    let reply = cairn_meta::apply(&txn, now, &Command::Client(cmd)).unwrap();
    txn.commit().unwrap();
    reply
}

fn item(p: &str) -> LockItem {
    LockItem::path(p.parse().unwrap(), None)
}

fn lock(db: &Database, now: i64, id: u64, mode: LockMode, items: Vec<LockItem>) -> Result<LockInfo, ApiError> {
    let cmd = ClientCommand::Lock { id, owner: "k".into(), mode, items, ttl: 10 * S };
    run(db, now, cmd).map(|r| match r {
        Reply::Lock(l) => l,
        other => panic!("{other:?}"),
    })
}

fn put(at: &str) -> ClientCommand {
    ClientCommand::Commit {
        at: Target::Path(at.parse().unwrap()),
        base_version: None,
        content: Content::Inline(b"x".to_vec()),
        size: 1,
        parents: true,
        attrs: NewAttrs::file(),
    }
}

fn guarded(guard: Guard, cmd: ClientCommand) -> ClientCommand {
    ClientCommand::Guarded { guard, cmd: Box::new(cmd) }
}

fn code(r: Result<impl std::fmt::Debug, ApiError>) -> ErrorCode {
    r.expect_err("refused").code
}

#[test]
fn grants_are_all_or_none_and_expire() {
    let (_d, db) = db();
    let a = lock(&db, 0, 1, LockMode::Exclusive, vec![item("/a")]).unwrap();
    assert_eq!(code(lock(&db, S, 2, LockMode::Shared, vec![item("/b"), item("/a")])), ErrorCode::Locked);
    // Nothing of the refused request was taken: /b is free.
    let b = lock(&db, S, 3, LockMode::Shared, vec![item("/b")]).unwrap();
    assert!(b.fence > a.fence, "fencing tokens increase");
    assert!(lock(&db, S, 4, LockMode::Shared, vec![item("/b")]).is_ok(), "shared locks share");
    assert_eq!(code(lock(&db, S, 5, LockMode::Exclusive, vec![item("/b")])), ErrorCode::Locked);
    // Byte ranges: disjoint exclusive ranges coexist, overlapping ones do not.
    let r = |start, len| LockItem::path("/r".parse().unwrap(), Some(ByteRange { start, len }));
    lock(&db, S, 6, LockMode::Exclusive, vec![r(0, 10)]).unwrap();
    lock(&db, S, 7, LockMode::Exclusive, vec![r(10, 0)]).unwrap();
    assert_eq!(code(lock(&db, S, 8, LockMode::Shared, vec![r(5, 1)])), ErrorCode::Locked);
    // Lifetime 10 s from the grant at 0: at 10 s another requester takes /a.
    assert_eq!(code(lock(&db, 9 * S, 9, LockMode::Exclusive, vec![item("/a")])), ErrorCode::Locked);
    let a2 = lock(&db, 10 * S, 10, LockMode::Exclusive, vec![item("/a")]).unwrap();
    assert!(a2.fence > b.fence);
    // The old holder can neither renew nor write with its token; release of a swept lock is not_found.
    assert_eq!(code(run(&db, 10 * S, ClientCommand::RenewLock { id: 1, owner: None, ttl: S })), ErrorCode::NotFound);
    let stale = Guard { locks: vec![1], fence: Some(a.fence), ..Guard::default() };
    assert_eq!(code(run(&db, 10 * S, guarded(stale, put("/a")))), ErrorCode::Locked);
    let fresh = Guard { locks: vec![10], fence: Some(a2.fence), ..Guard::default() };
    run(&db, 10 * S, guarded(fresh, put("/a"))).unwrap();
    // Renewal extends from now; only the owner (or an admin) may renew or release.
    let renew = |owner: Option<&str>| ClientCommand::RenewLock { id: 10, owner: owner.map(String::from), ttl: 30 * S };
    assert_eq!(code(run(&db, 11 * S, renew(Some("other")))), ErrorCode::PermissionDenied);
    let Reply::Lock(renewed) = run(&db, 11 * S, renew(Some("k"))).unwrap() else { panic!() };
    assert_eq!(renewed.expires, 41 * S);
    assert_eq!(code(lock(&db, 30 * S, 11, LockMode::Shared, vec![item("/a")])), ErrorCode::Locked);
    run(&db, 30 * S, ClientCommand::Unlock { id: 10, owner: None }).unwrap();
    lock(&db, 30 * S, 11, LockMode::Shared, vec![item("/a")]).unwrap();
}

#[test]
fn exclusive_locks_hold_writes_by_path_inode_and_below() {
    let (_d, db) = db();
    run(&db, 0, put("/d/f")).unwrap();
    let Reply::Inode(f) = run(&db, 0, put("/d/g")).unwrap() else { panic!() };
    let l = lock(&db, 0, 1, LockMode::Exclusive, vec![item("/d/g"), item("/new")]).unwrap();
    let locked = |cmd: ClientCommand| code(run(&db, S, cmd));
    assert_eq!(locked(put("/d/g")), ErrorCode::Locked);
    assert_eq!(locked(put("/new")), ErrorCode::Locked, "a lock may guard a name about to be created");
    let at = |p: &str| Target::Path(p.parse().unwrap());
    assert_eq!(locked(ClientCommand::Remove { at: at("/d"), recursive: true }), ErrorCode::Locked);
    assert_eq!(locked(ClientCommand::Rename { from: at("/d"), to: at("/e") }), ErrorCode::Locked);
    assert_eq!(locked(ClientCommand::Rename { from: at("/d/f"), to: at("/d/g") }), ErrorCode::Locked);
    let by_ino = ClientCommand::Write {
        at: Target::Ino(f.ino),
        base_version: None,
        offset: Some(0),
        data: Content::Inline(b"y".to_vec()),
    };
    assert_eq!(locked(by_ino.clone()), ErrorCode::Locked, "an open handle's writes are held too");
    run(&db, S, put("/d/f")).unwrap();
    // Shared and byte-range locks are advisory.
    lock(&db, 0, 2, LockMode::Shared, vec![item("/d/f")]).unwrap();
    let range = LockItem::path("/d/z".parse().unwrap(), Some(ByteRange { start: 0, len: 1 }));
    lock(&db, 0, 3, LockMode::Exclusive, vec![range]).unwrap();
    run(&db, S, put("/d/f")).unwrap();
    run(&db, S, put("/d/z")).unwrap();
    // Presenting the lock lets its holder through.
    let holder = Guard { locks: vec![1], fence: Some(l.fence), ..Guard::default() };
    run(&db, S, guarded(holder.clone(), by_ino)).unwrap();
    run(&db, S, guarded(holder, ClientCommand::Remove { at: at("/d"), recursive: true })).unwrap();
    let nested = guarded(Guard::default(), guarded(Guard::default(), put("/x")));
    assert_eq!(code(run(&db, S, nested)), ErrorCode::InvalidArgument);
}

#[test]
fn preconditions_compare_etags_and_times() {
    let (_d, db) = db();
    let Reply::Inode(v1) = run(&db, 5 * S, put("/f")).unwrap() else { panic!() };
    let when = |p: Vec<Precondition>| Guard { preconditions: p, ..Guard::default() };
    let cond = |p: Precondition, cmd| run(&db, 6 * S, guarded(when(vec![p]), cmd));
    assert_eq!(code(cond(Precondition::Absent, put("/f"))), ErrorCode::PreconditionFailed);
    let Reply::Inode(g) = cond(Precondition::Absent, put("/g")).unwrap() else { panic!() };
    assert_eq!(code(cond(Precondition::EtagIn(vec!["\"nope\"".into()]), put("/f"))), ErrorCode::PreconditionFailed);
    let Reply::Inode(v2) = cond(Precondition::EtagIn(vec![v1.etag()]), put("/f")).unwrap() else { panic!() };
    assert_ne!(v1.etag(), v2.etag());
    assert_eq!(code(cond(Precondition::EtagIn(vec![v1.etag()]), put("/f"))), ErrorCode::PreconditionFailed);
    assert_eq!(code(cond(Precondition::Exists, put("/h"))), ErrorCode::PreconditionFailed);
    assert_eq!(code(cond(Precondition::UnmodifiedSince(5), put("/f"))), ErrorCode::PreconditionFailed);
    cond(Precondition::UnmodifiedSince(6), put("/f")).unwrap();
    let rename =
        ClientCommand::Rename { from: Target::Path("/g".parse().unwrap()), to: Target::Path("/k".parse().unwrap()) };
    assert_eq!(code(cond(Precondition::EtagNotIn(vec![g.etag()]), rename.clone())), ErrorCode::PreconditionFailed);
    cond(Precondition::EtagNotIn(vec!["\"other\"".into()]), rename).unwrap();
}

#[test]
fn listings_show_live_locks_and_snapshots_keep_them() {
    let (_d, db) = db();
    for id in 1..=5 {
        lock(&db, 0, id, LockMode::Shared, vec![item("/a"), item(&format!("/x{id}"))]).unwrap();
    }
    let list = |db: &Database, path: Option<&str>, after, limit, now| {
        let q = Query::Locks { path: path.map(|p| p.parse::<FsPath>().unwrap()), ino: None, after, limit };
        match cairn_meta::query(&db.begin_read().unwrap(), &q, now).unwrap().unwrap() {
            QueryReply::Locks { locks, next } => (locks.iter().map(|l| l.id).collect::<Vec<_>>(), next),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(list(&db, Some("/a"), None, 3, S), (vec![1, 2, 3], Some(3)));
    assert_eq!(list(&db, Some("/a"), Some(3), 3, S), (vec![4, 5], None));
    assert_eq!(list(&db, Some("/x2"), None, 10, S), (vec![2], None));
    assert_eq!(list(&db, None, None, 10, 20 * S), (vec![], None), "expired locks are not listed");
    let mut snap = Vec::new();
    cairn_meta::export(&db.begin_read().unwrap(), &mut snap).unwrap();
    cairn_meta::validate(snap.as_slice()).unwrap();
    let (_d2, copy) = common::db();
    let txn = copy.begin_write().unwrap();
    cairn_meta::import(&txn, snap.as_slice()).unwrap();
    txn.commit().unwrap();
    assert_eq!(list(&copy, Some("/a"), None, 10, S), (vec![1, 2, 3, 4, 5], None));
    assert_eq!(code(lock(&copy, S, 20, LockMode::Exclusive, vec![item("/x3")])), ErrorCode::Locked);
    // A later grant sweeps expired locks: the table does not keep them.
    lock(&copy, 20 * S, 9, LockMode::Shared, vec![item("/late")]).unwrap();
    let txn = copy.begin_read().unwrap();
    let mut rest = Vec::new();
    cairn_meta::export(&txn, &mut rest).unwrap();
    assert!(rest.len() < snap.len(), "expired locks swept");
}

#[test]
fn inode_locks_meet_path_locks_on_the_same_file_and_stay_advisory() {
    let (_d, db) = db();
    let Reply::Inode(f) = run(&db, 0, put("/f")).unwrap() else { panic!() };
    let on_ino = |range: Option<(u64, u64)>| LockItem {
        on: cairn_core::lock::LockOn::Ino(f.ino),
        range: range.map(|(start, len)| ByteRange { start, len }),
    };
    let whole = lock(&db, 0, 1, LockMode::Exclusive, vec![on_ino(None)]).unwrap();
    // A path lock on the file it names, and another inode lock, meet it.
    assert_eq!(code(lock(&db, 0, 2, LockMode::Shared, vec![item("/f")])), ErrorCode::Locked);
    assert_eq!(code(lock(&db, 0, 3, LockMode::Shared, vec![on_ino(Some((0, 10)))])), ErrorCode::Locked);
    // Advisory: writes pass without presenting it.
    run(&db, S, put("/f")).unwrap();
    run(&db, S, ClientCommand::Unlock { id: whole.id, owner: None }).unwrap();
    lock(&db, S, 4, LockMode::Exclusive, vec![on_ino(Some((0, 10)))]).unwrap();
    lock(&db, S, 5, LockMode::Exclusive, vec![on_ino(Some((10, 0)))]).unwrap();
    assert_eq!(code(lock(&db, S, 6, LockMode::Shared, vec![item("/f")])), ErrorCode::Locked);
    let q = Query::Locks { path: None, ino: Some(f.ino), after: None, limit: 10 };
    match cairn_meta::query(&db.begin_read().unwrap(), &q, S).unwrap().unwrap() {
        QueryReply::Locks { locks, .. } => assert_eq!(locks.iter().map(|l| l.id).collect::<Vec<_>>(), vec![4, 5]),
        other => panic!("{other:?}"),
    }
}
