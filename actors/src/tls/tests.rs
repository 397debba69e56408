//! Handshakes between the server and client configurations over an in-memory pipe, and
//! key store parsing under seeded mutations.

use super::*;
use ensemble_config::{ClientAuth, ClientTls, Store, StoreKind};
use rand::{Rng, SeedableRng};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};
use std::path::Path;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A CA, a server certificate for `localhost` and a client one for `CN=c1,O=t`, as PEM files
/// in `dir`: `ca.pem`, `server.pem` and `client.pem` (certificate and key in one file).
fn pem_files(dir: &Path) {
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let issue = |name: &str, params: CertificateParams| {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let text = format!("{}{}", cert.pem(), key.serialize_pem());
        std::fs::write(dir.join(name), text).unwrap();
    };
    issue(
        "server.pem",
        CertificateParams::new(vec!["localhost".into()]).unwrap(),
    );
    let mut client = CertificateParams::default();
    client.distinguished_name = DistinguishedName::new();
    client
        .distinguished_name
        .push(DnType::OrganizationName, "t");
    client.distinguished_name.push(DnType::CommonName, "c1");
    issue("client.pem", client);
}

fn pem(dir: &Path, name: &str) -> Store {
    Store {
        location: dir.join(name),
        password: String::new(),
        kind: StoreKind::Pem,
    }
}

fn server_tls(dir: &Path, client_auth: ClientAuth) -> ClientTls {
    ClientTls {
        bind: ensemble_config::ClientAddress {
            host: "127.0.0.1".into(),
            port: 1,
        },
        key_store: pem(dir, "server.pem"),
        trust_store: Some(pem(dir, "ca.pem")),
        client_auth,
        protocols: vec!["TLSv1.3".into(), "TLSv1.2".into()],
        cipher_suites: Vec::new(),
        super_user: None,
        handshake_timeout_ms: 5000,
    }
}

/// Runs a handshake; the client certificate's subject DN the server saw, or the error.
async fn handshake(
    server: &ClientTls,
    client: &ClientTlsOptions,
) -> Result<Option<String>, String> {
    let acceptor = TlsAcceptor::from(server_config(server)?);
    let connector = TlsConnector::from(client_config(client)?);
    let (a, b) = tokio::io::duplex(64 << 10);
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let (s, c) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
    let (s, _c) = (s.map_err(|e| e.to_string())?, c.map_err(|e| e.to_string())?);
    let leaf = s.get_ref().1.peer_certificates().and_then(|c| c.first());
    leaf.map(|c| subject_dn(c)).transpose()
}

#[tokio::test]
async fn client_certificates_per_client_auth() {
    let dir = tempfile::tempdir().unwrap();
    pem_files(dir.path());
    let with_cert = ClientTlsOptions {
        trust_store: Some(pem(dir.path(), "ca.pem")),
        key_store: Some(pem(dir.path(), "client.pem")),
        skip_hostname_verification: false,
    };
    let anonymous = ClientTlsOptions {
        key_store: None,
        ..with_cert.clone()
    };
    let need = server_tls(dir.path(), ClientAuth::Need);
    let want = server_tls(dir.path(), ClientAuth::Want);
    let none = server_tls(dir.path(), ClientAuth::None);
    let dn = Some("CN=c1,O=t".to_string());
    assert_eq!(handshake(&need, &with_cert).await, Ok(dn.clone()));
    assert!(handshake(&need, &anonymous).await.is_err());
    assert_eq!(handshake(&want, &with_cert).await, Ok(dn));
    assert_eq!(handshake(&want, &anonymous).await, Ok(None));
    assert_eq!(handshake(&none, &with_cert).await, Ok(None));
}

#[tokio::test]
async fn hostname_verification_can_be_skipped_but_not_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    pem_files(dir.path());
    let server = server_tls(dir.path(), ClientAuth::None);
    let acceptor = TlsAcceptor::from(server_config(&server).unwrap());
    for (skip, ok) in [(false, false), (true, true)] {
        let opts = ClientTlsOptions {
            trust_store: Some(pem(dir.path(), "ca.pem")),
            key_store: None,
            skip_hostname_verification: skip,
        };
        let connector = TlsConnector::from(client_config(&opts).unwrap());
        let (a, b) = tokio::io::duplex(64 << 10);
        let name = rustls_pki_types::ServerName::try_from("other.example").unwrap();
        let (_, c) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
        assert_eq!(c.is_ok(), ok, "skip hostname verification: {skip}");
    }
    // A trust store that does not hold the server's CA fails even without the name check.
    let opts = ClientTlsOptions {
        trust_store: Some(pem(dir.path(), "client.pem")),
        key_store: None,
        skip_hostname_verification: true,
    };
    let connector = TlsConnector::from(client_config(&opts).unwrap());
    let (a, b) = tokio::io::duplex(64 << 10);
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let (_, c) = tokio::join!(acceptor.accept(a), connector.connect(name, b));
    assert!(c.is_err());
}

#[test]
fn settings_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    pem_files(dir.path());
    let mut tls = server_tls(dir.path(), ClientAuth::Need);
    tls.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_MD5".into()];
    let e = server_config(&tls).unwrap_err();
    assert!(e.contains("none of the cipher suites"), "{e}");
    tls.cipher_suites = vec!["TLS_AES_128_GCM_SHA256".into(), "TLS_X".into()];
    assert!(server_config(&tls).is_ok());
    tls.key_store = pem(dir.path(), "ca.pem");
    let e = server_config(&tls).unwrap_err();
    assert!(e.contains("ca.pem") && !e.contains('\n'), "{e}");
    tls.key_store.kind = StoreKind::Jks;
    let e = server_config(&tls).unwrap_err();
    assert!(e.contains("keytool -importkeystore"), "{e}");
}

/// Mutated PEM and PKCS#12 bytes are refused or accepted, never a panic.
#[test]
fn mutated_stores_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    pem_files(dir.path());
    let pem_bytes = std::fs::read(dir.path().join("client.pem")).unwrap();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let pkcs12 = Store {
        location: dir.path().join("x.p12"),
        password: "pw".into(),
        kind: StoreKind::Pkcs12,
    };
    let pem_store = pem(dir.path(), "client.pem");
    // A PKCS#12 shape: a DER SEQUENCE of arbitrary content.
    let p12_like: Vec<u8> = [0x30, 0x82, 0x01, 0x00]
        .into_iter()
        .chain((0..256).map(|i| i as u8))
        .collect();
    for round in 0..400 {
        let (base, store) = if round % 2 == 0 {
            (&pem_bytes, &pem_store)
        } else {
            (&p12_like, &pkcs12)
        };
        let mut bytes = base.clone();
        for _ in 0..rng.random_range(1..8) {
            let i = rng.random_range(0..bytes.len());
            bytes[i] = rng.random();
        }
        bytes.truncate(rng.random_range(0..=bytes.len()));
        let _ = identity_from_bytes(&bytes, store);
        let _ = trust_from_bytes(&bytes, store);
    }
}
