//! A linearizability checker for versioned registers (a znode's data and version).
//!
//! The model: a register holds `(value, version)`; an unconditional set stores a value and bumps
//! the version; a compare-and-set stores only when the version matches, and fails with
//! BadVersion otherwise; a read returns `(value, version)`. Keys are independent, so each key's
//! history is checked on its own (P-compositionality).
//!
//! The search is Wing and Gong's, with Lowe's just-in-time linearization and Porcupine's memo
//! of (set of linearized operations, state): walk the call and return events in time order;
//! at a call, try to linearize that operation now; at a return whose operation is not yet
//! linearized, undo the last choice. An operation whose outcome is unknown (a timeout, a lost
//! connection) returns "at infinity": it may take effect at any time after its call, or never.
//! A step bound (and a bound on the memo's size) turns a pathological history into
//! [`Verdict::Undecided`] instead of an endless search.
//!
//! Unknown writes pile up over a long run (every write cut off by a partition), and a plain
//! search tries every order of them at every point. Three reductions keep it linear in
//! practice without giving up exactness: operations with a known outcome are tried before
//! unknown ones; written values no read returned are merged into one, so unknown writes of
//! such values are interchangeable and only one of each kind is tried per step; an unknown CAS
//! is tried only where it would apply (versions only grow, so a failed CAS placed later is
//! the same as one placed now). Once every known operation is placed the rest go last.

use std::collections::{BTreeMap, HashSet};

/// A register's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Register {
    /// The value last stored.
    pub value: u64,
    /// How many sets took effect (ZooKeeper's data version).
    pub version: i32,
}

/// What a client asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Read value and version.
    Read,
    /// Store `value` whatever the version.
    Set(u64),
    /// Store `value` if the version is `expected`.
    Cas {
        /// The version the client expects.
        expected: i32,
        /// The value to store.
        value: u64,
    },
}

/// What the client learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A read returned this.
    Read(Register),
    /// A set or CAS was acknowledged; the register now has this version.
    Written {
        /// The version the server returned.
        version: i32,
    },
    /// A CAS was refused because the version did not match (nothing changed).
    BadVersion,
    /// A definite failure that this model never allows (e.g. NoNode on a key that exists).
    Failed(i32),
    /// No answer: the operation may have taken effect, at any time after its call, or not.
    Unknown,
}

/// One operation on one key, with its real-time interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// Which client ran it (for reports only).
    pub client: usize,
    /// Which register.
    pub key: usize,
    /// The request.
    pub call: Call,
    /// The answer.
    pub outcome: Outcome,
    /// When it was invoked.
    pub invoked: u64,
    /// When the answer arrived (ignored for unknown outcomes).
    pub completed: u64,
}

/// What the checker found for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, consistent with real time, explains every outcome.
    Linearizable,
    /// No order does. `stuck` is an operation whose answer could not be explained, taken from
    /// the deepest point the search reached, with `linearized` operations placed before it.
    NotLinearizable {
        /// The operation the search could not get past.
        stuck: Op,
        /// How many operations the deepest attempt had placed.
        linearized: usize,
    },
    /// The step bound was reached first.
    Undecided,
}

/// The effect of `call` with answer `outcome` on `state`: the next state, or `None` when the
/// answer is impossible from that state.
pub fn step(state: Register, call: Call, outcome: Outcome) -> Option<Register> {
    let bumped = |value| {
        state
            .version
            .checked_add(1)
            .map(|version| Register { value, version })
    };
    match (call, outcome) {
        (Call::Read, Outcome::Read(r)) => (r == state).then_some(state),
        (Call::Read, Outcome::Unknown) => Some(state),
        (Call::Set(v), Outcome::Written { version }) => bumped(v).filter(|n| n.version == version),
        (Call::Set(v), Outcome::Unknown) => bumped(v),
        (Call::Cas { expected, value }, Outcome::Written { version }) => (state.version
            == expected)
            .then(|| bumped(value))?
            .filter(|n| n.version == version),
        (Call::Cas { expected, .. }, Outcome::BadVersion) => {
            (state.version != expected).then_some(state)
        }
        (Call::Cas { expected, value }, Outcome::Unknown) => {
            if state.version == expected {
                bumped(value)
            } else {
                Some(state)
            }
        }
        _ => None,
    }
}

