//! A sync's NEWLEADER on a peer link, in parts.
//!
//! A NEWLEADER carries a SNAP's snapshot image, which grows with the tree (about 117 bytes per
//! znode of 100 bytes), and the txns of a DIFF (up to `commitLogCount` of them, each up to
//! jute.maxbuffer). Neither travels in one frame: one frame would bound the tree, or the txns,
//! a follower can sync from (the frame limit), and would make both ends hold them several
//! times over (the message, its encoding, the write and read buffers). The sender [`split`]s
//! a NEWLEADER into [`PeerMessage::ImagePiece`]s of at most [`PIECE`] bytes (slices of the
//! image that copy nothing), then [`PeerMessage::SyncTxns`] batches of at most [`PIECE`]
//! bytes of bodies (or one larger txn), then the NEWLEADER itself with an empty image and no
//! txn; the receiver's [`SyncJoiner`] gathers the parts and hands the NEWLEADER on whole. The
//! Zab cores never see a part.

use crate::codec::CodecError;
use crate::image_buffer::ImageBuffer;
use crate::peer::{PeerMessage, Snapshot, ZabMessage};
use crate::Txn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Largest piece of an image, and the bodies a batch of txns holds unless one txn is larger.
pub const PIECE: usize = 1 << 20;

/// Largest budget of a [`SyncJoiner::default`] (64 GiB, the image of a tree of several
/// hundred million znodes); servers give their links a smaller one, shared (see
/// [`JoinBudget`]).
pub const MAX_JOINED: usize = 1 << 36;

/// The bytes of parts the joiners sharing it may hold at once, all together. Parts are counted
/// as they arrive, never on a length a peer claims; the budget bounds what peers that never
/// stop sending them (or several at once) can make a server hold.
#[derive(Debug)]
pub struct JoinBudget {
    held: AtomicUsize,
    limit: usize,
}

impl JoinBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<JoinBudget> {
        Arc::new(JoinBudget {
            held: AtomicUsize::new(0),
            limit,
        })
    }

    /// Takes `n` bytes, if they fit.
    fn take(&self, n: usize) -> Result<(), JoinError> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|total| *total <= self.limit)
            })
            .map(drop)
            .map_err(|_| JoinError::TooLarge(self.limit))
    }

    /// Gives `n` bytes back.
    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

/// What a link's peer sent that does not join into a NEWLEADER.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinError {
    /// No memory for the image: the system refused to make room for it.
    #[error("no room for a joined image of {0} bytes")]
    NoRoom(usize),
    /// A piece over [`PIECE`] bytes.
    #[error("an image piece of {0} bytes is over the limit of {PIECE}")]
    PieceTooLarge(usize),
    /// Parts over the joiners' budget (its bytes).
    #[error("the parts of NEWLEADERs add up to over {0} bytes")]
    TooLarge(usize),
    /// Parts followed by something other than a NEWLEADER with no image and no txn of its
    /// own (an image, if pieces came).
    #[error("NEWLEADER parts not followed by their NEWLEADER")]
    Unclaimed,
}

/// The messages that carry `msg` on a link: a NEWLEADER goes as its image's pieces, its txns
/// in batches, then itself without them; any other message goes as it is (without an
/// allocation: every message a link sends passes here).
pub fn split(msg: PeerMessage) -> impl Iterator<Item = PeerMessage> {
    match NewLeader::of(msg) {
        Ok(leader) => Parts::Many(leader.into_parts().into_iter()),
        Err(msg) => Parts::One(Some(msg)),
    }
}

/// What [`split`] gives.
enum Parts {
    One(Option<PeerMessage>),
    Many(std::vec::IntoIter<PeerMessage>),
}

impl Iterator for Parts {
    type Item = PeerMessage;

    fn next(&mut self) -> Option<PeerMessage> {
        match self {
            Parts::One(msg) => msg.take(),
            Parts::Many(parts) => parts.next(),
        }
    }
}

