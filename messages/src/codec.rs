//! Bincode 2 values in [`FrameCodec`] frames, for peer links and Spark RPC.

use crate::frame::{FrameCodec, FrameError};
use bytes::BytesMut;
use serde::{de::DeserializeOwned, Serialize};
use std::marker::PhantomData;
use tokio_util::codec::{Decoder, Encoder};

/// Largest peer frame accepted. A sync's NEWLEADER travels in parts (see
/// [`crate::sync_parts`]), so the frames a server sends hold about 1 MiB, or one larger txn.
pub const MAX_PEER_FRAME: usize = 512 * 1024 * 1024;

/// Errors of the peer codec.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame's length is over [`MAX_PEER_FRAME`].
    #[error("peer frame of {0} bytes is over the limit of {MAX_PEER_FRAME}")]
    TooLarge(u64),
    /// A frame did not decode as the expected message.
    #[error("undecodable peer frame: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// A message did not encode.
    #[error("unencodable peer message: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// A NEWLEADER's parts did not join into it.
    #[error("{0}")]
    Sync(#[from] crate::sync_parts::JoinError),
}

/// The bincode configuration shared by every peer frame and on-disk record.
pub fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Encodes a value with the peer bincode configuration.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::error::EncodeError> {
    bincode::serde::encode_to_vec(value, bincode_config())
}

/// Decodes a value with the peer bincode configuration; trailing bytes are an error.
///
/// Every length inside `bytes` is hostile: bincode may allocate what a string or byte field
/// claims before reading it. The decoder runs with a limit on claimed bytes of 16x the input
/// rounded up to a power of two (bincode claims a value's in-memory size, at most 16 bytes for
/// one encoded byte), so a field that claims more than could have arrived fails with
/// `LimitExceeded` instead of allocating.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::error::DecodeError> {
    macro_rules! decode_within {
        ($($bits:literal)*) => {
            $(
                if bytes.len() <= (1usize << $bits) / 16 {
                    let config = bincode::config::standard().with_limit::<{ 1usize << $bits }>();
                    return finish(bytes, bincode::serde::decode_from_slice(bytes, config));
                }
            )*
        };
    }
    decode_within!(12 14 16 18 20 22 24 26 28 30 32 34 36);
    Err(bincode::error::DecodeError::LimitExceeded)
}

/// As [`decode`], from `reader`, which holds `len` bytes: the limit on claimed bytes follows
/// from `len` as it does from a slice's length. Bincode reads no further than the value, so
/// the caller checks that it read all `len`.
pub fn decode_from_reader<T: DeserializeOwned, R: std::io::Read>(
    mut reader: R,
    len: u64,
) -> Result<T, bincode::error::DecodeError> {
    macro_rules! decode_within {
        ($($bits:literal)*) => {
            $(
                if len <= (1u64 << $bits) / 16 {
                    let config = bincode::config::standard().with_limit::<{ 1usize << $bits }>();
                    return bincode::serde::decode_from_std_read(&mut reader, config);
                }
            )*
        };
    }
    decode_within!(12 14 16 18 20 22 24 26 28 30 32 34 36);
    Err(bincode::error::DecodeError::LimitExceeded)
}

