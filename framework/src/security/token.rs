//! Phoenix.Token: signed or encrypted, time-limited tokens, and the message formats that
//! sessions reuse.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::controller::{ActionError, RenderError};
use crate::secret::{DerivedKey, SecretKeyBase};
use crate::Conn;

/// The protected header of a signed message, as Plug.Crypto.MessageVerifier writes it.
const SIGNED: &str = "SFMyNTY"; // base64url("HS256")
/// The protected header of an encrypted message.
const ENCRYPTED: &str = "QTI1NkdDTQ"; // base64url("A256GCM")
const NONCE_LEN: usize = 12;

/// Signed and encrypted tokens with a maximum age, as Phoenix.Token makes them: for handing a
/// user id to a socket, an email confirmation link, an API client.
///
/// A signed token can be read by anyone (the data is only base64url) but not forged or
/// altered; an encrypted one can be neither read nor altered. Both carry the time they were
/// made, inside what is signed or encrypted, so [`Token::verify`] and [`Token::decrypt`] refuse
/// them once they are older than `max_age`. The `salt` names the purpose: a token made for one
/// salt never verifies under another.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use fawkes::security::{SecretKeyBase, Token, TokenError};
///
/// let base = SecretKeyBase::generate();
/// let token = Token::sign(&base, "user socket", &42_u64);
/// let day = Duration::from_secs(86_400);
/// assert_eq!(Token::verify::<u64>(&base, "user socket", &token, day), Ok(42));
/// assert_eq!(Token::verify::<u64>(&base, "password reset", &token, day), Err(TokenError::Invalid));
///
/// let secret = Token::encrypt(&base, "invite", &"room:lobby");
/// assert!(!secret.contains("lobby"));
/// assert_eq!(Token::decrypt::<String>(&base, "invite", &secret, day).unwrap(), "room:lobby");
/// ```
#[derive(Debug)]
pub enum Token {}

impl Token {
    /// Signs `data` for the purpose `salt`.
    ///
    /// # Panics
    ///
    /// When `data` cannot be serialised as JSON (a map whose keys are not strings).
    #[track_caller]
    pub fn sign<T: Serialize + ?Sized>(key_base: &SecretKeyBase, salt: &str, data: &T) -> String {
        sign_at(&key_base.key_for(salt), data, now_ms())
    }

    /// Checks a token made by [`Token::sign`] with the same key base and salt, no older than
    /// `max_age` (`Duration::MAX` for no limit), and gives its data back.
    ///
    /// # Errors
    ///
    /// [`TokenError::Missing`] for an empty token, [`TokenError::Expired`] for a genuine but
    /// too old one, [`TokenError::Invalid`] for anything else: altered, truncated, made with
    /// another key or salt, or holding data that is not a `T`.
    pub fn verify<T: DeserializeOwned>(
        key_base: &SecretKeyBase,
        salt: &str,
        token: &str,
        max_age: Duration,
    ) -> Result<T, TokenError> {
        verify_at(&key_base.key_for(salt), token, max_age, now_ms())
    }

    /// Encrypts `data` with AES-256-GCM for the purpose `salt`.
    ///
    /// # Panics
    ///
    /// When `data` cannot be serialised as JSON (a map whose keys are not strings).
    #[track_caller]
    pub fn encrypt<T: Serialize + ?Sized>(
        key_base: &SecretKeyBase,
        salt: &str,
        data: &T,
    ) -> String {
        encrypt_at(&key_base.key_for(salt), data, now_ms())
    }

    /// Decrypts a token made by [`Token::encrypt`]; the same rules as [`Token::verify`].
    ///
    /// # Errors
    ///
    /// As [`Token::verify`].
    pub fn decrypt<T: DeserializeOwned>(
        key_base: &SecretKeyBase,
        salt: &str,
        token: &str,
        max_age: Duration,
    ) -> Result<T, TokenError> {
        decrypt_at(&key_base.key_for(salt), token, max_age, now_ms())
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Forged, altered, truncated, made with another key or salt, or not the expected data.
    Invalid,
    /// Genuine, but older than the maximum age.
    Expired,
    /// No token at all.
    Missing,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Invalid => "invalid token",
            Self::Expired => "expired token",
            Self::Missing => "missing token",
        })
    }
}

impl std::error::Error for TokenError {}

/// A refused token is a 401, so an action can use `?` on [`Token::verify`].
impl RenderError for TokenError {
    fn render(self, conn: Conn) -> Conn {
        ActionError::unauthorized().with_detail(self.to_string()).render(conn)
    }
}

#[derive(Serialize)]
struct SignedData<'a, T: ?Sized> {
    data: &'a T,
    signed: u64,
}

#[derive(Deserialize)]
struct Claims {
    data: serde_json::Value,
    signed: u64,
}

