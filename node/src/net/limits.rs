//! Per-peer resource limits: what one connected peer may cost this node.

use std::time::{Duration, Instant};

/// Limits applied to every peer connection.
#[derive(Clone, Debug)]
pub struct PeerLimits {
    /// Concurrent bidirectional streams (sync requests) a peer may open.
    pub max_sync_streams: u32,
    /// Concurrent unidirectional streams (pushes) a peer may open.
    pub max_push_streams: u32,
    /// Largest frame read from a peer.
    pub max_frame_bytes: usize,
    /// Sync requests per second a peer may make (token bucket rate)...
    pub syncs_per_second: f64,
    /// ...and pushes per second.
    pub pushes_per_second: f64,
    /// Bucket size: how far above the rate a peer may burst.
    pub burst: f64,
    /// Requests over the limit tolerated before the connection is closed.
    pub max_violations: u32,
    /// A stream must deliver its request within this time.
    pub read_timeout: Duration,
    /// Connection dropped after this long without traffic.
    pub idle_timeout: Duration,
    /// Per-connection flow-control window (bytes in flight from a peer).
    pub receive_window: u32,
    /// Congestion control of every connection.
    pub congestion: crate::config::CongestionControl,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            max_sync_streams: 4,
            max_push_streams: 64,
            max_frame_bytes: super::wire::MAX_FRAME_BYTES,
            syncs_per_second: 200.0,
            pushes_per_second: 2_000.0,
            burst: 400.0,
            max_violations: 100,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            receive_window: 16 << 20,
            congestion: crate::config::CongestionControl::default(),
        }
    }
}

/// A token bucket: `rate` tokens per second, at most `capacity` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, capacity: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_bursts_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5.0, start);
        for _ in 0..5 {
            assert!(bucket.try_take(start));
        }
        assert!(!bucket.try_take(start));
        // 100 ms later one token is back (10/s).
        let later = start + Duration::from_millis(100);
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
        // Never more than the capacity however long it waits.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..5 {
            assert!(bucket.try_take(much_later));
        }
        assert!(!bucket.try_take(much_later));
    }
}
