//! Shared setup of the state machine tests: a fresh, initialised metadata database.
#![allow(dead_code)]

use cairn_core::wire::Target;
use redb::Database;

/// A new metadata database in a temp dir (kept alive by the returned guard).
pub fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("meta.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    cairn_meta::init(&txn).unwrap();
    txn.commit().unwrap();
    (dir, db)
}

/// A path target.
pub fn at(p: &str) -> Target {
    Target::Path(p.parse().unwrap())
}