/// Checks every key's history, each from `initial`, with at most `max_steps` search steps per
/// key. Reads with unknown outcome say nothing and are left out.
pub fn check(ops: &[Op], initial: Register, max_steps: u64) -> BTreeMap<usize, Verdict> {
    let mut by_key: BTreeMap<usize, Vec<Op>> = BTreeMap::new();
    for op in ops {
        if !(op.call == Call::Read && op.outcome == Outcome::Unknown) {
            by_key.entry(op.key).or_default().push(*op);
        }
    }
    by_key
        .into_iter()
        .map(|(key, ops)| (key, check_one(&ops, initial, max_steps)))
        .collect()
}

/// A call or return event in the time-ordered list.
#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    is_call: bool,
}

/// The events of `ops` in time order, as a doubly linked list that entries can be lifted out
/// of and put back (dancing links). Index 0 is the head sentinel, `events.len() + 1` the tail.
struct Events {
    events: Vec<Event>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each operation, the list index of its return event.
    ret: Vec<usize>,
}

impl Events {
    fn new(ops: &[Op]) -> Events {
        let mut timed: Vec<(u64, bool, Event)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            let done = match op.outcome {
                Outcome::Unknown => u64::MAX,
                _ => op.completed,
            };
            timed.push((
                op.invoked,
                false,
                Event {
                    op: i,
                    is_call: true,
                },
            ));
            timed.push((
                done,
                true,
                Event {
                    op: i,
                    is_call: false,
                },
            ));
        }
        // At equal times calls come first: touching intervals count as concurrent.
        timed.sort_by_key(|(t, is_return, e)| (*t, *is_return, e.op));
        let events: Vec<Event> = timed.into_iter().map(|(_, _, e)| e).collect();
        let n = events.len();
        let mut ret = vec![0; ops.len()];
        for (i, e) in events.iter().enumerate() {
            if !e.is_call {
                ret[e.op] = i + 1;
            }
        }
        Events {
            events,
            next: (1..=n + 1).chain([n + 1]).collect(),
            prev: [0].into_iter().chain(0..=n).collect(),
            ret,
        }
    }

    /// The operation of the first return event still in the list.
    fn first_return(&self) -> Option<usize> {
        let mut at = self.next[0];
        while at != self.tail() && self.get(at).is_call {
            at = self.next[at];
        }
        (at != self.tail()).then(|| self.get(at).op)
    }

    fn tail(&self) -> usize {
        self.events.len() + 1
    }

    fn get(&self, at: usize) -> Event {
        self.events[at - 1]
    }

    fn unlink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = at;
        self.prev[n] = at;
    }

    /// Takes call `at` and its return out of the list.
    fn lift(&mut self, at: usize) {
        let r = self.ret[self.get(at).op];
        self.unlink(at);
        self.unlink(r);
    }

    /// Puts back what the last [`Events::lift`] of `at` took out.
    fn unlift(&mut self, at: usize) {
        let r = self.ret[self.get(at).op];
        self.relink(r);
        self.relink(at);
    }
}

/// The set of linearized operations, as bits.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn set(&mut self, i: usize, on: bool) {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if on {
            self.0[w] |= b;
        } else {
            self.0[w] &= !b;
        }
    }
}

/// The memo may hold at most this many bytes of operation sets before the key is undecided.
const MEMO_BYTES: usize = 1 << 30;