/// The fields of a NEWLEADER.
struct NewLeader {
    epoch: u32,
    truncate_to: Option<crate::Zxid>,
    snapshot: Option<Snapshot>,
    txns: Vec<Txn>,
}

impl NewLeader {
    /// The fields of `msg` if it is a NEWLEADER, else `msg` back.
    fn of(msg: PeerMessage) -> Result<NewLeader, PeerMessage> {
        match msg {
            PeerMessage::Zab(ZabMessage::NewLeader {
                epoch,
                truncate_to,
                snapshot,
                txns,
            }) => Ok(NewLeader {
                epoch,
                truncate_to,
                snapshot,
                txns,
            }),
            msg => Err(msg),
        }
    }

    /// The image's pieces, the txns' batches, then the NEWLEADER without them.
    fn into_parts(mut self) -> Vec<PeerMessage> {
        let mut out = Vec::new();
        if let Some(Snapshot { state, .. }) = &mut self.snapshot {
            let image = std::mem::take(state);
            out.extend(
                (0..image.len()).step_by(PIECE).map(|at| {
                    PeerMessage::ImagePiece(image.slice(at..image.len().min(at + PIECE)))
                }),
            );
        }
        out.extend(batches(std::mem::take(&mut self.txns)).map(PeerMessage::SyncTxns));
        out.push(self.into_message());
        out
    }

    fn into_message(self) -> PeerMessage {
        PeerMessage::Zab(ZabMessage::NewLeader {
            epoch: self.epoch,
            truncate_to: self.truncate_to,
            snapshot: self.snapshot,
            txns: self.txns,
        })
    }
}

/// `txns` in order, in batches of at most [`PIECE`] bytes of bodies (a larger txn alone).
fn batches(txns: Vec<Txn>) -> impl Iterator<Item = Vec<Txn>> {
    let mut txns = txns.into_iter().peekable();
    std::iter::from_fn(move || {
        let mut batch = vec![txns.next()?];
        let mut bytes = batch[0].body.len();
        while let Some(next) = txns.next_if(|t| bytes + t.body.len() <= PIECE) {
            bytes += next.body.len();
            batch.push(next);
        }
        Some(batch)
    })
}

/// The room a joined image maps ahead of its bytes at its first piece, at most its budget's
/// limit: address space, whose pages become memory only as pieces are written into them (see
/// [`ImageBuffer`]). An image beyond it moves to a mapping twice as large.
const ROOM_AHEAD: usize = 1 << 30;

/// Joins the parts a link receives into the NEWLEADER that follows them.
#[derive(Debug)]
pub struct SyncJoiner {
    /// The image pieces received so far, in order; `None` when none is pending.
    image: Option<ImageBuffer>,
    /// The txns received so far, in order.
    txns: Vec<Txn>,
    /// Bytes taken from the budget for the parts kept.
    held: usize,
    budget: Arc<JoinBudget>,
}

impl Default for SyncJoiner {
    /// A joiner with a budget of its own of [`MAX_JOINED`] bytes.
    fn default() -> Self {
        SyncJoiner::within(JoinBudget::new(MAX_JOINED))
    }
}

impl Drop for SyncJoiner {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

impl SyncJoiner {
    /// A joiner whose parts count against `budget`.
    pub fn within(budget: Arc<JoinBudget>) -> Self {
        SyncJoiner {
            image: None,
            txns: Vec::new(),
            held: 0,
            budget,
        }
    }

    /// Takes the link's next message: a part is kept (`Ok(None)`); the NEWLEADER after parts
    /// comes back with them; any other message comes back as it is.
    pub fn accept(&mut self, msg: PeerMessage) -> Result<Option<PeerMessage>, JoinError> {
        match msg {
            PeerMessage::ImagePiece(piece) => self.keep_piece(&piece).map(|()| None),
            PeerMessage::SyncTxns(txns) => self.keep_txns(txns).map(|()| None),
            msg if self.image.is_none() && self.txns.is_empty() => Ok(Some(msg)),
            msg => self.claim(msg).map(Some),
        }
    }

