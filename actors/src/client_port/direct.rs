//! Reads answered on the connection's own thread, without a hop through the request pipeline actor.
//!
//! The actor publishes immutable tree versions ([`PublishedTree`]), lazily: publishing makes the
//! next write copy the tree's shared chunks, so a version is published only when a connection
//! wanted a newer one. Each published version carries the number of batches applied when it
//! was taken; the actor counts a batch ([`PublishedTree::applying`]) before it applies it, fires
//! its watches or answers its writes. A connection answers a tree read itself only when
//! - the published version is current (its count is the count now): a version taken before a
//!   batch whose reply or watch event the client may have seen is never read; a stale one sends
//!   the read to the actor and asks for a new version, which the actor publishes once done with
//!   the message at hand. A current version contains only batches whose events were queued, so
//!   a reply made from it comes after the events of the changes it shows;
//! - its session is established read-write here ([`SessionShare::enable`]), so a move or a
//!   handshake still pending keeps the read behind it;
//! - every earlier request of the connection was answered (the connection is idle), so the read
//!   is answered after them (FIFO) and sees the tree they left: a session reads its own writes;
//! - the published version says the server serves (in a quorum), and
//! - the read sets no watch: registrations stay with the actor, which fires watches as it
//!   applies, so a watch is never registered against a version older than the changes fired.
//!
//! Everything else goes to the actor as before.
//!
//! A version that is no longer current is released at once (the actor drops it when it counts
//! the next batch, and readers hold versions only weakly between reads), so it never keeps
//! deleted znodes alive, and the actor's next writes change the tree's chunks in place instead
//! of copying them.

use super::reads::{is_tree_read, tree_read};
use super::service::frame;
use crate::data_tree::DataTree;
use crate::metrics::ServerMetrics;
use ensemble_messages::zk::{OpCode, SessionId};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Instant;

/// One applied tree version, whether the server serves clients with it, and the number of
/// batches applied when it was taken.
#[derive(Debug, Default)]
pub struct ReadView {
    tree: DataTree,
    serving: bool,
    applied: u64,
}

impl ReadView {
    /// The version standing in for a released one: never current, so never read.
    fn stale() -> Self {
        ReadView {
            applied: u64::MAX,
            ..ReadView::default()
        }
    }
}

/// The tree versions the request pipeline publishes for the connection threads.
#[derive(Debug, Default)]
pub struct PublishedTree {
    /// Batches applied (and other changes of the tree or of the serving state).
    applied: AtomicU64,
    /// Versions published, so that a reader reloads only when there is a new one.
    version: AtomicU64,
    /// A reader found the published version stale.
    wanted: AtomicBool,
    /// The published version holds a tree (it was not yet released).
    holds_version: AtomicBool,
    view: RwLock<Arc<ReadView>>,
}

impl PublishedTree {
    /// An empty, not serving, version.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The actor is about to change the tree or the serving state: the published version is
    /// stale from now on, and released. Called before any watch event or reply of the change
    /// is queued.
    pub fn applying(&self) {
        self.applied.fetch_add(1, Ordering::SeqCst);
        if self.holds_version.swap(false, Ordering::SeqCst) {
            self.replace(Arc::new(ReadView::stale()));
        }
    }

    /// Publishes `tree` (an O(1) copy of its persistent maps) and the serving state.
    pub fn publish(&self, tree: &DataTree, serving: bool) {
        self.replace(Arc::new(ReadView {
            tree: tree.read_view(),
            serving,
            applied: self.applied.load(Ordering::SeqCst),
        }));
        self.holds_version.store(true, Ordering::SeqCst);
    }

