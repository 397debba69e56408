//! A SNAP's snapshot image on a peer link, in pieces.
//!
//! The image of a tree grows with the tree (about 117 bytes per znode of 100 bytes), so it
//! does not travel in one frame: one frame would bound the tree a follower can sync from (the
//! frame limit) and would make both ends hold the image several times over (the message, its
//! encoding, the write and read buffers). The sender [`split`]s a `NewLeader` that carries an
//! image into [`PeerMessage::ImagePiece`]s of at most [`PIECE`] bytes, slices of the image that
//! copy nothing, then the `NewLeader` itself with an empty image; the receiver's
//! [`ImageJoiner`] gathers the pieces and hands the `NewLeader` on whole. The Zab cores never
//! see a piece.

use crate::codec::CodecError;
use crate::peer::{PeerMessage, Snapshot, ZabMessage};
use bytes::Bytes;

/// Largest piece of an image.
pub const PIECE: usize = 1 << 20;

/// Largest image a link joins (64 GiB, a tree of several hundred million znodes): the pieces
/// are kept as they arrive, never reserved ahead, so this guards only against a peer that
/// never stops sending them.
pub const MAX_IMAGE: usize = 1 << 36;

/// What a link's peer sent that does not join into a `NewLeader`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinError {
    /// A piece over [`PIECE`] bytes.
    #[error("an image piece of {0} bytes is over the limit of {PIECE}")]
    PieceTooLarge(usize),
    /// Pieces adding up to over [`MAX_IMAGE`] bytes.
    #[error("image pieces add up to over {MAX_IMAGE} bytes")]
    ImageTooLarge,
    /// Pieces followed by something other than a `NewLeader` with an empty image.
    #[error("image pieces not followed by a NEWLEADER with an empty image")]
    Unclaimed,
}

/// The messages that carry `msg` on a link: a `NewLeader` with a non-empty image goes as the
/// image's pieces and then itself with an empty image; any other message goes as it is.
pub fn split(msg: PeerMessage) -> Vec<PeerMessage> {
    let PeerMessage::Zab(ZabMessage::NewLeader {
        epoch,
        truncate_to,
        snapshot: Some(Snapshot { last_zxid, state }),
        txns,
    }) = msg
    else {
        return vec![msg];
    };
    let mut out: Vec<PeerMessage> = (0..state.len())
        .step_by(PIECE)
        .map(|at| PeerMessage::ImagePiece(state.slice(at..state.len().min(at + PIECE))))
        .collect();
    out.push(PeerMessage::Zab(ZabMessage::NewLeader {
        epoch,
        truncate_to,
        snapshot: Some(Snapshot {
            last_zxid,
            state: Bytes::new(),
        }),
        txns,
    }));
    out
}

/// Joins the pieces a link receives into the `NewLeader` that follows them.
#[derive(Debug, Default)]
pub struct ImageJoiner {
    /// The pieces received so far, in order; `None` when none is pending.
    pending: Option<Vec<u8>>,
}

impl ImageJoiner {
    /// Takes the link's next message: a piece is kept (`Ok(None)`); the `NewLeader` after
    /// pieces comes back with them as its image; any other message comes back as it is.
    pub fn accept(&mut self, msg: PeerMessage) -> Result<Option<PeerMessage>, JoinError> {
        match msg {
            PeerMessage::ImagePiece(piece) => self.keep(&piece, MAX_IMAGE).map(|()| None),
            msg => match self.pending.take() {
                None => Ok(Some(msg)),
                Some(image) => claim(msg, image).map(Some),
            },
        }
    }

    /// As [`ImageJoiner::accept`], for what a peer codec decoded: `None` while a piece is
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

    /// Keeps `piece` unless it, or the image it adds to beyond `limit`, is too large.
    fn keep(&mut self, piece: &[u8], limit: usize) -> Result<(), JoinError> {
        if piece.len() > PIECE {
            return Err(JoinError::PieceTooLarge(piece.len()));
        }
        let image = self.pending.get_or_insert_with(Vec::new);
        if image.len() + piece.len() > limit {
            return Err(JoinError::ImageTooLarge);
        }
        image.extend_from_slice(piece);
        Ok(())
    }
}

