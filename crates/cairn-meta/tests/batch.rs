//! Batches in the state machine: all or none, also next to other commands of one entry,
//! with locks taken and presented inside one batch.

mod common;
use cairn_core::lock::{Guard, LockItem, LockMode, Precondition};
use cairn_core::wire::{ClientCommand, Command, Content, NewAttrs, Query, QueryReply, Reply};
use cairn_core::ErrorCode;
use common::{at, db};
use redb::{Database, ReadableDatabase};

fn put(p: &str) -> ClientCommand {
    let content = Content::Inline(p.as_bytes().to_vec());
    let size = p.len() as u64;
    ClientCommand::Commit { at: at(p), base_version: None, content, size, parents: true, attrs: NewAttrs::file() }
}

fn mkdir(p: &str) -> ClientCommand {
    ClientCommand::Mkdir { at: at(p), parents: false, attrs: NewAttrs::dir() }
}

fn exists(db: &Database, p: &str) -> bool {
    matches!(cairn_meta::query(&db.begin_read().unwrap(), &Query::Stat(at(p)), 0).unwrap(), Ok(QueryReply::Inode(_)))
}

fn one(db: &Database, cmd: ClientCommand) -> Reply {
    cairn_meta::apply_committed(db, 1, &[Command::Client(cmd)]).unwrap().pop().unwrap().unwrap()
}

#[test]
fn a_batch_applies_all_or_nothing() {
    let (_d, db) = db();
    let rename = ClientCommand::Rename { from: at("/missing"), to: at("/y") };
    let failing = ClientCommand::Batch { ops: vec![mkdir("/a"), put("/a/f"), rename] };
    // Alone and beside other commands of the same entry: only the batch is undone.
    let entry = [Command::Client(put("/before")), Command::Client(failing), Command::Client(put("/after"))];
    let answers = cairn_meta::apply_committed(&db, 1, &entry).unwrap();
    match &answers[1] {
        Ok(Reply::BatchFailed { index: 2, error }) => assert_eq!(error.code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    assert!(answers[0].is_ok() && answers[2].is_ok());
    assert!(exists(&db, "/before") && exists(&db, "/after"));
    assert!(!exists(&db, "/a") && !exists(&db, "/a/f"), "nothing of the failed batch stayed");
    // Refused at its first operation, it needs no undo and still changes nothing.
    match one(&db, ClientCommand::Batch { ops: vec![mkdir("/before"), mkdir("/b")] }) {
        Reply::BatchFailed { index: 0, error } => assert_eq!(error.code, ErrorCode::Exists),
        other => panic!("{other:?}"),
    }
    assert!(!exists(&db, "/b"));
    let Reply::Batch(replies) = one(&db, ClientCommand::Batch { ops: vec![mkdir("/a"), put("/a/f")] }) else {
        panic!()
    };
    assert_eq!(replies.len(), 2);
    assert!(exists(&db, "/a/f"));
    let nested = ClientCommand::Batch { ops: vec![ClientCommand::Batch { ops: vec![mkdir("/n")] }] };
    assert!(cairn_meta::apply_committed(&db, 1, &[Command::Client(nested)]).unwrap()[0].is_err());
    let empty = ClientCommand::Batch { ops: vec![] };
    assert!(cairn_meta::apply_committed(&db, 1, &[Command::Client(empty)]).unwrap()[0].is_err());
}

#[test]
fn a_batch_takes_a_lock_and_writes_under_it_in_one_step() {
    let (_d, db) = db();
    let lock = ClientCommand::Lock {
        id: 7,
        owner: "k".into(),
        mode: LockMode::Exclusive,
        items: vec![LockItem::path("/p".parse().unwrap(), None)],
        ttl: 10_000_000_000,
    };
    let held = Guard { locks: vec![7], preconditions: vec![Precondition::LockHeld(7)], ..Guard::default() };
    let write = ClientCommand::Guarded { guard: held.clone(), cmd: Box::new(put("/p")) };
    let Reply::Batch(r) = one(&db, ClientCommand::Batch { ops: vec![lock, write] }) else { panic!() };
    assert!(matches!(r[0], Reply::Lock(_)));
    // Others are held off; a batch whose precondition fails at its last step undoes the rest.
    let absent = Guard { preconditions: vec![Precondition::Absent], ..Guard::default() };
    let ops = vec![
        ClientCommand::Guarded { guard: held, cmd: Box::new(put("/p")) },
        ClientCommand::Guarded { guard: absent, cmd: Box::new(put("/p")) },
    ];
    match one(&db, ClientCommand::Batch { ops }) {
        Reply::BatchFailed { index: 1, error } => assert_eq!(error.code, ErrorCode::PreconditionFailed),
        other => panic!("{other:?}"),
    }
    let unheld = Guard { locks: vec![8], preconditions: vec![Precondition::LockHeld(8)], ..Guard::default() };
    let ops = vec![mkdir("/q"), ClientCommand::Guarded { guard: unheld, cmd: Box::new(put("/q/x")) }];
    assert!(matches!(one(&db, ClientCommand::Batch { ops }), Reply::BatchFailed { index: 1, .. }));
    assert!(!exists(&db, "/q"));
    let Reply::Batch(_) =
        one(&db, ClientCommand::Batch { ops: vec![ClientCommand::Unlock { id: 7, owner: None }, put("/p")] })
    else {
        panic!()
    };
}

#[test]
fn a_query_batch_answers_each_query_from_one_read() {
    let (_d, db) = db();
    one(&db, put("/f"));
    let q = |qs: Vec<Query>| cairn_meta::query(&db.begin_read().unwrap(), &Query::Batch(qs), 0).unwrap();
    match q(vec![Query::Stat(at("/f")), Query::Stat(at("/missing")), Query::ListXattrs(at("/f"))]) {
        Ok(QueryReply::Batch(answers)) => {
            assert!(matches!(&answers[0], Ok(QueryReply::Inode(i)) if i.size == 2));
            assert!(matches!(&answers[1], Err(e) if e.code == ErrorCode::NotFound), "one refusal, on its own");
            assert!(matches!(&answers[2], Ok(QueryReply::Names(n)) if n.is_empty()));
        }
        other => panic!("{other:?}"),
    }
    let nested = q(vec![Query::Batch(vec![])]);
    assert!(matches!(nested, Err(e) if e.code == ErrorCode::InvalidArgument), "no batch in a batch");
    let many = q((0..17).map(|_| Query::Stat(at("/f"))).collect());
    assert!(matches!(many, Err(e) if e.code == ErrorCode::InvalidArgument), "at most 16");
}