    /// As [`SyncJoiner::accept`], for what a peer codec decoded: `None` while a part is
    /// kept, a decoding error as it is.
    pub fn join(
        &mut self,
        frame: Result<PeerMessage, CodecError>,
    ) -> Option<Result<PeerMessage, CodecError>> {
        match frame.map(|msg| self.accept(msg)) {
            Ok(Ok(msg)) => msg.map(Ok),
            Ok(Err(e)) => Some(Err(e.into())),
            Err(e) => Some(Err(e)),
        }
    }

    /// Keeps `piece` unless it is too large or over the budget, which counts the image's bytes.
    /// The image makes room ahead of them in address space only (see [`ROOM_AHEAD`]).
    fn keep_piece(&mut self, piece: &[u8]) -> Result<(), JoinError> {
        if piece.len() > PIECE {
            return Err(JoinError::PieceTooLarge(piece.len()));
        }
        self.take(piece.len())?;
        let held = self.image.as_ref().map_or(0, |i| i.as_slice().len());
        let kept = match self.image.as_mut() {
            Some(image) => image.extend(piece),
            None => ImageBuffer::holding(piece, ROOM_AHEAD.min(self.budget.limit))
                .map(|image| self.image = Some(image)),
        };
        kept.map_err(|_| JoinError::NoRoom(held + piece.len()))
    }

