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
//! A step bound turns a pathological history into [`Verdict::Undecided`] instead of an endless
//! search.

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

fn check_one(ops: &[Op], initial: Register, max_steps: u64) -> Verdict {
    let mut list = Events::new(ops);
    let mut linearized = Bits(vec![0; ops.len().div_ceil(64)]);
    let mut seen: HashSet<(Bits, Register)> = HashSet::new();
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut state = initial;
    let mut deepest: Option<(usize, usize)> = None;
    let mut at = list.next[0];
    let mut steps = 0u64;
    while list.next[0] != list.tail() {
        steps += 1;
        if steps > max_steps {
            return Verdict::Undecided;
        }
        if at != list.tail() && list.get(at).is_call {
            let i = list.get(at).op;
            if let Some(next) = step(state, ops[i].call, ops[i].outcome) {
                linearized.set(i, true);
                if seen.insert((linearized.clone(), next)) {
                    stack.push((at, state));
                    state = next;
                    list.lift(at);
                    at = list.next[0];
                    continue;
                }
                linearized.set(i, false);
            }
            at = list.next[at];
            continue;
        }
        // A return (or the end) reached before its operation was placed: undo the last choice.
        if deepest.is_none_or(|(depth, _)| stack.len() > depth) && at != list.tail() {
            deepest = Some((stack.len(), list.get(at).op));
        }
        let Some((call, before)) = stack.pop() else {
            let (linearized, op) = deepest.unwrap_or((0, 0));
            return Verdict::NotLinearizable {
                stuck: ops[op],
                linearized,
            };
        };
        state = before;
        linearized.set(list.get(call).op, false);
        list.unlift(call);
        at = list.next[call];
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
        // Many overlapping unknown sets and a read that none of them explains.
        let mut h: Vec<Op> = (0..12)
            .map(|i| op(0, 0, Call::Set(100 + i), Outcome::Unknown))
            .collect();
        h.push(read(1, 2, 1, 1));
        assert_eq!(check(&h, INIT, 1_000).remove(&0), Some(Verdict::Undecided));
        assert!(matches!(
            check(&h, INIT, u64::MAX).remove(&0),
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
