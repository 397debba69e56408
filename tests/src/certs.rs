//! Test certificates made at test time (no private key is checked in): a CA, server
//! certificates for given names and addresses, and client certificates with known subjects,
//! written as PEM files and, through `openssl`/`keytool`, as PKCS#12 stores.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The password of every PKCS#12 store made here.
pub const STORE_PASSWORD: &str = "test-only";

/// A test CA that issues certificates into a directory.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A certificate and its key as files: `<name>.pem` (chain and key in one file, Apache's PEM
/// key store), `<name>-cert.pem` and `<name>-key.pem`.
pub struct Issued {
    /// Certificate then key, one file.
    pub pem: PathBuf,
    /// The certificate alone.
    pub cert: PathBuf,
    /// The PKCS#8 key alone.
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA writing into `dir`, its certificate at `dir/ca.pem`.
    pub fn new(dir: &Path) -> Self {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ensemble test CA");
        let key = KeyPair::generate().expect("CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        std::fs::write(dir.join("ca.pem"), issuer.pem()).expect("write ca.pem");
        TestCa {
            issuer,
            dir: dir.to_path_buf(),
        }
    }

    /// The CA certificate's PEM file.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, name: &str, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(name, params)
    }

    /// A quorum peer's certificate for `names`, good for TLS servers and clients alike (one
    /// key store serves both directions of a peer link).
    pub fn peer(&self, name: &str, names: &[&str]) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("peer names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.issue(name, params)
    }

    /// `issued`'s certificate with its key as encrypted PKCS#8 (PBES2, AES-256-CBC) in one PEM
    /// file (`<name>-encrypted.pem`), via openssl.
    pub fn encrypted_pem(&self, issued: &Issued, name: &str, password: &str) -> PathBuf {
        let key = self.dir.join(format!("{name}-encrypted-key.pem"));
        run(Command::new("openssl")
            .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
            .arg(&issued.key)
            .arg("-out")
            .arg(&key)
            .arg("-passout")
            .arg(format!("pass:{password}")));
        let out = self.dir.join(format!("{name}-encrypted.pem"));
        let cert = std::fs::read_to_string(&issued.cert).expect("read cert");
        let key = std::fs::read_to_string(&key).expect("read encrypted key");
        std::fs::write(&out, format!("{cert}{key}")).expect("write encrypted pem");
        out
    }

    /// A client certificate whose subject is `CN=<cn>,O=<o>` (as Java prints it).
    pub fn client(&self, cn: &str, o: &str) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, o);
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(cn, params)
    }

    fn issue(&self, name: &str, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        let files = Issued {
            pem: self.dir.join(format!("{name}.pem")),
            cert: self.dir.join(format!("{name}-cert.pem")),
            key: self.dir.join(format!("{name}-key.pem")),
        };
        let key_pem = key.serialize_pem();
        std::fs::write(&files.pem, format!("{}{key_pem}", cert.pem())).expect("write pem");
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key_pem).expect("write key");
        files
    }

    /// `issued` as a PKCS#12 key store (`<name>.p12`, with the CA certificate), via openssl.
    pub fn pkcs12(&self, issued: &Issued, name: &str) -> PathBuf {
        let out = self.dir.join(format!("{name}.p12"));
        run(Command::new("openssl")
            .args(["pkcs12", "-export", "-in"])
            .arg(&issued.cert)
            .arg("-inkey")
            .arg(&issued.key)
            .arg("-certfile")
            .arg(self.ca_pem())
            .args(["-name", name, "-out"])
            .arg(&out)
            .arg("-passout")
            .arg(format!("pass:{STORE_PASSWORD}")));
        out
    }

    /// The CA certificate as a Java PKCS#12 trust store (`truststore.p12`), via keytool.
    pub fn trust_store_p12(&self) -> PathBuf {
        let out = self.dir.join("truststore.p12");
        run(Command::new("keytool")
            .args([
                "-importcert",
                "-noprompt",
                "-alias",
                "ca",
                "-storetype",
                "pkcs12",
            ])
            .arg("-file")
            .arg(self.ca_pem())
            .arg("-keystore")
            .arg(&out)
            .args(["-storepass", STORE_PASSWORD]));
        out
    }
}

/// Runs a store tool, failing the test with its output.
fn run(c: &mut Command) {
    let out = c.output().expect("openssl and keytool run");
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
