//! Typed assigns: at most one value per type, kept for the life of a conn.

use std::any::{Any, TypeId};
use std::fmt;

/// How many assigns a conn holds before it needs a second allocation for the list itself.
/// Pipelines rarely assign more than a few values (a current user, a session, a request id).
const INLINE: usize = 4;

/// Values that plugs hand to later plugs and to the action, one per type (Phoenix's
/// `conn.assigns`, keyed by type instead of by atom).
///
/// Read them with [`Conn::get_assign`](crate::Conn::get_assign) or through
/// [`Conn::assigns`](crate::Conn::assigns). A value costs one allocation; the first few need
/// no other, where a general type map would allocate its table and its header too.
///
/// # Examples
///
/// ```
/// use fawkes::conn::Assigns;
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct CurrentUser(u32);
///
/// let mut assigns = Assigns::new();
/// assert_eq!(assigns.insert(CurrentUser(7)), None);
/// assert_eq!(assigns.insert(CurrentUser(8)), Some(CurrentUser(7)));
/// assert_eq!(assigns.get::<CurrentUser>(), Some(&CurrentUser(8)));
/// assert!(assigns.contains::<CurrentUser>());
///
/// assigns.get_mut::<CurrentUser>().unwrap().0 += 1;
/// assert_eq!(assigns.remove::<CurrentUser>(), Some(CurrentUser(9)));
/// assert!(assigns.is_empty());
/// ```
#[derive(Default)]
pub struct Assigns {
    /// Filled in any order: a removal leaves a gap that a later insert fills.
    inline: [Option<Entry>; INLINE],
    spilled: Vec<Entry>,
}

struct Entry {
    id: TypeId,
    value: Box<dyn AnyAssign>,
}

impl Clone for Assigns {
    fn clone(&self) -> Self {
        // Cloned with every router and endpoint handle, mostly empty: skip the slot by slot copy.
        if self.is_empty() {
            return Self::new();
        }
        Self { inline: self.inline.clone(), spilled: self.spilled.clone() }
    }
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Self { id: self.id, value: self.value.clone_box() }
    }
}

/// What an assign can do once its type is erased.
trait AnyAssign: Send + Sync + 'static {
    fn clone_box(&self) -> Box<dyn AnyAssign>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn type_name(&self) -> &'static str;
    fn insert_into(self: Box<Self>, extensions: &mut http::Extensions);
}

impl<T: Clone + Send + Sync + 'static> AnyAssign for T {
    fn clone_box(&self) -> Box<dyn AnyAssign> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn insert_into(self: Box<Self>, extensions: &mut http::Extensions) {
        extensions.insert(*self);
    }
}

impl Assigns {
    /// No assigns; allocates nothing.
    pub const fn new() -> Self {
        Self { inline: [None, None, None, None], spilled: Vec::new() }
    }

    /// Stores `value`, giving back the value of the same type it replaces.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        let id = TypeId::of::<T>();
        if let Some(old) = self.find_mut(id).and_then(|e| e.value.as_any_mut().downcast_mut()) {
            return Some(std::mem::replace(old, value));
        }
        self.place(Entry { id, value: Box::new(value) });
        None
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.find(TypeId::of::<T>())?.value.as_any().downcast_ref()
    }

    /// Mutable access to the value of type `T`, if one was stored.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.find_mut(TypeId::of::<T>())?.value.as_any_mut().downcast_mut()
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: 'static>(&self) -> bool {
        self.find(TypeId::of::<T>()).is_some()
    }

    /// Takes the value of type `T` out, if one was stored.
    pub fn remove<T: 'static>(&mut self) -> Option<T> {
        let id = TypeId::of::<T>();
        let entry =
            match self.inline.iter_mut().find(|slot| slot.as_ref().is_some_and(|e| e.id == id)) {
                Some(slot) => slot.take()?,
                None => {
                    let index = self.spilled.iter().position(|e| e.id == id)?;
                    self.spilled.swap_remove(index)
                }
            };
        entry.value.into_any().downcast::<T>().ok().map(|value| *value)
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.inline.iter().flatten().count() + self.spilled.len()
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.inline.iter().all(Option::is_none) && self.spilled.is_empty()
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.inline = Self::new().inline;
        self.spilled.clear();
    }

    /// Moves every value of `other` in, replacing those of the same types.
    pub fn extend(&mut self, other: Assigns) {
        for entry in other.into_entries() {
            match self.find_mut(entry.id) {
                Some(slot) => *slot = entry,
                None => self.place(entry),
            }
        }
    }

    /// Stores an entry of a type not stored yet: in the first free inline slot, else after
    /// the inline ones.
    fn place(&mut self, entry: Entry) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(entry),
            None => self.spilled.push(entry),
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.inline.iter().flatten().chain(&self.spilled)
    }

    fn into_entries(self) -> impl Iterator<Item = Entry> {
        self.inline.into_iter().flatten().chain(self.spilled)
    }

    fn find(&self, id: TypeId) -> Option<&Entry> {
        self.entries().find(|e| e.id == id)
    }

    fn find_mut(&mut self, id: TypeId) -> Option<&mut Entry> {
        self.inline.iter_mut().flatten().chain(&mut self.spilled).find(|e| e.id == id)
    }
}

