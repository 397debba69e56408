//! The client port: ZooKeeper's session protocol and four-letter words.

mod connection;
mod direct;
mod four_letter;
mod limits;
mod listener;
mod protocol;
mod reads;
mod reconfig;
mod service;
mod sinks;
#[cfg(test)]
mod test_host;
mod tls;

pub use direct::{DirectReader, PublishedTree, SessionShare};
pub use four_letter::{
    avg, dir_size, environment, mode, monitor_values, read_only, render, version, ServerInfo,
    FOUR_LETTER_WORDS, REPORT_WORDS,
};
pub use limits::Load;
pub use listener::ClientPort;
pub use protocol::{ClientConnect, ClientGone, ClientPacket, ClientSink, ToClient};
pub use service::{
    digest_id, to_stat, ClientReport, ClientService, ConnectionInfo, Hello, ServiceInput,
    ServiceOutput, ServiceSettings, StepClock,
};
pub use sinks::ClientSinks;
pub use tls::SecurePort;
