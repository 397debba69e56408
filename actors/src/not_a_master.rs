//! Whether the addresses a worker or `submit` was given as Spark masters are something else,
//! so that it stops with a reason instead of dialing forever.
//!
//! A connection that sends bytes no master sends proves at once that its address is not a
//! master. A connection that closes before sending anything proves less: a master killed
//! before it answered a registration does the same. Such an address is judged only after
//! [`CLOSES_IN_A_ROW`] connections in a row closed that way, so a master restarted on the same
//! address is reached again.

use ensemble_messages::codec::CodecError;
use std::collections::BTreeMap;

/// Connections in a row that closed before sending anything, after which their address counts
/// as not a master.
pub const CLOSES_IN_A_ROW: u32 = 3;

/// How a connection to one of the masters ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEnd {
    /// It sent at least one master's message.
    Answered,
    /// It sent something that is not a master's message: why.
    Garbled(String),
    /// It closed before sending anything: why.
    Closed(String),
}

impl LinkEnd {
    /// The peer closed the connection without a word.
    pub fn closed() -> Self {
        LinkEnd::Closed("it closed the connection without answering".into())
    }

    /// The connection failed with `e`: a socket error (a reset, as from a killed process) is a
    /// close; anything else is bytes no master sends.
    pub fn of_error(e: CodecError) -> Self {
        match e {
            CodecError::Io(e) => LinkEnd::Closed(format!("its connection failed: {e}")),
            e => LinkEnd::Garbled(format!("it sent something else: {e}")),
        }
    }
}

/// The verdict over every master address, from how their connections ended.
#[derive(Debug)]
pub struct NotAMaster {
    masters: usize,
    heard: bool,
    /// Per address: connections in a row that ended without an answer, and the last reason.
    strikes: BTreeMap<usize, (u32, String)>,
}

impl NotAMaster {
    /// A verdict over `masters` addresses, none judged yet.
    pub fn new(masters: usize) -> Self {
        NotAMaster {
            masters,
            heard: false,
            strikes: BTreeMap::new(),
        }
    }

    /// Some master sent a master's message: the addresses are masters.
    pub fn heard(&mut self) {
        self.heard = true;
    }

    /// The connection to address `index` ended as `end`. Returns why to give up when no master
    /// ever answered and every address is now judged not a master.
    pub fn ended(&mut self, index: usize, end: LinkEnd) -> Option<String> {
        match end {
            LinkEnd::Answered => {
                self.heard = true;
                self.strikes.remove(&index);
            }
            LinkEnd::Garbled(why) => {
                self.strikes.insert(index, (CLOSES_IN_A_ROW, why));
            }
            LinkEnd::Closed(why) => {
                let strike = self.strikes.entry(index).or_insert((0, String::new()));
                *strike = (strike.0.saturating_add(1), why);
            }
        }
        let judged = self
            .strikes
            .values()
            .filter(|(n, _)| *n >= CLOSES_IN_A_ROW)
            .count();
        if self.heard || judged < self.masters {
            return None;
        }
        self.strikes.get(&index).map(|(_, why)| why.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed() -> LinkEnd {
        LinkEnd::closed()
    }

    #[test]
    fn a_reset_is_a_close_and_a_bad_frame_is_garbled() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(
            LinkEnd::of_error(CodecError::Io(reset)),
            LinkEnd::Closed(_)
        ));
        let huge = CodecError::TooLarge(u64::MAX);
        assert!(matches!(LinkEnd::of_error(huge), LinkEnd::Garbled(_)));
    }

    #[test]
    fn garbled_bytes_judge_an_address_at_once() {
        let mut v = NotAMaster::new(1);
        let why = v.ended(0, LinkEnd::Garbled("it sent something else".into()));
        assert_eq!(why.as_deref(), Some("it sent something else"));
    }

    #[test]
    fn a_close_without_answer_is_judged_only_when_it_repeats() {
        let mut v = NotAMaster::new(1);
        for _ in 1..CLOSES_IN_A_ROW {
            assert_eq!(v.ended(0, closed()), None);
        }
        let why = v.ended(0, closed());
        assert_eq!(
            why.as_deref(),
            Some("it closed the connection without answering")
        );
    }

    #[test]
    fn a_master_killed_before_answering_and_restarted_is_not_judged() {
        let mut v = NotAMaster::new(1);
        assert_eq!(v.ended(0, closed()), None);
        assert_eq!(v.ended(0, LinkEnd::Answered), None);
        for _ in 0..CLOSES_IN_A_ROW {
            assert_eq!(v.ended(0, closed()), None);
        }
    }

    #[test]
    fn every_address_must_be_judged() {
        let mut v = NotAMaster::new(2);
        let garbled = || LinkEnd::Garbled("HTTP".into());
        assert_eq!(v.ended(0, garbled()), None);
        for _ in 1..CLOSES_IN_A_ROW {
            assert_eq!(v.ended(1, closed()), None);
        }
        assert!(v.ended(1, closed()).is_some());
    }

    #[test]
    fn nothing_is_judged_once_a_master_answered() {
        let mut v = NotAMaster::new(2);
        v.heard();
        assert_eq!(v.ended(0, LinkEnd::Garbled("x".into())), None);
        assert_eq!(v.ended(1, LinkEnd::Garbled("x".into())), None);
    }
}
