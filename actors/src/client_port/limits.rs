//! What one client and all clients together may hold on this server: connections per IP
//! address (maxClientCnxns), requests in flight (globalOutstandingLimit and a per-connection
//! cap) and queued output per connection.
//!
//! A connection stops reading requests while it is throttled and resumes once the reason is
//! gone; it is closed when its queued output passes a hard bound (a client that does not read).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// Queued output (replies and notifications not yet written to the socket) at which a
/// connection stops reading requests until the client reads.
pub const OUTPUT_PAUSE_BYTES: usize = 1 << 20;

/// Requests one connection may have in flight before it stops reading more.
pub const MAX_CONNECTION_OUTSTANDING: usize = 32;

/// Live connections per client address, bounded by maxClientCnxns.
pub struct PerIpLimit {
    max: u32,
    counts: Mutex<HashMap<IpAddr, u32>>,
}

/// A connection's place in its address's count; dropping it frees the place, so every way a
/// connection ends gives it back.
pub struct IpSlot {
    limit: Arc<PerIpLimit>,
    ip: IpAddr,
}

impl PerIpLimit {
    /// A limit of `max` connections per address; 0 means no limit.
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(PerIpLimit {
            max,
            counts: Mutex::default(),
        })
    }

    /// The configured maximum (0 = unlimited).
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Takes a place for a new connection from `ip`, or None when `ip` already holds the
    /// maximum. IPv4 addresses mapped into IPv6 count as the IPv4 address.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(ip).or_insert(0);
        if self.max != 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            limit: self.clone(),
            ip,
        })
    }

    /// Live connections from `ip`.
    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> u32 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self
            .limit
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Requests in flight on the whole server (globalOutstandingLimit).
pub struct Load {
    outstanding: AtomicUsize,
    limit: usize,
    changed: Notify,
}

impl Load {
    /// A server-wide limit of `limit` requests in flight; 0 means no limit.
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Load {
            outstanding: AtomicUsize::new(0),
            limit: limit as usize,
            changed: Notify::new(),
        })
    }

    /// Requests read from clients and not answered yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    fn over(&self) -> bool {
        self.limit != 0 && self.outstanding() >= self.limit
    }

    fn release(&self, n: usize) {
        if n > 0 {
            self.outstanding.fetch_sub(n, Ordering::Relaxed);
            self.changed.notify_waiters();
        }
    }
}

/// Why a connection does not read its next request now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttle {
    /// Its client has not read enough of its replies.
    Output,
    /// It has [`MAX_CONNECTION_OUTSTANDING`] requests in flight.
    Requests,
    /// The server has globalOutstandingLimit requests in flight (and this connection some).
    Server,
}

/// One connection's requests in flight and queued output, shared by its reader, its writer
/// and the sink the service answers through.
pub struct Flow {
    load: Arc<Load>,
    outstanding: AtomicUsize,
    queued: AtomicUsize,
    max_queued: usize,
    overflowed: AtomicBool,
    ended: AtomicBool,
    changed: Notify,
}

