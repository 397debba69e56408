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

/// Bytes [`put_u64`] appends for `v`.
pub(super) fn u64_len(v: u64) -> usize {
    if v <= SINGLE_BYTE_MAX {
        1
    } else if v <= u64::from(u16::MAX) {
        3
    } else if v <= u64::from(u32::MAX) {
        5
    } else {
        9
    }
}

/// `v` zigzagged, as bincode maps an `i64` to the unsigned varint it writes.
fn zigzag64(v: i64) -> u64 {
    if v < 0 {
        !(v as u64) * 2 + 1
    } else {
        (v as u64) * 2
    }
}

/// `v` zigzagged, as bincode maps an `i32` to the unsigned varint it writes.
fn zigzag32(v: i32) -> u64 {
    u64::from(if v < 0 {
        !(v as u32) * 2 + 1
    } else {
        (v as u32) * 2
    })
}

/// Appends `v` as bincode writes an `i64`.
pub(super) fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag64(v));
}

/// Bytes [`put_i64`] appends for `v`.
pub(super) fn i64_len(v: i64) -> usize {
    u64_len(zigzag64(v))
}

/// Appends `v` as bincode writes an `i32`.
pub(super) fn put_i32(out: &mut Vec<u8>, v: i32) {
    put_u64(out, zigzag32(v));
}

/// Bytes [`put_i32`] appends for `v`.
pub(super) fn i32_len(v: i32) -> usize {
    u64_len(zigzag32(v))
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
            assert_eq!(out.len(), i64_len(v), "length of i64 {v}");
            let v = v as i32;
            out.clear();
            put_i32(&mut out, v);
            assert_eq!(out, codec::encode(&v).unwrap(), "i32 {v}");
            assert_eq!(out.len(), i32_len(v), "length of i32 {v}");
            let v = v as u32;
            out.clear();
            put_u64(&mut out, u64::from(v));
            assert_eq!(out, codec::encode(&v).unwrap(), "u32 {v}");
            assert_eq!(out.len(), u64_len(u64::from(v)), "length of u32 {v}");
        }
        for v in [i32::MIN, i32::MAX] {
            let mut out = Vec::new();
            put_i32(&mut out, v);
            assert_eq!(out, codec::encode(&v).unwrap(), "i32 {v}");
            assert_eq!(out.len(), i32_len(v), "length of i32 {v}");
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
