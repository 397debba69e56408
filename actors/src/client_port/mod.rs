//! The client port: four-letter words now; the ZooKeeper session protocol builds on it.

mod four_letter;
mod listener;

pub use four_letter::{render, ServerInfo, FOUR_LETTER_WORDS};
pub use listener::ClientPort;
