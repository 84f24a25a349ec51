//! The rendered tree a LiveView sends its client: static strings with dynamic parts between
//! them, in the wire format of the official `phoenix_live_view` client (1.2), and the diff of
//! two renders by value.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Map, Value};

/// A rendered template: `statics` (one more than the dynamics, fixed where the template is
/// written) around `dynamics` (what this render computed).
///
/// Build one with the [`html!`](crate::live::html) macro; the client gets it once whole and
/// then only the dynamics that changed ([`Rendered::diff`]).
///
/// # Examples
///
/// ```
/// use fawkes::live::{Dynamic, Rendered};
///
/// static STATICS: [&str; 2] = ["<h1>Count: ", "</h1>"];
/// let before = Rendered::new(&STATICS, vec![Dynamic::text(0)]);
/// let after = Rendered::new(&STATICS, vec![Dynamic::text(1)]);
/// assert_eq!(after.to_html(), "<h1>Count: 1</h1>");
/// assert_eq!(after.diff(&before), Some(serde_json::json!({"0": "1"})));
/// assert_eq!(after.diff(&after), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    statics: &'static [&'static str],
    dynamics: Vec<Dynamic>,
}

/// One dynamic part of a [`Rendered`].
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic {
    /// HTML, escaped already: see [`Dynamic::text`] and [`Dynamic::raw`].
    Html(String),
    /// A nested template: an `if` branch, a part rendered by a function.
    Nested(Rendered),
    /// A nested template kept from an earlier render by [`memo`](crate::live::memo): when
    /// the render the client has holds the very same part, it is neither compared nor sent.
    Shared(Arc<Rendered>),
    /// A comprehension: entries rendered with the same statics.
    List(List),
}

/// A comprehension: each entry holds the dynamics between the list's statics.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    statics: &'static [&'static str],
    entries: Vec<Vec<Dynamic>>,
}

/// Escapes text for HTML element content and quoted attribute values.
///
/// ```
/// assert_eq!(fawkes::live::escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

impl Dynamic {
    /// A value shown as text: its `Display`, escaped.
    pub fn text(value: impl std::fmt::Display) -> Self {
        // Most values (numbers, names) need no escaping: write, then escape only if needed.
        let mut plain = String::new();
        let _ = write!(plain, "{value}");
        if plain.contains(['&', '<', '>', '"', '\'']) {
            Self::Html(escape(&plain))
        } else {
            Self::Html(plain)
        }
    }

    /// HTML inserted as it is: only for markup the application produced itself, never for
    /// what a user typed.
    pub fn raw(html: impl Into<String>) -> Self {
        Self::Html(html.into())
    }

    fn write_html(&self, out: &mut String) {
        match self {
            Self::Html(html) => out.push_str(html),
            Self::Nested(rendered) => rendered.write_html(out),
            Self::Shared(rendered) => rendered.write_html(out),
            Self::List(list) => {
                for entry in &list.entries {
                    write_parts(out, list.statics, entry);
                }
            }
        }
    }

    /// The template of a nested part, kept or not.
    fn nested(&self) -> Option<&Rendered> {
        match self {
            Self::Nested(rendered) => Some(rendered),
            Self::Shared(rendered) => Some(rendered),
            Self::Html(_) | Self::List(_) => None,
        }
    }

    /// The whole part, as the client needs it the first time.
    fn full(&self) -> Value {
        match self {
            Self::Html(html) => Value::String(html.clone()),
            Self::Nested(rendered) => rendered.to_json(),
            Self::Shared(rendered) => rendered.to_json(),
            // An empty comprehension renders as nothing until it has entries.
            Self::List(list) if list.entries.is_empty() => Value::String(String::new()),
            Self::List(list) => {
                let mut keyed = Map::new();
                for (i, entry) in list.entries.iter().enumerate() {
                    keyed.insert(i.to_string(), parts_json(entry));
                }
                keyed.insert("kc".to_owned(), list.entries.len().into());
                let mut node = Map::new();
                node.insert("s".to_owned(), statics_json(list.statics));
                node.insert("k".to_owned(), Value::Object(keyed));
                Value::Object(node)
            }
        }
    }

