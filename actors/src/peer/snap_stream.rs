//! A SNAP's NEWLEADER while it is built: the thread that writes the tree's image hands it to
//! the peer link a piece at a time ([`PeerMessage::ImagePiece`], see
//! [`ensemble_messages::sync_parts`]), then the NEWLEADER itself with an empty image, so
//! neither the builder nor the link ever holds the whole image of the tree.

use ensemble_messages::sync_parts::PIECE;
use ensemble_messages::PeerMessage;
use std::io::{self, Write};
use tokio::sync::mpsc;
use tokio_util::bytes::BytesMut;

/// Pieces waiting for the link at most: the builder blocks (holding no more than these
/// bytes) while the link sends.
const PIECES_IN_FLIGHT: usize = 4;

/// The link's end: the messages to send, in order, the NEWLEADER last.
pub type SnapReceiver = mpsc::Receiver<PeerMessage>;

/// A channel from a SNAP's builder to the peer link that sends it.
pub fn snap_channel() -> (SnapSender, SnapReceiver) {
    let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
    (SnapSender { tx, piece: piece() }, rx)
}

/// The builder's end: the image is written into it (it cuts the pieces), then
/// [`SnapSender::finish`] sends the NEWLEADER. Its calls block: use it off the async threads.
#[derive(Debug)]
pub struct SnapSender {
    tx: mpsc::Sender<PeerMessage>,
    piece: BytesMut,
}

fn piece() -> BytesMut {
    BytesMut::with_capacity(PIECE)
}

impl SnapSender {
    /// Sends what is left of the image, then `new_leader`, whose own image must be empty.
    pub fn finish(mut self, new_leader: PeerMessage) -> io::Result<()> {
        if !self.piece.is_empty() {
            self.send_piece()?;
        }
        self.send(new_leader)
    }

    fn send_piece(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.piece, piece());
        self.send(PeerMessage::ImagePiece(full.freeze()))
    }

    fn send(&self, msg: PeerMessage) -> io::Result<()> {
        self.tx
            .blocking_send(msg)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the peer link is gone"))
    }
}

impl Write for SnapSender {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let taken = data.len().min(PIECE - self.piece.len());
        self.piece.extend_from_slice(&data[..taken]);
        if self.piece.len() == PIECE {
            self.send_piece()?;
        }
        Ok(taken)
    }

    /// Pieces go when full, and the last one with the NEWLEADER.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_messages::sync_parts::SyncJoiner;
    use ensemble_messages::{Snapshot, ZabMessage, Zxid};

    fn new_leader(image: Vec<u8>) -> PeerMessage {
        PeerMessage::Zab(ZabMessage::NewLeader {
            epoch: 4,
            truncate_to: None,
            snapshot: Some(Snapshot {
                last_zxid: Zxid::new(3, 2),
                state: image.into(),
            }),
            txns: Vec::new(),
        })
    }

    #[tokio::test]
    async fn the_image_written_arrives_in_full_pieces_then_the_new_leader() {
        let image: Vec<u8> = (0..2 * PIECE + 5).map(|i| (i % 249) as u8).collect();
        let (tx, mut rx) = snap_channel();
        let written = image.clone();
        let builder = tokio::task::spawn_blocking(move || {
            let mut tx = tx;
            // Writes of odd sizes, as an image writer's chunks are.
            for chunk in written.chunks(300_007) {
                tx.write_all(chunk)?;
            }
            tx.finish(new_leader(Vec::new()))
        });
        let mut joiner = SyncJoiner::default();
        let (mut sizes, mut whole) = (Vec::new(), None);
        while let Some(msg) = rx.recv().await {
            if let PeerMessage::ImagePiece(p) = &msg {
                sizes.push(p.len());
            }
            whole = joiner.accept(msg).unwrap().or(whole);
        }
        builder.await.unwrap().unwrap();
        assert_eq!(sizes, [PIECE, PIECE, 5]);
        assert_eq!(whole, Some(new_leader(image)));
    }

    #[tokio::test]
    async fn the_builder_stops_when_the_link_is_gone() {
        let (tx, rx) = snap_channel();
        drop(rx);
        let builder = tokio::task::spawn_blocking(move || {
            let mut tx = tx;
            tx.write_all(&vec![0; 3 * PIECE])
        });
        let e = builder.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
