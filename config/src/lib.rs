//! Typed configuration of an ensemble node.
//!
//! Two front doors produce the same [`NodeConfig`]:
//! - [`load_toml`]: native TOML through the `config` crate, then env `ENSEMBLE__SECTION__KEY`;
//! - [`load_zoo_cfg`]: Apache ZooKeeper's `zoo.cfg` plus `dataDir/myid`, for drop-in migration.
//!
//! Both end in [`NodeConfig::validate`], which names the first problem in one line.
//! [`spark`] reads the Spark properties of masters and workers.

pub mod apache_files;
pub mod dynamic;
mod http;
mod model;
mod native;
pub mod spark;
mod tls;
mod zoo_cfg;

pub use http::PROMETHEUS_PROVIDER;
pub use model::{
    is_loopback, AdminSettings, ClientAddress, ClientSettings, ClientSource, ElectionSettings,
    MetricsSettings, NodeConfig, PeerAuth, ServerEntry, ServerRole, StorageSettings,
    PEER_SECRET_KEY,
};
pub use native::{
    load_toml, load_toml_str, parse_toml, EnsembleFile, LogSection, MasterSection, NativeRole,
    WorkerSection, DEFAULT_TOML,
};
pub use tls::{
    ClientAuth, ClientTls, PeerTlsSection, QuorumTls, Store, StoreKind, TlsSection,
    DEFAULT_HANDSHAKE_TIMEOUT_MS,
};
pub use zoo_cfg::{load_zoo_cfg, parse_zoo_cfg};

/// Server id, the `N` of `server.N`.
pub type Sid = u64;

/// A configuration problem, stated in one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A file could not be parsed.
    #[error("{0}")]
    Parse(String),
    /// The parsed values are inconsistent or out of range.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    fn invalid(msg: impl Into<String>) -> Self {
        ConfigError::Invalid(msg.into())
    }
}