pub(crate) fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[track_caller]
fn claims<T: Serialize + ?Sized>(data: &T, now: u64) -> Vec<u8> {
    match serde_json::to_vec(&SignedData { data, signed: now }) {
        Ok(bytes) => bytes,
        Err(err) => panic!("token data does not serialise as JSON: {err}"),
    }
}

fn open_claims<T: DeserializeOwned>(
    bytes: &[u8],
    max_age: Duration,
    now: u64,
) -> Result<T, TokenError> {
    let claims: Claims = serde_json::from_slice(bytes).map_err(|_| TokenError::Invalid)?;
    let max_age = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
    if claims.signed.saturating_add(max_age) < now {
        return Err(TokenError::Expired);
    }
    T::deserialize(claims.data).map_err(|_| TokenError::Invalid)
}

fn check_present(token: &str) -> Result<(), TokenError> {
    if token.trim().is_empty() {
        Err(TokenError::Missing)
    } else {
        Ok(())
    }
}

#[track_caller]
pub(crate) fn sign_at<T: Serialize + ?Sized>(key: &DerivedKey, data: &T, now: u64) -> String {
    sign_message(key, &claims(data, now))
}

pub(crate) fn verify_at<T: DeserializeOwned>(
    key: &DerivedKey,
    token: &str,
    max_age: Duration,
    now: u64,
) -> Result<T, TokenError> {
    check_present(token)?;
    let bytes = verify_message(key, token).ok_or(TokenError::Invalid)?;
    open_claims(&bytes, max_age, now)
}

#[track_caller]
pub(crate) fn encrypt_at<T: Serialize + ?Sized>(key: &DerivedKey, data: &T, now: u64) -> String {
    encrypt_message(key, &claims(data, now))
}

pub(crate) fn decrypt_at<T: DeserializeOwned>(
    key: &DerivedKey,
    token: &str,
    max_age: Duration,
    now: u64,
) -> Result<T, TokenError> {
    check_present(token)?;
    let bytes = decrypt_message(key, token).ok_or(TokenError::Invalid)?;
    open_claims(&bytes, max_age, now)
}

fn mac(key: &DerivedKey, protected: &str, payload: &str) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("hmac takes any key");
    mac.update(protected.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac
}

