//! `/session`: logging in with a display name, and out. Browser forms, so both are
//! CSRF-protected by the `browser` pipeline and answer with a redirect to the chat.
//!
//! There are no passwords: a login only proves that the name came through this app's form,
//! which is what lets the socket trust the name in the user token the page then carries.

use fawkes::security::{delete_csrf_token, SessionExt as _, SessionOption};
use fawkes::{Conn, State};
use http::StatusCode;
use serde_json::Value;

use super::page_controller::{self, LoginAttempt};
use crate::router::AppState;

/// The session key holding the logged-in display name.
pub const NAME_KEY: &str = "user_name";

/// The session key holding a random id of the login: what names the login's dashboard
/// sockets (`ops_socket:<id>`), so the logout closes them. A display name could not: anyone
/// may log in under any name, and would then close someone else's.
pub const LOGIN_ID_KEY: &str = "login_id";

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 40;

/// The display name of the session's user, if one logged in.
///
/// # Panics
///
/// When the session was not fetched (the route is not in the `browser` pipeline).
pub fn current_name(conn: &Conn) -> Option<String> {
    conn.get_session::<String>(NAME_KEY)
}

/// Checks a display name from a form: text, trimmed, not blank, at most
/// [`MAX_NAME_CHARS`] characters, without control characters.
///
/// # Errors
///
/// A message for the form, saying what is wrong.
///
/// # Examples
///
/// ```
/// use example_app::controllers::session_controller::validate_name;
/// use serde_json::json;
///
/// assert_eq!(validate_name(Some(&json!("  Ada "))), Ok("Ada".to_owned()));
/// assert!(validate_name(Some(&json!(" "))).is_err());
/// assert!(validate_name(Some(&json!({"first": "Ada"}))).is_err());
/// assert!(validate_name(None).is_err());
/// ```
pub fn validate_name(value: Option<&Value>) -> Result<String, &'static str> {
    let name = match value {
        None | Some(Value::Null) => "",
        Some(Value::String(name)) => name.trim(),
        Some(_) => return Err("Your name must be text."),
    };
    if name.is_empty() {
        Err("Please enter a name.")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err("That name is too long: 40 characters at most.")
    } else if name.chars().any(char::is_control) {
        Err("That name contains characters that cannot be shown.")
    } else {
        Ok(name.to_owned())
    }
}

/// `POST /session` with the form field `name`: logs in under that name and redirects to the
/// chat. A bad name shows the chat again with the form's error, as a 422.
pub async fn create(mut conn: Conn, state: State<AppState>) -> Conn {
    let param = conn.param_map().get("name");
    let name = match validate_name(param) {
        Ok(name) => name,
        Err(error) => {
            let typed = param.and_then(Value::as_str).unwrap_or_default().to_owned();
            let attempt = LoginAttempt { name: &typed, error };
            let conn = conn.put_status(StatusCode::UNPROCESSABLE_ENTITY);
            return page_controller::chat(conn, &state, Some(attempt));
        }
    };
    tracing::info!(user = %name, "login");
    // A new CSRF secret and a freshly signed cookie: nothing handed out before the login,
    // possibly to someone else on a shared browser, works after it.
    delete_csrf_token(&mut conn);
    // A login over another ends it, as a logout would: its dashboards close.
    close_dashboards(&conn);
    let login_id = format!("{:032x}", rand::random::<u128>());
    conn.put_session(NAME_KEY, &name)
        .put_session(LOGIN_ID_KEY, &login_id)
        .configure_session(SessionOption::Renew)
        .redirect("/")
}

/// `DELETE /session` (or `POST /session/delete`, for a form): logs out, dropping the session
/// cookie, closes the dashboards the login had open, and redirects to the chat.
pub async fn delete(conn: Conn) -> Conn {
    close_dashboards(&conn);
    conn.clear_session().configure_session(SessionOption::Drop).redirect("/")
}

/// Closes the dashboards the session's login opened, if it has one.
fn close_dashboards(conn: &Conn) {
    if let Some(login_id) = conn.get_session::<String>(LOGIN_ID_KEY) {
        conn.pubsub().broadcast(&ops_socket(&login_id), "disconnect", serde_json::json!({}));
    }
}

/// The id of the dashboard sockets a login opened.
fn ops_socket(login_id: &str) -> String {
    format!("ops_socket:{login_id}")
}

/// Who the `ops` pipeline let in, for the dashboard's socket: a login's id, or none (Basic
/// authentication has no logout).
#[derive(Debug, Clone)]
pub struct Operator(Option<String>);

/// Names a dashboard page's socket after the login that opened it
/// ([`fawkes::dashboard::Dashboard::socket_id`]): [`delete`] closes it.
pub fn operator_socket(assigns: &fawkes::Assigns) -> Option<String> {
    assigns.get::<Operator>().and_then(|operator| operator.0.as_deref()).map(ops_socket)
}

