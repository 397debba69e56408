//! TLS settings: the secure client port (zoo.cfg `secureClientPort`, `ssl.*`; native TOML
//! `[client.tls]`) and mutual TLS between servers (zoo.cfg `sslQuorum`, `ssl.quorum.*`; native
//! TOML `[peer.tls]`).

use crate::model::ClientAddress;
use crate::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The format of a key or trust store file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// PEM text: certificates and (for a key store) one private key, in one file.
    Pem,
    /// PKCS#12 (`.p12`, `.pfx`), opened with the store's password.
    Pkcs12,
    /// Java KeyStore: not supported (convert it to PKCS#12).
    Jks,
    /// Bouncy Castle FIPS keystore: not supported.
    Bcfks,
}

impl StoreKind {
    /// ZooKeeper's `ssl.keyStore.type` names (any case): PEM, PKCS12, JKS, BCFKS.
    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        match name.to_ascii_uppercase().as_str() {
            "PEM" => Ok(StoreKind::Pem),
            "PKCS12" => Ok(StoreKind::Pkcs12),
            "JKS" => Ok(StoreKind::Jks),
            "BCFKS" => Ok(StoreKind::Bcfks),
            _ => Err(ConfigError::invalid(format!(
                "TLS store type {name} is not one of PEM, PKCS12, JKS, BCFKS"
            ))),
        }
    }

    /// The kind a file name implies, as ZooKeeper guesses it: `.pem`, `.p12`/`.pfx`, `.jks`,
    /// `.bcfks`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pem" | "crt" | "key" => Some(StoreKind::Pem),
            "p12" | "pfx" => Some(StoreKind::Pkcs12),
            "jks" => Some(StoreKind::Jks),
            "bcfks" => Some(StoreKind::Bcfks),
            _ => None,
        }
    }
}

/// A key or trust store file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// The file.
    pub location: PathBuf,
    /// Its password: a PKCS#12 file's, or an encrypted PKCS#8 PEM key's.
    pub password: String,
    /// Its format: given, or guessed from the file name.
    pub kind: StoreKind,
}

impl Store {
    /// A store at `location` of kind `kind` (a ZooKeeper type name) or the kind its name
    /// implies; `what` names the setting in errors.
    pub fn new(
        what: &str,
        location: &str,
        password: Option<String>,
        kind: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let location = PathBuf::from(location);
        let kind = match kind.filter(|k| !k.is_empty()) {
            Some(k) => StoreKind::from_name(k)?,
            None => StoreKind::from_path(&location).ok_or_else(|| {
                ConfigError::invalid(format!(
                    "{what} {}: cannot tell its type from the file name; set its type \
                     (PEM or PKCS12)",
                    location.display()
                ))
            })?,
        };
        Ok(Store {
            location,
            password: password.unwrap_or_default(),
            kind,
        })
    }
}

/// Whether the secure port asks clients for a certificate (`ssl.clientAuth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client must present a certificate the trust store vouches for (ZooKeeper's default).
    Need,
    /// A client may present one; one that does is authenticated as `x509`.
    Want,
    /// Certificates are not asked for.
    None,
}

impl ClientAuth {
    /// `need`, `want` or `none` (any case).
    pub fn from_name(name: &str) -> Result<Self, ConfigError> {
        match name.to_ascii_lowercase().as_str() {
            "need" => Ok(ClientAuth::Need),
            "want" => Ok(ClientAuth::Want),
            "none" => Ok(ClientAuth::None),
            _ => Err(ConfigError::invalid(format!(
                "ssl.clientAuth={name} is not need, want or none"
            ))),
        }
    }
}

/// The secure client port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTls {
    /// Where it listens; a wildcard host means every interface.
    pub bind: ClientAddress,
    /// The server's certificate chain and private key.
    pub key_store: Store,
    /// The certificates client certificates must chain to.
    pub trust_store: Option<Store>,
    /// Whether clients must, may or need not present a certificate.
    pub client_auth: ClientAuth,
    /// TLS versions allowed: `TLSv1.2`, `TLSv1.3`.
    pub protocols: Vec<String>,
    /// Cipher suites allowed (IANA names as Java spells them); empty means the defaults.
    pub cipher_suites: Vec<String>,
    /// The x509 identity (subject DN) that passes every ACL check, as ZooKeeper's
    /// `zookeeper.X509AuthenticationProvider.superUser`.
    pub super_user: Option<String>,
    /// How long a new connection has for its TLS handshake, in ms
    /// (`ssl.handshakeDetectionTimeoutMillis`).
    pub handshake_timeout_ms: u64,
}

