//! The client port: ZooKeeper's session protocol and four-letter words.

mod connection;
mod four_letter;
mod limits;
mod listener;
mod protocol;
mod service;

pub use four_letter::{render, ServerInfo, FOUR_LETTER_WORDS};
pub use listener::ClientPort;
pub use protocol::{ClientConnect, ClientGone, ClientPacket, ClientSink, ToClient};
pub use service::{
    digest_id, to_stat, ClientReport, ClientService, ConnectionInfo, Host, ServiceSettings,
};
