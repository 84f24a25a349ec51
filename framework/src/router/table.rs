//! The route table `router!` generates, as `mix phx.routes` prints it.

use std::fmt::Write as _;

/// One route of a router, as `router!` declared it: its [`ROUTE_TABLE`](crate::router!) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// `GET`, `POST`… (`*` for a `forward` or a `socket`, which take every method).
    pub method: &'static str,
    /// The path pattern, with the scopes' prefixes (`/api/rooms/:id`).
    pub path: &'static str,
    /// What serves it: an action's path (`room_controller::show`), `live ViewType`,
    /// `forward <service>` or `socket <socket>`.
    pub target: &'static str,
    /// The path helper's name (`room_path`), if the route has one.
    pub helper: Option<&'static str>,
    /// The pipelines a request runs through first, in order.
    pub pipelines: &'static [&'static str],
}

/// The routes as a table, one line a route, as `mix phx.routes` prints them: helper, method,
/// path, target, and the pipelines after `|`.
///
/// # Examples
///
/// ```
/// async fn show(conn: fawkes::Conn) -> fawkes::Conn { conn.text("room") }
///
/// fawkes::router! {
///     pub App;
///     pipeline api { plug fawkes::plug::accepts(["json"]); }
///     scope "/api" { pipe_through api; get "/rooms/:id" => show, as: room; }
/// }
///
/// let table = fawkes::router::route_table(App::ROUTE_TABLE);
/// assert_eq!(table, "room_path  GET  /api/rooms/:id  show  | api\n");
/// ```
pub fn route_table(routes: &[RouteInfo]) -> String {
    // Padding counts characters, so widths do too (a clipped target ends with `…`).
    let width = |f: fn(&RouteInfo) -> usize| routes.iter().map(f).max().unwrap_or(0);
    let helper_w = width(|r| r.helper.map_or(0, |h| h.chars().count()));
    let method_w = width(|r| r.method.chars().count());
    let path_w = width(|r| r.path.chars().count());
    let target_w = width(|r| r.target.chars().count());
    let mut out = String::new();
    for route in routes {
        let mut line = String::new();
        let _ = write!(
            line,
            "{:<helper_w$}  {:<method_w$}  {:<path_w$}  {:<target_w$}",
            route.helper.unwrap_or(""),
            route.method,
            route.path,
            route.target,
        );
        if !route.pipelines.is_empty() {
            let _ = write!(line, "  | {}", route.pipelines.join(", "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
