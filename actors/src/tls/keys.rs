//! Key and trust stores from local files: PEM and PKCS#12 (JKS and BCFKS are refused with a
//! way to convert them). Files are read with a size bound and parsed without trusting them.

use ensemble_config::{Store, StoreKind};
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::io::Read;
use std::path::Path;

/// Largest store file read; real ones are a few KiB.
pub const MAX_STORE_BYTES: u64 = 4 << 20;

/// A certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

/// The certificate chain and private key in a key store.
pub fn load_identity(store: &Store) -> Result<Identity, String> {
    supported(store, "key store")?;
    let bytes = read_store(store, "key store")?;
    identity_from_bytes(&bytes, store).map_err(|e| fail(store, "key store", &e))
}

/// The certificates in a trust store.
pub fn load_trust(store: &Store) -> Result<Vec<CertificateDer<'static>>, String> {
    supported(store, "trust store")?;
    let bytes = read_store(store, "trust store")?;
    trust_from_bytes(&bytes, store).map_err(|e| fail(store, "trust store", &e))
}

/// The identity in a store's bytes.
pub fn identity_from_bytes(bytes: &[u8], store: &Store) -> Result<Identity, String> {
    let identity = match store.kind {
        StoreKind::Pem => {
            let chain = pem_certificates(bytes)?;
            let key = PrivateKeyDer::from_pem_slice(bytes)
                .map_err(|e| format!("no usable private key (PKCS#8, RSA or EC PEM): {e}"))?;
            Identity { chain, key }
        }
        StoreKind::Pkcs12 => {
            let ks = pkcs12(bytes, &store.password, Pkcs12ImportPolicy::Relaxed)?;
            let (_, chain) = ks
                .private_key_chain()
                .ok_or("no private key entry in the PKCS#12 file")?;
            let certs: Vec<CertificateDer<'static>> = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            let key = PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()).into();
            Identity { chain: certs, key }
        }
        kind => return Err(unsupported(kind)),
    };
    if identity.chain.is_empty() {
        return Err("no certificate".into());
    }
    Ok(identity)
}

/// The trusted certificates in a store's bytes.
pub fn trust_from_bytes(
    bytes: &[u8],
    store: &Store,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = match store.kind {
        StoreKind::Pem => pem_certificates(bytes)?,
        StoreKind::Pkcs12 => pkcs12(bytes, &store.password, Pkcs12ImportPolicy::Raw)?
            .entries()
            .flat_map(|(_, e)| match e {
                KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
                KeyStoreEntry::PrivateKeyChain(k) => {
                    k.certs().iter().map(|c| c.as_der().to_vec()).collect()
                }
                KeyStoreEntry::Secret(_) => Vec::new(),
            })
            .map(CertificateDer::from)
            .collect(),
        kind => return Err(unsupported(kind)),
    };
    if certs.is_empty() {
        return Err("no certificate".into());
    }
    Ok(certs)
}

/// Every certificate in PEM text.
fn pem_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate: {e}"))
}

/// A PKCS#12 file opened with `password`.
fn pkcs12(bytes: &[u8], password: &str, policy: Pkcs12ImportPolicy) -> Result<KeyStore, String> {
    KeyStore::from_pkcs12(bytes, password, policy)
        .map_err(|e| format!("cannot open as PKCS#12 (wrong password?): {e}"))
}

/// Refuses a store kind that cannot be read, before reading the file.
fn supported(store: &Store, what: &str) -> Result<(), String> {
    match store.kind {
        StoreKind::Jks | StoreKind::Bcfks => Err(fail(store, what, &unsupported(store.kind))),
        StoreKind::Pem | StoreKind::Pkcs12 => Ok(()),
    }
}

/// Why a store kind is refused, with the way out.
fn unsupported(kind: StoreKind) -> String {
    format!(
        "{kind:?} stores are not supported; convert it to PKCS#12 with `keytool -importkeystore \
         -srckeystore FILE -destkeystore FILE.p12 -deststoretype pkcs12`, or use PEM"
    )
}

/// The store file's bytes, refusing one over [`MAX_STORE_BYTES`].
fn read_store(store: &Store, what: &str) -> Result<Vec<u8>, String> {
    read_bounded(&store.location).map_err(|e| fail(store, what, &e))
}

/// A file of at most [`MAX_STORE_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_STORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_STORE_BYTES {
        return Err(format!("larger than {MAX_STORE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// One line naming the store and what is wrong with it.
fn fail(store: &Store, what: &str, why: &str) -> String {
    format!("TLS {what} {}: {why}", store.location.display())
}
