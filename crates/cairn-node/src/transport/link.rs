//! A node's outgoing link speed (`peer_rate`): data sent to other nodes (chunks, shards,
//! streams, in requests and in answers) is paced to at most that many bytes per second, as
//! if the node had a link of that speed. Transfers queue for the link one after another; an
//! idle link saves no credit for later bursts.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The pacing of one node's outgoing data.
#[derive(Debug)]
pub struct Link {
    /// Bytes per second; 0 is unlimited.
    rate: u64,
    /// When the link is free again.
    free_at: Mutex<Instant>,
}

impl Link {
    /// A link of `rate` bytes per second (0: unlimited).
    pub fn new(rate: u64) -> Self {
        Link { rate, free_at: Mutex::new(Instant::now()) }
    }

    /// Waits until `n` bytes have had their turn on the link.
    pub async fn send(&self, n: usize) {
        if self.rate == 0 || n == 0 {
            return;
        }
        let done = {
            let mut free_at = self.free_at.lock().expect("link lock");
            let start = (*free_at).max(Instant::now());
            *free_at = start + Duration::from_secs_f64(n as f64 / self.rate as f64);
            *free_at
        };
        tokio::time::sleep_until(done).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transfers_queue_at_the_link_speed_and_idle_time_is_not_saved() {
        // Lower bounds only: a loaded machine may be slower, never faster.
        let link = Link::new(10 << 20);
        let t0 = Instant::now();
        tokio::join!(link.send(512 << 10), link.send(512 << 10));
        assert!(t0.elapsed() >= Duration::from_millis(99), "two halves queue: 100 ms, took {:?}", t0.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let t1 = Instant::now();
        link.send(1 << 20).await;
        assert!(t1.elapsed() >= Duration::from_millis(99), "idle time gives no burst: took {:?}", t1.elapsed());
        let t2 = Instant::now();
        Link::new(0).send(1 << 30).await;
        assert!(t2.elapsed() < Duration::from_secs(1), "unlimited");
    }
}
