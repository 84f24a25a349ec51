//! Typed assigns: at most one value per type, kept for the life of a conn.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

/// How many assigns a conn holds before it needs a second allocation for the list itself.
/// Pipelines rarely assign more than a few values (a current user, a session, a request id).
const INLINE: usize = 4;

/// Values that plugs hand to later plugs and to the action, one per type (Phoenix's
/// `conn.assigns`, keyed by type instead of by atom). Clones share the values until one of
/// them changes one, so a router's assigns start every request without being copied.
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

/// A value, shared by the clones of the assigns it is in until one of them changes it: a
/// router's assigns start every request, and cloning them must not copy their values.
///
/// `Arc<dyn AnyAssign>` is itself `Clone`, so it implements `AnyAssign` too: the trait's
/// methods are called on `*value`, the assign, never on the `Arc`.
///
/// Its type is asked of the value (one call through the vtable) rather than kept beside it:
/// an entry is then two words, and a socket and each of its channels hold four of them inline.
struct Entry {
    value: Arc<dyn AnyAssign>,
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
        Self { value: self.value.clone() }
    }
}

impl Entry {
    /// The type of the value.
    fn id(&self) -> TypeId {
        (*self.value).assign_type_id()
    }

    /// The value, for changing: copied first when another clone of the assigns shares it.
    fn value_mut(&mut self) -> &mut dyn AnyAssign {
        if Arc::get_mut(&mut self.value).is_none() {
            self.value = (*self.value).clone_arc();
        }
        Arc::get_mut(&mut self.value).expect("unique: copied above")
    }
}

/// What an assign can do once its type is erased.
trait AnyAssign: Send + Sync + 'static {
    fn assign_type_id(&self) -> TypeId;
    fn clone_arc(&self) -> Arc<dyn AnyAssign>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn type_name(&self) -> &'static str;
    fn insert_into(&self, extensions: &mut http::Extensions);
}

impl<T: Clone + Send + Sync + 'static> AnyAssign for T {
    fn assign_type_id(&self) -> TypeId {
        TypeId::of::<T>()
    }

    fn clone_arc(&self) -> Arc<dyn AnyAssign> {
        Arc::new(self.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn insert_into(&self, extensions: &mut http::Extensions) {
        extensions.insert(self.clone());
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
        let value: Arc<dyn AnyAssign> = Arc::new(value);
        match self.find_mut(id) {
            Some(entry) => {
                let old = std::mem::replace(&mut entry.value, value);
                Some(take::<T>(old))
            }
            None => {
                self.place(Entry { value });
                None
            }
        }
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.find(TypeId::of::<T>())?.value.as_ref().as_any().downcast_ref()
    }

    /// Mutable access to the value of type `T`, if one was stored.
    ///
    /// A value shared with a clone of these assigns (the router's, which every request starts
    /// with) is copied first, so the change stays in these.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.find_mut(TypeId::of::<T>())?.value_mut().as_any_mut().downcast_mut()
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: 'static>(&self) -> bool {
        self.find(TypeId::of::<T>()).is_some()
    }

    /// Takes the value of type `T` out, if one was stored.
    pub fn remove<T: Clone + Send + Sync + 'static>(&mut self) -> Option<T> {
        let id = TypeId::of::<T>();
        let entry =
            match self.inline.iter_mut().find(|slot| slot.as_ref().is_some_and(|e| e.id() == id)) {
                Some(slot) => slot.take()?,
                None => {
                    let index = self.spilled.iter().position(|e| e.id() == id)?;
                    self.spilled.swap_remove(index)
                }
            };
        Some(take::<T>(entry.value))
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
            match self.find_mut(entry.id()) {
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
        self.entries().find(|e| e.id() == id)
    }

    fn find_mut(&mut self, id: TypeId) -> Option<&mut Entry> {
        self.inline.iter_mut().flatten().chain(&mut self.spilled).find(|e| e.id() == id)
    }
}

/// The `T` in `value`: moved out when nothing else shares it, else copied.
fn take<T: Clone + Send + Sync + 'static>(value: Arc<dyn AnyAssign>) -> T {
    let value = value.into_any().downcast::<T>().unwrap_or_else(|_| unreachable!("keyed by T"));
    Arc::try_unwrap(value).unwrap_or_else(|shared| (*shared).clone())
}

/// The same values in an [`http::Extensions`], for code that takes a type map.
impl From<Assigns> for http::Extensions {
    fn from(assigns: Assigns) -> Self {
        let mut extensions = http::Extensions::new();
        for entry in assigns.into_entries() {
            (*entry.value).insert_into(&mut extensions);
        }
        extensions
    }
}

impl fmt::Debug for Assigns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.entries().map(|e| (*e.value).type_name())).finish()
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
    fn clones_are_independent_and_extend_replaces_by_type() {
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
    fn an_entry_is_two_words() {
        assert_eq!(std::mem::size_of::<Option<Entry>>(), 16);
        assert!(std::mem::size_of::<Assigns>() <= 88, "{}", std::mem::size_of::<Assigns>());
    }

    #[test]
    fn debug_names_the_types() {
        let mut assigns = Assigns::new();
        assigns.insert(7_u8);
        assert_eq!(format!("{assigns:?}"), r#"{"u8"}"#);
    }

    #[test]
    fn clones_share_values_until_one_changes() {
        let router = filled(1);
        let mut request = router.clone();
        // Shared, not copied: the same value behind both.
        assert!(std::ptr::eq(router.get::<Slot<5>>().unwrap(), request.get::<Slot<5>>().unwrap()));
        request.get_mut::<Slot<5>>().unwrap().0 = 2;
        assert_eq!(request.get::<Slot<5>>(), Some(&Slot(2)));
        assert_eq!(router.get::<Slot<5>>(), Some(&Slot(1)));
        assert_eq!(request.insert(Slot::<0>(3)), Some(Slot(1)));
        assert_eq!(request.remove::<Slot<1>>(), Some(Slot(1)));
        assert_eq!(router.get::<Slot<0>>(), Some(&Slot(1)));
        assert_eq!(router.get::<Slot<1>>(), Some(&Slot(1)));
        assert_eq!(router.len(), 6);
        assert_eq!(request.len(), 5);
    }
}
