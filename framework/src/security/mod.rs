//! Security: the application's secret and the keys derived from it, Phoenix.Token, cookie
//! sessions, CSRF protection and secure browser headers.
//!
//! Everything here derives its keys from one [`SecretKeyBase`] (Phoenix's `secret_key_base`),
//! one key per purpose, named by a salt, so a token made for one purpose is useless for
//! another. Signed messages use HMAC-SHA256, encrypted ones AES-256-GCM, and every check of a
//! secret runs in constant time.
//!
//! This module knows nothing about routes or the endpoint: its plugs go in a pipeline like
//! any other. The [security guide](crate::security_guide) shows a full browser pipeline.

mod basic_auth;
pub(crate) mod client_ip;
pub(crate) mod csrf;
mod headers;
mod rate_limit;
pub(crate) mod session;
mod ssl;
pub(crate) mod token;

pub use crate::secret::{
    DerivedKey, KeyError, SecretKeyBase, DEFAULT_ITERATIONS, DEFAULT_KEY_LEN, MIN_KEY_BASE_LEN,
};
pub use basic_auth::{basic_auth, BasicAuth};
pub use client_ip::TrustedProxies;
pub use csrf::{
    csrf_input_tag, csrf_meta_tag, delete_csrf_token, get_csrf_token, protect_from_forgery,
    ProtectFromForgery, CSRF_TOKEN_HEADER, CSRF_TOKEN_KEY,
};
pub use headers::{put_secure_browser_headers, SecureBrowserHeaders};
pub use rate_limit::{rate_limit, retry_after_secs, RateLimit};
pub use session::{
    fetch_session, FetchSession, SameSite, SecureCookie, SessionConfig, SessionExt, SessionOption,
    SessionStore, MAX_COOKIE_BYTES,
};
pub use ssl::{force_ssl, ForceSsl};
pub use token::{Token, TokenError};
