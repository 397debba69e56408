//! Seeded mutation of valid encodings, shared by the robustness tests of every decoder (jute,
//! peer frames, storage, Apache's files) and the stable replay of the fuzz targets: a failing
//! case is found again from its seed and case number.

/// A small deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// How many cases to run: the number in the environment variable `var`, else `default`.
pub fn cases(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes decoders like to misread: zero, `/`, sign and top bits, the extremes.
const EXTREME_BYTES: [u8; 8] = [0x00, 0x01, 0x2f, 0x7f, 0x80, 0xfb, 0xfd, 0xff];

/// Big-endian 32-bit values that make lengths and counts extreme.
const EXTREME_INTS: [[u8; 4]; 4] = [[0x7f, 0xff, 0xff, 0xff], [0xff; 4], [0x80, 0, 0, 0], [0; 4]];

/// One to four mutations of `input`: a bit flip, an extreme byte, a truncation, an extreme
/// 32-bit value, random bytes inserted, or the whole input replaced by random bytes.
pub fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = EXTREME_BYTES[rng.below(EXTREME_BYTES.len())];
            }
            2 => b.truncate(rng.below(b.len() + 1)),
            3 if b.len() >= 4 => {
                let i = rng.below(b.len() - 3);
                b[i..i + 4].copy_from_slice(&EXTREME_INTS[rng.below(EXTREME_INTS.len())]);
            }
            4 => {
                let at = rng.below(b.len() + 1);
                let noise: Vec<u8> = (0..rng.below(32)).map(|_| rng.next_u64() as u8).collect();
                b.splice(at..at, noise);
            }
            _ if rng.below(8) == 0 => {
                b = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect()
            }
            _ => {}
        }
    }
    b
}
