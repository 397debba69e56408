//! Bincode's standard encoding (little-endian varints, zigzag for signed integers, a length
//! before bytes), written straight into a buffer for the image's per-znode loop: through serde
//! each field of each znode is a call and a small copy, which made most of a snapshot's cost.
//! The bytes are bincode's own; a test holds them to it.

/// Varint markers, as bincode writes them.
const SINGLE_BYTE_MAX: u64 = 250;
const U16_BYTE: u8 = 251;
const U32_BYTE: u8 = 252;
const U64_BYTE: u8 = 253;

/// Appends `v` as bincode's unsigned varint.
pub(super) fn put_u64(out: &mut Vec<u8>, v: u64) {
    if v <= SINGLE_BYTE_MAX {
        out.push(v as u8);
    } else if v <= u64::from(u16::MAX) {
        out.push(U16_BYTE);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(U32_BYTE);
        out.extend_from_slice(&(v as u32).to_le_bytes());
    } else {
        out.push(U64_BYTE);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends `v` zigzagged, as bincode writes an `i64`.
pub(super) fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(
        out,
        if v < 0 {
            !(v as u64) * 2 + 1
        } else {
            (v as u64) * 2
        },
    );
}

/// Appends `v` zigzagged, as bincode writes an `i32`.
pub(super) fn put_i32(out: &mut Vec<u8>, v: i32) {
    let zigzag = if v < 0 {
        !(v as u32) * 2 + 1
    } else {
        (v as u32) * 2
    };
    put_u64(out, u64::from(zigzag));
}

/// Appends `bytes` with their length first, as bincode writes a byte string or a `str`.
pub(super) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_messages::codec;

    const EDGES: [i64; 14] = [
        0,
        1,
        -1,
        125,
        -126,
        250,
        251,
        65_535,
        65_536,
        -65_536,
        4_294_967_295,
        4_294_967_296,
        i64::MAX,
        i64::MIN,
    ];

    #[test]
    fn integers_encode_as_bincode_does() {
        for v in EDGES {
            let mut out = Vec::new();
            put_i64(&mut out, v);
            assert_eq!(out, codec::encode(&v).unwrap(), "i64 {v}");
            let v = v as i32;
            out.clear();
            put_i32(&mut out, v);
            assert_eq!(out, codec::encode(&v).unwrap(), "i32 {v}");
            let v = v as u32;
            out.clear();
            put_u64(&mut out, u64::from(v));
            assert_eq!(out, codec::encode(&v).unwrap(), "u32 {v}");
        }
        for v in [i32::MIN, i32::MAX] {
            let mut out = Vec::new();
            put_i32(&mut out, v);
            assert_eq!(out, codec::encode(&v).unwrap(), "i32 {v}");
        }
    }

    #[test]
    fn strings_and_bytes_encode_as_bincode_does() {
        for len in [0, 1, 250, 251, 70_000] {
            let s = "x".repeat(len);
            let mut out = Vec::new();
            put_bytes(&mut out, s.as_bytes());
            assert_eq!(out, codec::encode(&s).unwrap(), "str of {len}");
        }
    }
}
