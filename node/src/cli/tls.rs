//! `--secure` and the TLS store options of the commands that dial the client port.

use ensemble_actors::tls::{client_config, ClientConfig, ClientTlsOptions};
use ensemble_config::Store;
use std::sync::Arc;

/// TLS to the servers' secure client port, as zkCli's `-Dzookeeper.client.secure=true` with
/// the `zookeeper.ssl.*` properties.
#[derive(clap::Args, Debug)]
pub(super) struct TlsArgs {
    /// Speak TLS (zookeeper.client.secure=true); needs --trust-store.
    #[arg(long, requires = "trust_store")]
    secure: bool,
    /// CA certificates the server's must chain to, PEM or PKCS#12 (zookeeper.ssl.trustStore.location).
    #[arg(long, value_name = "FILE", requires = "secure")]
    trust_store: Option<String>,
    /// Trust store password (zookeeper.ssl.trustStore.password).
    #[arg(long, value_name = "PASSWORD")]
    trust_store_password: Option<String>,
    /// Trust store type, PEM or PKCS12; default from the file name (zookeeper.ssl.trustStore.type).
    #[arg(long, value_name = "TYPE")]
    trust_store_type: Option<String>,
    /// Client certificate and key, PEM (one file) or PKCS#12, for the x509 identity
    /// (zookeeper.ssl.keyStore.location).
    #[arg(long, value_name = "FILE", requires = "secure")]
    key_store: Option<String>,
    /// Key store password (zookeeper.ssl.keyStore.password).
    #[arg(long, value_name = "PASSWORD")]
    key_store_password: Option<String>,
    /// Key store type, PEM or PKCS12; default from the file name (zookeeper.ssl.keyStore.type).
    #[arg(long, value_name = "TYPE")]
    key_store_type: Option<String>,
    /// Do not check that the server certificate names the host dialled
    /// (zookeeper.ssl.hostnameVerification=false).
    #[arg(long, requires = "secure")]
    no_hostname_verification: bool,
}

impl TlsArgs {
    /// The client TLS configuration, or None without --secure.
    pub(super) fn config(&self) -> Result<Option<Arc<ClientConfig>>, String> {
        if !self.secure {
            return Ok(None);
        }
        let store =
            |what: &str, loc: &Option<String>, pw: &Option<String>, kind: &Option<String>| {
                loc.as_deref()
                    .map(|l| Store::new(what, l, pw.clone(), kind.as_deref()))
                    .transpose()
                    .map_err(|e| e.to_string())
            };
        let opts = ClientTlsOptions {
            trust_store: store(
                "--trust-store",
                &self.trust_store,
                &self.trust_store_password,
                &self.trust_store_type,
            )?,
            key_store: store(
                "--key-store",
                &self.key_store,
                &self.key_store_password,
                &self.key_store_type,
            )?,
            skip_hostname_verification: self.no_hostname_verification,
        };
        client_config(&opts).map(Some)
    }
}
