//! Change tracking where it pays: parts of a render that read state which rarely changes are
//! rendered again only when that state changed ([`memo`]).
//!
//! A view's render is a function of the view; the socket diffs each render against the last
//! one by value. That is exact and needs nothing from the view, but it renders and compares the
//! whole page on every event: a keystroke in a form next to a list of 500 rooms renders the 500
//! rooms again (`bench live-diff` measures it). `memo(&key, || part)` keeps the part from the
//! last render while `key` is equal to the key it was rendered with, and the diff skips a kept
//! part without looking into it.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;

use super::{Dynamic, Rendered};

/// The parts one view kept, by where `memo` was called (and which call it was there, for
/// calls in a loop).
#[derive(Default)]
pub struct MemoCache {
    parts: HashMap<(&'static Location<'static>, usize), Part>,
    /// Calls so far in the render under way, by call site.
    calls: HashMap<&'static Location<'static>, usize>,
}

struct Part {
    key: Box<dyn Any + Send>,
    rendered: Arc<Rendered>,
    used: bool,
}

impl std::fmt::Debug for MemoCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoCache").field("parts", &self.parts.len()).finish()
    }
}

thread_local! {
    /// The cache of the render running on this thread, if it runs with one.
    static CURRENT: RefCell<Option<MemoCache>> = const { RefCell::new(None) };
}

/// Puts the cache back where it came from even when the render panics, so a thread's next
/// render never finds another view's parts.
struct Restore<'a> {
    home: &'a mut MemoCache,
    previous: Option<MemoCache>,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let cache = CURRENT.with(|current| current.replace(self.previous.take()));
        *self.home = cache.unwrap_or_default();
    }
}

impl MemoCache {
    /// Runs `render` with this cache: the [`memo`] calls in it keep the parts whose key did not
    /// change since the last render run with this cache. Parts no call asked for this time
    /// are dropped, so the cache holds what the last render holds, no more.
    ///
    /// The socket runs every connected view's render this way; call it yourself to measure or
    /// test a render that uses `memo`.
    pub fn render<R>(&mut self, render: impl FnOnce() -> R) -> R {
        let cache = std::mem::take(self);
        let previous = CURRENT.with(|current| current.replace(Some(cache)));
        let restore = Restore { home: self, previous };
        let out = render();
        drop(restore);
        self.calls.clear();
        self.parts.retain(|_, part| std::mem::replace(&mut part.used, false));
        out
    }
}

/// A part of a render that is rendered again only when `key` changed (by `==`) since the last
/// render; otherwise the part of the last render is kept, and the diff the client gets skips
/// it without comparing it. Outside a [`MemoCache::render`] (the page's HTTP render) it simply
/// renders.
///
/// The key is what the part reads: the list it shows, or a version the view bumps when it
/// changes it. It is cloned when the part is rendered, and compared on every render.
///
/// # Examples
///
/// ```
/// use fawkes::live::{html, memo, MemoCache, Rendered};
///
/// fn page(rooms: &Vec<String>, typed: &str) -> Rendered {
///     let list = memo(rooms, || html!("<ul>{#for room in rooms}<li>{room}</li>{/for}</ul>"));
///     html!("{list}<input value=\"{typed}\">")
/// }
///
/// let rooms = vec!["general".to_owned(), "ops".to_owned()];
/// let mut cache = MemoCache::default();
/// let before = cache.render(|| page(&rooms, "a"));
/// let after = cache.render(|| page(&rooms, "ab"));
/// // The list was kept: only the input's value goes to the client.
/// assert_eq!(after.diff(&before), Some(serde_json::json!({"1": "ab"})));
/// assert_eq!(after.to_html(), "<ul><li>general</li><li>ops</li></ul><input value=\"ab\">");
/// ```
#[track_caller]
pub fn memo<K>(key: &K, render: impl FnOnce() -> Rendered) -> Dynamic
where
    K: PartialEq + Clone + Send + 'static,
{
    let site = Location::caller();
    // The part kept for this call, or where to keep the one rendered now.
    let found = CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let cache = current.as_mut()?;
        let call = cache.calls.entry(site).or_default();
        let slot = (site, *call);
        *call += 1;
        let kept = cache.parts.get_mut(&slot).and_then(|part| {
            let same = part.key.downcast_ref::<K>().is_some_and(|old| old == key);
            part.used = same;
            same.then(|| part.rendered.clone())
        });
        Some(kept.ok_or(slot))
    });
    let slot = match found {
        Some(Ok(rendered)) => return Dynamic::Shared(rendered),
        Some(Err(slot)) => Some(slot),
        None => None,
    };
    // Rendered outside the borrow: the part may call `memo` itself.
    let rendered = Arc::new(render());
    if let Some(slot) = slot {
        CURRENT.with(|current| {
            if let Some(cache) = current.borrow_mut().as_mut() {
                let part =
                    Part { key: Box::new(key.clone()), rendered: rendered.clone(), used: true };
                cache.parts.insert(slot, part);
            }
        });
    }
    Dynamic::Shared(rendered)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::live::html;

    fn row(n: &u32) -> Rendered {
        html!("<li>{n}</li>")
    }

    /// A list of rows, each kept by its own value, and a counter that is not kept.
    fn page(rows: &[u32], count: u32) -> Rendered {
        let items: Vec<Dynamic> = rows.iter().map(|n| memo(n, || row(n))).collect();
        let list = crate::live::List::new(&["", ""], items.into_iter().map(|d| vec![d]).collect());
        let list = Dynamic::List(list);
        html!("<ul>{list}</ul><p>{count}</p>")
    }

    #[test]
    fn kept_parts_are_skipped_and_changed_ones_rendered_again() {
        let mut cache = MemoCache::default();
        let first = cache.render(|| page(&[1, 2, 3], 0));
        assert_eq!(cache.parts.len(), 3, "one part a call of the loop");
        let second = cache.render(|| page(&[1, 2, 3], 1));
        assert_eq!(second.diff(&first), Some(json!({"1": "1"})));
        // The second row changed: only it is rendered and sent.
        let third = cache.render(|| page(&[1, 5, 3], 1));
        assert_eq!(
            third.diff(&second),
            Some(json!({"0": {"k": {"1": {"0": {"0": "5"}}, "kc": 3}}}))
        );
        assert_eq!(third.to_html(), "<ul><li>1</li><li>5</li><li>3</li></ul><p>1</p>");
        // Parts no call asked for are dropped with the render that stopped asking.
        let fourth = cache.render(|| page(&[1], 1));
        assert_eq!(cache.parts.len(), 1);
        assert_eq!(fourth.to_html(), "<ul><li>1</li></ul><p>1</p>");
    }

    #[test]
    fn outside_a_cache_memo_renders_and_a_panic_leaves_no_cache_behind() {
        assert_eq!(page(&[7], 0).to_html(), "<ul><li>7</li></ul><p>0</p>");
        let mut cache = MemoCache::default();
        cache.render(|| page(&[1], 0));
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.render(|| -> Rendered { panic!("a render that panics") })
        }));
        assert!(panicked.is_err());
        // The thread holds no cache now; this one kept its parts.
        assert!(CURRENT.with(|current| current.borrow().is_none()));
        assert_eq!(cache.parts.len(), 1);
        let again = cache.render(|| page(&[1], 0));
        assert_eq!(again.to_html(), "<ul><li>1</li></ul><p>0</p>");
    }
}
