//! The two small algorithms Apache's files depend on: Adler-32 (every log record and snapshot
//! is sealed with it) and the session password Apache derives from a session id.

use crate::data_tree::SessionPassword;

/// Adler-32 of `bytes` (java.util.zip.Adler32).
pub fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    // 5552 bytes is the largest run whose sums cannot overflow a u32 before reduction.
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Apache's fixed secret mixed into the seed of a session's password.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// The password Apache ZooKeeper gave session `id`: 16 bytes of `java.util.Random` seeded with
/// `id ^ 0xB3415C00`. Reproducing it lets a client whose session was open under Apache resume
/// it under ensemble.
pub fn apache_session_password(id: i64) -> SessionPassword {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((id ^ SUPER_SECRET) as u64 ^ MULTIPLIER) & MASK;
    let mut out = [0u8; 16];
    for chunk in out.chunks_mut(4) {
        seed = (seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        let mut word = (seed >> 16) as u32;
        for byte in chunk {
            *byte = word as u8;
            word >>= 8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_matches_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let long = vec![0xffu8; 100_000];
        // Reference value from zlib's adler32 of 100,000 bytes of 0xff.
        assert_eq!(adler32(&long), 0x149a_302c);
    }

    fn hex(p: &[u8]) -> String {
        p.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reference values printed by `java.util.Random(id ^ 0xB3415C00).nextBytes(new byte[16])`.
    #[test]
    fn passwords_match_apache() {
        let cases = [
            (0x100000a1b2c3d4e_i64, "d3c25521b587309ab767ee6688e26e62"),
            (0, "f22acd4a97e69d6d20a49bb638eadb38"),
            (-1, "20f62cb5648dc2d771471c8a2486a9ee"),
        ];
        for (id, expected) in cases {
            assert_eq!(
                hex(&apache_session_password(id)),
                expected,
                "session {id:#x}"
            );
        }
    }
}
