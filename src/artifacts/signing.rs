//! Optional ed25519 signatures over `meta.json`: the build signs with `artifacts.signing_key`,
//! deploys and `convoy host deploy` verify with `artifacts.verify_keys` (several, for rotation).
//! `meta.json` names the tarball's sha256, so a valid signature vouches for the bytes too.
//!
//! What is signed is `meta.json` as Convoy writes it with `signature` left out; the signature
//! then sits inside it. Keys: the 32-byte seed or public key in hex, or PEM as `openssl genpkey
//! -algorithm ed25519` and `openssl pkey -pubout` write them. A private key never appears in a
//! message, a `Debug` output or a log.

use std::fmt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::error::ArtifactError;
use super::meta::ArtifactMeta;

/// The signature stored in `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaSignature {
    /// Which key signed: [`key_id`] of its public key.
    pub key: String,
    /// The ed25519 signature, hex.
    pub ed25519: String,
}

/// A private key to sign with. Its `Debug` shows the key id only.
pub struct ArtifactSigner {
    key: SigningKey,
}

impl fmt::Debug for ArtifactSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactSigner({})", self.key_id())
    }
}

impl ArtifactSigner {
    /// From a 64-hex-digit seed or a PKCS#8 PEM. The error never quotes the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.contains("-----BEGIN") {
            return SigningKey::from_pkcs8_pem(text)
                .map(|key| ArtifactSigner { key })
                .map_err(|_| "it is PEM but not an ed25519 private key (PKCS#8)".to_string());
        }
        let bytes = hex32(text)
            .ok_or_else(|| "it is neither 64 hex digits nor a PEM private key".to_string())?;
        Ok(ArtifactSigner {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// The public key in hex, for `artifacts.verify_keys`.
    pub fn public_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// Signs `meta` (any earlier signature is replaced).
    pub fn sign(&self, meta: &mut ArtifactMeta) {
        meta.signature = None;
        let signature = self.key.sign(&meta.to_json());
        meta.signature = Some(MetaSignature {
            key: self.key_id(),
            ed25519: hex::encode(signature.to_bytes()),
        });
    }
}

/// The public keys a deploy accepts; empty means signatures are not required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyKeys(Vec<VerifyingKey>);

impl VerifyKeys {
    /// Each key as 64 hex digits or an SPKI PEM; the error names the key by position.
    pub fn parse<S: AsRef<str>>(keys: &[S]) -> Result<Self, String> {
        keys.iter()
            .enumerate()
            .map(|(index, text)| {
                parse_public(text.as_ref())
                    .map_err(|reason| format!("verify key #{}: {reason}", index + 1))
            })
            .collect::<Result<_, _>>()
            .map(VerifyKeys)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks `meta`'s signature; returns the id of the key that made it.
    pub fn verify(&self, meta: &ArtifactMeta, location: &str) -> Result<String, ArtifactError> {
        let refuse = |reason: String| ArtifactError::Untrusted {
            location: location.to_string(),
            service: meta.service.clone(),
            version: meta.version.clone(),
            reason,
        };
        let Some(signature) = &meta.signature else {
            return Err(refuse("it is not signed".to_string()));
        };
        let key = self
            .0
            .iter()
            .find(|k| key_id(k) == signature.key)
            .ok_or_else(|| {
                refuse(format!(
                    "it is signed by key {}, which is not among `artifacts.verify_keys`",
                    signature.key
                ))
            })?;
        let bytes: [u8; 64] = hex::decode(&signature.ed25519)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| refuse("its signature is malformed".to_string()))?;
        let mut unsigned = meta.clone();
        unsigned.signature = None;
        key.verify_strict(
            &unsigned.to_json(),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .map_err(|_| {
            refuse(format!(
                "its signature by key {} does not match: meta.json was changed after signing",
                signature.key
            ))
        })?;
        Ok(signature.key.clone())
    }
}

/// A short, stable name for a public key: the first 16 hex digits of its sha256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(sha2::Sha256::digest(key.to_bytes()))[..16].to_string()
}

fn parse_public(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    if text.contains("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text)
            .map_err(|_| "it is PEM but not an ed25519 public key".to_string());
    }
    let bytes = hex32(text)
        .ok_or_else(|| "it is neither 64 hex digits nor a PEM public key".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "it is not a valid ed25519 public key".to_string())
}

fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    fn meta() -> ArtifactMeta {
        ArtifactMeta {
            service: "api".into(),
            version: "v1".into(),
            commit: "c".into(),
            tree: "t".into(),
            key: "k".into(),
            author: "a".into(),
            message: "m".into(),
            commit_time: jiff::Timestamp::UNIX_EPOCH,
            build_time: jiff::Timestamp::UNIX_EPOCH,
            build_duration_ms: 0,
            size: 3,
            sha256: "ab".repeat(32),
            signature: None,
        }
    }

    #[test]
    fn signed_meta_verifies_with_any_listed_key_and_survives_json() {
        let signer = ArtifactSigner::parse(SEED).unwrap();
        let other = ArtifactSigner::parse(&"11".repeat(32)).unwrap();
        let mut meta = meta();
        signer.sign(&mut meta);
        let meta = ArtifactMeta::from_json(&meta.to_json(), "m").unwrap();
        let keys = VerifyKeys::parse(&[other.public_hex(), signer.public_hex()]).unwrap();
        assert_eq!(keys.verify(&meta, "m").unwrap(), signer.key_id());
    }

    #[test]
    fn unsigned_tampered_and_unknown_signatures_are_refused() {
        let signer = ArtifactSigner::parse(SEED).unwrap();
        let keys = VerifyKeys::parse(&[signer.public_hex()]).unwrap();
        let error = keys.verify(&meta(), "m").unwrap_err().to_string();
        assert!(error.contains("it is not signed"), "{error}");

        let mut tampered = meta();
        signer.sign(&mut tampered);
        tampered.sha256 = "cd".repeat(32);
        let error = keys.verify(&tampered, "m").unwrap_err().to_string();
        assert!(error.contains("was changed after signing"), "{error}");

        let mut foreign = meta();
        ArtifactSigner::parse(&"22".repeat(32))
            .unwrap()
            .sign(&mut foreign);
        let error = keys.verify(&foreign, "m").unwrap_err().to_string();
        assert!(
            error.contains("not among `artifacts.verify_keys`"),
            "{error}"
        );
    }

    #[test]
    fn pem_keys_as_openssl_writes_them() {
        // `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` of RFC 8032's test 1.
        let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n";
        let signer = ArtifactSigner::parse(private).unwrap();
        assert_eq!(
            signer.public_hex(),
            ArtifactSigner::parse(SEED).unwrap().public_hex()
        );
        let mut meta = meta();
        signer.sign(&mut meta);
        VerifyKeys::parse(&[public])
            .unwrap()
            .verify(&meta, "m")
            .unwrap();
    }

    #[test]
    fn key_errors_never_quote_the_key() {
        let error = ArtifactSigner::parse("not-a-key-but-secret-text").unwrap_err();
        assert!(!error.contains("secret-text"), "{error}");
        assert!(!format!("{:?}", ArtifactSigner::parse(SEED).unwrap()).contains(SEED));
    }
}
