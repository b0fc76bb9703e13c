//! [`WeakSet`]: Python's `WeakSet`.

use core::fmt;

use super::WeakKeyMap;
use crate::gc::Gc;
use crate::trace::{Trace, Tracer};

/// A set of objects held weakly, by identity: Python's `WeakSet`. A
/// member leaves the set the moment it dies.
///
/// By identity even where `T` has value equality, as [`WeakKeyMap`]:
/// Python's set compares members with `==` and `hash()`, which agree with
/// identity for objects that keep the default equality.
///
/// As in a [`WeakKeyMap`], a dead member's memory stays allocated until
/// the set's next `&mut self` call (`retain(|_| true)` lets it go); its
/// value is dropped at its death.
///
/// # Examples
///
/// ```
/// use gcptr::{Gc, WeakSet};
///
/// let (a, b) = (Gc::new("a"), Gc::new("b"));
/// let mut observers = WeakSet::new();
/// observers.insert(&a);
/// observers.insert(&b);
/// drop(a);
/// assert_eq!(observers.len(), 1);
/// assert_eq!(*observers.iter().next().unwrap(), "b");
/// ```
pub struct WeakSet<T: ?Sized + Trace> {
    members: WeakKeyMap<T, ()>,
}

impl<T: ?Sized + Trace> WeakSet<T> {
    /// An empty set.
    ///
    /// ```
    /// let set: gcptr::WeakSet<u32> = gcptr::WeakSet::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakSet {
            members: WeakKeyMap::new(),
        }
    }

    /// Adds the object; returns whether it was not a member yet. (An object
    /// that no longer upgrades, as a finalizer may see one, is never a
    /// member: this returns `true` and the set stays as it was.)
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// assert!(set.insert(&x));
    /// assert!(!set.insert(&x));
    /// ```
    pub fn insert(&mut self, member: &Gc<T>) -> bool {
        // `WeakKeyMap::insert` returns the old value only for a live entry.
        self.members.insert(member, ()).is_none()
    }

    /// Removes the object; returns whether it was a member.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// assert!(set.remove(&x));
    /// assert!(!set.remove(&x));
    /// ```
    pub fn remove(&mut self, member: &Gc<T>) -> bool {
        self.members.remove(member).is_some()
    }

    /// Whether the object is a member (by identity).
    ///
    /// ```
    /// let (x, y) = (gcptr::Gc::new(1), gcptr::Gc::new(1));
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// assert!(set.contains(&x) && !set.contains(&y));
    /// ```
    pub fn contains(&self, member: &Gc<T>) -> bool {
        self.members.contains_key(member)
    }

    /// The number of live members. Exact at all times, with one exception:
    /// a member whose death the trashcan queued (deep in a chain of drops)
    /// counts until the queue runs it.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// drop(x);
    /// assert_eq!(set.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no member is alive.
    ///
    /// ```
    /// let set: gcptr::WeakSet<u8> = gcptr::WeakSet::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The live members, in no particular order.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// assert_eq!(set.iter().map(|m| *m).sum::<i32>(), 1);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Gc<T>> + '_ {
        self.members.keys()
    }

    /// Keeps the live members for which `keep` returns `true`.
    ///
    /// ```
    /// let xs: Vec<_> = (0..4).map(gcptr::Gc::new).collect();
    /// let mut set: gcptr::WeakSet<i32> = xs.iter().cloned().collect();
    /// set.retain(|x| **x > 1);
    /// assert_eq!(set.len(), 2);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&Gc<T>) -> bool) {
        self.members.retain(|member, _| keep(member));
    }

    /// Removes every member.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// set.clear();
    /// assert!(set.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.members.clear();
    }
}

// SAFETY: members are weak edges: nothing to visit.
unsafe impl<T: ?Sized + Trace> Trace for WeakSet<T> {
    fn trace(&self, _: &mut Tracer) {}

    fn __may_own_gc(_depth: u32) -> bool {
        false
    }
}

impl<T: ?Sized + Trace> Default for WeakSet<T> {
    /// An empty set, as [`WeakSet::new`].
    ///
    /// ```
    /// let set: gcptr::WeakSet<u8> = Default::default();
    /// assert!(set.is_empty());
    /// ```
    fn default() -> Self {
        WeakSet::new()
    }
}

impl<T: ?Sized + Trace> Extend<Gc<T>> for WeakSet<T> {
    /// Inserts each member, then drops its `Gc`: a member that only the
    /// iterator held dies at once, and leaves the set with it.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let kept = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.extend([kept.clone(), Gc::new(2)]);
    /// assert_eq!(set.len(), 1);
    /// assert!(set.contains(&kept));
    /// ```
    fn extend<I: IntoIterator<Item = Gc<T>>>(&mut self, members: I) {
        for member in members {
            self.insert(&member);
        }
    }
}

impl<T: ?Sized + Trace> FromIterator<Gc<T>> for WeakSet<T> {
    /// A set of the members, as [`Extend`] inserts them.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let members = vec![Gc::new(1), Gc::new(2)];
    /// let set: WeakSet<i32> = members.iter().cloned().collect();
    /// assert_eq!(set.len(), 2);
    /// drop(members);
    /// assert!(set.is_empty());
    /// ```
    fn from_iter<I: IntoIterator<Item = Gc<T>>>(members: I) -> Self {
        let mut set = WeakSet::new();
        set.extend(members);
        set
    }
}

impl<T: ?Sized + Trace + fmt::Debug> fmt::Debug for WeakSet<T> {
    /// The live members, as a set.
    ///
    /// ```
    /// let member = gcptr::Gc::new(3);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&member);
    /// assert_eq!(format!("{set:?}"), "{3}");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
