//! Random secrets (session cookies, API tokens, ids) and the one-way hash they are stored as.

use base64::Engine as _;
use sha2::Digest as _;

/// 32 bytes from the operating system's generator, URL-safe base64 (43 characters).
pub(crate) fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random public id (listed and revoked by; not a credential): 16 bytes, hex.
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a secret is stored as: its SHA-256, hex. A secret has 256 random bits, so a fast
/// hash is enough (no one can guess it from the hash), and lookups stay one index probe.
pub(crate) fn hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The prefix of API tokens, so that secret scanners and people recognise one.
pub(crate) const TOKEN_PREFIX: &str = "cove_";

/// A new API token: the prefix and a secret.
pub(crate) fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", new_secret())
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_long_distinct_and_hashed() {
        let (a, b) = (super::new_secret(), super::new_secret());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(super::hash(&a).len(), 64);
        assert_eq!(super::hash(&a), super::hash(&a));
        assert_ne!(super::hash(&a), super::hash(&b));
        assert!(super::new_token().starts_with("cove_"));
        assert_eq!(super::new_id().len(), 32);
    }
}
