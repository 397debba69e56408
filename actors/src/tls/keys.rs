//! Key and trust stores from local files: PEM (its private key plain or encrypted PKCS#8) and
//! PKCS#12 (JKS and BCFKS are refused with a way to convert them). Files are read with a size
//! bound and parsed without trusting them.

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
            let key = match encrypted_pem_key(bytes)? {
                Some(encrypted) => decrypt_pem_key(encrypted, &store.password)?,
                None => PrivateKeyDer::from_pem_slice(bytes)
                    .map_err(|e| format!("no usable private key (PKCS#8, RSA or EC PEM): {e}"))?,
            };
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

/// The PEM label of an encrypted PKCS#8 private key.
const ENCRYPTED_KEY_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// The `ENCRYPTED PRIVATE KEY` block of PEM text, if it has one.
fn encrypted_pem_key(bytes: &[u8]) -> Result<Option<&[u8]>, String> {
    let begin = format!("-----BEGIN {ENCRYPTED_KEY_LABEL}-----");
    let end = format!("-----END {ENCRYPTED_KEY_LABEL}-----");
    let Some(start) = find(bytes, begin.as_bytes()) else {
        return Ok(None);
    };
    let rest = &bytes[start..];
    let stop = find(rest, end.as_bytes()).ok_or("an encrypted private key block has no end")?;
    Ok(Some(&rest[..stop + end.len()]))
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The PKCS#8 key in an encrypted PEM block (PBES2, as `openssl pkcs8 -topk8` and Java write
/// them), decrypted with `password`.
fn decrypt_pem_key(block: &[u8], password: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::pem;
    if password.is_empty() {
        return Err("the private key is encrypted and no key store password is set".into());
    }
    let (label, der) = pem::decode_vec(block).map_err(|e| format!("bad encrypted key PEM: {e}"))?;
    if label != ENCRYPTED_KEY_LABEL {
        return Err(format!("unexpected PEM label {label}"));
    }
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| format!("bad encrypted private key: {e}"))?;
    bounded_work(&info.encryption_algorithm)?;
    let plain = info.decrypt(password).map_err(|_| {
        "cannot decrypt the private key: wrong key store password, or an unsupported \
         encryption (PBES2 with PBKDF2 or scrypt and AES is supported)"
            .to_string()
    })?;
    Ok(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec()).into())
}

/// Most PBKDF2 iterations a key file may ask for (tools write 2,048 to a few 100,000).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Most memory scrypt may be asked to use (128 * r * N * p bytes), 256 MiB.
const MAX_SCRYPT_BYTES: u128 = 256 << 20;

/// Refuses key derivation parameters that would take minutes or gigabytes before the password
/// is even checked.
fn bounded_work(scheme: &pkcs8::pkcs5::EncryptionScheme) -> Result<(), String> {
    use pkcs8::pkcs5::{pbes2::Kdf, EncryptionScheme};
    let EncryptionScheme::Pbes2(params) = scheme else {
        return Err(
            "the private key uses PBES1, which is not supported; re-encrypt it with \
                    `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                .into(),
        );
    };
    match &params.kdf {
        Kdf::Pbkdf2(p) if p.iteration_count > MAX_PBKDF2_ITERATIONS => Err(format!(
            "the private key asks for {} PBKDF2 iterations; at most {MAX_PBKDF2_ITERATIONS} \
             are run",
            p.iteration_count
        )),
        Kdf::Scrypt(p) => {
            let bytes = 128
                * u128::from(p.cost_parameter)
                * u128::from(p.block_size)
                * u128::from(p.parallelization);
            if bytes > MAX_SCRYPT_BYTES {
                return Err(format!(
                    "the private key's scrypt parameters need {bytes} bytes; at most \
                     {MAX_SCRYPT_BYTES} are allowed"
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `key` (PKCS#8 DER) encrypted with `password` as an `ENCRYPTED PRIVATE KEY` PEM block
/// (PBES2: PBKDF2-SHA256 with `iterations`, AES-256-CBC) with the given salt and IV, as
/// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes them: for tests and fuzz seeds that need an
/// encrypted key without an outside tool.
pub fn encrypt_key_pem(
    key: &[u8],
    password: &str,
    iterations: u32,
    salt: &[u8; 16],
    iv: [u8; 16],
) -> Result<String, String> {
    use pkcs8::der::{asn1::OctetString, pem, Encode};
    let params =
        pkcs8::pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, salt, iv)
            .map_err(|e| e.to_string())?;
    let sealed = params.encrypt(password, key).map_err(|e| e.to_string())?;
    let info = pkcs8::EncryptedPrivateKeyInfoOwned {
        encryption_algorithm: params.into(),
        encrypted_data: OctetString::new(sealed).map_err(|e| e.to_string())?,
    };
    let der = info.to_der().map_err(|e| e.to_string())?;
    pem::encode_string(ENCRYPTED_KEY_LABEL, pem::LineEnding::LF, &der).map_err(|e| e.to_string())
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