    /// What turns `old` (what the client has) into `self`; `None` when they render the same.
    fn diff(&self, old: &Self) -> Option<Value> {
        if let (Self::Shared(new), Self::Shared(old)) = (self, old) {
            if Arc::ptr_eq(new, old) {
                // The part the client has, kept: nothing to compare.
                return None;
            }
        }
        if let (Some(new), Some(old)) = (self.nested(), old.nested()) {
            return new.diff_nested(old);
        }
        match (self, old) {
            (Self::Html(new), Self::Html(old)) => (new != old).then(|| Value::String(new.clone())),
            (Self::List(new), Self::List(old))
                if same_statics(new.statics, old.statics) && !old.entries.is_empty() =>
            {
                new.diff(old)
            }
            // Another shape, another template, or a list the client never got: all of it.
            _ => Some(self.full()),
        }
    }
}

impl From<Rendered> for Dynamic {
    fn from(rendered: Rendered) -> Self {
        Self::Nested(rendered)
    }
}

impl From<List> for Dynamic {
    fn from(list: List) -> Self {
        Self::List(list)
    }
}

impl Rendered {
    /// A render of the template whose statics are `statics`.
    ///
    /// # Panics
    ///
    /// When there is not exactly one static more than there are dynamics.
    pub fn new(statics: &'static [&'static str], dynamics: Vec<Dynamic>) -> Self {
        assert_eq!(statics.len(), dynamics.len() + 1, "n dynamics sit between n + 1 statics");
        Self { statics, dynamics }
    }

    /// The HTML, for the page's first, plain HTTP render.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        self.write_html(&mut out);
        out
    }

    fn write_html(&self, out: &mut String) {
        write_parts(out, self.statics, &self.dynamics);
    }

    /// The whole tree in the client's format: `{"s": [...], "0": ..., "1": ...}`.
    pub fn to_json(&self) -> Value {
        let mut node = match parts_json(&self.dynamics) {
            Value::Object(node) => node,
            _ => unreachable!("parts are an object"),
        };
        node.insert("s".to_owned(), statics_json(self.statics));
        Value::Object(node)
    }

    /// The diff that turns `old`, the render the client has, into this one: only the
    /// dynamics that changed; the whole tree when the template itself changed. `None` when
    /// nothing changed.
    pub fn diff(&self, old: &Rendered) -> Option<Value> {
        self.diff_nested(old)
    }

    /// Whether both are renders of one template (the same statics).
    pub(crate) fn same_template(&self, other: &Rendered) -> bool {
        same_statics(self.statics, other.statics)
    }

    /// How many dynamics the template has.
    pub(crate) fn dynamics_len(&self) -> usize {
        self.dynamics.len()
    }

    fn diff_nested(&self, old: &Rendered) -> Option<Value> {
        if !same_statics(self.statics, old.statics) {
            return Some(self.to_json());
        }
        let mut changed = Map::new();
        for (i, (new, old)) in self.dynamics.iter().zip(&old.dynamics).enumerate() {
            if let Some(diff) = new.diff(old) {
                changed.insert(i.to_string(), diff);
            }
        }
        (!changed.is_empty()).then_some(Value::Object(changed))
    }
}

impl List {
    /// A comprehension whose entries are each rendered between `statics`.
    ///
    /// # Panics
    ///
    /// When an entry does not have exactly one dynamic fewer than there are statics.
    pub fn new(statics: &'static [&'static str], entries: Vec<Vec<Dynamic>>) -> Self {
        for entry in &entries {
            assert_eq!(statics.len(), entry.len() + 1, "n dynamics sit between n + 1 statics");
        }
        Self { statics, entries }
    }

    /// Entries in place: changed ones merged, new ones whole, the count last. Entries are
    /// matched by position (no moves), which is what a re-render of the same list gives.
    fn diff(&self, old: &List) -> Option<Value> {
        let mut keyed = Map::new();
        for (i, entry) in self.entries.iter().enumerate() {
            let diff = match old.entries.get(i) {
                Some(old) => {
                    let mut changed = Map::new();
                    for (j, (new, old)) in entry.iter().zip(old).enumerate() {
                        if let Some(diff) = new.diff(old) {
                            changed.insert(j.to_string(), diff);
                        }
                    }
                    (!changed.is_empty()).then_some(Value::Object(changed))
                }
                None => Some(parts_json(entry)),
            };
            if let Some(diff) = diff {
                keyed.insert(i.to_string(), diff);
            }
        }
        if keyed.is_empty() && self.entries.len() == old.entries.len() {
            return None;
        }
        keyed.insert("kc".to_owned(), self.entries.len().into());
        let mut node = Map::new();
        node.insert("k".to_owned(), Value::Object(keyed));
        Some(Value::Object(node))
    }
}

