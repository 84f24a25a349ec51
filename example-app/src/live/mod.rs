//! Live pages: views rendered on the server and kept live by the official
//! `phoenix_live_view` client over the `/live` socket.
//!
//! - [`CounterLive`] at `/live/counter`: a count changed by clicks, a step set by a live patch
//!   (`?step=5`), a live navigation to the rooms.
//! - [`RoomsLive`] at `/live/rooms`: the chat's rooms.
//!
//! The pages are rendered in [`root_layout`], which loads the clients from `/vendor/` (npm
//! packages pinned in `example-app/package.json`) and `/assets/live.js`, which connects.

mod counter_live;
mod rooms_live;

use askama::Template;
pub use counter_live::{CounterLive, MAX_STEP};
use fawkes::live::LayoutContext;
pub use rooms_live::RoomsLive;

use crate::assets::{Assets, Vendor};

/// `templates/live.html`: the document of every live page.
#[derive(Template)]
#[template(path = "live.html")]
struct LivePage<'a> {
    page: &'static str,
    assets: &'a Assets,
    vendor: &'a Vendor,
    title: &'a str,
    csrf_token: &'a str,
    inner: &'a str,
}

/// The root layout of the live pages: the container inside the app's chrome, the clients
/// loaded with an import map.
pub fn root_layout(assets: &Assets, vendor: &Vendor, page: &LayoutContext<'_>) -> String {
    let rendered = LivePage {
        page: "live",
        assets,
        vendor,
        title: page.title.unwrap_or("Live · Fawkes"),
        csrf_token: page.csrf_token,
        inner: page.inner,
    }
    .render();
    rendered.unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot render the live layout");
        page.inner.to_owned()
    })
}
