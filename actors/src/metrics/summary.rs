//! A lock-free latency summary: count, sum, min and max since start, and quantiles over the
//! last one to two minutes, estimated from log-scale buckets (4 per power of two, so within
//! about 19% of the true value).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Buckets per power of two.
const SUB: u64 = 4;
/// Enough buckets for any `u64` microseconds.
const BUCKETS: usize = 64 * SUB as usize;
/// How long one window of quantile buckets covers.
const WINDOW: Duration = Duration::from_secs(60);
/// The quantiles rendered, as ZooKeeper's Prometheus provider does for its summaries.
pub const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Durations observed in microseconds; read as milliseconds.
pub struct Summary {
    start: Instant,
    count: AtomicU64,
    sum_us: AtomicU64,
    min_us: AtomicU64,
    max_us: AtomicU64,
    windows: [Window; 2],
}

/// Bucket counts of one window; `id` 0 is a window never used.
struct Window {
    id: AtomicU64,
    buckets: Vec<AtomicU64>,
}

impl Window {
    fn new() -> Self {
        Window {
            id: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// What a summary holds at one moment, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SummarySnapshot {
    /// Observations since start.
    pub count: u64,
    /// Their sum.
    pub sum_ms: f64,
    /// The smallest (0 when none).
    pub min_ms: f64,
    /// The largest (0 when none).
    pub max_ms: f64,
    /// Each of [`QUANTILES`] over the recent window; NaN when it saw nothing.
    pub quantiles: [f64; 3],
}

impl SummarySnapshot {
    /// The mean, 0 when nothing was observed.
    pub fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ms / self.count as f64
        }
    }
}

impl Default for Summary {
    fn default() -> Self {
        Summary {
            start: Instant::now(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
            windows: [Window::new(), Window::new()],
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let log2 = 63 - u64::from(us.leading_zeros());
    let frac = (us >> (log2 - 2)) & (SUB - 1);
    (log2 * SUB + frac) as usize
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    // Below 2 * SUB only the first SUB buckets are used, one value each.
    if i < 2 * SUB {
        return i.min(SUB - 1);
    }
    let (log2, frac) = (i / SUB, i % SUB);
    let bound = (u128::from(SUB + frac + 1) << (log2 - 2)) - 1;
    u64::try_from(bound).unwrap_or(u64::MAX)
}

impl Summary {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.min_us.fetch_min(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
        self.window(self.window_id()).buckets[bucket(us)].fetch_add(1, Relaxed);
    }

    /// Records the time since `since`.
    pub fn since(&self, since: Instant) {
        self.observe(since.elapsed());
    }

    fn window_id(&self) -> u64 {
        self.start.elapsed().as_secs() / WINDOW.as_secs() + 1
    }

    /// The window for `id`, emptied first when it last held an older window.
    fn window(&self, id: u64) -> &Window {
        let w = &self.windows[(id % 2) as usize];
        let seen = w.id.load(Relaxed);
        if seen != id && w.id.compare_exchange(seen, id, Relaxed, Relaxed).is_ok() {
            for b in &w.buckets {
                b.store(0, Relaxed);
            }
        }
        w
    }

    /// The summary now.
    pub fn snapshot(&self) -> SummarySnapshot {
        let count = self.count.load(Relaxed);
        let ms = |us: u64| us as f64 / 1000.0;
        let min = self.min_us.load(Relaxed);
        SummarySnapshot {
            count,
            sum_ms: ms(self.sum_us.load(Relaxed)),
            min_ms: if min == u64::MAX { 0.0 } else { ms(min) },
            max_ms: ms(self.max_us.load(Relaxed)),
            quantiles: self.quantiles().map(|q| q.map_or(f64::NAN, ms)),
        }
    }

    /// [`QUANTILES`] over this window and the one before, in microseconds.
    fn quantiles(&self) -> [Option<u64>; 3] {
        let now = self.window_id();
        let mut counts = vec![0u64; BUCKETS];
        for w in &self.windows {
            let id = w.id.load(Relaxed);
            if id != 0 && id + 1 >= now {
                for (c, b) in counts.iter_mut().zip(&w.buckets) {
                    *c += b.load(Relaxed);
                }
            }
        }
        let total: u64 = counts.iter().sum();
        let max = self.max_us.load(Relaxed);
        QUANTILES.map(|q| {
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            counts.iter().enumerate().find_map(|(i, c)| {
                seen += c;
                (total > 0 && seen >= rank).then(|| upper(i).min(max))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values() {
        for us in [
            0,
            1,
            3,
            4,
            5,
            7,
            8,
            9,
            100,
            1000,
            123_456,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = bucket(us);
            assert!(upper(i) >= us, "{us} above its bucket {i}");
            if i > 0 {
                assert!(upper(i - 1) < us, "{us} fits bucket {}", i - 1);
            }
            assert!(i < BUCKETS);
        }
    }

    #[test]
    fn counts_extremes_and_quantiles() {
        let s = Summary::default();
        let empty = s.snapshot();
        assert_eq!((empty.count, empty.min_ms, empty.avg_ms()), (0, 0.0, 0.0));
        assert!(empty.quantiles.iter().all(|q| q.is_nan()));
        for ms in 1..=100 {
            s.observe(Duration::from_millis(ms));
        }
        let snap = s.snapshot();
        assert_eq!(snap.count, 100);
        assert_eq!((snap.min_ms, snap.max_ms), (1.0, 100.0));
        assert!((snap.avg_ms() - 50.5).abs() < 1e-9);
        let [p50, p90, p99] = snap.quantiles;
        assert!((50.0..=60.0).contains(&p50), "p50 {p50}");
        assert!((90.0..=100.0).contains(&p90), "p90 {p90}");
        assert!((99.0..=100.0).contains(&p99), "p99 {p99}");
    }
}