/// `protected.payload.signature`, each part base64url, the HMAC-SHA256 covering the first two:
/// Plug.Crypto.MessageVerifier's layout.
pub(crate) fn sign_message(key: &DerivedKey, payload: &[u8]) -> String {
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let signature = mac(key, SIGNED, &payload).finalize().into_bytes();
    format!("{SIGNED}.{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn verify_message(key: &DerivedKey, token: &str) -> Option<Vec<u8>> {
    let mut parts = token.split('.');
    let (protected, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || protected != SIGNED {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    // `verify_slice` compares in constant time, so timing tells nothing about the right MAC.
    mac(key, protected, payload).verify_slice(&signature).ok()?;
    URL_SAFE_NO_PAD.decode(payload).ok()
}

/// `protected.nonce.ciphertext`, each part base64url; the protected header is the GCM
/// associated data, so it cannot be swapped either.
pub(crate) fn encrypt_message(key: &DerivedKey, plain: &[u8]) -> String {
    let cipher = Aes256Gcm::new_from_slice(key.as_bytes()).expect("derived keys are 32 bytes");
    let nonce: [u8; NONCE_LEN] = rand::random();
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: ENCRYPTED.as_bytes() })
        .expect("AES-GCM encrypts any message that fits in memory");
    format!("{ENCRYPTED}.{}.{}", URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(sealed))
}

fn decrypt_message(key: &DerivedKey, token: &str) -> Option<Vec<u8>> {
    let mut parts = token.split('.');
    let (protected, nonce, sealed) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || protected != ENCRYPTED {
        return None;
    }
    let nonce = URL_SAFE_NO_PAD.decode(nonce).ok().filter(|n| n.len() == NONCE_LEN)?;
    let sealed = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let cipher = Aes256Gcm::new_from_slice(key.as_bytes()).ok()?;
    cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &sealed, aad: protected.as_bytes() })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const T0: u64 = 1_700_000_000_000;

    type Seal = fn(&DerivedKey, &serde_json::Value, u64) -> String;
    type Open = fn(&DerivedKey, &str, Duration, u64) -> Result<serde_json::Value, TokenError>;

    /// Both kinds of token must pass the same checks.
    const KINDS: [(&str, Seal, Open); 2] = [
        ("signed", |k, d, n| sign_at(k, d, n), |k, t, m, n| verify_at(k, t, m, n)),
        ("encrypted", |k, d, n| encrypt_at(k, d, n), |k, t, m, n| decrypt_at(k, t, m, n)),
    ];

    fn base() -> SecretKeyBase {
        SecretKeyBase::new(vec![42; 64]).unwrap()
    }

    fn data() -> serde_json::Value {
        serde_json::json!({"user_id": 7, "scope": ["read"]})
    }

    /// Flips one character of the token's `part`-th dot-separated section.
    fn flip(token: &str, part: usize) -> String {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let section = &mut parts[part];
        let first = section.remove(0);
        section.insert(0, if first == 'A' { 'B' } else { 'A' });
        parts.join(".")
    }

    #[test]
    fn round_trips() {
        let key = base().key_for("s");
        for (kind, seal, open) in KINDS {
            let token = seal(&key, &data(), T0);
            assert_eq!(open(&key, &token, HOUR, T0 + 1000), Ok(data()), "{kind}");
        }
    }

    #[test]
    fn signed_tokens_use_the_message_verifier_layout() {
        let token = sign_at(&base().key_for("s"), &1, T0);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[0]).unwrap(), b"HS256");
        let payload = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        assert_eq!(payload, format!(r#"{{"data":1,"signed":{T0}}}"#).as_bytes());
        let enc = encrypt_at(&base().key_for("s"), &1, T0);
        assert_eq!(URL_SAFE_NO_PAD.decode(enc.split('.').next().unwrap()).unwrap(), b"A256GCM");
        assert!(!enc.contains(parts[1]), "encrypted tokens do not show the data");
    }

    #[test]
    fn refuses_altered_foreign_and_malformed_tokens() {
        let key = base().key_for("s");
        let other_salt = base().key_for("other");
        let other_base = SecretKeyBase::new(vec![43; 64]).unwrap().key_for("s");
        for (kind, seal, open) in KINDS {
            let token = seal(&key, &data(), T0);
            let cases = [
                ("altered payload", flip(&token, 1)),
                ("altered signature", flip(&token, 2)),
                ("altered header", flip(&token, 0)),
                ("truncated", token[..token.len() - 4].to_owned()),
                ("cut at a dot", token.rsplit_once('.').unwrap().0.to_owned()),
                ("extra part", format!("{token}.AA")),
                ("garbage", "not a token at all".to_owned()),
                ("dots", "..".to_owned()),
                ("non-base64", "SFMyNTY.***.***".to_owned()),
            ];
            for (case, bad) in cases {
                assert_eq!(open(&key, &bad, HOUR, T0), Err(TokenError::Invalid), "{kind}: {case}");
            }
            assert_eq!(open(&other_salt, &token, HOUR, T0), Err(TokenError::Invalid), "{kind}");
            assert_eq!(open(&other_base, &token, HOUR, T0), Err(TokenError::Invalid), "{kind}");
            assert_eq!(open(&key, "", HOUR, T0), Err(TokenError::Missing), "{kind}");
        }
        // A signed token is not accepted where an encrypted one is due, nor the other way.
        let signed = sign_at(&key, &1, T0);
        assert_eq!(decrypt_at::<u32>(&key, &signed, HOUR, T0), Err(TokenError::Invalid));
        let sealed = encrypt_at(&key, &1, T0);
        assert_eq!(verify_at::<u32>(&key, &sealed, HOUR, T0), Err(TokenError::Invalid));
    }

    #[test]
    fn expiry_is_checked_against_the_signed_time() {
        let key = base().key_for("s");
        for (kind, seal, open) in KINDS {
            let token = seal(&key, &data(), T0);
            let max = 3_600_000;
            assert_eq!(open(&key, &token, HOUR, T0 + max), Ok(data()), "{kind}: at the limit");
            assert_eq!(open(&key, &token, HOUR, T0 + max + 1), Err(TokenError::Expired), "{kind}");
            assert_eq!(open(&key, &token, Duration::MAX, u64::MAX), Ok(data()), "{kind}");
            // An expired token that was also altered is invalid, not expired.
            let bad = flip(&token, 2);
            assert_eq!(open(&key, &bad, HOUR, T0 + max + 1), Err(TokenError::Invalid), "{kind}");
        }
    }

    #[test]
    fn data_of_the_wrong_type_is_invalid() {
        let key = base().key_for("s");
        let token = sign_at(&key, &"text", T0);
        assert_eq!(verify_at::<u64>(&key, &token, HOUR, T0), Err(TokenError::Invalid));
    }

    #[test]
    fn public_functions_use_the_clock() {
        let base = base();
        let token = Token::sign(&base, "s", &5_u8);
        assert_eq!(Token::verify(&base, "s", &token, HOUR), Ok(5_u8));
        let sealed = Token::encrypt(&base, "s", &5_u8);
        assert_eq!(Token::decrypt(&base, "s", &sealed, HOUR), Ok(5_u8));
        assert_ne!(sealed, Token::encrypt(&base, "s", &5_u8), "every encryption has its nonce");
        assert_eq!(TokenError::Expired.to_string(), "expired token");
    }
}
