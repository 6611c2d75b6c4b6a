//! Snapshots: a damaged or truncated stream is refused by `validate` before anything changes.

use cairn_core::wire::{ClientCommand, NewAttrs, Target};
use cairn_core::FsPath;
use redb::{Database, ReadableDatabase};

#[test]
fn damaged_snapshots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("m.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    cairn_meta::init(&txn).unwrap();
    for i in 0..50 {
        let at = Target::Path(FsPath::parse(&format!("/d/f{i}")).unwrap());
        let cmd = ClientCommand::Mkdir { at, parents: true, attrs: NewAttrs::dir() };
        cairn_meta::apply(&txn, i, &cmd.into()).unwrap().unwrap();
    }
    txn.commit().unwrap();
    let mut good = Vec::new();
    cairn_meta::export(&db.begin_read().unwrap(), &mut good).unwrap();
    cairn_meta::validate(&good[..]).unwrap();
    for at in [0, 9, 12, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x40;
        assert!(cairn_meta::validate(&bad[..]).is_err(), "a flipped byte at {at} is caught");
    }
    for len in [0, 5, 10, 100, good.len() - 33, good.len() - 1] {
        assert!(cairn_meta::validate(&good[..len]).is_err(), "truncated to {len} is caught");
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[9u8; 5]);
    assert!(cairn_meta::validate(&longer[..]).is_ok(), "bytes after the end frame are never read");
}
