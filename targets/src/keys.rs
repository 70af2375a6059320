//! Signing keys: generated (or read from a PEM file) and parsed once at start-up, never per request,
//! plus the public JWKS document with its `kid`.
//!
//! Asymmetric keys come from aws-lc-rs as PKCS#8; the public half is derived from the private key, so
//! the JWKS always matches the signer. The `kid` of an asymmetric key is its RFC 7638 thumbprint.
//!
//! The `kid` of an HMAC key is derived from the key too ([`hmac_kid`]): targets started with the same
//! `--secret` (several instances sharing a store) accept each other's tokens. It is a truncated
//! SHA-256 of a domain-separated secret, so it names the key without revealing anything usable.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};

use crate::config::Alg;

/// Everything a target needs to sign and verify with one algorithm.
pub struct KeyMaterial {
    pub alg: Alg,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Put in every token header; a token naming another kid is refused.
    pub kid: String,
    /// `{"keys":[...]}` for asymmetric algorithms; `None` for HS* (a shared secret is never published).
    pub jwks_json: Option<String>,
    /// This key's own JWK (the one member of `jwks_json`), so a JWKS listing several keys (during a
    /// rotation overlap) can be assembled; `None` for HS*.
    pub jwk: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("generating a {0} key failed")]
    Generate(Alg),
    #[error("the key file is not a PEM-encoded PKCS#8 private key for {0}")]
    BadPem(Alg),
    #[error("the random number generator failed")]
    Random,
}

impl KeyMaterial {
    /// Keys for `alg`: from `secret` (HS*) or `pem` (PKCS#8 private key), else freshly generated.
    pub fn new(alg: Alg, secret: Option<&[u8]>, pem: Option<&[u8]>) -> Result<Self, KeyError> {
        if alg.is_symmetric() {
            let secret = match secret {
                Some(s) => s.to_vec(),
                None => {
                    let mut buf = vec![0u8; 64];
                    aws_lc_rs::rand::fill(&mut buf).map_err(|_| KeyError::Random)?;
                    buf
                }
            };
            let kid = hmac_kid(alg, &secret);
            return Ok(KeyMaterial {
                alg,
                encoding: EncodingKey::from_secret(&secret),
                decoding: DecodingKey::from_secret(&secret),
                kid,
                jwks_json: None,
                jwk: None,
            });
        }
        let pkcs8 = match pem {
            Some(pem) => pem_to_der(pem).ok_or(KeyError::BadPem(alg))?,
            None => generate_pkcs8(alg)?,
        };
        Self::from_pkcs8(alg, &pkcs8)
    }

    fn from_pkcs8(alg: Alg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let bad = || KeyError::BadPem(alg);
        let (encoding, decoding, jwk_members) = match alg {
            Alg::Rs256 | Alg::Ps256 => {
                let kp = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| bad())?;
                let pk = kp.public_key();
                let n = pk.modulus().big_endian_without_leading_zero().to_vec();
                let e = pk.exponent().big_endian_without_leading_zero().to_vec();
                let encoding = EncodingKey::from_rsa_pem(der_to_pem(pkcs8).as_bytes()).map_err(|_| bad())?;
                let members = format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(&e),
                    URL_SAFE_NO_PAD.encode(&n)
                );
                (encoding, DecodingKey::from_rsa_raw_components(&n, &e), members)
            }
            Alg::Es256 | Alg::Es384 => {
                let (signing, crv, coord) = if alg == Alg::Es256 {
                    (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32)
                } else {
                    (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48)
                };
                let kp = EcdsaKeyPair::from_pkcs8(signing, pkcs8).map_err(|_| bad())?;
                let point = kp.public_key().as_ref().to_vec();
                if point.len() != 1 + 2 * coord || point[0] != 0x04 {
                    return Err(bad());
                }
                let members = format!(
                    r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(&point[1..=coord]),
                    URL_SAFE_NO_PAD.encode(&point[1 + coord..])
                );
                (EncodingKey::from_ec_der(pkcs8), DecodingKey::from_ec_der(&point), members)
            }
            Alg::EdDsa => {
                let kp = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| bad())?;
                let pk = kp.public_key().as_ref().to_vec();
                let members = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(&pk));
                (EncodingKey::from_ed_der(pkcs8), DecodingKey::from_ed_der(&pk), members)
            }
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => unreachable!("symmetric keys handled by new()"),
        };
        // RFC 7638: the thumbprint is the SHA-256 of the required members in lexicographic order,
        // which is how `members` is written above.
        let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, jwk_members.as_bytes()).as_ref());
        let jwk =
            format!(r#"{},"alg":"{}","use":"sig","kid":"{kid}"}}"#, jwk_members.trim_end_matches('}'), alg.name());
        Ok(KeyMaterial {
            alg,
            encoding,
            decoding,
            kid,
            jwks_json: Some(format!(r#"{{"keys":[{jwk}]}}"#)),
            jwk: Some(jwk),
        })
    }

    /// A fresh key for `alg` (random HS* secret or a newly generated key pair) with a new `kid`:
    /// what a key rotation signs with next.
    pub fn generate(alg: Alg) -> Result<Self, KeyError> {
        Self::new(alg, None, None)
    }
}

/// Bytes of SHA-256 kept in an HMAC key's `kid` (128 bits: unique per key, and a one-way digest).
const HMAC_KID_BYTES: usize = 16;

/// The `kid` of an HMAC secret: base64url of the first [`HMAC_KID_BYTES`] of
/// `SHA-256("authbench hmac kid" || 0 || alg || 0 || secret)`. The prefix keeps this digest apart
/// from any other use of the secret; the same secret and algorithm always give the same `kid`.
pub fn hmac_kid(alg: Alg, secret: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"authbench hmac kid\0");
    ctx.update(alg.name().as_bytes());
    ctx.update(b"\0");
    ctx.update(secret);
    URL_SAFE_NO_PAD.encode(&ctx.finish().as_ref()[..HMAC_KID_BYTES])
}