impl Flow {
    /// A connection counted in `load` whose queued output may not pass `max_queued` bytes.
    pub fn new(load: Arc<Load>, max_queued: usize) -> Arc<Self> {
        Arc::new(Flow {
            load,
            outstanding: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            max_queued,
            overflowed: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    /// The hard output bound for a server whose largest frame is `max_frame` bytes: room for
    /// the pause threshold plus a reply to every request a connection may have in flight.
    pub fn max_queued_for(max_frame: usize) -> usize {
        OUTPUT_PAUSE_BYTES + MAX_CONNECTION_OUTSTANDING * max_frame
    }

    /// A request was read and handed to the service.
    pub fn request_started(&self) {
        if !self.ended.load(Ordering::Relaxed) {
            self.outstanding.fetch_add(1, Ordering::Relaxed);
            self.load.outstanding.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One request was answered.
    pub fn request_answered(&self) {
        let taken = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            self.load.release(1);
            self.changed.notify_waiters();
        }
    }

    /// Whether every request read so far was answered. Acquires what the service did before
    /// answering the last one (it published the tree that reply was made from).
    pub fn idle(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) == 0
    }

    /// Counts `bytes` of output queued; false (and the connection is to be closed) when that
    /// would pass the hard bound.
    pub fn queue(&self, bytes: usize) -> bool {
        let before = self.queued.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.max_queued {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            self.overflowed.store(true, Ordering::Relaxed);
            self.changed.notify_waiters();
            return false;
        }
        true
    }

    /// `bytes` of queued output were written to the socket.
    pub fn written(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Output bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Why the connection should not read its next request now, if it should not.
    pub fn throttle(&self) -> Option<Throttle> {
        let outstanding = self.outstanding.load(Ordering::Relaxed);
        if self.queued() >= OUTPUT_PAUSE_BYTES {
            Some(Throttle::Output)
        } else if outstanding >= MAX_CONNECTION_OUTSTANDING {
            Some(Throttle::Requests)
        } else if outstanding > 0 && self.load.over() {
            // Like ZooKeeper, only connections with requests of their own in flight wait, so
            // every client keeps making progress.
            Some(Throttle::Server)
        } else {
            None
        }
    }

    /// Waits until the connection may read its next request (or its output overflowed).
    pub async fn wait_for_room(&self) {
        loop {
            let mine = self.changed.notified();
            let all = self.load.changed.notified();
            tokio::pin!(mine, all);
            mine.as_mut().enable();
            all.as_mut().enable();
            if self.throttle().is_none() || self.has_overflowed() {
                return;
            }
            tokio::select! {
                _ = mine => {}
                _ = all => {}
            }
        }
    }

    /// Whether queued output passed the hard bound.
    pub fn has_overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Waits until queued output passes the hard bound.
    pub async fn overflow(&self) {
        loop {
            let mine = self.changed.notified();
            tokio::pin!(mine);
            mine.as_mut().enable();
            if self.has_overflowed() {
                return;
            }
            mine.await;
        }
    }

    /// The connection ended: its requests in flight no longer count toward the server's.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Relaxed);
        self.load
            .release(self.outstanding.swap(0, Ordering::Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_limit_counts_each_address_and_frees_on_drop() {
        let limit = PerIpLimit::new(2);
        let a = limit.admit(ip("127.0.0.1")).unwrap();
        let _b = limit.admit(ip("127.0.0.1")).unwrap();
        assert!(limit.admit(ip("127.0.0.1")).is_none());
        let mapped = IpAddr::V6(Ipv6Addr::from(0xffff_7f00_0001u128));
        assert!(
            limit.admit(mapped).is_none(),
            "mapped IPv4 is the same address"
        );
        let _other = limit.admit(ip("127.0.0.2")).unwrap();
        drop(a);
        assert_eq!(limit.count(ip("127.0.0.1")), 1);
        let _c = limit.admit(ip("127.0.0.1")).unwrap();
        drop(_c);
        drop(_b);
        assert_eq!(limit.count(ip("127.0.0.1")), 0);
        assert!(limit.counts.lock().unwrap().get(&ip("127.0.0.1")).is_none());
    }

    #[test]
    fn zero_means_no_per_ip_limit() {
        let limit = PerIpLimit::new(0);
        let slots: Vec<_> = (0..500)
            .map(|_| limit.admit(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(limit.count(ip("10.0.0.1")), 500);
        drop(slots);
        assert_eq!(limit.count(ip("10.0.0.1")), 0);
    }

    #[test]
    fn output_over_the_pause_threshold_throttles_until_written() {
        let flow = Flow::new(Load::new(0), Flow::max_queued_for(1000));
        assert!(flow.queue(OUTPUT_PAUSE_BYTES - 1));
        assert_eq!(flow.throttle(), None);
        assert!(flow.queue(1));
        assert_eq!(flow.throttle(), Some(Throttle::Output));
        flow.written(1);
        assert_eq!(flow.throttle(), None);
    }

    #[test]
    fn output_over_the_hard_bound_overflows() {
        let flow = Flow::new(Load::new(0), 100);
        assert!(flow.queue(100));
        assert!(!flow.has_overflowed());
        assert!(!flow.queue(1));
        assert!(flow.has_overflowed());
        assert_eq!(flow.queued(), 100, "the refused frame is not counted");
    }

    #[test]
    fn requests_in_flight_per_connection_throttle() {
        let flow = Flow::new(Load::new(0), 1 << 30);
        for _ in 0..MAX_CONNECTION_OUTSTANDING {
            assert_eq!(flow.throttle(), None);
            flow.request_started();
        }
        assert_eq!(flow.throttle(), Some(Throttle::Requests));
        flow.request_answered();
        assert_eq!(flow.throttle(), None);
    }

    #[test]
    fn the_global_limit_throttles_only_connections_with_requests_in_flight() {
        let load = Load::new(3);
        let busy = Flow::new(load.clone(), 1 << 30);
        let idle = Flow::new(load.clone(), 1 << 30);
        for _ in 0..3 {
            busy.request_started();
        }
        assert_eq!(load.outstanding(), 3);
        assert_eq!(busy.throttle(), Some(Throttle::Server));
        assert_eq!(idle.throttle(), None);
        idle.request_started();
        assert_eq!(idle.throttle(), Some(Throttle::Server));
        busy.request_answered();
        idle.request_answered();
        assert_eq!(busy.throttle(), None);
        assert_eq!(load.outstanding(), 2);
    }

    #[test]
    fn an_ended_connection_gives_back_its_requests_once() {
        let load = Load::new(10);
        let flow = Flow::new(load.clone(), 1 << 30);
        flow.request_started();
        flow.request_started();
        flow.end();
        assert_eq!(load.outstanding(), 0);
        // A reply the service produces after the end does not count twice.
        flow.request_answered();
        flow.request_started();
        assert_eq!(load.outstanding(), 0);
    }

    #[test]
    fn answers_beyond_requests_do_not_underflow() {
        let load = Load::new(10);
        let flow = Flow::new(load.clone(), 1 << 30);
        flow.request_answered();
        flow.request_started();
        assert_eq!(load.outstanding(), 1);
    }

    #[tokio::test]
    async fn a_throttled_reader_wakes_when_the_output_drains() {
        let flow = Flow::new(Load::new(0), 1 << 30);
        assert!(flow.queue(OUTPUT_PAUSE_BYTES));
        let waiter = {
            let flow = flow.clone();
            tokio::spawn(async move { flow.wait_for_room().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        flow.written(OUTPUT_PAUSE_BYTES);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