/// `msg` with `image` as its image, if it is a `NewLeader` whose own image is empty.
fn claim(msg: PeerMessage, image: Vec<u8>) -> Result<PeerMessage, JoinError> {
    match msg {
        PeerMessage::Zab(ZabMessage::NewLeader {
            epoch,
            truncate_to,
            snapshot: Some(Snapshot { last_zxid, state }),
            txns,
        }) if state.is_empty() => Ok(PeerMessage::Zab(ZabMessage::NewLeader {
            epoch,
            truncate_to,
            snapshot: Some(Snapshot {
                last_zxid,
                state: Bytes::from(image),
            }),
            txns,
        })),
        _ => Err(JoinError::Unclaimed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::PeerCodec;
    use crate::{Txn, Zxid};
    use bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};

    fn new_leader(image: Vec<u8>) -> PeerMessage {
        PeerMessage::Zab(ZabMessage::NewLeader {
            epoch: 3,
            truncate_to: None,
            snapshot: Some(Snapshot {
                last_zxid: Zxid::new(2, 9),
                state: Bytes::from(image),
            }),
            txns: vec![Txn {
                zxid: Zxid::new(3, 1),
                origin: 1,
                request_id: 4,
                body: vec![1, 2],
            }],
        })
    }

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Every message of `msgs` through the wire (split, encoded, decoded, joined).
    fn through_the_wire(msgs: Vec<PeerMessage>) -> (Vec<PeerMessage>, usize) {
        let mut codec = PeerCodec::<PeerMessage, PeerMessage>::default();
        let (mut wire, mut largest) = (BytesMut::new(), 0);
        for frame in msgs.into_iter().flat_map(split) {
            let before = wire.len();
            codec.encode(frame, &mut wire).unwrap();
            largest = largest.max(wire.len() - before);
        }
        let mut joiner = ImageJoiner::default();
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
                new_leader(image(len)),
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
    fn a_large_image_is_sliced_without_copying() {
        let msg = new_leader(image(3 * PIECE));
        let PeerMessage::Zab(ZabMessage::NewLeader {
            snapshot: Some(s), ..
        }) = &msg
        else {
            unreachable!()
        };
        let start = s.state.as_ptr() as usize;
        let pieces = split(msg.clone());
        assert_eq!(pieces.len(), 4);
        for (i, piece) in pieces[..3].iter().enumerate() {
            let PeerMessage::ImagePiece(piece) = piece else {
                panic!("{piece:?}")
            };
            assert_eq!(piece.as_ptr() as usize, start + i * PIECE);
        }
    }

    #[test]
    fn messages_without_an_image_go_as_they_are() {
        let empty = new_leader(Vec::new());
        assert_eq!(split(empty.clone()), vec![empty.clone()]);
        let mut joiner = ImageJoiner::default();
        assert_eq!(joiner.accept(empty.clone()), Ok(Some(empty)));
    }

    #[test]
    fn pieces_not_followed_by_their_new_leader_are_refused() {
        let piece = || PeerMessage::ImagePiece(Bytes::from_static(b"abc"));
        let mut joiner = ImageJoiner::default();
        assert_eq!(joiner.accept(piece()), Ok(None));
        let ping = PeerMessage::Zab(ZabMessage::Ping {
            committed: Zxid::ZERO,
        });
        assert_eq!(joiner.accept(ping), Err(JoinError::Unclaimed));
        let mut joiner = ImageJoiner::default();
        assert_eq!(joiner.accept(piece()), Ok(None));
        let whole = new_leader(vec![1]);
        assert_eq!(joiner.accept(whole), Err(JoinError::Unclaimed));
    }

    #[test]
    fn oversized_pieces_are_refused_before_they_are_kept() {
        let mut joiner = ImageJoiner::default();
        let big = PeerMessage::ImagePiece(Bytes::from(vec![0; PIECE + 1]));
        assert_eq!(joiner.accept(big), Err(JoinError::PieceTooLarge(PIECE + 1)));
        assert!(joiner.pending.is_none());
        assert_eq!(joiner.keep(&[1, 2], 3), Ok(()));
        assert_eq!(joiner.keep(&[3], 3), Ok(()));
        assert_eq!(joiner.keep(&[4], 3), Err(JoinError::ImageTooLarge));
        assert_eq!(joiner.pending.as_deref(), Some(&[1, 2, 3][..]));
    }
}