/// Written values that no read returned, replaced by one value no read returned: such writes
/// differ only in when they may happen, which makes unknown ones interchangeable.
fn canonical(ops: &[Op]) -> Vec<Op> {
    let read: HashSet<u64> = ops
        .iter()
        .filter_map(|o| match o.outcome {
            Outcome::Read(r) => Some(r.value),
            _ => None,
        })
        .collect();
    let unseen = (0..=u64::MAX)
        .rev()
        .find(|v| !read.contains(v))
        .unwrap_or(0);
    let hide = |v: u64| if read.contains(&v) { v } else { unseen };
    ops.iter()
        .map(|o| {
            let call = match o.call {
                Call::Read => Call::Read,
                Call::Set(v) => Call::Set(hide(v)),
                Call::Cas { expected, value } => Call::Cas {
                    expected,
                    value: hide(value),
                },
            };
            Op { call, ..*o }
        })
        .collect()
}

/// One level of the search: the operations that may go next, in the order tried.
struct Level {
    candidates: Vec<usize>,
    tried: usize,
    /// The entry lifted to descend from this level, and the state before it.
    lifted: Option<(usize, Register)>,
}

/// The entries that may be linearized next from `state`: every call before the first return
/// still in the list; calls with a known outcome first, then unknown ones, skipping an unknown
/// CAS that would not apply now (placing it later keeps every option) and an unknown call
/// identical to one already listed (the two are interchangeable).
fn candidates(list: &Events, ops: &[Op], state: Register) -> Vec<usize> {
    let mut known = Vec::new();
    let mut unknown: Vec<usize> = Vec::new();
    let mut at = list.next[0];
    while at != list.tail() && list.get(at).is_call {
        let op = &ops[list.get(at).op];
        if op.outcome != Outcome::Unknown {
            known.push(at);
        } else if let Call::Cas { expected, .. } = op.call {
            if expected == state.version
                && !unknown.iter().any(|u| ops[list.get(*u).op].call == op.call)
            {
                unknown.push(at);
            }
        } else if !unknown.iter().any(|u| ops[list.get(*u).op].call == op.call) {
            unknown.push(at);
        }
        at = list.next[at];
    }
    known.extend(unknown);
    known
}

