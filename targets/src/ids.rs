//! Random identifiers and the hashes stores keep instead of live credentials.
//!
//! Every secret identifier (session id, refresh token, jti) comes from the OS CSPRNG through aws-lc-rs.
//! Stores only ever see `sha256(credential)`, so a dump of the store does not hand out live sessions.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::ApiError;

/// Bytes of entropy in a session id or refresh token secret: 256 bits.
pub const SECRET_BYTES: usize = 32;
/// Bytes of entropy in a jti or a refresh-token family id: 128 bits (unique, not secret).
pub const ID_BYTES: usize = 16;

/// `N` random bytes from the OS CSPRNG, base64url without padding.
pub fn random_token<const N: usize>() -> Result<String, ApiError> {
    let mut buf = [0u8; N];
    SystemRandom::new().fill(&mut buf).map_err(|_| ApiError::Internal("OS random number generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// base64url(sha256(credential)): the form in which stores keep credentials.
pub fn hash_credential(credential: &str) -> String {
    let d = digest::digest(&digest::SHA256, credential.as_bytes());
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// Whether `s` looks like a base64url token of exactly `n` raw bytes (cheap shape check before any
/// store lookup, so garbage never costs a round trip).
pub fn is_b64_token(s: &str, raw_len: usize) -> bool {
    let want = (raw_len * 4).div_ceil(3);
    s.len() == want && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A user name as the contract allows it: 1-64 chars of `[A-Za-z0-9_.-]`.
pub fn valid_user(user: &str) -> bool {
    (1..=64).contains(&user.len())
        && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_shaped() {
        let a = random_token::<SECRET_BYTES>().unwrap();
        let b = random_token::<SECRET_BYTES>().unwrap();
        assert_ne!(a, b);
        assert!(is_b64_token(&a, SECRET_BYTES));
        assert!(!is_b64_token(&a[1..], SECRET_BYTES));
        assert!(!is_b64_token("../../etc/passwd", SECRET_BYTES));
    }

    #[test]
    fn user_names() {
        assert!(valid_user("alice.b-1_x"));
        assert!(!valid_user(""));
        assert!(!valid_user(&"a".repeat(65)));
        assert!(!valid_user("a b"));
        assert!(!valid_user("a{b}"));
    }
}
