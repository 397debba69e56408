//! The memory a link joins a SNAP's image into: pages mapped for it alone, with room ahead in
//! address space only, given back to the system the moment the image is dropped.
//!
//! Joined into a vector, an image of 117 MB (a million znodes) took 255 MiB: growing by
//! doubling copied it at every step, and the allocator gives the large blocks it frees back to
//! the system only later. A vector with room ahead was never copied, but the block it freed
//! lingered beside the tree the follower then built. A mapping of its own has neither cost: its
//! pages become memory as pieces are written into them, and unmapping returns them at once.

use bytes::Bytes;
use memmap2::MmapMut;

/// An image being joined.
pub(crate) struct ImageBuffer {
    map: MmapMut,
    len: usize,
}

impl std::fmt::Debug for ImageBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageBuffer({} of {} bytes)", self.len, self.map.len())
    }
}

impl ImageBuffer {
    /// A buffer holding `bytes`, with room for `room` bytes in all when the system grants it.
    pub fn holding(bytes: &[u8], room: usize) -> std::io::Result<Self> {
        let map = MmapMut::map_anon(room.max(bytes.len()).max(1))
            .or_else(|_| MmapMut::map_anon(bytes.len().max(1)))?;
        let mut buffer = ImageBuffer { map, len: 0 };
        buffer.extend(bytes)?;
        Ok(buffer)
    }

    /// Appends `bytes`; without room for them, moves to a mapping twice as large. When the
    /// system refuses that, so is the piece: growing by what each piece needs would copy the
    /// image once per piece.
    pub fn extend(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let needed = self.len + bytes.len();
        if needed > self.map.len() {
            let mut larger = MmapMut::map_anon(needed.max(2 * self.map.len()))?;
            larger[..self.len].copy_from_slice(&self.map[..self.len]);
            self.map = larger;
        }
        self.map[self.len..needed].copy_from_slice(bytes);
        self.len = needed;
        Ok(())
    }

    /// The bytes mapped, held or not.
    #[cfg(test)]
    pub fn room(&self) -> usize {
        self.map.len()
    }

    /// The bytes held.
    pub fn as_slice(&self) -> &[u8] {
        &self.map[..self.len]
    }

    /// The bytes held, sharing the mapping (unmapped when the last copy is dropped).
    pub fn into_bytes(self) -> Bytes {
        let len = self.len;
        Bytes::from_owner(self.map).slice(..len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_in_order_past_the_room_and_share_the_mapping() {
        let mut image = ImageBuffer::holding(&[1, 2, 3], 5).unwrap();
        image.extend(&[4, 5]).unwrap();
        assert_eq!(image.as_slice(), &[1, 2, 3, 4, 5]);
        let before = image.map.as_ptr();
        let page = vec![9u8; 10_000];
        image.extend(&page).unwrap();
        assert_ne!(image.map.as_ptr(), before, "moved to a larger mapping");
        assert_eq!(image.as_slice().len(), 10_005);
        assert_eq!(&image.as_slice()[..5], &[1, 2, 3, 4, 5]);
        let start = image.map.as_ptr() as usize;
        let bytes = image.into_bytes();
        assert_eq!(bytes.len(), 10_005);
        assert_eq!(bytes.as_ptr() as usize, start, "no copy");
        assert_eq!(bytes[10_004], 9);
    }

    #[test]
    fn empty_pieces_and_large_room() {
        let image = ImageBuffer::holding(&[], 1 << 30).unwrap();
        assert!(image.as_slice().is_empty());
        assert!(image.into_bytes().is_empty());
    }
}
