//! ZooKeeper's jute encoding: big-endian ints and longs, one-byte booleans, length-prefixed
//! buffers, strings and vectors (length -1 for null), records as plain concatenation.

mod records;

pub use records::*;

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    /// The bytes ended inside a field.
    #[error("record truncated: needed {needed} more bytes for {what}")]
    Truncated { what: &'static str, needed: usize },
    /// A length or count is negative (other than -1) or larger than the bytes left.
    #[error("bad length {len} for {what}")]
    BadLength { what: &'static str, len: i32 },
    /// A string is not UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
}

/// Reads jute fields from a byte slice.
pub struct JuteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> JuteReader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        JuteReader { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Truncated {
                what,
                needed: n - self.remaining(),
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// An int.
    pub fn int(&mut self, what: &'static str) -> Result<i32, JuteError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A long.
    pub fn long(&mut self, what: &'static str) -> Result<i64, JuteError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A boolean.
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, JuteError> {
        Ok(self.take(1, what)?[0] != 0)
    }

    /// A buffer; null reads as empty.
    pub fn buffer(&mut self, what: &'static str) -> Result<Vec<u8>, JuteError> {
        Ok(self.nullable_buffer(what)?.unwrap_or_default())
    }

    /// A buffer that may be null (length -1): `None`.
    pub fn nullable_buffer(&mut self, what: &'static str) -> Result<Option<Vec<u8>>, JuteError> {
        let len = self.int(what)?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.remaining() {
            return Err(JuteError::BadLength { what, len });
        }
        Ok(Some(self.take(len as usize, what)?.to_vec()))
    }

    /// A UTF-8 string; null reads as empty.
    pub fn string(&mut self, what: &'static str) -> Result<String, JuteError> {
        String::from_utf8(self.buffer(what)?).map_err(|_| JuteError::NotUtf8)
    }

    /// A vector count, checked against the bytes left (each element takes at least one byte).
    pub fn count(&mut self, what: &'static str) -> Result<usize, JuteError> {
        let len = self.int(what)?;
        if len == -1 {
            return Ok(0);
        }
        if len < 0 || len as usize > self.remaining() {
            return Err(JuteError::BadLength { what, len });
        }
        Ok(len as usize)
    }
}

/// Writes jute fields into a byte vector.
#[derive(Default)]
pub struct JuteWriter {
    /// The bytes written so far.
    pub bytes: Vec<u8>,
}

impl JuteWriter {
    /// An int.
    pub fn int(&mut self, v: i32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// A long.
    pub fn long(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    /// A boolean.
    pub fn boolean(&mut self, v: bool) {
        self.bytes.push(u8::from(v));
    }

    /// A buffer.
    pub fn buffer(&mut self, v: &[u8]) {
        self.int(v.len() as i32);
        self.bytes.extend_from_slice(v);
    }

    /// A buffer that may be null: `None` is written as length -1.
    pub fn nullable_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => self.buffer(v),
            None => self.int(-1),
        }
    }

    /// A string.
    pub fn string(&mut self, v: &str) {
        self.buffer(v.as_bytes());
    }
}

/// A type with a jute encoding.
pub trait Jute: Sized {
    /// Appends the encoding.
    fn write(&self, w: &mut JuteWriter);
    /// Reads one value.
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError>;

    /// The encoding as bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::default();
        self.write(&mut w);
        w.bytes
    }

    /// Decodes a value from the start of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Result<Self, JuteError> {
        Self::read(&mut JuteReader::new(bytes), "record")
    }
}

impl Jute for i32 {
    fn write(&self, w: &mut JuteWriter) {
        w.int(*self)
    }
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError> {
        r.int(what)
    }
}

impl Jute for i64 {
    fn write(&self, w: &mut JuteWriter) {
        w.long(*self)
    }
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError> {
        r.long(what)
    }
}

impl Jute for bool {
    fn write(&self, w: &mut JuteWriter) {
        w.boolean(*self)
    }
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError> {
        r.boolean(what)
    }
}

impl Jute for String {
    fn write(&self, w: &mut JuteWriter) {
        w.string(self)
    }
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError> {
        r.string(what)
    }
}

/// A jute buffer (bytes with a length prefix), distinct from a vector of bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Buffer(pub Vec<u8>);

impl Jute for Buffer {
    fn write(&self, w: &mut JuteWriter) {
        w.buffer(&self.0)
    }
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError> {
        r.buffer(what).map(Buffer)
    }
}

/// Znode data on the wire: a buffer that may be null (length -1), which ZooKeeper keeps
/// apart from empty bytes (a znode created with null data reads back null). `None` is null.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NullableBuffer(pub Option<Vec<u8>>);

impl NullableBuffer {
    /// Data that is not null.
    pub fn bytes(v: impl Into<Vec<u8>>) -> Self {
        NullableBuffer(Some(v.into()))
    }

    /// The bytes (none when null).
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }

    /// Whether the data is null rather than bytes.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }
}

impl Jute for NullableBuffer {
    fn write(&self, w: &mut JuteWriter) {
        w.nullable_buffer(self.0.as_deref())
    }
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError> {
        r.nullable_buffer(what).map(NullableBuffer)
    }
}

impl<T: Jute> Jute for Vec<T> {
    fn write(&self, w: &mut JuteWriter) {
        w.int(self.len() as i32);
        for v in self {
            v.write(w);
        }
    }
    fn read(r: &mut JuteReader, what: &'static str) -> Result<Self, JuteError> {
        let n = r.count(what)?;
        (0..n).map(|_| T::read(r, what)).collect()
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }

        impl $crate::jute::Jute for $name {
            fn write(&self, _w: &mut $crate::jute::JuteWriter) {
                $($crate::jute::Jute::write(&self.$field, _w);)*
            }
            fn read(_r: &mut $crate::jute::JuteReader, _what: &'static str) -> Result<Self, $crate::jute::JuteError> {
                Ok($name { $($field: <$ty as $crate::jute::Jute>::read(_r, concat!(stringify!($name), ".", stringify!($field)))?),* })
            }
        }
    };
}
