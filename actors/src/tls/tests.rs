//! Handshakes between the server and client configurations over an in-memory pipe, and
//! key store parsing under seeded mutations.

use super::*;
use ensemble_config::{ClientAuth, ClientTls, QuorumTls, Store, StoreKind};
use rand::{Rng, SeedableRng};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
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

/// `client.pem`'s certificate with its key encrypted under `password`.
fn encrypted_client_pem(dir: &Path, password: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(dir.join("client.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(text.as_bytes()).unwrap();
    let sealed = encrypt_key_pem(key.secret_der(), password, 1000, &[3; 16], [5; 16]).unwrap();
    let cert_end = text.find("-----END CERTIFICATE-----\n").unwrap() + 26;
    format!("{}{sealed}", &text[..cert_end]).into_bytes()
}

#[test]
fn encrypted_pem_keys_open_with_their_password_only() {
    let dir = tempfile::tempdir().unwrap();
    pem_files(dir.path());
    let bytes = encrypted_client_pem(dir.path(), "right");
    let mut store = pem(dir.path(), "client.pem");
    store.password = "right".into();
    let plain = load_identity(&pem(dir.path(), "client.pem")).unwrap();
    let opened = identity_from_bytes(&bytes, &store).unwrap();
    assert_eq!(opened.key.secret_der(), plain.key.secret_der());
    assert_eq!(opened.chain, plain.chain);
    store.password = "wrong".into();
    let e = identity_from_bytes(&bytes, &store).unwrap_err();
    assert!(e.contains("wrong key store password"), "{e}");
    store.password = String::new();
    let e = identity_from_bytes(&bytes, &store).unwrap_err();
    assert!(e.contains("no key store password"), "{e}");
    // A key file that asks for hours of PBKDF2 is refused before any is run.
    let text = std::fs::read_to_string(dir.path().join("client.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_slice(text.as_bytes()).unwrap();
    let slow = encrypt_key_pem(key.secret_der(), "pw", 1, &[3; 16], [5; 16]).unwrap();
    let slow = slow_iterations(&slow, 100_000_000);
    store.password = "pw".into();
    let e = identity_from_bytes(slow.as_bytes(), &store).unwrap_err();
    assert!(e.contains("PBKDF2 iterations"), "{e}");
}

/// `pem` (an encrypted key made with 1 PBKDF2 iteration) re-encoded to claim `iterations`.
fn slow_iterations(pem: &str, iterations: u32) -> String {
    use pkcs8::der::{pem as der_pem, Decode, Encode};
    use pkcs8::pkcs5::{pbes2::Kdf, EncryptionScheme};
    let (label, der) = der_pem::decode_vec(pem.as_bytes()).unwrap();
    let mut info = pkcs8::EncryptedPrivateKeyInfoOwned::from_der(&der).unwrap();
    let EncryptionScheme::Pbes2(params) = &mut info.encryption_algorithm else {
        panic!("PBES2 expected")
    };
    let Kdf::Pbkdf2(kdf) = &mut params.kdf else {
        panic!("PBKDF2 expected")
    };
    kdf.iteration_count = iterations;
    der_pem::encode_string(label, der_pem::LineEnding::LF, &info.to_der().unwrap()).unwrap()
}

/// Mutated PEM and PKCS#12 bytes are refused or accepted, never a panic.
#[test]
fn mutated_stores_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    pem_files(dir.path());
    let pem_bytes = std::fs::read(dir.path().join("client.pem")).unwrap();
    let encrypted = encrypted_client_pem(dir.path(), "pw");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let pkcs12 = Store {
        location: dir.path().join("x.p12"),
        password: "pw".into(),
        kind: StoreKind::Pkcs12,
    };
    let pem_store = pem(dir.path(), "client.pem");
    let encrypted_store = Store {
        password: "pw".into(),
        ..pem(dir.path(), "client.pem")
    };
    // A PKCS#12 shape: a DER SEQUENCE of arbitrary content.
    let p12_like: Vec<u8> = [0x30, 0x82, 0x01, 0x00]
        .into_iter()
        .chain((0..256).map(|i| i as u8))
        .collect();
    for round in 0..400 {
        let (base, store) = match round % 3 {
            0 => (&pem_bytes, &pem_store),
            1 => (&encrypted, &encrypted_store),
            _ => (&p12_like, &pkcs12),
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

#[tokio::test]
async fn the_quorum_port_needs_a_trusted_certificate_from_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    pem_files(dir.path());
    let quorum = QuorumTls {
        key_store: pem(dir.path(), "server.pem"),
        trust_store: pem(dir.path(), "ca.pem"),
        protocols: vec!["TLSv1.3".into()],
        cipher_suites: Vec::new(),
        hostname_verification: true,
        handshake_timeout_ms: 5000,
    };
    let configs = quorum_configs(&quorum).unwrap();
    let acceptor = TlsAcceptor::from(configs.server.clone());
    let name = || rustls_pki_types::ServerName::try_from("localhost").unwrap();
    // Two members: both present server.pem's certificate.
    let (a, b) = tokio::io::duplex(64 << 10);
    let connector = TlsConnector::from(configs.client.clone());
    let (s, c) = tokio::join!(acceptor.accept(a), connector.connect(name(), b));
    let (s, _c) = (s.unwrap(), c.unwrap());
    let chain = s.get_ref().1.peer_certificates().unwrap().to_vec();
    let names = configs.names.as_ref().unwrap();
    let now = UnixTime::now();
    assert!(names
        .verify_server_cert(&chain[0], &[], &name(), &[], now)
        .is_ok());
    let elsewhere = rustls_pki_types::ServerName::try_from("other.example").unwrap();
    assert!(names
        .verify_server_cert(&chain[0], &[], &elsewhere, &[], now)
        .is_err());
    // A dialer without a certificate is refused.
    let anonymous = client_config(&ClientTlsOptions {
        trust_store: Some(pem(dir.path(), "ca.pem")),
        key_store: None,
        skip_hostname_verification: false,
    })
    .unwrap();
    let (a, b) = tokio::io::duplex(64 << 10);
    let connector = TlsConnector::from(anonymous);
    let (s, _) = tokio::join!(acceptor.accept(a), connector.connect(name(), b));
    assert!(s.is_err());
    // Without hostname verification there is no name check to make.
    let relaxed = QuorumTls {
        hostname_verification: false,
        ..quorum
    };
    assert!(quorum_configs(&relaxed).unwrap().names.is_none());
}