    /// Keeps `txns` unless their bodies are over the budget.
    fn keep_txns(&mut self, txns: Vec<Txn>) -> Result<(), JoinError> {
        for t in txns {
            self.take(t.body.len())?;
            self.txns.push(t);
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<(), JoinError> {
        self.budget.take(n)?;
        self.held += n;
        Ok(())
    }

    /// `msg` with the parts kept, if it is the NEWLEADER they belong to.
    fn claim(&mut self, msg: PeerMessage) -> Result<PeerMessage, JoinError> {
        let image = self.image.take();
        let kept = std::mem::take(&mut self.txns);
        // What is handed on is the server's to hold, as any message it received.
        self.budget.give_back(std::mem::take(&mut self.held));
        let mut leader = NewLeader::of(msg).map_err(|_| JoinError::Unclaimed)?;
        match (&mut leader.snapshot, image) {
            (Some(Snapshot { state, .. }), Some(image)) if state.is_empty() => {
                *state = image.into_bytes();
            }
            (_, None) => {}
            _ => return Err(JoinError::Unclaimed),
        }
        if !leader.txns.is_empty() {
            return Err(JoinError::Unclaimed);
        }
        leader.txns = kept;
        Ok(leader.into_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::PeerCodec;
    use crate::Zxid;
    use bytes::{Bytes, BytesMut};
    use tokio_util::codec::{Decoder, Encoder};

    fn txn(counter: u32, len: usize) -> Txn {
        Txn {
            zxid: Zxid::new(3, counter),
            origin: 1,
            request_id: u64::from(counter),
            body: vec![counter as u8; len],
        }
    }

    fn new_leader(image: Option<Vec<u8>>, txns: Vec<Txn>) -> PeerMessage {
        PeerMessage::Zab(ZabMessage::NewLeader {
            epoch: 3,
            truncate_to: None,
            snapshot: image.map(|image| Snapshot {
                last_zxid: Zxid::new(2, 9),
                state: Bytes::from(image),
            }),
            txns,
        })
    }

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Every message of `msgs` through the wire (split, encoded, decoded, joined), and the
    /// largest frame on the way.
    fn through_the_wire(msgs: Vec<PeerMessage>) -> (Vec<PeerMessage>, usize) {
        let mut codec = PeerCodec::<PeerMessage, PeerMessage>::default();
        let (mut wire, mut largest) = (BytesMut::new(), 0);
        for frame in msgs.into_iter().flat_map(split) {
            let before = wire.len();
            codec.encode(frame, &mut wire).unwrap();
            largest = largest.max(wire.len() - before);
        }
        let mut joiner = SyncJoiner::default();
        let mut out = Vec::new();
        while let Some(frame) = codec.decode(&mut wire).unwrap() {
            out.extend(joiner.accept(frame).unwrap());
        }
        (out, largest)
    }

    #[test]
    fn an_image_crosses_in_pieces_and_arrives_whole() {
        for len in [1, PIECE - 1, PIECE, PIECE + 1, 5 * PIECE + 123] {
            let msgs = vec![
                PeerMessage::Zab(ZabMessage::Ping {
                    committed: Zxid::new(1, 1),
                }),
                new_leader(Some(image(len)), vec![txn(1, 2)]),
                PeerMessage::Zab(ZabMessage::UpToDate {
                    committed: Zxid::new(3, 1),
                }),
            ];
            let (out, largest) = through_the_wire(msgs.clone());
            assert_eq!(out, msgs, "image of {len} bytes");
            assert!(largest < PIECE + 64, "a frame of {largest} bytes");
        }
    }

    #[test]
    fn a_diffs_txns_cross_in_batches_and_arrive_in_order() {
        // 600 txns of 100 KB (a DIFF of 60 MB), one of 3 MiB among them.
        let mut txns: Vec<Txn> = (1..=600).map(|c| txn(c, 100_000)).collect();
        txns[300] = txn(301, 3 * PIECE);
        let msg = new_leader(None, txns.clone());
        let parts: Vec<PeerMessage> = split(msg.clone()).collect();
        let batches: Vec<usize> = parts
            .iter()
            .filter_map(|m| match m {
                PeerMessage::SyncTxns(b) => Some(b.len()),
                _ => None,
            })
            .collect();
        assert_eq!(batches.iter().sum::<usize>(), 600);
        assert!(batches.contains(&1), "the large txn alone: {batches:?}");
        let (out, largest) = through_the_wire(vec![msg.clone()]);
        assert_eq!(out, vec![msg]);
        assert!(largest < 3 * PIECE + 1024, "a frame of {largest} bytes");
    }

    #[test]
    fn a_large_image_is_sliced_without_copying() {
        let msg = new_leader(Some(image(3 * PIECE)), Vec::new());
        let PeerMessage::Zab(ZabMessage::NewLeader {
            snapshot: Some(s), ..
        }) = &msg
        else {
            unreachable!()
        };
        let start = s.state.as_ptr() as usize;
        let pieces: Vec<PeerMessage> = split(msg.clone()).collect();
        assert_eq!(pieces.len(), 4);
        for (i, piece) in pieces[..3].iter().enumerate() {
            let PeerMessage::ImagePiece(piece) = piece else {
                panic!("{piece:?}")
            };
            assert_eq!(piece.as_ptr() as usize, start + i * PIECE);
        }
    }

    #[test]
    fn other_messages_go_as_they_are() {
        let ping = PeerMessage::Zab(ZabMessage::Ping {
            committed: Zxid::ZERO,
        });
        assert_eq!(split(ping.clone()).collect::<Vec<_>>(), vec![ping.clone()]);
        let bare = new_leader(Some(Vec::new()), Vec::new());
        assert_eq!(split(bare.clone()).collect::<Vec<_>>(), vec![bare.clone()]);
        let mut joiner = SyncJoiner::default();
        assert_eq!(joiner.accept(bare.clone()), Ok(Some(bare)));
        assert_eq!(joiner.accept(ping.clone()), Ok(Some(ping)));
    }

    #[test]
    fn parts_not_followed_by_their_new_leader_are_refused() {
        let piece = || PeerMessage::ImagePiece(Bytes::from_static(b"abc"));
        let ping = PeerMessage::Zab(ZabMessage::Ping {
            committed: Zxid::ZERO,
        });
        let mut joiner = SyncJoiner::default();
        assert_eq!(joiner.accept(piece()), Ok(None));
        assert_eq!(joiner.accept(ping.clone()), Err(JoinError::Unclaimed));
        let mut joiner = SyncJoiner::default();
        assert_eq!(joiner.accept(piece()), Ok(None));
        let whole = new_leader(Some(vec![1]), Vec::new());
        assert_eq!(joiner.accept(whole), Err(JoinError::Unclaimed));
        let mut joiner = SyncJoiner::default();
        assert_eq!(joiner.accept(piece()), Ok(None));
        assert_eq!(
            joiner.accept(new_leader(None, Vec::new())),
            Err(JoinError::Unclaimed)
        );
        let mut joiner = SyncJoiner::default();
        assert_eq!(
            joiner.accept(PeerMessage::SyncTxns(vec![txn(1, 1)])),
            Ok(None)
        );
        assert_eq!(joiner.accept(ping), Err(JoinError::Unclaimed));
        let mut joiner = SyncJoiner::default();
        assert_eq!(
            joiner.accept(PeerMessage::SyncTxns(vec![txn(1, 1)])),
            Ok(None)
        );
        let own = new_leader(None, vec![txn(2, 1)]);
        assert_eq!(joiner.accept(own), Err(JoinError::Unclaimed));
    }

    #[test]
    fn oversized_parts_are_refused_before_they_are_kept() {
        let mut joiner = SyncJoiner::default();
        let big = PeerMessage::ImagePiece(Bytes::from(vec![0; PIECE + 1]));
        assert_eq!(joiner.accept(big), Err(JoinError::PieceTooLarge(PIECE + 1)));
        assert!(joiner.image.is_none());
        let mut joiner = SyncJoiner::within(JoinBudget::new(3));
        assert_eq!(joiner.keep_piece(&[1, 2]), Ok(()));
        assert_eq!(joiner.keep_piece(&[3]), Ok(()));
        assert_eq!(joiner.keep_piece(&[4]), Err(JoinError::TooLarge(3)));
        let image = |j: &SyncJoiner| j.image.as_ref().map(|i| i.as_slice().to_vec());
        assert_eq!(image(&joiner), Some(vec![1, 2, 3]));
        assert_eq!(joiner.held, 3, "the bytes kept");
        // The room ahead is made once, within the budget: the image is never copied to grow.
        assert_eq!(joiner.image.as_ref().map(ImageBuffer::room), Some(3));
        let mut joiner = SyncJoiner::within(JoinBudget::new(4 << 30));
        assert_eq!(joiner.keep_piece(&[1; 100]), Ok(()));
        assert_eq!(
            joiner.image.as_ref().map(ImageBuffer::room),
            Some(ROOM_AHEAD)
        );
        assert_eq!(joiner.held, 100);
        let mut joiner = SyncJoiner::within(JoinBudget::new(3));
        assert_eq!(joiner.keep_txns(vec![txn(1, 2), txn(2, 1)]), Ok(()));
        assert_eq!(
            joiner.keep_txns(vec![txn(3, 1)]),
            Err(JoinError::TooLarge(3))
        );
        assert_eq!(joiner.txns.len(), 2);
    }

    #[test]
    fn joiners_sharing_a_budget_hold_at_most_it_together_and_give_it_back() {
        let budget = JoinBudget::new(5);
        let piece = |n| PeerMessage::ImagePiece(Bytes::from(vec![7; n]));
        let mut first = SyncJoiner::within(budget.clone());
        let mut second = SyncJoiner::within(budget.clone());
        assert_eq!(first.accept(piece(3)), Ok(None));
        assert_eq!(second.accept(piece(3)), Err(JoinError::TooLarge(5)));
        assert_eq!(second.accept(piece(2)), Ok(None));
        // A joined NEWLEADER gives its bytes back, and so does a dropped joiner.
        let joined = first.accept(new_leader(Some(Vec::new()), Vec::new()));
        assert_eq!(joined, Ok(Some(new_leader(Some(vec![7; 3]), Vec::new()))));
        assert_eq!(first.accept(piece(3)), Ok(None));
        drop(second);
        drop(first);
        let mut third = SyncJoiner::within(budget);
        assert_eq!(third.accept(piece(5)), Ok(None));
    }
}
