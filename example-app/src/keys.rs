//! The app's secret key base: from `SECRET_KEY_BASE`, or, in development only, made up at
//! startup.
//!
//! Every replica must sign with the same secret, or a session cookie or socket token made by
//! one is refused by the next (and every form fails its CSRF check). So a production run
//! without the variable is a configuration mistake that stops the app, while a developer's
//! `cargo run` just works with a random secret and a warning: restarting signs everyone out.

use std::fmt;

use fawkes::security::{KeyError, SecretKeyBase, MIN_KEY_BASE_LEN};

/// The variable holding the secret key base, at least [`MIN_KEY_BASE_LEN`] bytes.
pub const SECRET_KEY_BASE_ENV: &str = "SECRET_KEY_BASE";

/// The variable naming the environment the app runs in: `dev` (the default), `test` or
/// `prod`.
pub const APP_ENV: &str = "FAWKES_ENV";

/// Where the app runs, from [`APP_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// A developer's machine: unset, `dev` or `development`.
    Dev,
    /// A test run: `test`. Treated as development for secrets.
    Test,
    /// Production: `prod` or `production`. Every secret must be configured.
    Prod,
}

impl AppEnv {
    /// Reads the environment's name; `None` (unset or blank) is development.
    ///
    /// # Errors
    ///
    /// [`KeysError::UnknownEnv`] for any other name, so a typo such as `prd` cannot quietly
    /// run production with development settings.
    ///
    /// # Examples
    ///
    /// ```
    /// use example_app::keys::AppEnv;
    ///
    /// assert_eq!(AppEnv::parse(None).unwrap(), AppEnv::Dev);
    /// assert_eq!(AppEnv::parse(Some(" PROD ")).unwrap(), AppEnv::Prod);
    /// assert!(AppEnv::parse(Some("prd")).is_err());
    /// ```
    pub fn parse(name: Option<&str>) -> Result<Self, KeysError> {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(Self::Dev);
        };
        match name.to_ascii_lowercase().as_str() {
            "dev" | "development" => Ok(Self::Dev),
            "test" => Ok(Self::Test),
            "prod" | "production" => Ok(Self::Prod),
            _ => Err(KeysError::UnknownEnv(name.to_owned())),
        }
    }

    /// Whether a missing secret may be generated.
    pub fn allows_generated_secrets(self) -> bool {
        !matches!(self, Self::Prod)
    }
}

/// The secret key base the app runs with.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The secret every key is derived from.
    pub key_base: SecretKeyBase,
    /// Whether it was generated at startup, for want of [`SECRET_KEY_BASE_ENV`].
    pub generated: bool,
}

/// Picks the secret key base for `env` from the value of [`SECRET_KEY_BASE_ENV`].
///
/// The value is trimmed, since a secret written to a file or a Kubernetes Secret often ends
/// with a newline; an empty one counts as unset.
///
/// # Errors
///
/// [`KeysError::Missing`] in production without a secret, [`KeysError::TooShort`] for a secret
/// shorter than [`MIN_KEY_BASE_LEN`] bytes in any environment.
///
/// # Examples
///
/// ```
/// use example_app::keys::{load, AppEnv};
///
/// let dev = load(AppEnv::Dev, None).unwrap();
/// assert!(dev.generated);
/// assert!(load(AppEnv::Prod, None).is_err());
/// assert!(load(AppEnv::Prod, Some("too short")).is_err());
/// let secret = "x".repeat(64);
/// assert!(!load(AppEnv::Prod, Some(&secret)).unwrap().generated);
/// ```
pub fn load(env: AppEnv, secret: Option<&str>) -> Result<Keys, KeysError> {
    match secret.map(str::trim).filter(|s| !s.is_empty()) {
        Some(secret) => match SecretKeyBase::new(secret) {
            Ok(key_base) => Ok(Keys { key_base, generated: false }),
            Err(KeyError::TooShort { len }) => Err(KeysError::TooShort { len }),
            Err(err) => Err(KeysError::Invalid(err)),
        },
        None if env.allows_generated_secrets() => {
            Ok(Keys { key_base: SecretKeyBase::generate(), generated: true })
        }
        None => Err(KeysError::Missing),
    }
}