impl ClientTls {
    /// Refuses settings the secure port cannot serve, in one line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client_auth != ClientAuth::None && self.trust_store.is_none() {
            return Err(ConfigError::invalid(
                "TLS: ssl.clientAuth is need or want but no trust store is set \
                 (ssl.trustStore.location); set one or ssl.clientAuth=none",
            ));
        }
        check_protocols(&self.protocols)
    }
}

/// The TLS versions `ssl.protocol` implies when `ssl.enabledProtocols` is not set: TLSv1.3
/// (ZooKeeper's default) allows 1.3 and 1.2; TLSv1.2 allows 1.2; TLS allows both.
pub fn protocols_for(protocol: &str) -> Vec<String> {
    match protocol {
        "TLSv1.2" => vec!["TLSv1.2".into()],
        "TLSv1.3" | "TLS" => vec!["TLSv1.3".into(), "TLSv1.2".into()],
        other => vec![other.to_string()],
    }
}

/// A comma-separated list, trimmed, without empty items.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Mutual TLS on the quorum port (Apache ZooKeeper's `sslQuorum`): every peer connection,
/// dialed or accepted, runs TLS in which both sides present a certificate the trust store
/// vouches for. That certificate is the peer's proof of membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumTls {
    /// This server's certificate chain and private key, presented in both directions.
    pub key_store: Store,
    /// The certificates every peer's certificate must chain to.
    pub trust_store: Store,
    /// TLS versions allowed: `TLSv1.2`, `TLSv1.3`.
    pub protocols: Vec<String>,
    /// Cipher suites allowed (Java's names); empty means the defaults.
    pub cipher_suites: Vec<String>,
    /// Whether a peer's certificate must name the host of its server line: checked by the
    /// dialer on the acceptor's certificate and by the acceptor on the dialer's, for the server
    /// id the dialer claims (`ssl.quorum.hostnameVerification`, default true).
    pub hostname_verification: bool,
    /// How long a new peer connection has for its TLS handshake, in ms.
    pub handshake_timeout_ms: u64,
}

impl QuorumTls {
    /// Refuses settings the quorum port cannot run, in one line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_protocols(&self.protocols)
    }
}

/// Refuses an empty or unknown TLS version list.
fn check_protocols(protocols: &[String]) -> Result<(), ConfigError> {
    if protocols.is_empty() {
        return Err(ConfigError::invalid("TLS: no protocol enabled"));
    }
    match protocols
        .iter()
        .find(|p| *p != "TLSv1.2" && *p != "TLSv1.3")
    {
        Some(p) => Err(ConfigError::invalid(format!(
            "TLS: protocol {p} is not supported (TLSv1.2, TLSv1.3)"
        ))),
        None => Ok(()),
    }
}

/// `[peer.tls]` of the native TOML: mutual TLS between servers, on when `key_store` is set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerTlsSection {
    /// Key store file (PEM with certificate chain and key, or PKCS#12).
    pub key_store: Option<String>,
    /// Key store password (PKCS#12, or an encrypted PEM key).
    pub key_store_password: Option<String>,
    /// Key store type (PEM, PKCS12); default: from the file name.
    pub key_store_type: Option<String>,
    /// Trust store file holding the CA of every server's certificate.
    pub trust_store: Option<String>,
    /// Trust store password.
    pub trust_store_password: Option<String>,
    /// Trust store type; default: from the file name.
    pub trust_store_type: Option<String>,
    /// TLS versions; default both TLSv1.3 and TLSv1.2.
    pub protocols: Vec<String>,
    /// Cipher suites; default rustls's.
    pub cipher_suites: Vec<String>,
    /// Check that a peer's certificate names its server line's host; default true.
    pub hostname_verification: Option<bool>,
    /// TLS handshake deadline in ms; default 5000.
    pub handshake_timeout_ms: Option<u64>,
}

impl PeerTlsSection {
    /// Quorum TLS, if `key_store` is set.
    pub fn resolve(self) -> Result<Option<QuorumTls>, ConfigError> {
        let Some(location) = self.key_store else {
            return Ok(None);
        };
        let key_store = Store::new(
            "[peer.tls] key_store",
            &location,
            self.key_store_password,
            self.key_store_type.as_deref(),
        )?;
        let trust = self.trust_store.ok_or_else(|| {
            ConfigError::invalid("[peer.tls]: key_store is set but trust_store is not")
        })?;
        let trust_store = Store::new(
            "[peer.tls] trust_store",
            &trust,
            self.trust_store_password,
            self.trust_store_type.as_deref(),
        )?;
        let tls = QuorumTls {
            key_store,
            trust_store,
            protocols: if self.protocols.is_empty() {
                protocols_for("TLSv1.3")
            } else {
                self.protocols
            },
            cipher_suites: self.cipher_suites,
            hostname_verification: self.hostname_verification.unwrap_or(true),
            handshake_timeout_ms: self
                .handshake_timeout_ms
                .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT_MS),
        };
        tls.validate()?;
        Ok(Some(tls))
    }
}

