//! Mutual TLS on peer links (ZooKeeper's `sslQuorum`): both sides of every peer connection
//! present a certificate the quorum trust store vouches for, before any handshake frame. With
//! hostname verification the dialer's certificate must also name the host of the server it
//! claims to be, and the acceptor's the host dialed.

use crate::tls::quorum_configs;
use ensemble_config::QuorumTls;
use ensemble_messages::Sid;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::ServerCertVerifier;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// What a server needs to run its peer links over mutual TLS.
pub struct PeerTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    names: Option<Arc<WebPkiServerVerifier>>,
    hosts: RwLock<BTreeMap<Sid, String>>,
    handshake: Duration,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("hosts", &self.hosts)
            .field("hostname_verification", &self.names.is_some())
            .finish_non_exhaustive()
    }
}

impl PeerTls {
    /// Quorum TLS for an ensemble whose servers are on `hosts` (their server lines' hosts);
    /// an error is one line naming the file or setting.
    pub fn new(tls: &QuorumTls, hosts: BTreeMap<Sid, String>) -> Result<Self, String> {
        let configs = quorum_configs(tls)?;
        Ok(PeerTls {
            acceptor: TlsAcceptor::from(configs.server),
            connector: TlsConnector::from(configs.client),
            names: configs.names,
            hosts: RwLock::new(hosts),
            handshake: Duration::from_millis(tls.handshake_timeout_ms),
        })
    }

    /// Accepts TLS from a dialer that presents a trusted certificate, within the handshake
    /// timeout.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> io::Result<server::TlsStream<TcpStream>> {
        tokio::time::timeout(self.handshake, self.acceptor.accept(tcp))
            .await
            .map_err(|_| timed_out())?
    }

    /// Runs TLS to server `peer`, checking that its certificate is trusted (and names its
    /// host, with hostname verification), within the handshake timeout.
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
        peer: Sid,
    ) -> io::Result<client::TlsStream<TcpStream>> {
        let name = self.server_name(peer).map_err(io::Error::other)?;
        tokio::time::timeout(self.handshake, self.connector.connect(name, tcp))
            .await
            .map_err(|_| timed_out())?
    }

    /// The certificate chain the dialer on `stream` presented (leaf first).
    pub(crate) fn chain(stream: &server::TlsStream<TcpStream>) -> Vec<CertificateDer<'static>> {
        stream
            .get_ref()
            .1
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Whether a dialer that presented `chain` may be server `sid`: with hostname
    /// verification, its certificate must name the host of `sid`'s server line.
    pub(crate) fn vouch(&self, chain: &[CertificateDer<'static>], sid: Sid) -> Result<(), String> {
        let Some(names) = &self.names else {
            return Ok(());
        };
        let (leaf, intermediates) = chain.split_first().ok_or("it presented no certificate")?;
        let name = self.server_name(sid)?;
        names
            .verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("its certificate does not fit server {sid}'s host: {e}"))
    }

    /// Records server `sid`'s host (a reconfig added it, or changed its server line).
    pub(crate) fn set_host(&self, sid: Sid, host: String) {
        let mut hosts = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        hosts.insert(sid, host);
    }

    /// The TLS name of server `sid`: its server line's host.
    fn server_name(&self, sid: Sid) -> Result<ServerName<'static>, String> {
        let hosts = self.hosts.read().unwrap_or_else(PoisonError::into_inner);
        let host = hosts
            .get(&sid)
            .ok_or_else(|| format!("server {sid} is not configured"))?;
        ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|e| format!("server {sid}'s host {host} is not a TLS name: {e}"))
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake in time")
}