fn check_one(ops: &[Op], initial: Register, max_steps: u64) -> Verdict {
    let ops = canonical(ops);
    let mut list = Events::new(&ops);
    let words = ops.len().div_ceil(64);
    let max_memo = MEMO_BYTES / (words * 8 + 16).max(1);
    let mut linearized = Bits(vec![0; words]);
    let mut seen: HashSet<(Bits, Register)> = HashSet::new();
    let mut known_left = ops.iter().filter(|o| o.outcome != Outcome::Unknown).count();
    let mut state = initial;
    let mut levels = vec![Level {
        candidates: candidates(&list, &ops, state),
        tried: 0,
        lifted: None,
    }];
    let mut deepest: Option<(usize, usize)> = None;
    let mut steps = 0u64;
    // Once every operation with a known outcome is placed, the unknown ones go at the end.
    while known_left > 0 {
        steps += 1;
        if steps > max_steps || seen.len() > max_memo {
            return Verdict::Undecided;
        }
        let Some(level) = levels.last_mut() else {
            let (linearized, op) = deepest.unwrap_or((0, 0));
            return Verdict::NotLinearizable {
                stuck: ops[op],
                linearized,
            };
        };
        if let Some(&at) = level.candidates.get(level.tried) {
            level.tried += 1;
            let i = list.get(at).op;
            let Some(next) = step(state, ops[i].call, ops[i].outcome) else {
                continue;
            };
            linearized.set(i, true);
            if !seen.insert((linearized.clone(), next)) {
                linearized.set(i, false);
                continue;
            }
            level.lifted = Some((at, state));
            list.lift(at);
            state = next;
            if ops[i].outcome != Outcome::Unknown {
                known_left -= 1;
            }
            levels.push(Level {
                candidates: candidates(&list, &ops, state),
                tried: 0,
                lifted: None,
            });
            continue;
        }
        // Nothing can go next here: note how far this got, and undo the last choice.
        let depth = levels.len() - 1;
        if deepest.is_none_or(|(d, _)| depth > d) {
            deepest = list.first_return().map(|op| (depth, op)).or(deepest);
        }
        levels.pop();
        if let Some((at, before)) = levels.last_mut().and_then(|l| l.lifted.take()) {
            let i = list.get(at).op;
            if ops[i].outcome != Outcome::Unknown {
                known_left += 1;
            }
            linearized.set(i, false);
            list.unlift(at);
            state = before;
        }
    }
    Verdict::Linearizable
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: Register = Register {
        value: 0,
        version: 0,
    };

    fn op(invoked: u64, completed: u64, call: Call, outcome: Outcome) -> Op {
        Op {
            client: 0,
            key: 0,
            call,
            outcome,
            invoked,
            completed,
        }
    }

    fn read(a: u64, b: u64, value: u64, version: i32) -> Op {
        op(a, b, Call::Read, Outcome::Read(Register { value, version }))
    }

    fn set(a: u64, b: u64, value: u64, version: i32) -> Op {
        op(a, b, Call::Set(value), Outcome::Written { version })
    }

    fn verdict(ops: &[Op]) -> Verdict {
        check(ops, INIT, 1_000_000)
            .remove(&0)
            .unwrap_or(Verdict::Linearizable)
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            set(0, 1, 5, 1),
            read(2, 3, 5, 1),
            op(
                4,
                5,
                Call::Cas {
                    expected: 1,
                    value: 6,
                },
                Outcome::Written { version: 2 },
            ),
            op(
                6,
                7,
                Call::Cas {
                    expected: 1,
                    value: 7,
                },
                Outcome::BadVersion,
            ),
            read(8, 9, 6, 2),
        ];
        assert_eq!(verdict(&h), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_writes_may_take_effect_in_either_order() {
        // Two overlapping sets; the versions they got say 7 went first.
        let h = [set(0, 10, 6, 2), set(1, 9, 7, 1), read(11, 12, 6, 2)];
        assert_eq!(verdict(&h), Verdict::Linearizable);
        // A read overlapping a set may see either side of it.
        let h = [set(0, 10, 6, 1), read(1, 2, 0, 0), read(3, 4, 6, 1)];
        assert_eq!(verdict(&h), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_not_linearizable() {
        let h = [set(0, 1, 5, 1), read(2, 3, 0, 0)];
        let Verdict::NotLinearizable { stuck, .. } = verdict(&h) else {
            panic!("a stale read must be found");
        };
        assert_eq!(stuck, h[1]);
    }

    #[test]
    fn a_lost_acknowledged_write_is_not_linearizable() {
        // Set 5 was acknowledged, then a later set got version 1 again: 5 was lost.
        let h = [set(0, 1, 5, 1), set(2, 3, 6, 1), read(4, 5, 6, 1)];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn a_read_that_goes_back_in_time_is_not_linearizable() {
        // Two reads after a concurrent set: once the new value is seen, the old one may not be.
        let h = [set(0, 10, 5, 1), read(1, 2, 5, 1), read(3, 4, 0, 0)];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn cas_outcomes_must_match_the_version() {
        // A CAS on version 0 cannot succeed after a set made it 1.
        let cas = Call::Cas {
            expected: 0,
            value: 9,
        };
        let h = [
            set(0, 1, 5, 1),
            op(2, 3, cas, Outcome::Written { version: 1 }),
        ];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
        // Nor fail before anything changed the version.
        let h = [op(0, 1, cas, Outcome::BadVersion)];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
        // A definite failure the model never allows.
        let h = [op(0, 1, Call::Set(3), Outcome::Failed(-101))];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn an_unknown_write_may_happen_late_or_never() {
        let unknown = |a, v| op(a, 0, Call::Set(v), Outcome::Unknown);
        // Seen long after its call...
        let h = [unknown(0, 5), read(10, 11, 0, 0), read(20, 21, 5, 1)];
        assert_eq!(verdict(&h), Verdict::Linearizable);
        // ...or never seen.
        let h = [unknown(0, 5), set(10, 11, 6, 1), read(20, 21, 6, 1)];
        assert_eq!(verdict(&h), Verdict::Linearizable);
        // But not before its call.
        let h = [read(0, 1, 5, 1), unknown(2, 5)];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
        // And an unknown read says nothing.
        let h = [op(0, 0, Call::Read, Outcome::Unknown), set(1, 2, 4, 1)];
        assert_eq!(verdict(&h), Verdict::Linearizable);
    }

    #[test]
    fn an_unknown_cas_applies_only_on_a_matching_version() {
        let cas = Call::Cas {
            expected: 1,
            value: 7,
        };
        let h = [op(0, 0, cas, Outcome::Unknown), read(5, 6, 7, 1)];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
        let h = [
            set(0, 1, 5, 1),
            op(2, 0, cas, Outcome::Unknown),
            read(5, 6, 7, 2),
        ];
        assert_eq!(verdict(&h), Verdict::Linearizable);
    }

    #[test]
    fn keys_are_checked_apart() {
        let mut other = read(2, 3, 0, 0);
        other.key = 1;
        let h = [set(0, 1, 5, 1), other];
        let verdicts = check(&h, INIT, 1_000);
        assert_eq!(verdicts.get(&0), Some(&Verdict::Linearizable));
        assert_eq!(verdicts.get(&1), Some(&Verdict::Linearizable));
    }

    #[test]
    fn the_step_bound_gives_undecided() {
        let h: Vec<Op> = (0..10u64)
            .map(|i| set(2 * i, 2 * i + 1, i + 1, i as i32 + 1))
            .collect();
        assert_eq!(check(&h, INIT, 3).remove(&0), Some(Verdict::Undecided));
        assert_eq!(
            check(&h, INIT, 1_000).remove(&0),
            Some(Verdict::Linearizable)
        );
    }

    #[test]
    fn unseen_unknown_writes_still_count_one_version_each() {
        let unknown = |v| op(0, 0, Call::Set(v), Outcome::Unknown);
        // Two unknown sets nobody read, then a set that got version 3: both happened.
        let h = [
            unknown(5),
            unknown(6),
            set(10, 11, 7, 3),
            read(12, 13, 7, 3),
        ];
        assert_eq!(verdict(&h), Verdict::Linearizable);
        // Version 4 needs three of them.
        let h = [unknown(5), unknown(6), set(10, 11, 7, 4)];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
        // A read of an unseen write's value cannot be explained by the other one.
        let h = [
            unknown(5),
            unknown(6),
            read(10, 11, 6, 1),
            read(12, 13, 5, 1),
        ];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn an_unknown_cas_on_a_passed_version_never_applies() {
        let cas = Call::Cas {
            expected: 0,
            value: 9,
        };
        let h = [
            set(0, 1, 5, 1),
            op(2, 0, cas, Outcome::Unknown),
            read(5, 6, 5, 1),
        ];
        assert_eq!(verdict(&h), Verdict::Linearizable);
        let h = [
            set(0, 1, 5, 1),
            op(2, 0, cas, Outcome::Unknown),
            read(5, 6, 9, 2),
        ];
        assert!(matches!(verdict(&h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn hundreds_of_pending_unknown_writes_do_not_blow_up() {
        // 300 writes cut off by partitions that never happened, among 3,000 known ones.
        let mut h: Vec<Op> = (0..300u64)
            .map(|i| op(i * 20, 0, Call::Set(1_000_000 + i), Outcome::Unknown))
            .collect();
        h.extend((0..3_000u64).map(|i| set(2 * i, 2 * i + 1, i + 1, i as i32 + 1)));
        h.push(read(7_000, 7_001, 3_000, 3_000));
        assert_eq!(
            check(&h, INIT, 1_000_000).remove(&0),
            Some(Verdict::Linearizable)
        );
        // And one lost acknowledged write among them is still found.
        h.push(set(7_002, 7_003, 5, 3_000));
        assert!(matches!(
            check(&h, INIT, 100_000_000).remove(&0),
            Some(Verdict::NotLinearizable { .. })
        ));
    }

    #[test]
    fn a_long_sequential_history_checks_quickly() {
        let h: Vec<Op> = (0..20_000u64)
            .map(|i| set(2 * i, 2 * i + 1, i + 1, i as i32 + 1))
            .collect();
        assert_eq!(verdict(&h), Verdict::Linearizable);
    }
}
