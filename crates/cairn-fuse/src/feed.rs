//! Following the cluster's change feed: each answer updates the mount's metadata cache and
//! tells the kernel which inodes' attributes to forget, so a change of attributes made
//! through another mount or the REST API shows here within a round trip, not a timeout.
//!
//! Names are not invalidated in the kernel: unhashing a directory's entry (fuser has no
//! expire-only notification) makes `getcwd` fail for every process inside that directory,
//! and the feed also echoes this mount's own `mkdir`s. The kernel asks again for a name
//! after its 1 s entry timeout, and the mount's cache, which the feed keeps current, answers.

use crate::attr::Inos;
use crate::meta_cache::MetaCache;
use cairn_client::HttpBackend;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long one question to the feed waits for a change (well inside the cache's trust).
const WAIT: Duration = Duration::from_millis(400);
/// Pause before asking again after the feed failed.
const RETRY: Duration = Duration::from_millis(200);

/// Follows the feed of `backend`'s cluster until the task is aborted.
pub(crate) async fn follow(
    backend: Arc<HttpBackend>,
    cache: Arc<MetaCache>,
    kernel: Arc<OnceLock<fuser::Notifier>>,
    inos: Inos,
) {
    // Where to start: an old index is answered with a reset and the current index.
    let mut after = 0;
    loop {
        match backend.changes(after, WAIT).await {
            Ok(batch) => {
                let stale = cache.apply(&batch);
                after = batch.index;
                // Off the runtime's threads: an invalidation waits for the kernel's locks,
                // which a request being served may hold.
                let kernel = kernel.clone();
                if !stale.is_empty() && kernel.get().is_some() {
                    let told = tokio::task::spawn_blocking(move || {
                        if let Some(k) = kernel.get() {
                            tell_kernel(k, inos, &stale)
                        }
                    });
                    let _ = told.await;
                }
            }
            Err(e) => {
                cache.distrust();
                tracing::debug!("change feed: {e}; cached metadata unused until it answers");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Asks the kernel to forget the attributes of the changed inodes `stale` (one it does not
/// hold answers ENOENT, which is fine).
fn tell_kernel(k: &fuser::Notifier, inos: Inos, stale: &[u64]) {
    for ino in stale {
        if let Err(e) = k.inval_inode(inos.kernel(*ino), -1, 0) {
            if e.raw_os_error() != Some(libc::ENOENT) {
                tracing::debug!(ino, "kernel attribute invalidation: {e}");
            }
        }
    }
}