/// Two statics are the same template when they are the same static array (the macro makes one
/// per template); equal contents from two places count as the same too.
fn same_statics(a: &'static [&'static str], b: &'static [&'static str]) -> bool {
    std::ptr::eq(a, b) || a == b
}

fn write_parts(out: &mut String, statics: &[&str], dynamics: &[Dynamic]) {
    for (static_part, dynamic) in statics.iter().zip(dynamics) {
        out.push_str(static_part);
        dynamic.write_html(out);
    }
    if let Some(last) = statics.last() {
        out.push_str(last);
    }
}

fn statics_json(statics: &[&str]) -> Value {
    Value::Array(statics.iter().map(|s| Value::String((*s).to_owned())).collect())
}

/// `{"0": ..., "1": ...}`: every dynamic, whole.
fn parts_json(dynamics: &[Dynamic]) -> Value {
    let mut node = Map::new();
    for (i, dynamic) in dynamics.iter().enumerate() {
        node.insert(i.to_string(), dynamic.full());
    }
    Value::Object(node)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    static PAGE: [&str; 3] = ["<div>", "<ul>", "</ul></div>"];
    static ITEM: [&str; 2] = ["<li>", "</li>"];
    static YES: [&str; 2] = ["<b>", "</b>"];
    static NO: [&str; 1] = ["<i>none</i>"];

    fn page(title: &str, items: &[&str], flag: bool) -> Rendered {
        let list = List::new(&ITEM, items.iter().map(|i| vec![Dynamic::text(i)]).collect());
        let branch = if flag {
            Rendered::new(&YES, vec![Dynamic::text(title)])
        } else {
            Rendered::new(&NO, vec![])
        };
        Rendered::new(&PAGE, vec![Dynamic::Nested(branch), list.into()])
    }

    #[test]
    fn a_full_render_carries_every_static_and_dynamic() {
        let r = page("<x>", &["a", "b"], true);
        assert_eq!(r.to_html(), "<div><b>&lt;x&gt;</b><ul><li>a</li><li>b</li></ul></div>");
        assert_eq!(
            r.to_json(),
            json!({
                "s": ["<div>", "<ul>", "</ul></div>"],
                "0": {"s": ["<b>", "</b>"], "0": "&lt;x&gt;"},
                "1": {"s": ["<li>", "</li>"], "k": {"0": {"0": "a"}, "1": {"0": "b"}, "kc": 2}},
            })
        );
        // A list with nothing in it is nothing until it has entries.
        assert_eq!(page("t", &[], false).to_json()["1"], json!(""));
    }

    #[test]
    fn diffs_carry_only_what_changed() {
        let old = page("t", &["a", "b"], true);
        assert_eq!(page("t", &["a", "b"], true).diff(&old), None);
        assert_eq!(page("u", &["a", "b"], true).diff(&old), Some(json!({"0": {"0": "u"}})));
        // Another branch is sent whole, with its statics.
        assert_eq!(
            page("t", &["a", "b"], false).diff(&old),
            Some(json!({"0": {"s": ["<i>none</i>"]}}))
        );
        // Lists: a changed entry, an added one, a shorter list.
        assert_eq!(
            page("t", &["a", "c", "d"], true).diff(&old),
            Some(json!({"1": {"k": {"1": {"0": "c"}, "2": {"0": "d"}, "kc": 3}}}))
        );
        assert_eq!(page("t", &["a"], true).diff(&old), Some(json!({"1": {"k": {"kc": 1}}})));
        assert_eq!(page("t", &[], true).diff(&old), Some(json!({"1": {"k": {"kc": 0}}})));
        // From an empty list (rendered as "") the list arrives whole.
        let empty = page("t", &[], true);
        assert_eq!(
            page("t", &["a"], true).diff(&empty),
            Some(json!({"1": {"s": ["<li>", "</li>"], "k": {"0": {"0": "a"}, "kc": 1}}}))
        );
    }

    #[test]
    fn text_is_escaped_and_raw_is_not() {
        assert_eq!(
            Dynamic::text("<script>\"'&"),
            Dynamic::Html("&lt;script&gt;&quot;&#39;&amp;".into())
        );
        assert_eq!(Dynamic::text(42), Dynamic::Html("42".into()));
        assert_eq!(Dynamic::raw("<br>"), Dynamic::Html("<br>".into()));
    }
}
