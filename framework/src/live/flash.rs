//! Flash messages of live pages: put by a view, shown after its HTML, carried across a live
//! navigation or a full page load in a signed token, as Phoenix carries them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{html, Rendered};
use crate::security::{SecretKeyBase, Token};

/// What a flash token is signed for.
pub(crate) const FLASH_SALT: &str = "fawkes live view flash";

/// How long a flash may travel between two pages (Phoenix's minute).
const FLASH_MAX_AGE: Duration = Duration::from_secs(60);

/// The cookie the official client sets, for a minute, before a full page load that carries a
/// flash: the page reads it and removes it.
pub(crate) const FLASH_COOKIE: &str = "__phoenix_flash__";

/// A page's flash messages by kind (`"info"`, `"error"`, any name), in the order of their kinds.
///
/// A view puts them with [`LiveSocket::put_flash`](super::LiveSocket::put_flash); they are
/// shown after the view's HTML by [`LiveView::render_flash`](super::LiveView::render_flash)
/// ([`flash_group`] unless the view says otherwise), and follow a
/// [`push_navigate`](super::LiveSocket::push_navigate) or a
/// [`redirect`](super::LiveSocket::redirect) to the next page.
///
/// # Examples
///
/// ```
/// use fawkes::live::Flash;
///
/// let flash = Flash::from_iter([("info", "Saved"), ("error", "Not sent")]);
/// assert_eq!(flash.get("info"), Some("Saved"));
/// assert_eq!(flash.iter().map(|(kind, _)| kind).collect::<Vec<_>>(), ["error", "info"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Flash(BTreeMap<String, String>);

impl Flash {
    /// The message of `kind`.
    pub fn get(&self, kind: &str) -> Option<&str> {
        self.0.get(kind).map(String::as_str)
    }

    /// The messages, as `(kind, message)`, ordered by kind.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(kind, message)| (kind.as_str(), message.as_str()))
    }

    /// Whether there is no message.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn put(&mut self, kind: String, message: String) {
        self.0.insert(kind, message);
    }

    pub(crate) fn remove(&mut self, kind: &str) {
        self.0.remove(kind);
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The token a flash travels in to the next page.
    pub(crate) fn sign(&self, key_base: &SecretKeyBase) -> String {
        Token::sign(key_base, FLASH_SALT, self)
    }

    /// The flash a token carries; none for a token that is forged, altered or over a minute
    /// old (a flash is a courtesy: a bad one is dropped, not an error).
    pub(crate) fn verify(key_base: &SecretKeyBase, token: &str) -> Flash {
        Token::verify(key_base, FLASH_SALT, token, FLASH_MAX_AGE).unwrap_or_else(|err| {
            tracing::debug!(error = %err, "ignoring a flash token");
            Flash::default()
        })
    }
}

impl<K: Into<String>, M: Into<String>> FromIterator<(K, M)> for Flash {
    fn from_iter<I: IntoIterator<Item = (K, M)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(kind, message)| (kind.into(), message.into())).collect())
    }
}

/// The flash as views show it unless they override
/// [`LiveView::render_flash`](super::LiveView::render_flash): nothing when empty, else a
/// `<div id="flash">` with one `<p id="flash-KIND" class="flash flash-KIND" role="alert">`
/// per message. A click on a message clears it (`phx-click="lv:clear-flash"`, which the
/// framework answers without calling the view).
///
/// # Examples
///
/// ```
/// use fawkes::live::{flash_group, Flash};
///
/// assert_eq!(flash_group(&Flash::default()).to_html(), "");
/// let html = flash_group(&Flash::from_iter([("info", "<b>Saved</b>")])).to_html();
/// assert!(html.contains("id=\"flash-info\""));
/// assert!(html.contains("&lt;b&gt;Saved&lt;/b&gt;"));
/// ```
pub fn flash_group(flash: &Flash) -> Rendered {
    html!(
        "{#if !flash.is_empty()}<div id=\"flash\">{#for (kind, message) in flash.iter()}\
         <p id=\"flash-{kind}\" class=\"flash flash-{kind}\" role=\"alert\" \
         phx-click=\"lv:clear-flash\" phx-value-key=\"{kind}\">{message}</p>{/for}</div>{/if}"
    )
}

/// A view's render with its flash after it, as one tree: the flash is one dynamic past the
/// view's own, so the view's diffs keep their keys (a click's diff is as small as without a
/// flash) and the flash changes by itself.
#[derive(Debug, Clone)]
pub(crate) struct PageTree {
    pub(crate) view: Rendered,
    pub(crate) flash: Rendered,
}

impl PageTree {
    pub(crate) fn to_html(&self) -> String {
        let mut html = self.view.to_html();
        html.push_str(&self.flash.to_html());
        html
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut tree = self.view.to_json();
        self.append_flash(&mut tree);
        tree
    }

    /// What turns `old` (what the client has) into this, `None` when nothing changed.
    pub(crate) fn diff(&self, old: &PageTree) -> Option<Value> {
        if !self.view.same_template(&old.view) {
            return Some(self.to_json());
        }
        let mut diff =
            self.view.diff(&old.view).unwrap_or_else(|| Value::Object(Default::default()));
        if let (Some(changed), Value::Object(node)) = (self.flash.diff(&old.flash), &mut diff) {
            node.insert(self.view.dynamics_len().to_string(), changed);
        }
        diff.as_object().is_some_and(|node| !node.is_empty()).then_some(diff)
    }

    /// The flash as the view's last dynamic plus one: one more static, empty, closes it.
    fn append_flash(&self, tree: &mut Value) {
        let Some(node) = tree.as_object_mut() else { return };
        if let Some(Value::Array(statics)) = node.get_mut("s") {
            statics.push(Value::String(String::new()));
        }
        node.insert(self.view.dynamics_len().to_string(), self.flash.to_json());
    }
}