    /// Makes `view` the published version.
    fn replace(&self, view: Arc<ReadView>) {
        match self.view.write() {
            Ok(mut v) => *v = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Publishes `tree` when a reader wanted a newer version than the published one.
    pub fn publish_if_wanted(&self, tree: &DataTree, serving: bool) {
        if self.wanted.swap(false, Ordering::Relaxed) {
            self.publish(tree, serving);
        }
    }

    fn load(&self) -> Arc<ReadView> {
        match self.view.read() {
            Ok(v) => Arc::clone(&v),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// What a connection's thread knows of its session. The client service keeps it current.
#[derive(Debug, Default)]
pub struct SessionShare {
    enabled: AtomicBool,
    session: AtomicI64,
    auth: RwLock<Arc<[(String, String)]>>,
    answered: AtomicU64,
    touched: AtomicBool,
}

impl SessionShare {
    /// The connection's session is established read-write here with identities `auth`: its
    /// reads may be answered on its thread from now on.
    pub fn enable(&self, session: SessionId, auth: &[(String, String)]) {
        self.session.store(session.0, Ordering::Relaxed);
        self.set_auth(auth);
        self.enabled.store(true, Ordering::Release);
    }

    /// The connection's identities changed (an `auth` request).
    pub fn set_auth(&self, auth: &[(String, String)]) {
        let auth: Arc<[(String, String)]> = Arc::from(auth);
        match self.auth.write() {
            Ok(mut a) => *a = auth,
            Err(poisoned) => *poisoned.into_inner() = auth,
        }
    }

    /// Reads answered on the connection's thread since the last [`SessionShare::reset`].
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Zeroes the count of reads answered (the `crst` word).
    pub fn reset(&self) {
        self.answered.store(0, Ordering::Relaxed);
    }

    /// Whether the session read here since the last call (its activity keeps it alive).
    pub fn take_touched(&self) -> bool {
        self.touched.swap(false, Ordering::Relaxed)
    }

    fn auth(&self) -> Arc<[(String, String)]> {
        match self.auth.read() {
            Ok(a) => Arc::clone(&a),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// A connection's reader of the published tree: answers the reads it may answer itself.
pub struct DirectReader {
    published: Arc<PublishedTree>,
    seen: u64,
    view: Weak<ReadView>,
    share: Arc<SessionShare>,
    metrics: Arc<ServerMetrics>,
}

impl DirectReader {
    /// A reader of `published` for the connection whose session `share` describes.
    pub fn new(
        published: Arc<PublishedTree>,
        share: Arc<SessionShare>,
        metrics: Arc<ServerMetrics>,
    ) -> Self {
        DirectReader {
            view: Weak::new(),
            seen: u64::MAX,
            published,
            share,
            metrics,
        }
    }

    /// The reply to request `xid` when it may be answered here, now (see the module doc);
    /// `idle` says whether every earlier request of the connection was answered.
    pub fn answer(&mut self, idle: bool, xid: i32, code: OpCode, body: &[u8]) -> Option<Vec<u8>> {
        if !idle || !is_tree_read(code) || !self.share.enabled.load(Ordering::Acquire) {
            return None;
        }
        let since = Instant::now();
        let view = self.current();
        if view.applied != self.published.applied.load(Ordering::SeqCst) {
            self.published.wanted.store(true, Ordering::Relaxed);
            return None;
        }
        if !view.serving {
            return None;
        }
        let session = SessionId(self.share.session.load(Ordering::Relaxed));
        let auth = self.share.auth();
        let a = tree_read(&view.tree, session, &auth, code, body)?;
        if !a.watches.is_empty() {
            return None;
        }
        let reply = frame(xid, view.tree.last_applied().0 as i64, a.outcome, &a.body);
        self.share.answered.fetch_add(1, Ordering::Relaxed);
        self.share.touched.store(true, Ordering::Relaxed);
        self.metrics.received();
        self.metrics.sent();
        self.metrics.read_latency.since(since);
        Some(reply)
    }

    /// The latest published version; reloaded only when a newer one was published or the
    /// one seen was released.
    fn current(&mut self) -> Arc<ReadView> {
        let version = self.published.version.load(Ordering::SeqCst);
        if version == self.seen {
            if let Some(view) = self.view.upgrade() {
                return view;
            }
        }
        let view = self.published.load();
        self.view = Arc::downgrade(&view);
        self.seen = version;
        view
    }
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
