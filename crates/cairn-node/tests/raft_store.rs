//! openraft's own storage conformance suite against cairn's redb log store and state machine.

use cairn_node::raft::log::LogStore;
use cairn_node::raft::sm::StateMachine;
use cairn_node::raft::{StorageError, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use std::sync::Arc;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(redb::Database::create(dir.path().join("meta.redb")).expect("create db"));
        let log = LogStore::open(db.clone()).expect("open log");
        let sm = StateMachine::open(db, &dir.path().join("snapshots")).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn redb_store_passes_openraft_suite() {
    Suite::test_all(Builder).unwrap();
}