fn generate_pkcs8(alg: Alg) -> Result<Vec<u8>, KeyError> {
    let fail = |_| KeyError::Generate(alg);
    Ok(match alg {
        Alg::Rs256 | Alg::Ps256 => {
            let kp = RsaKeyPair::generate(KeySize::Rsa2048).map_err(fail)?;
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).map_err(fail)?.as_ref().to_vec()
        }
        Alg::Es256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(fail)?
            .as_ref()
            .to_vec(),
        Alg::Es384 => EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(fail)?
            .as_ref()
            .to_vec(),
        Alg::EdDsa => Ed25519KeyPair::generate().and_then(|k| k.to_pkcs8v1()).map_err(fail)?.as_ref().to_vec(),
        Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => return Err(KeyError::Generate(alg)),
    })
}

/// PKCS#8 DER from a `-----BEGIN PRIVATE KEY-----` PEM document.
fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body = text.split("-----BEGIN PRIVATE KEY-----").nth(1)?.split("-----END PRIVATE KEY-----").next()?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

/// PKCS#8 DER as PEM (jsonwebtoken takes RSA signing keys as PEM or PKCS#1 DER only).
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = String::with_capacity(b64.len() + 80);
    pem.push_str("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// A fresh PKCS#8 private key for `alg`, as PEM (for `--key-file`, tests and benchmarks).
pub fn generate_pem(alg: Alg) -> Result<String, KeyError> {
    Ok(der_to_pem(&generate_pkcs8(alg)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_kid_is_derived_from_the_key() {
        let a = b"a-secret-that-is-at-least-32-bytes-long!";
        let b = b"b-secret-that-is-at-least-32-bytes-long!";
        assert_eq!(hmac_kid(Alg::Hs256, a), hmac_kid(Alg::Hs256, a), "same key, same kid");
        assert_ne!(hmac_kid(Alg::Hs256, a), hmac_kid(Alg::Hs256, b), "another key, another kid");
        assert_ne!(hmac_kid(Alg::Hs256, a), hmac_kid(Alg::Hs512, a), "the algorithm is part of it");
        let k1 = KeyMaterial::new(Alg::Hs256, Some(a), None).unwrap();
        let k2 = KeyMaterial::new(Alg::Hs256, Some(a), None).unwrap();
        assert_eq!(k1.kid, k2.kid, "two starts with the same --secret");
        let r1 = KeyMaterial::generate(Alg::Hs256).unwrap();
        let r2 = KeyMaterial::generate(Alg::Hs256).unwrap();
        assert_ne!(r1.kid, r2.kid, "fresh random keys (rotation) get fresh kids");
        // The kid is a digest, not the secret or a plain hash of it.
        let plain = URL_SAFE_NO_PAD.encode(&digest::digest(&digest::SHA256, a).as_ref()[..HMAC_KID_BYTES]);
        assert_ne!(hmac_kid(Alg::Hs256, a), plain);
    }
}