/// A plug for pages only a logged-in visitor may see: anyone else is sent to the chat,
/// whose login form comes first.
pub async fn require_login(conn: Conn) -> Conn {
    if current_name(&conn).is_some() {
        conn
    } else {
        conn.redirect("/").halt()
    }
}

/// Who may open the operators' pages (the live dashboard), from the environment: a plug for
/// their pipeline.
///
/// The example app has no roles, and anyone may log in by typing a name: a login is enough
/// on a developer's machine, never in production.
#[derive(Debug, Clone)]
pub enum OpsAccess {
    /// Any logged-in visitor (development and tests, without `DASHBOARD_PASSWORD`).
    Login,
    /// HTTP Basic authentication as `ops` with `DASHBOARD_PASSWORD`, in any environment.
    Password(fawkes::security::BasicAuth),
    /// Nobody: production without `DASHBOARD_PASSWORD`; the pages answer 404.
    Closed,
}

impl OpsAccess {
    /// `DASHBOARD_PASSWORD` set (and not blank): [`OpsAccess::Password`]; otherwise
    /// [`OpsAccess::Closed`] in production and [`OpsAccess::Login`] elsewhere.
    pub fn from_env(env: crate::keys::AppEnv) -> Self {
        let password = std::env::var("DASHBOARD_PASSWORD").unwrap_or_default();
        if !password.trim().is_empty() {
            Self::Password(fawkes::security::basic_auth("ops", &password))
        } else if env == crate::keys::AppEnv::Prod {
            Self::Closed
        } else {
            Self::Login
        }
    }
}

impl fawkes::Plug for OpsAccess {
    async fn call(&self, conn: Conn) -> Conn {
        match self {
            Self::Login => {
                let conn = require_login(conn).await;
                if conn.halted() {
                    return conn;
                }
                let login_id = conn.get_session::<String>(LOGIN_ID_KEY);
                conn.assign(Operator(login_id))
            }
            Self::Password(guard) => guard.call(conn).await.assign(Operator(None)),
            Self::Closed => fawkes::ActionError::not_found().render_halted(conn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `plug` does to a request with `authorization`: its status, and whether it halted.
    async fn ops(plug: &OpsAccess, authorization: Option<&str>) -> (StatusCode, bool) {
        use fawkes::Plug as _;
        let mut req = http::Request::get("/dev/dashboard");
        if let Some(value) = authorization {
            req = req.header(http::header::AUTHORIZATION, value);
        }
        let conn = plug.call(Conn::from_request(req.body(fawkes::Body::empty()).unwrap())).await;
        (conn.status(), conn.halted())
    }

    #[tokio::test]
    async fn the_dashboard_takes_a_password_or_is_closed_in_production() {
        let password = OpsAccess::Password(fawkes::security::basic_auth("ops", "hunter2"));
        // "ops:hunter2" and "ops:nope", base64.
        assert!(
            !ops(&password, Some("Basic b3BzOmh1bnRlcjI=")).await.1,
            "the right password passes"
        );
        assert_eq!(
            ops(&password, Some("Basic b3BzOm5vcGU=")).await,
            (StatusCode::UNAUTHORIZED, true)
        );
        assert_eq!(ops(&password, None).await, (StatusCode::UNAUTHORIZED, true));
        assert_eq!(
            ops(&OpsAccess::Closed, Some("Basic b3BzOmh1bnRlcjI=")).await,
            (StatusCode::NOT_FOUND, true)
        );
        // Production without a password is closed; elsewhere a login will do.
        if std::env::var("DASHBOARD_PASSWORD").is_err() {
            assert!(matches!(OpsAccess::from_env(crate::keys::AppEnv::Prod), OpsAccess::Closed));
            assert!(matches!(OpsAccess::from_env(crate::keys::AppEnv::Dev), OpsAccess::Login));
        }
    }
    use serde_json::json;

    #[test]
    fn names_are_checked() {
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        let exactly = "é".repeat(MAX_NAME_CHARS);
        let cases = [
            (json!("Ada"), Ok("Ada")),
            (json!("  Grace Hopper\t"), Ok("Grace Hopper")),
            (json!(exactly), Ok(exactly.as_str())),
            (json!(""), Err("Please enter a name.")),
            (json!("   "), Err("Please enter a name.")),
            (Value::Null, Err("Please enter a name.")),
            (json!(long), Err("That name is too long: 40 characters at most.")),
            (json!("a\u{0}b"), Err("That name contains characters that cannot be shown.")),
            (json!("a\nb"), Err("That name contains characters that cannot be shown.")),
            (json!(["Ada"]), Err("Your name must be text.")),
            (json!({"x": 1}), Err("Your name must be text.")),
            (json!(7), Err("Your name must be text.")),
        ];
        for (value, expected) in cases {
            assert_eq!(validate_name(Some(&value)), expected.map(str::to_owned), "{value}");
        }
    }
}
