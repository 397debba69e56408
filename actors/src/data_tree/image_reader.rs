//! Reads the varints and byte strings of an image (formats 5 and delta) as it streams in from
//! a file, a socket or a slice, holding only a window of it (and the session table at its end,
//! read whole): a snapshot of a million znodes is read into its tree without its 117 MB being
//! held beside it. Every length is checked against the image's bytes left before anything is
//! allocated for it.

use std::io::Read;

/// What a read past the end of an image says.
const ENDS_EARLY: &str = "the image ends in the middle of a znode";

/// Bytes read from the source at a time (more when one item is longer).
const CHUNK: usize = 256 << 10;

/// Bincode's varints and byte strings, read from the front of an image of a known length.
pub(super) struct Reader<'a> {
    source: &'a mut dyn Read,
    /// Bytes read from the source; those from `at` on are not taken yet.
    window: Vec<u8>,
    at: usize,
    /// Bytes of the image still in the source.
    unread: u64,
}

impl<'a> Reader<'a> {
    /// Reads the `len` bytes of an image from `source`.
    pub(super) fn new(source: &'a mut dyn Read, len: u64) -> Self {
        Reader {
            source,
            window: Vec::new(),
            at: 0,
            unread: len,
        }
    }

    /// Bytes of the image not taken yet.
    fn left(&self) -> u64 {
        (self.window.len() - self.at) as u64 + self.unread
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.window.len() - self.at < n {
            self.fill(n)?;
        }
        let start = self.at;
        self.at += n;
        Ok(&self.window[start..self.at])
    }

    /// Reads from the source until the window holds `n` bytes not taken; the bytes taken
    /// are let go first.
    fn fill(&mut self, n: usize) -> Result<(), String> {
        if n as u64 > self.left() {
            return Err(ENDS_EARLY.into());
        }
        self.window.drain(..self.at);
        self.at = 0;
        let short = n - self.window.len();
        let want = (short.max(CHUNK) as u64).min(self.unread);
        let before = self.window.len();
        (&mut *self.source)
            .take(want)
            .read_to_end(&mut self.window)
            .map_err(|e| format!("reading the image: {e}"))?;
        self.unread -= (self.window.len() - before) as u64;
        if self.window.len() < n {
            return Err(ENDS_EARLY.into());
        }
        Ok(())
    }

    /// All the bytes left.
    pub(super) fn rest(&mut self) -> Result<&[u8], String> {
        let n = usize::try_from(self.left()).map_err(|_| "an image too long to hold")?;
        self.take(n)
    }

    /// One byte.
    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned varint: one byte up to 250, else a marker and 2, 4 or 8 little-endian bytes.
    pub(super) fn u64(&mut self) -> Result<u64, String> {
        let wide = |bytes: &[u8]| {
            let mut le = [0u8; 8];
            le[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(le)
        };
        match self.u8()? {
            b @ 0..=250 => Ok(u64::from(b)),
            251 => self.take(2).map(wide),
            252 => self.take(4).map(wide),
            253 => self.take(8).map(wide),
            b => Err(format!("an integer with the unknown marker {b}")),
        }
    }

    /// An unsigned varint that fits in 32 bits.
    pub(super) fn u32(&mut self) -> Result<u32, String> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| format!("{v} does not fit in 32 bits"))
    }

    /// A length, which must fit in the bytes left (nothing is allocated before).
    fn len(&mut self) -> Result<usize, String> {
        let v = self.u64()?;
        let left = self.left();
        usize::try_from(v)
            .ok()
            .filter(|_| v <= left)
            .ok_or_else(|| format!("a length of {v} with {left} bytes left"))
    }

    /// A zigzag varint of 64 bits.
    pub(super) fn i64(&mut self) -> Result<i64, String> {
        let v = self.u64()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// A zigzag varint of 32 bits.
    pub(super) fn i32(&mut self) -> Result<i32, String> {
        let v = self.u32()?;
        Ok((v >> 1) as i32 ^ -((v & 1) as i32))
    }

    /// A byte string: its length, then its bytes.
    pub(super) fn bytes(&mut self) -> Result<&[u8], String> {
        let n = self.len()?;
        self.take(n)
    }

    /// A UTF-8 string: its length, then its bytes.
    pub(super) fn string(&mut self) -> Result<String, String> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "an ACL holds a string not UTF-8".into())
    }
}

/// A source that gives at most `.1` bytes per read, as a socket may (for tests).
#[cfg(test)]
pub(super) struct Trickle<'a>(pub &'a [u8], pub usize);

#[cfg(test)]
impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_longer_than_a_chunk_read_across_refills() {
        let long = vec![7u8; CHUNK * 2 + 3];
        let mut image = vec![253];
        image.extend_from_slice(&(long.len() as u64).to_le_bytes());
        image.extend_from_slice(&long);
        image.push(9);
        let mut source = Trickle(&image, 1000);
        let mut r = Reader::new(&mut source, image.len() as u64);
        assert_eq!(r.bytes().unwrap(), &long[..]);
        assert_eq!(r.u8().unwrap(), 9);
        assert!(r.u8().is_err(), "nothing is left");
    }

    #[test]
    fn the_window_holds_about_a_chunk_not_the_image() {
        let image = vec![5u8; CHUNK * 8];
        let mut source = &image[..];
        let mut r = Reader::new(&mut source, image.len() as u64);
        for _ in 0..image.len() {
            assert_eq!(r.u8().unwrap(), 5);
            assert!(r.window.capacity() <= CHUNK * 2, "{}", r.window.capacity());
        }
    }

    #[test]
    fn a_length_past_the_image_is_refused_before_anything_is_read() {
        let image = [253, 0, 0, 0, 0, 0, 0, 0, 0x40];
        let mut source = &image[..];
        let mut r = Reader::new(&mut source, image.len() as u64);
        let e = r.bytes().unwrap_err();
        assert!(e.contains("with 0 bytes left"), "{e}");
        assert!(
            r.window.capacity() < CHUNK * 2,
            "nothing was allocated for it"
        );
    }

    #[test]
    fn a_source_shorter_than_its_image_ends_early() {
        let image = [3, 1, 2];
        let mut source = &image[..];
        let mut r = Reader::new(&mut source, 10);
        assert_eq!(r.bytes().unwrap_err(), ENDS_EARLY);
    }

    #[test]
    fn nothing_past_the_images_length_is_read() {
        let bytes = [1u8, 2, 3, 4];
        let mut source = &bytes[..];
        let mut r = Reader::new(&mut source, 2);
        assert_eq!(r.rest().unwrap(), &[1, 2]);
        assert_eq!(source, &[3, 4]);
    }
}
