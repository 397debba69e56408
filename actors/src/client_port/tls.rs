//! The secure client port: a TLS handshake (bounded by a deadline) in front of the same
//! ZooKeeper protocol as the plain port, and the `x509` identity of a client certificate.

use crate::tls::{server_config, subject_dn};
use ensemble_config::ClientTls;
use std::io;
use std::time::Duration;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A byte stream a connection can be split into reading and writing halves.
pub trait IntoHalves {
    /// The reading half.
    type Read: tokio::io::AsyncRead + Unpin + Send + 'static;
    /// The writing half.
    type Write: tokio::io::AsyncWrite + Unpin + Send + 'static;
    /// Splits the stream.
    fn into_halves(self) -> (Self::Read, Self::Write);
}

impl IntoHalves for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        self.into_split()
    }
}

impl IntoHalves for TlsStream<TcpStream> {
    type Read = ReadHalf<Self>;
    type Write = WriteHalf<Self>;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self)
    }
}

/// What the secure port needs to accept a connection.
pub struct SecurePort {
    acceptor: TlsAcceptor,
    super_user: Option<String>,
    handshake: Duration,
}

impl SecurePort {
    /// The secure port's TLS setup; an error is one line naming the file or setting.
    pub fn new(tls: &ClientTls) -> Result<Self, String> {
        Ok(SecurePort {
            acceptor: TlsAcceptor::from(server_config(tls)?),
            super_user: tls.super_user.clone(),
            handshake: Duration::from_millis(tls.handshake_timeout_ms),
        })
    }

    /// Completes the TLS handshake before the earlier of `deadline` and the TLS handshake
    /// timeout, and names the client by its certificate: `x509:<subject DN>`, plus
    /// `super:<subject DN>` for the configured super user. No certificate (clientAuth want or
    /// none) means no identity.
    pub async fn accept(
        &self,
        stream: TcpStream,
        deadline: Instant,
    ) -> io::Result<(TlsStream<TcpStream>, Vec<(String, String)>)> {
        let deadline = deadline.min(Instant::now() + self.handshake);
        let tls = tokio::time::timeout_at(deadline, self.acceptor.accept(stream))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no TLS handshake in time"))??;
        let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
        let identities = match leaf {
            None => Vec::new(),
            Some(cert) => {
                let dn = subject_dn(cert).map_err(io::Error::other)?;
                self.identities(dn)
            }
        };
        Ok((tls, identities))
    }

    /// The identities of a client whose certificate's subject is `dn`.
    fn identities(&self, dn: String) -> Vec<(String, String)> {
        let mut ids = Vec::new();
        if self.super_user.as_deref() == Some(dn.as_str()) {
            tracing::info!("authenticated x509 id '{dn}' as super user");
            ids.push(("super".to_string(), dn.clone()));
        }
        tracing::debug!("authenticated x509 id '{dn}'");
        ids.push(("x509".to_string(), dn));
        ids
    }
}
