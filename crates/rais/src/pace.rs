//! [`Pace`]: a limit on bytes and objects per second, shared by every pass.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Spreads maintenance work over time: each [`take`](Pace::take) waits until the
/// work done so far fits both rates. Credit does not pile up while idle beyond one
/// second, so a pass after a quiet hour does not burst.
pub struct Pace {
    bytes_per_sec: f64,
    objects_per_sec: f64,
    /// The earliest time the next unit of work may start.
    next: Mutex<Option<Instant>>,
}

impl Pace {
    pub fn new(bytes_per_sec: u64, objects_per_sec: u64) -> Pace {
        Pace {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            objects_per_sec: objects_per_sec.max(1) as f64,
            next: Mutex::new(None),
        }
    }

    /// Accounts one object of `bytes` bytes and waits until it is within the rates.
    pub async fn take(&self, bytes: u64) {
        let cost = Duration::from_secs_f64(
            (1.0 / self.objects_per_sec).max(bytes as f64 / self.bytes_per_sec),
        );
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let floor = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
            let start = next.map_or(now, |n| n.max(floor));
            *next = Some(start + cost);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn objects_and_bytes_are_both_limited() {
        let pace = Pace::new(1000, 10);
        let started = Instant::now();
        for _ in 0..21 {
            pace.take(1).await;
        }
        // 21 objects at 10/s: the last may start after 2 s (the first goes at once).
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");

        let started = Instant::now();
        pace.take(0).await;
        for _ in 0..3 {
            pace.take(1000).await;
        }
        // Three 1000-byte objects at 1000 B/s: two seconds of waiting after the first.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
    }
}