/// The same values in an [`http::Extensions`], for code that takes a type map (a socket's
/// connect info).
impl From<Assigns> for http::Extensions {
    fn from(assigns: Assigns) -> Self {
        let mut extensions = http::Extensions::new();
        for entry in assigns.into_entries() {
            entry.value.insert_into(&mut extensions);
        }
        extensions
    }
}

impl fmt::Debug for Assigns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.entries().map(|e| e.value.type_name())).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Slot<const N: usize>(u32);

    fn filled(n: u32) -> Assigns {
        let mut assigns = Assigns::new();
        assigns.insert(Slot::<0>(n));
        assigns.insert(Slot::<1>(n));
        assigns.insert(Slot::<2>(n));
        assigns.insert(Slot::<3>(n));
        assigns.insert(Slot::<4>(n));
        assigns.insert(Slot::<5>(n));
        assigns
    }

    #[test]
    fn values_past_the_inline_slots_are_found_replaced_and_removed() {
        let mut assigns = filled(1);
        assert_eq!(assigns.len(), 6);
        assert_eq!(assigns.get::<Slot<5>>(), Some(&Slot(1)));
        assert_eq!(assigns.insert(Slot::<5>(2)), Some(Slot(1)));
        assert_eq!(assigns.insert(Slot::<0>(2)), Some(Slot(1)));
        assert_eq!(assigns.len(), 6);
        assert_eq!(assigns.remove::<Slot<1>>(), Some(Slot(1)));
        assert_eq!(assigns.remove::<Slot<1>>(), None);
        assert_eq!(assigns.remove::<Slot<4>>(), Some(Slot(1)));
        assert_eq!(assigns.len(), 4);
        // The gap a removal left is filled again.
        assigns.insert(Slot::<7>(3));
        assert_eq!(assigns.spilled.len(), 1);
        assert_eq!(assigns.get::<Slot<7>>(), Some(&Slot(3)));
        assert_eq!(assigns.get::<Slot<5>>(), Some(&Slot(2)));
        assert!(!assigns.contains::<Slot<4>>());
        assigns.clear();
        assert!(assigns.is_empty());
        assert_eq!(assigns.get::<Slot<0>>(), None);
    }

    #[test]
    fn clones_are_deep_and_extend_replaces_by_type() {
        let original = filled(1);
        let mut copy = original.clone();
        *copy.get_mut::<Slot<5>>().unwrap() = Slot(9);
        assert_eq!(original.get::<Slot<5>>(), Some(&Slot(1)));
        let mut other = Assigns::new();
        other.insert(Slot::<5>(4));
        other.insert(Slot::<6>(4));
        copy.extend(other);
        assert_eq!(copy.len(), 7);
        assert_eq!(copy.get::<Slot<5>>(), Some(&Slot(4)));
        assert_eq!(copy.get::<Slot<6>>(), Some(&Slot(4)));
        assert_eq!(copy.get::<Slot<0>>(), Some(&Slot(1)));
    }

    #[test]
    fn converts_into_extensions_with_every_value() {
        let extensions = http::Extensions::from(filled(3));
        assert_eq!(extensions.len(), 6);
        assert_eq!(extensions.get::<Slot<0>>(), Some(&Slot(3)));
        assert_eq!(extensions.get::<Slot<5>>(), Some(&Slot(3)));
    }

    #[test]
    fn debug_names_the_types() {
        let mut assigns = Assigns::new();
        assigns.insert(7_u8);
        assert_eq!(format!("{assigns:?}"), r#"{"u8"}"#);
    }
}