fn finish<T>(
    bytes: &[u8],
    decoded: Result<(T, usize), bincode::error::DecodeError>,
) -> Result<T, bincode::error::DecodeError> {
    let (value, used) = decoded?;
    if used != bytes.len() {
        return Err(bincode::error::DecodeError::OtherString(format!(
            "{} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(value)
}

impl From<FrameError> for CodecError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(e) => CodecError::Io(e),
            FrameError::TooLarge { len, .. } => CodecError::TooLarge(len),
        }
    }
}

/// Frames `Out` values and parses `In` values: a [`FrameCodec`] frame of bincode.
pub struct PeerCodec<In, Out> {
    frames: FrameCodec,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> Default for PeerCodec<In, Out> {
    fn default() -> Self {
        PeerCodec {
            frames: FrameCodec::new(MAX_PEER_FRAME),
            _types: PhantomData,
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for PeerCodec<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        match self.frames.decode(src)? {
            Some(frame) => Ok(Some(decode(&frame)?)),
            None => Ok(None),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for PeerCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        Ok(self.frames.encode(encode(&item)?, dst)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Notification, PeerMessage, ServerState, Vote, Zxid};

    #[test]
    fn frames_round_trip_and_split_reads_wait() {
        let msg = PeerMessage::Election(Notification {
            state: ServerState::Looking,
            vote: Vote {
                leader: 3,
                zxid: Zxid::new(1, 9),
                peer_epoch: 1,
            },
            election_epoch: 4,
            config_version: 0,
        });
        let mut codec = PeerCodec::<PeerMessage, PeerMessage>::default();
        let mut buf = BytesMut::new();
        codec.encode(msg.clone(), &mut buf).unwrap();
        let mut partial = buf.split_to(buf.len() - 1);
        assert!(codec.decode(&mut partial).unwrap().is_none());
        partial.extend_from_slice(&buf);
        assert_eq!(codec.decode(&mut partial).unwrap(), Some(msg));
    }

    #[test]
    fn a_reader_decodes_as_a_slice_does_and_refuses_a_length_over_its_bytes() {
        let value = (7u32, vec![1u8; 3000], "a path".to_string());
        let bytes = encode(&value).unwrap();
        let read: (u32, Vec<u8>, String) =
            decode_from_reader(&bytes[..], bytes.len() as u64).unwrap();
        assert_eq!(read, value);
        // A byte string claiming 2^60 bytes in an input said to hold 11.
        let claim = [0x01, 0x03, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert!(decode_from_reader::<(u32, u64, String), _>(&claim[..], 11).is_err());
        assert!(decode_from_reader::<u32, _>(&[1u8][..], 1 << 40).is_err());
    }

    #[test]
    fn a_length_claiming_more_than_arrived_is_refused_without_allocating() {
        // The reviewer's frame: the version-1 handshake (version, sid, cluster-id string) whose
        // string claims 2^60 bytes.
        let frame = [0x01, 0x03, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert!(decode::<(u32, u64, String)>(&frame).is_err());
        let mut codec = PeerCodec::<PeerMessage, PeerMessage>::default();
        let mut buf = BytesMut::from(&[0, 0, 0, 0x0b][..]);
        buf.extend_from_slice(&frame);
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::Decode(_))));
    }

    #[test]
    fn a_partial_frame_reserves_nothing_for_its_announced_length() {
        let mut codec = PeerCodec::<PeerMessage, PeerMessage>::default();
        let mut buf = BytesMut::from(&[0x10, 0, 0, 0, 1, 2][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn large_values_still_decode() {
        let big = crate::Txn {
            zxid: Zxid::new(1, 1),
            origin: 1,
            request_id: u64::MAX,
            body: vec![7; 3 << 20],
        };
        let msg = PeerMessage::Zab(crate::ZabMessage::Proposal(big));
        assert_eq!(decode::<PeerMessage>(&encode(&msg).unwrap()).unwrap(), msg);
        let many: Vec<u64> = (0..100_000).map(|i| i % 100).collect();
        assert_eq!(decode::<Vec<u64>>(&encode(&many).unwrap()).unwrap(), many);
    }

    #[test]
    fn a_read_buffer_grown_for_a_big_frame_is_given_back() {
        let big = PeerMessage::Zab(crate::ZabMessage::Proposal(crate::Txn {
            zxid: Zxid::new(1, 1),
            origin: 1,
            request_id: 1,
            body: vec![7; 8 << 20],
        }));
        let small = PeerMessage::Zab(crate::ZabMessage::Commit(Zxid::new(1, 1)));
        let mut codec = PeerCodec::<PeerMessage, PeerMessage>::default();
        let mut buf = BytesMut::new();
        codec.encode(big.clone(), &mut buf).unwrap();
        codec.encode(small.clone(), &mut buf).unwrap();
        let mut read = BytesMut::with_capacity(buf.len() + (8 << 20));
        read.extend_from_slice(&buf);
        assert_eq!(codec.decode(&mut read).unwrap(), Some(big));
        assert!(read.capacity() < 1024, "kept {} bytes", read.capacity());
        assert_eq!(codec.decode(&mut read).unwrap(), Some(small));
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        let mut codec = PeerCodec::<PeerMessage, PeerMessage>::default();
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(CodecError::TooLarge(_))
        ));
        let mut buf = BytesMut::from(&[0, 0, 0, 2, 0xff, 0xff][..]);
        assert!(matches!(codec.decode(&mut buf), Err(CodecError::Decode(_))));
    }
}
