//! Apache's txn log file (`version-2/log.<first zxid>`): a file header, then records of
//! `long adler32(bytes), int length, bytes, byte 0x42`, then zeros up to the preallocated size.

use super::checksum::adler32;
use super::records::{FileHeader, LoggedTxn};
use ensemble_messages::jute::JuteReader;

/// Bytes of the file header.
pub const HEADER_LEN: usize = 16;
/// The byte that ends every record (`'B'`).
const END_OF_RECORD: u8 = 0x42;

/// One record of a log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Offset of the record in the file.
    pub offset: usize,
    /// The txn.
    pub txn: LoggedTxn,
}

/// How the records of a log file end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEnd {
    /// The end of the file, or the zero padding Apache preallocates, at this offset.
    Clean(usize),
    /// A record cut short at this offset (a crash mid-write): Apache stops reading there.
    Torn(usize, String),
}

/// A parsed log file: its records up to the first damage, and what stopped the reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApacheLog {
    /// Its file header.
    pub header: FileHeader,
    /// The whole, checksummed records.
    pub records: Vec<LogRecord>,
    /// How they end.
    pub end: LogEnd,
}

/// Parses a log file. A bad header, a record failing its Adler-32 or an undecodable record is
/// an error; a record cut short is a [`LogEnd::Torn`] end.
pub fn parse_log(bytes: &[u8]) -> Result<ApacheLog, String> {
    let header = FileHeader::read(&mut JuteReader::new(bytes), *b"ZKLG")?;
    let mut records = Vec::new();
    let mut offset = HEADER_LEN;
    let end = loop {
        match read_record(bytes, offset)? {
            Next::Record(txn, next) => {
                records.push(LogRecord { offset, txn });
                offset = next;
            }
            Next::End => break LogEnd::Clean(offset),
            Next::Torn(why) => break LogEnd::Torn(offset, why),
        }
    };
    Ok(ApacheLog {
        header,
        records,
        end,
    })
}

enum Next {
    Record(LoggedTxn, usize),
    End,
    Torn(String),
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// The record at `offset`, as Apache's reader sees it: an empty record (zeros) or the end of
/// the file ends the log, a record cut short or without its end byte is torn.
fn read_record(bytes: &[u8], offset: usize) -> Result<Next, String> {
    let rest = bytes.get(offset..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(Next::End);
    }
    if rest.len() < 12 {
        return Ok(if rest.iter().all(|b| *b == 0) {
            Next::End
        } else {
            Next::Torn("file ends inside a record header".into())
        });
    }
    let crc = be_i64(rest);
    let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
    if len == 0 {
        return Ok(Next::End);
    }
    let Ok(len) = usize::try_from(len) else {
        return Err(format!("record at offset {offset} has length {len}"));
    };
    let Some(body) = rest.get(12..12usize.saturating_add(len)) else {
        return Ok(Next::Torn(format!(
            "record of {len} bytes runs past the end of the file"
        )));
    };
    if rest.get(12 + len) != Some(&END_OF_RECORD) {
        return Ok(Next::Torn("record lacks its end byte 0x42".into()));
    }
    let computed = adler32(body);
    if crc != i64::from(computed) {
        return Err(format!(
            "record at offset {offset} fails its Adler-32 (stored {crc:#x}, computed {computed:#x})"
        ));
    }
    let txn = LoggedTxn::parse(body).map_err(|e| format!("record at offset {offset}: {e}"))?;
    Ok(Next::Record(txn, offset + 13 + len))
}
