//! The application's secret and the per-purpose keys derived from it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::Sha256;

/// The fewest bytes a secret key base may have: 64, as Phoenix asks of `secret_key_base`.
pub const MIN_KEY_BASE_LEN: usize = 64;

/// PBKDF2 rounds for a derived key, Plug.Crypto.KeyGenerator's default.
pub const DEFAULT_ITERATIONS: u32 = 1000;

/// Bytes in a derived key: 32, one AES-256 or HMAC-SHA256 key.
pub const DEFAULT_KEY_LEN: usize = 32;

/// Derived keys kept per key base. Salts are a handful of constants in a real application;
/// the bound only stops a caller that feeds request data as salt from growing memory forever.
const CACHE_LIMIT: usize = 256;

/// The application's master secret (Phoenix's `secret_key_base`), from which every signing and
/// encryption key is derived, one per purpose (salt).
///
/// Cheap to clone: clones share the secret and the cache of derived keys. Its `Debug` output
/// never shows the secret.
///
/// # Examples
///
/// ```
/// use fawkes::security::SecretKeyBase;
///
/// let base = SecretKeyBase::generate();
/// let key = base.key_for("user auth");
/// assert_eq!(key.as_bytes().len(), 32);
/// // The same salt derives the same key; another salt, another key.
/// assert_eq!(key.as_bytes(), base.key_for("user auth").as_bytes());
/// assert_ne!(key.as_bytes(), base.key_for("session").as_bytes());
/// ```
#[derive(Clone)]
pub struct SecretKeyBase(Arc<Inner>);

struct Inner {
    secret: Vec<u8>,
    cache: Mutex<HashMap<(String, u32, usize), DerivedKey>>,
}

impl SecretKeyBase {
    /// Wraps a secret of at least [`MIN_KEY_BASE_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::TooShort`] for a shorter secret.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let secret = secret.into();
        if secret.len() < MIN_KEY_BASE_LEN {
            return Err(KeyError::TooShort { len: secret.len() });
        }
        Ok(Self(Arc::new(Inner { secret, cache: Mutex::new(HashMap::new()) })))
    }

    /// Reads the secret from the environment variable `var`, usually `SECRET_KEY_BASE`.
    ///
    /// # Errors
    ///
    /// [`KeyError::Missing`] when the variable is unset or not UTF-8, [`KeyError::TooShort`]
    /// when it has fewer than [`MIN_KEY_BASE_LEN`] bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use fawkes::security::{KeyError, SecretKeyBase};
    ///
    /// let err = SecretKeyBase::from_env("FAWKES_DOC_UNSET_SECRET").unwrap_err();
    /// assert!(matches!(err, KeyError::Missing { .. }));
    /// ```
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let value = std::env::var(var).map_err(|_| KeyError::Missing { var: var.to_owned() })?;
        Self::new(value)
    }

    /// A fresh random secret: 64 characters of base64 from 64 random bytes, like
    /// `mix phx.gen.secret`. Handy for tests and development; production wants a fixed secret,
    /// or every restart signs the users out.
    pub fn generate() -> Self {
        let bytes: [u8; 64] = rand::random();
        let mut text = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        text.truncate(MIN_KEY_BASE_LEN);
        Self::new(text).expect("64 characters is long enough")
    }

    /// The secret itself, for printing a generated one into a deployment's configuration.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0.secret
    }

    /// The key for one purpose, `salt`: 32 bytes of PBKDF2-HMAC-SHA256 over 1000 rounds, as
    /// Plug.Crypto.KeyGenerator derives it. Derived once per salt, then served from a cache.
    pub fn key_for(&self, salt: &str) -> DerivedKey {
        self.key_for_with(salt, DEFAULT_ITERATIONS, DEFAULT_KEY_LEN)
    }

    /// [`SecretKeyBase::key_for`] with its own round count and length.
    ///
    /// # Panics
    ///
    /// When `iterations` or `len` is zero.
    #[track_caller]
    pub fn key_for_with(&self, salt: &str, iterations: u32, len: usize) -> DerivedKey {
        assert!(iterations > 0 && len > 0, "a derived key needs iterations and a length");
        let id = (salt.to_owned(), iterations, len);
        let mut cache = self.0.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = cache.get(&id) {
            return key.clone();
        }
        let mut out = vec![0; len];
        pbkdf2::pbkdf2_hmac::<Sha256>(&self.0.secret, salt.as_bytes(), iterations, &mut out);
        let key = DerivedKey(out.into());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(id, key.clone());
        key
    }
}

impl fmt::Debug for SecretKeyBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKeyBase(<redacted>)")
    }
}

/// A key derived from a [`SecretKeyBase`] for one purpose. Its `Debug` output hides the bytes.
#[derive(Clone)]
pub struct DerivedKey(Arc<[u8]>);

impl DerivedKey {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DerivedKey({} bytes, <redacted>)", self.0.len())
    }
}

/// Why a [`SecretKeyBase`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The environment variable is unset (or not UTF-8).
    Missing {
        /// The variable's name.
        var: String,
    },
    /// The secret is shorter than [`MIN_KEY_BASE_LEN`] bytes.
    TooShort {
        /// How many bytes it has.
        len: usize,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { var } => write!(
                f,
                "environment variable {var} is not set; generate a secret of at least \
                 {MIN_KEY_BASE_LEN} bytes and export it"
            ),
            Self::TooShort { len } => {
                write!(f, "secret key base has {len} bytes, at least {MIN_KEY_BASE_LEN} are needed")
            }
        }
    }
}

impl std::error::Error for KeyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(SecretKeyBase::new(vec![1; 63]).unwrap_err(), KeyError::TooShort { len: 63 });
        assert!(SecretKeyBase::new(vec![1; 64]).is_ok());
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let (a, b) = (SecretKeyBase::generate(), SecretKeyBase::generate());
        assert_eq!(a.expose_secret().len(), MIN_KEY_BASE_LEN);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn derivation_matches_pbkdf2_and_is_cached() {
        let base = SecretKeyBase::new(vec![7; 64]).unwrap();
        let key = base.key_for("salt");
        // Python: hashlib.pbkdf2_hmac("sha256", b"\x07" * 64, b"salt", 1000, 32).hex()
        let expected = "a4f5dcd69ffe86d529a668dc2cc52f1e145291867ef25b749337aa1df6216411";
        let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        // The cache hands back the very same allocation.
        assert!(Arc::ptr_eq(&key.0, &base.key_for("salt").0));
        assert_eq!(base.key_for_with("salt", 1000, 64).as_bytes().len(), 64);
        assert_ne!(base.key_for_with("salt", 2, 32).as_bytes(), key.as_bytes());
    }

    #[test]
    fn debug_hides_the_secret() {
        let base = SecretKeyBase::new("x".repeat(64)).unwrap();
        assert!(!format!("{base:?}").contains("xxxx"));
        assert!(!format!("{:?}", base.key_for("s")).contains('['));
    }

    #[test]
    fn from_env_reads_the_variable() {
        let var = "FAWKES_TEST_SECRET_KEY_BASE_FROM_ENV";
        assert!(matches!(SecretKeyBase::from_env(var), Err(KeyError::Missing { .. })));
    }
}
