//! The one length-prefixed frame of every TCP protocol here (ZooKeeper's client port, peer
//! handshakes and links, Spark RPC): a 4-byte big-endian length, then that many bytes.
//!
//! The length is checked against the connection's limit before anything is allocated for
//! the frame, and buffers grow only with what arrives. [`FrameCodec`] serves `FramedRead` /
//! `FramedWrite`; [`read_frame`] and [`write_frame`] serve code that reads one frame at a
//! time from a plain stream (handshakes, whose bytes after the frame belong to someone else).

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

/// A read buffer that grew over this for one frame is reallocated at its remaining size.
const KEEP_READ_BUFFER_BELOW: usize = 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed or ended inside a frame.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame's length is over the limit (a ZooKeeper client's negative length reads as
    /// over it too).
    #[error("frame of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The announced or given length.
        len: u64,
        /// The limit.
        max: usize,
    },
}

impl From<FrameError> for std::io::Error {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(e) => e,
            too_large => std::io::Error::new(std::io::ErrorKind::InvalidData, too_large),
        }
    }
}

/// Frames of at most `max` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCodec {
    max: usize,
}

impl FrameCodec {
    /// A codec of frames up to `max` bytes (at most `u32::MAX`).
    pub const fn new(max: usize) -> FrameCodec {
        let max = if max > u32::MAX as usize {
            u32::MAX as usize
        } else {
            max
        };
        FrameCodec { max }
    }

    /// The largest frame.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The body length a prefix announces, if within the limit.
    pub fn length(&self, prefix: [u8; 4]) -> Result<usize, FrameError> {
        let len = u32::from_be_bytes(prefix);
        match usize::try_from(len) {
            Ok(n) if n <= self.max => Ok(n),
            _ => Err(FrameError::TooLarge {
                len: u64::from(len),
                max: self.max,
            }),
        }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let len = self.length([prefix[0], prefix[1], prefix[2], prefix[3]])?;
        if src.len() - 4 < len {
            // Grow only with what arrives: the announced length is not trusted.
            return Ok(None);
        }
        src.advance(4);
        let frame = src.split_to(len);
        if len > KEEP_READ_BUFFER_BELOW {
            // The read buffer grew to hold this frame: the rest moves to a buffer of its own,
            // so the big allocation goes with the frame once its reader drops it, rather than
            // stay for the connection's lifetime.
            *src = BytesMut::from(&src[..]);
        }
        Ok(Some(frame))
    }
}

impl<B: AsRef<[u8]>> Encoder<B> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: B, dst: &mut BytesMut) -> Result<(), FrameError> {
        let body = item.as_ref();
        let len = u32::try_from(body.len())
            .ok()
            .filter(|n| *n as usize <= self.max)
            .ok_or(FrameError::TooLarge {
                len: body.len() as u64,
                max: self.max,
            })?;
        dst.reserve(4 + body.len());
        dst.put_u32(len);
        dst.extend_from_slice(body);
        Ok(())
    }
}

/// Reads one frame from `stream` and nothing after it; the buffer grows with what arrives,
/// never to the announced length up front.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    codec: FrameCodec,
) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await?;
    read_body(stream, codec.length(prefix)?).await
}

/// Reads the `len` bytes of a frame whose prefix was read (and checked with
/// [`FrameCodec::length`]); the buffer grows with what arrives.
pub async fn read_body<R: AsyncRead + Unpin>(
    stream: &mut R,
    len: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut body = Vec::new();
    (&mut *stream)
        .take(len as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < len {
        return Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("closed after {} of {len} frame bytes", body.len()),
        )));
    }
    Ok(body)
}

/// Writes `body` as one frame and flushes it (TLS holds its last record until flushed).
pub async fn write_frame<W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut codec: FrameCodec,
    body: &[u8],
) -> Result<(), FrameError> {
    let mut out = BytesMut::new();
    codec.encode(body, &mut out)?;
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        FrameCodec::new(64).encode(body, &mut buf).unwrap();
        buf
    }

    #[test]
    fn frames_round_trip_and_split_reads_wait() {
        let mut codec = FrameCodec::new(64);
        let mut buf = framed(b"hello");
        assert_eq!(&buf[..4], &[0, 0, 0, 5]);
        let mut partial = buf.split_to(buf.len() - 1);
        assert!(codec.decode(&mut partial).unwrap().is_none());
        partial.extend_from_slice(&buf);
        assert_eq!(&codec.decode(&mut partial).unwrap().unwrap()[..], b"hello");
        assert!(partial.is_empty());
        let mut empty = framed(b"");
        assert_eq!(codec.decode(&mut empty).unwrap().unwrap().len(), 0);
    }

    #[test]
    fn over_the_limit_is_refused_both_ways_before_allocating() {
        let mut codec = FrameCodec::new(64);
        let mut buf = BytesMut::from(&[0, 0, 0, 65][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge { len: 65, max: 64 })
        ));
        // A ZooKeeper client's negative length.
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(codec.decode(&mut buf).is_err());
        let mut out = BytesMut::new();
        assert!(codec.encode([0u8; 65], &mut out).is_err());
        assert!(out.is_empty());
        let mut partial = BytesMut::from(&[0, 0, 0, 64, 1, 2][..]);
        assert!(codec.decode(&mut partial).unwrap().is_none());
        assert!(partial.capacity() < 1024);
    }

    #[test]
    fn a_read_buffer_grown_for_a_big_frame_is_given_back() {
        let mut codec = FrameCodec::new(16 << 20);
        let mut read = BytesMut::with_capacity(9 << 20);
        codec.encode(vec![7u8; 8 << 20], &mut read).unwrap();
        codec.encode(b"small", &mut read).unwrap();
        assert_eq!(codec.decode(&mut read).unwrap().unwrap().len(), 8 << 20);
        assert!(read.capacity() < 1024, "kept {} bytes", read.capacity());
        assert_eq!(&codec.decode(&mut read).unwrap().unwrap()[..], b"small");
    }

    #[test]
    fn one_frame_is_read_from_a_stream_and_no_more() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut bytes = framed(b"first").to_vec();
            bytes.extend_from_slice(b"rest");
            let mut stream = &bytes[..];
            let codec = FrameCodec::new(64);
            assert_eq!(read_frame(&mut stream, codec).await.unwrap(), b"first");
            assert_eq!(stream, b"rest");
            let mut short = &[0u8, 0, 0, 9, 1][..];
            assert!(matches!(
                read_frame(&mut short, codec).await,
                Err(FrameError::Io(_))
            ));
            let mut out = Vec::new();
            write_frame(&mut out, codec, b"x").await.unwrap();
            assert_eq!(out, [0, 0, 0, 1, b'x']);
        });
    }
}
