//! Serde for `Vec<u8>` fields as one byte string instead of a sequence of `u8`. In bincode
//! both are the same bytes (a length, then the bytes), so the wire format does not change;
//! only the per-byte calls of the sequence form go.

use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// Capacity reserved up front for a sequence, whatever length it claims.
const SEQ_PREALLOC: usize = 4096;

/// Writes `v` as a byte string.
pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(v)
}

/// Reads a byte string (or, from formats without one, a sequence of bytes).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(SEQ_PREALLOC));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// The same byte string as a shared [`bytes::Bytes`]: cloned without copying, and sliced
/// without copying into the pieces a SNAP image travels in.
pub mod shared {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer};

    /// Writes `v` as a byte string.
    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    /// Reads a byte string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        super::deserialize(d).map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use crate::codec::{decode, encode};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct AsSeq(u64, Vec<u8>);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct AsBytes(u64, #[serde(with = "super")] Vec<u8>);

    #[test]
    fn bytes_encode_exactly_as_the_sequence_did() {
        for len in [0usize, 1, 250, 251, 300, 70_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 256) as u8).collect();
            let old = encode(&AsSeq(7, data.clone())).unwrap();
            let new = encode(&AsBytes(7, data.clone())).unwrap();
            assert_eq!(old, new, "length {len}");
            assert_eq!(decode::<AsBytes>(&old).unwrap(), AsBytes(7, data));
        }
    }

    #[test]
    fn a_claimed_length_beyond_the_input_is_an_error() {
        let mut bytes = encode(&AsBytes(1, vec![1, 2, 3])).unwrap();
        bytes.truncate(bytes.len() - 1);
        assert!(decode::<AsBytes>(&bytes).is_err());
        // A varint length of 2^40 (marker 253, then a little-endian u64) with no bytes behind.
        let mut huge = vec![7, 253];
        huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<AsBytes>(&huge).is_err());
    }
}
