//! TLS for the client port, the quorum port and the client library: rustls configurations
//! built from key and trust stores, and the x509 identity of a client certificate.

mod keys;
mod name;

pub use keys::{
    encrypt_key_pem, identity_from_bytes, load_identity, load_trust, trust_from_bytes, Identity,
};
pub use name::subject_dn;
pub use tokio_rustls::rustls::ClientConfig;

use ensemble_config::{ClientAuth, ClientTls, QuorumTls, Store};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{
    self, version, CertificateError, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};

/// The rustls configuration of the secure client port; every problem is one line naming the
/// file or setting.
pub fn server_config(tls: &ClientTls) -> Result<Arc<ServerConfig>, String> {
    let provider = provider(&tls.cipher_suites)?;
    let identity = load_identity(&tls.key_store)?;
    let verifier = match (&tls.trust_store, tls.client_auth) {
        (_, ClientAuth::None) | (None, _) => WebPkiClientVerifier::no_client_auth(),
        (Some(store), auth) => {
            let builder =
                WebPkiClientVerifier::builder_with_provider(roots(store)?, provider.clone());
            let builder = if auth == ClientAuth::Want {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map_err(|e| format!("TLS trust store: {e}"))?
        }
    };
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(&tls.protocols)?)
        .map_err(|e| format!("TLS protocols: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| format!("TLS key store {}: {e}", tls.key_store.location.display()))?;
    Ok(Arc::new(config))
}

/// The rustls configurations of mutual TLS on the quorum port.
#[derive(Debug)]
pub struct QuorumConfigs {
    /// Accepting side: a peer must present a certificate the trust store vouches for.
    pub server: Arc<ServerConfig>,
    /// Dialing side: presents this server's certificate and checks the acceptor's.
    pub client: Arc<ClientConfig>,
    /// Checks a dialer's certificate against the host of the server it claims to be; `None`
    /// without hostname verification.
    pub names: Option<Arc<WebPkiServerVerifier>>,
}

/// The quorum port's rustls configurations; every problem is one line naming the file or
/// setting. One key store serves both directions, so its certificate must be good for TLS
/// servers and clients alike (no extended key usage, or both).
pub fn quorum_configs(tls: &QuorumTls) -> Result<QuorumConfigs, String> {
    let provider = provider(&tls.cipher_suites)?;
    let versions = versions(&tls.protocols)?;
    let identity = load_identity(&tls.key_store)?;
    let roots = roots(&tls.trust_store)?;
    let key_store = |e: rustls::Error| {
        format!(
            "TLS quorum key store {}: {e}",
            tls.key_store.location.display()
        )
    };
    let peers = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| format!("TLS quorum trust store: {e}"))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS quorum protocols: {e}"))?
        .with_client_cert_verifier(peers)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(key_store)?;
    let names = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("TLS quorum trust store: {e}"))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS quorum protocols: {e}"))?;
    let builder = if tls.hostname_verification {
        builder.with_webpki_verifier(names.clone())
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(names.clone())))
    };
    let client = builder
        .with_client_auth_cert(identity.chain, identity.key)
        .map_err(key_store)?;
    Ok(QuorumConfigs {
        server: Arc::new(server),
        client: Arc::new(client),
        names: tls.hostname_verification.then_some(names),
    })
}

/// How a client speaks TLS to a server.
#[derive(Clone, Debug, Default)]
pub struct ClientTlsOptions {
    /// Certificates the server's must chain to (required: there are no built-in roots).
    pub trust_store: Option<Store>,
    /// The client's own certificate and key, for servers that ask (x509 identity).
    pub key_store: Option<Store>,
    /// Skip checking that the server's certificate names the host dialled.
    pub skip_hostname_verification: bool,
}

/// The rustls configuration of a client.
pub fn client_config(opts: &ClientTlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = provider(&[])?;
    let store = opts
        .trust_store
        .as_ref()
        .ok_or("TLS needs a trust store holding the server's CA certificate")?;
    let roots = roots(store)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if opts.skip_hostname_verification {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| format!("TLS trust store: {e}"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(inner)))
    } else {
        builder.with_root_certificates(roots)
    };
    let config = match &opts.key_store {
        Some(ks) => {
            let identity = load_identity(ks)?;
            builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(|e| format!("TLS key store {}: {e}", ks.location.display()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The ring provider with only the named cipher suites (Java's names; TLS 1.3 ones without
/// rustls's `TLS13_` spelling), or all of ring's when none are named. Names rustls does not
/// implement are logged; naming none it implements is an error.
fn provider(names: &[String]) -> Result<Arc<CryptoProvider>, String> {
    let mut p = ring::default_provider();
    if names.is_empty() {
        return Ok(Arc::new(p));
    }
    let java_name = |s: &rustls::SupportedCipherSuite| {
        let name = s.suite().as_str().unwrap_or_default();
        name.replacen("TLS13_", "TLS_", 1)
    };
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !p.cipher_suites.iter().any(|s| java_name(s) == **n))
        .collect();
    if !unknown.is_empty() {
        tracing::warn!("TLS: cipher suites not implemented, ignored: {unknown:?}");
    }
    p.cipher_suites.retain(|s| names.contains(&java_name(s)));
    if p.cipher_suites.is_empty() {
        return Err(format!(
            "TLS: none of the cipher suites {names:?} is implemented"
        ));
    }
    Ok(Arc::new(p))
}

/// The rustls versions for `TLSv1.2`/`TLSv1.3`.
fn versions(protocols: &[String]) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    protocols
        .iter()
        .map(|p| match p.as_str() {
            "TLSv1.3" => Ok(&version::TLS13),
            "TLSv1.2" => Ok(&version::TLS12),
            other => Err(format!("TLS protocol {other} is not supported")),
        })
        .collect()
}

/// A root store of the trust store's certificates.
fn roots(store: &Store) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in load_trust(store)? {
        roots.add(cert).map_err(|e| {
            format!(
                "TLS trust store {}: unusable certificate: {e}",
                store.location.display()
            )
        })?;
    }
    Ok(Arc::new(roots))
}

/// Checks the server's chain but not the name in it (zookeeper.ssl.hostnameVerification=false).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