/// `[client.tls]` of the native TOML.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// Secure client port; TLS is off unless set.
    pub port: Option<u16>,
    /// Address it binds; default: the server's client host.
    pub address: Option<String>,
    /// Key store file (PEM with certificate chain and key, or PKCS#12).
    pub key_store: Option<String>,
    /// Key store password.
    pub key_store_password: Option<String>,
    /// Key store type (PEM, PKCS12); default: from the file name.
    pub key_store_type: Option<String>,
    /// Trust store file for client certificates.
    pub trust_store: Option<String>,
    /// Trust store password.
    pub trust_store_password: Option<String>,
    /// Trust store type; default: from the file name.
    pub trust_store_type: Option<String>,
    /// `need` (default), `want` or `none`.
    pub client_auth: Option<ClientAuth>,
    /// TLS versions; default both TLSv1.3 and TLSv1.2.
    pub protocols: Vec<String>,
    /// Cipher suites; default rustls's.
    pub cipher_suites: Vec<String>,
    /// The x509 subject DN that passes every ACL check.
    pub super_user: Option<String>,
    /// TLS handshake deadline in ms; default 5000.
    pub handshake_timeout_ms: Option<u64>,
}

/// Default TLS handshake deadline, ZooKeeper's `ssl.handshakeDetectionTimeoutMillis`.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 5000;

impl TlsSection {
    /// The secure port for a server whose client host is `host`, if `port` is set.
    pub fn resolve(self, host: &str) -> Result<Option<ClientTls>, ConfigError> {
        let Some(port) = self.port else {
            return Ok(None);
        };
        let location = self.key_store.ok_or_else(|| {
            ConfigError::invalid("[client.tls]: port is set but key_store is not")
        })?;
        let key_store = Store::new(
            "[client.tls] key_store",
            &location,
            self.key_store_password,
            self.key_store_type.as_deref(),
        )?;
        let trust_store = match self.trust_store {
            Some(t) => Some(Store::new(
                "[client.tls] trust_store",
                &t,
                self.trust_store_password,
                self.trust_store_type.as_deref(),
            )?),
            None => None,
        };
        let protocols = if self.protocols.is_empty() {
            protocols_for("TLSv1.3")
        } else {
            self.protocols
        };
        let tls = ClientTls {
            bind: ClientAddress {
                host: self.address.unwrap_or_else(|| host.to_string()),
                port,
            },
            key_store,
            trust_store,
            client_auth: self.client_auth.unwrap_or(ClientAuth::Need),
            protocols,
            cipher_suites: self.cipher_suites,
            super_user: self.super_user,
            handshake_timeout_ms: self
                .handshake_timeout_ms
                .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT_MS),
        };
        tls.validate()?;
        Ok(Some(tls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_kind_from_name_and_extension() {
        let k = |p: &str| StoreKind::from_path(Path::new(p));
        assert_eq!(k("/a/key.PEM"), Some(StoreKind::Pem));
        assert_eq!(k("/a/key.p12"), Some(StoreKind::Pkcs12));
        assert_eq!(k("/a/key.pfx"), Some(StoreKind::Pkcs12));
        assert_eq!(k("/a/key.jks"), Some(StoreKind::Jks));
        assert_eq!(k("/a/key.bcfks"), Some(StoreKind::Bcfks));
        assert_eq!(k("/a/key"), None);
        assert_eq!(StoreKind::from_name("pkcs12").ok(), Some(StoreKind::Pkcs12));
        assert!(StoreKind::from_name("PKCS11").is_err());
        let s = Store::new("ks", "/a/key.bin", None, Some("PEM")).unwrap();
        assert_eq!(s.kind, StoreKind::Pem);
        assert!(Store::new("ks", "/a/key.bin", None, None).is_err());
    }

    #[test]
    fn section_needs_a_trust_store_unless_client_auth_is_none() {
        let section = TlsSection {
            port: Some(2281),
            key_store: Some("/k.pem".into()),
            ..TlsSection::default()
        };
        let e = section.clone().resolve("h").unwrap_err().to_string();
        assert!(e.contains("trust store"), "{e}");
        let none = TlsSection {
            client_auth: Some(ClientAuth::None),
            ..section
        };
        let tls = none.resolve("h").unwrap().unwrap();
        assert_eq!(tls.bind.host, "h");
        assert_eq!(tls.protocols, ["TLSv1.3", "TLSv1.2"]);
        assert_eq!(TlsSection::default().resolve("h").unwrap(), None);
    }
}