/// Why the app cannot have its secret key base.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeysError {
    /// [`APP_ENV`] names no known environment.
    UnknownEnv(String),
    /// Production without [`SECRET_KEY_BASE_ENV`].
    Missing,
    /// [`SECRET_KEY_BASE_ENV`] is too short.
    TooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// Any other refusal of the secret.
    Invalid(KeyError),
}

impl fmt::Display for KeysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownEnv(name) => {
                write!(f, "{APP_ENV}={name:?} is not one of dev, test or prod")
            }
            Self::Missing => write!(
                f,
                "{SECRET_KEY_BASE_ENV} is not set, and {APP_ENV}=prod requires it: generate one \
                 with `head -c 48 /dev/urandom | base64 -w0` and set it on every replica"
            ),
            Self::TooShort { len } => write!(
                f,
                "{SECRET_KEY_BASE_ENV} has {len} bytes, at least {MIN_KEY_BASE_LEN} are needed: \
                 generate one with `head -c 48 /dev/urandom | base64 -w0`"
            ),
            Self::Invalid(err) => write!(f, "{SECRET_KEY_BASE_ENV} is unusable: {err}"),
        }
    }
}

impl std::error::Error for KeysError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_are_named_strictly() {
        for (name, env) in [
            (None, AppEnv::Dev),
            (Some(""), AppEnv::Dev),
            (Some("dev"), AppEnv::Dev),
            (Some("Development"), AppEnv::Dev),
            (Some("test"), AppEnv::Test),
            (Some("prod"), AppEnv::Prod),
            (Some("production\n"), AppEnv::Prod),
        ] {
            assert_eq!(AppEnv::parse(name), Ok(env), "{name:?}");
        }
        let err = AppEnv::parse(Some("staging")).unwrap_err();
        assert!(err.to_string().contains("FAWKES_ENV=\"staging\""), "{err}");
    }

    #[test]
    fn a_configured_secret_is_used_in_every_environment() {
        let secret = "s".repeat(MIN_KEY_BASE_LEN);
        for env in [AppEnv::Dev, AppEnv::Test, AppEnv::Prod] {
            let keys = load(env, Some(&format!("{secret}\n"))).unwrap();
            assert!(!keys.generated);
            assert_eq!(keys.key_base.expose_secret(), secret.as_bytes(), "trimmed");
        }
    }

    #[test]
    fn only_production_insists_on_a_secret() {
        for env in [AppEnv::Dev, AppEnv::Test] {
            for unset in [None, Some(""), Some("  ")] {
                let keys = load(env, unset).unwrap();
                assert!(keys.generated);
                assert_eq!(keys.key_base.expose_secret().len(), MIN_KEY_BASE_LEN);
            }
        }
        let err = load(AppEnv::Prod, None).unwrap_err();
        assert_eq!(err, KeysError::Missing);
        assert!(err.to_string().contains("SECRET_KEY_BASE is not set"), "{err}");
    }

    #[test]
    fn a_short_secret_is_refused_even_in_development() {
        for env in [AppEnv::Dev, AppEnv::Prod] {
            let err = load(env, Some(&"s".repeat(63))).unwrap_err();
            assert_eq!(err, KeysError::TooShort { len: 63 });
            assert!(err.to_string().contains("at least 64"), "{err}");
        }
    }

    #[test]
    fn generated_secrets_differ() {
        let a = load(AppEnv::Dev, None).unwrap();
        let b = load(AppEnv::Dev, None).unwrap();
        assert_ne!(a.key_base.expose_secret(), b.key_base.expose_secret());
    }
}
