//! LiveView: pages rendered on the server and kept live over a channel, driven by the
//! unmodified official `phoenix_live_view` client.
//!
//! A view renders with [`html!`], which splits its template into statics and dynamics at
//! compile time; the client gets the statics once and, after each event, only the dynamics
//! whose value changed ([`Rendered::diff`]).

mod flash;
mod memo;
mod page;
mod rendered;
mod socket;
#[cfg(all(test, feature = "test"))]
mod tests;
mod view;

pub use fawkes_macros::html;
pub use flash::{flash_group, Flash};
pub use memo::{memo, MemoCache};
pub use page::{page, put_root_layout, LayoutContext, PutRootLayout, RootLayout, LIVEVIEW_VERSION};
pub use rendered::{escape, Dynamic, List, Rendered};
pub use socket::{socket, Live};
pub use view::{Info, LiveHandle, LiveSocket, LiveView};

/// What may stand in a template's `{…}`: any `Display` value (shown as escaped text), a
/// [`Rendered`] (a nested template) or a [`Dynamic`] (for instance [`Dynamic::raw`] HTML).
pub trait ToDynamic {
    /// The dynamic part this value renders as.
    fn to_dynamic(&self) -> Dynamic;
}

impl<T: std::fmt::Display + ?Sized> ToDynamic for T {
    fn to_dynamic(&self) -> Dynamic {
        Dynamic::text(self)
    }
}

impl ToDynamic for Rendered {
    fn to_dynamic(&self) -> Dynamic {
        Dynamic::Nested(self.clone())
    }
}

impl ToDynamic for Dynamic {
    fn to_dynamic(&self) -> Dynamic {
        self.clone()
    }
}
