//! The ensemble's peer secret and the handshake proofs made with it.

use ensemble_messages::peer::{NONCE_LEN, PROOF_LEN};
use ensemble_messages::Sid;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::io::Write;
use std::path::Path;

/// Fewest bytes a peer secret may have.
pub const MIN_SECRET_LEN: usize = 16;
/// Largest peer secret file read.
const MAX_SECRET_LEN: u64 = 4096;

/// Which side of the handshake a proof comes from; the two proofs carry different labels so
/// that one can never be reflected as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofRole {
    /// The side that dialed.
    Dialer,
    /// The side that accepted.
    Acceptor,
}

impl ProofRole {
    fn label(self) -> &'static [u8] {
        match self {
            ProofRole::Dialer => b"ensemble peer handshake v2: dialer",
            ProofRole::Acceptor => b"ensemble peer handshake v2: acceptor",
        }
    }
}

/// What one proof covers: both sids and both fresh nonces.
#[derive(Clone, Copy, Debug)]
pub struct ProofContext {
    /// Server id of the dialing side.
    pub dialer: Sid,
    /// Server id of the accepting side.
    pub acceptor: Sid,
    /// The dialer's nonce.
    pub dialer_nonce: [u8; NONCE_LEN],
    /// The acceptor's nonce.
    pub acceptor_nonce: [u8; NONCE_LEN],
}

/// The secret every server of an ensemble shares; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerSecret(Vec<u8>);

impl std::fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerSecret(..)")
    }
}

impl PeerSecret {
    /// A secret from the bytes of a secret file; surrounding white space is not part of it.
    pub fn from_bytes(bytes: &[u8]) -> Result<PeerSecret, String> {
        let trimmed = bytes.trim_ascii();
        if trimmed.len() < MIN_SECRET_LEN {
            return Err(format!(
                "holds {} bytes; a peer secret needs at least {MIN_SECRET_LEN}",
                trimmed.len()
            ));
        }
        Ok(PeerSecret(trimmed.to_vec()))
    }

    /// Reads the secret file at `path`. With `create_if_missing`, a missing file is first
    /// created (atomically, mode 0600) with 32 random bytes in hex.
    pub fn load(path: &Path, create_if_missing: bool) -> Result<PeerSecret, String> {
        let shown = path.display();
        if create_if_missing && !path.exists() {
            create(path).map_err(|e| format!("peer secret file {shown}: cannot create: {e}"))?;
        }
        let meta = std::fs::metadata(path).map_err(|e| {
            format!(
                "peer secret file {shown}: {e}; put the same secret (at least {MIN_SECRET_LEN} \
                 bytes, e.g. `head -c 32 /dev/urandom | base64`) in this file on every server"
            )
        })?;
        if meta.len() > MAX_SECRET_LEN {
            return Err(format!(
                "peer secret file {shown} is {} bytes; at most {MAX_SECRET_LEN} are read",
                meta.len()
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("peer secret file {shown}: {e}"))?;
        PeerSecret::from_bytes(&bytes).map_err(|e| format!("peer secret file {shown} {e}"))
    }

    /// The proof of `role` over `ctx`.
    pub fn prove(&self, role: ProofRole, ctx: &ProofContext) -> [u8; PROOF_LEN] {
        self.mac(role, ctx).finalize().into_bytes().into()
    }

    /// Whether `proof` is the proof of `role` over `ctx` (compared in constant time).
    pub fn verify(&self, role: ProofRole, ctx: &ProofContext, proof: &[u8; PROOF_LEN]) -> bool {
        self.mac(role, ctx).verify_slice(proof).is_ok()
    }

    fn mac(&self, role: ProofRole, ctx: &ProofContext) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(role.label());
        mac.update(&ctx.dialer.to_be_bytes());
        mac.update(&ctx.acceptor.to_be_bytes());
        mac.update(&ctx.dialer_nonce);
        mac.update(&ctx.acceptor_nonce);
        mac
    }
}

/// A fresh random handshake nonce.
pub fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut n);
    n
}

/// Writes a new random secret to `path` unless another process created it first.
fn create(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(format!("{hex}\n").as_bytes())?;
    f.sync_all()?;
    // A hard link never replaces: of several servers starting at once, one secret wins.
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp)?;
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ProofContext {
        ProofContext {
            dialer: 3,
            acceptor: 1,
            dialer_nonce: [1; NONCE_LEN],
            acceptor_nonce: [2; NONCE_LEN],
        }
    }

    #[test]
    fn proofs_verify_only_with_the_same_secret_role_and_context() {
        let k = PeerSecret::from_bytes(b"0123456789abcdef\n").unwrap();
        let other = PeerSecret::from_bytes(b"0123456789abcdeX").unwrap();
        let p = k.prove(ProofRole::Dialer, &ctx());
        assert!(k.verify(ProofRole::Dialer, &ctx(), &p));
        assert!(!other.verify(ProofRole::Dialer, &ctx(), &p));
        assert!(!k.verify(ProofRole::Acceptor, &ctx(), &p), "no reflection");
        let mut moved = ctx();
        moved.acceptor_nonce[0] ^= 1;
        assert!(!k.verify(ProofRole::Dialer, &moved, &p), "no replay");
        let mut claimed = ctx();
        claimed.dialer = 4;
        assert!(!k.verify(ProofRole::Dialer, &claimed, &p));
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(PeerSecret::from_bytes(b"  short \n").is_err());
        let k = PeerSecret::from_bytes(b"a very secret secret").unwrap();
        assert!(!format!("{k:?}").contains("secret secret"));
    }

    #[test]
    fn a_missing_file_is_created_once_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/peer.secret");
        let e = PeerSecret::load(&path, false).unwrap_err();
        assert!(e.contains("on every server"), "{e}");
        let a = PeerSecret::load(&path, true).unwrap();
        let b = PeerSecret::load(&path, true).unwrap();
        assert_eq!(a, b);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
