//! The change feed: what the state machine changed, by log index, kept in memory for
//! clients that cache metadata (the FUSE mount) and ask "what changed after index N?".
//!
//! Each apply records its changes under the last log index it applied. The ring holds the
//! latest [`RING_MAX`] changes; every change at an index above `from` is in it. A question
//! about an earlier index (this node restarted, installed a snapshot, or the ring moved on)
//! is answered with a reset: the asker drops all it cached. Indexes are Raft log indexes, the
//! same on every node, so a client may move to another node and keep its place.

use cairn_core::wire::{Change, ChangeBatch, FEED_MAX};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// Most changes kept.
const RING_MAX: usize = 100_000;

/// The changes of recent applies.
#[derive(Debug)]
pub struct ChangeFeed {
    ring: Mutex<Ring>,
    /// The last index recorded, for waiters.
    last: watch::Sender<u64>,
}

#[derive(Debug)]
struct Ring {
    /// Every change at an index above this one is in `changes`.
    from: u64,
    changes: VecDeque<(u64, Change)>,
}

impl ChangeFeed {
    /// A feed starting at applied index `index` (nothing known before it).
    pub fn new(index: u64) -> Self {
        ChangeFeed { ring: Mutex::new(Ring { from: index, changes: VecDeque::new() }), last: watch::Sender::new(index) }
    }

    /// Records what the entries up to `index` changed.
    pub fn record(&self, index: u64, changes: Vec<Change>) {
        {
            let mut ring = self.ring.lock().expect("feed lock");
            ring.changes.extend(changes.into_iter().map(|c| (index, c)));
            while ring.changes.len() > RING_MAX {
                if let Some((i, _)) = ring.changes.pop_front() {
                    ring.from = ring.from.max(i);
                }
            }
        }
        self.last.send_if_modified(|last| {
            let moved = index > *last;
            *last = (*last).max(index);
            moved
        });
    }

    /// Forgets everything before `index` (a snapshot replaced the state).
    pub fn reset(&self, index: u64) {
        {
            let mut ring = self.ring.lock().expect("feed lock");
            ring.changes.clear();
            ring.from = index;
        }
        self.last.send_modify(|last| *last = (*last).max(index));
    }

    /// The last index recorded.
    pub fn last(&self) -> u64 {
        *self.last.borrow()
    }

    /// The changes after `after`, waiting up to `wait` for one if there are none yet.
    pub async fn since(&self, after: u64, wait: Duration) -> ChangeBatch {
        let mut rx = self.last.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|last| *last > after)).await;
        self.collect(after)
    }

    fn collect(&self, after: u64) -> ChangeBatch {
        let ring = self.ring.lock().expect("feed lock");
        let index = self.last();
        if after < ring.from {
            return ChangeBatch { index, reset: true, changes: Vec::new() };
        }
        // Indexes only grow along the ring: skip the older part by binary search.
        let start = ring.changes.partition_point(|(i, _)| *i <= after);
        if ring.changes.len() - start > FEED_MAX {
            return ChangeBatch { index, reset: true, changes: Vec::new() };
        }
        let changes = ring.changes.range(start..).map(|(_, c)| c.clone()).collect();
        ChangeBatch { index: index.max(after), reset: false, changes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(ino: u64) -> Change {
        Change { ino, name: None, state: 1 }
    }

    #[tokio::test]
    async fn answers_what_changed_after_an_index_and_resets_before_its_start() {
        let feed = ChangeFeed::new(10);
        feed.record(12, vec![ch(1), ch(2)]);
        feed.record(15, vec![ch(3)]);
        let b = feed.since(10, Duration::ZERO).await;
        assert_eq!((b.index, b.reset, b.changes), (15, false, vec![ch(1), ch(2), ch(3)]));
        assert_eq!(feed.since(12, Duration::ZERO).await.changes, vec![ch(3)]);
        assert!(feed.since(9, Duration::ZERO).await.reset, "before the feed's start");
        feed.reset(20);
        assert!(feed.since(15, Duration::ZERO).await.reset, "a snapshot came between");
        assert_eq!(feed.since(20, Duration::ZERO).await.changes, vec![]);
    }

    #[tokio::test]
    async fn a_waiting_question_is_answered_by_the_next_record() {
        let feed = std::sync::Arc::new(ChangeFeed::new(0));
        let f = feed.clone();
        let waiter = tokio::spawn(async move { f.since(0, Duration::from_secs(30)).await });
        tokio::task::yield_now().await;
        feed.record(1, vec![ch(7)]);
        let b = waiter.await.unwrap();
        assert_eq!((b.index, b.changes), (1, vec![ch(7)]));
    }

    #[tokio::test]
    async fn the_ring_forgets_its_oldest_changes_and_says_so() {
        let feed = ChangeFeed::new(0);
        feed.record(1, vec![ch(1)]);
        for i in 0..10 {
            feed.record(2 + i, (0..RING_MAX as u64 / 10).map(ch).collect());
        }
        assert!(feed.since(0, Duration::ZERO).await.reset, "index 1's change is gone");
        let b = feed.since(10, Duration::ZERO).await;
        assert!(!b.reset && b.changes.len() == RING_MAX / 10, "the newest changes are all there");
    }

    #[tokio::test]
    async fn more_changes_than_an_answer_carries_are_a_reset() {
        let feed = ChangeFeed::new(0);
        feed.record(1, (0..FEED_MAX as u64 + 1).map(ch).collect());
        let b = feed.since(0, Duration::ZERO).await;
        assert!(b.reset && b.index == 1);
    }
}
