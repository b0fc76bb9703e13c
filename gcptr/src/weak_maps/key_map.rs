//! [`WeakKeyMap`]: Python's `WeakKeyDictionary`.

use core::fmt;

use hashbrown::hash_table::Entry;

use super::table::{TableEntry, WeakSlot, WeakTable};
use crate::gc::Gc;
use crate::header::Header;
use crate::trace::{Trace, Tracer};
use crate::weak::Weak;

/// A map whose keys are objects held weakly, by identity: Python's
/// `WeakKeyDictionary`. Use it to attach data to objects you do not own.
///
/// By identity even where `K` has value equality: two objects with equal
/// values are two keys (though `==` of their `Gc`s is `true`), where
/// Python's map compares keys with `==` and `hash()`. The two agree for
/// objects that keep Python's default equality, which is identity, and
/// identity is what attaching data to an object needs; it also lets `K`
/// be any type, with no `Hash` or `Eq`.
///
/// ```
/// use gcptr::{Gc, WeakKeyMap};
///
/// let (first, second) = (Gc::new(String::from("same")), Gc::new(String::from("same")));
/// assert!(first == second); // equal values
/// let mut map = WeakKeyMap::new();
/// map.insert(&first, 1);
/// assert_eq!(map.insert(&second, 2), None); // a second key, not a new value
/// assert_eq!((map.get(&first), map.get(&second)), (Some(&1), Some(&2)));
/// ```
///
/// An entry lasts as long as its key object: once it dies, the entry no
/// longer counts in [`len`](WeakKeyMap::len) or shows in lookups, with no
/// call needed. Its value is dropped by the map's next `&mut self` call,
/// or with the map: a death runs no code of the map's user, and touches
/// nothing that an iteration or a borrowed value could be using. Until then
/// the entry also holds the dead key's memory, as a [`Weak`] does (so
/// that no new object takes its address, which is its identity):
/// `retain(|_, _| true)` lets both go.
///
/// [`Weak`]: crate::Weak
///
/// # Examples
///
/// ```
/// use gcptr::{Gc, WeakKeyMap};
///
/// let widget = Gc::new(String::from("button"));
/// let mut tooltips = WeakKeyMap::new();
/// tooltips.insert(&widget, "Click me");
/// assert_eq!(tooltips.get(&widget), Some(&"Click me"));
/// drop(widget);
/// assert!(tooltips.is_empty());
/// ```
pub struct WeakKeyMap<K: ?Sized + Trace, V> {
    table: WeakTable<KeyEntry<K, V>>,
}

struct KeyEntry<K: ?Sized, V> {
    key: WeakSlot<K>,
    value: V,
}

impl<K: ?Sized, V> TableEntry for KeyEntry<K, V> {
    type Object = K;

    #[inline]
    fn hash(&self) -> u64 {
        identity_hash(self.key.address())
    }

    #[inline]
    fn hash_of(_: u32, object: *const Header) -> u64 {
        identity_hash(object)
    }

    #[inline]
    fn slot(&self) -> &WeakSlot<K> {
        &self.key
    }
}

/// The hash of a key's identity: its address, mixed so that the low bits
/// (which the table indexes by, and which alignment makes zero) and the
/// high bits (which it tags entries with) both vary.
#[inline]
fn identity_hash(object: *const Header) -> u64 {
    let mixed = (object.addr() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed ^ (mixed >> 32)
}

/// Whether `entry` is `key`'s.
#[inline]
fn is_key<K: ?Sized, V>(key: &Gc<K>) -> impl Fn(&KeyEntry<K, V>) -> bool + '_ {
    |entry| entry.key.is(key.header().as_ptr())
}

impl<K: ?Sized + Trace, V> WeakKeyMap<K, V> {
    /// An empty map.
    ///
    /// ```
    /// let map: gcptr::WeakKeyMap<u32, &str> = gcptr::WeakKeyMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakKeyMap {
            table: WeakTable::new(),
        }
    }

    /// Maps the object `key` to `value`. Returns the value it had, if any.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(0);
    /// let mut map = WeakKeyMap::new();
    /// assert_eq!(map.insert(&k, 1), None);
    /// assert_eq!(map.insert(&k, 2), Some(1));
    /// ```
    pub fn insert(&mut self, key: &Gc<K>, value: V) -> Option<V> {
        self.table.remove_dead();
        let hash = identity_hash(key.header().as_ptr());
        let table = &mut self.table;
        match table.entries.entry(hash, is_key(key), KeyEntry::hash) {
            Entry::Occupied(mut found) => {
                let entry = found.get_mut();
                // An entry for this key is live while the key is.
                let was_live = entry.key.is_live();
                let old = core::mem::replace(&mut entry.value, value);
                was_live.then_some(old)
            }
            Entry::Vacant(place) => {
                let slot = WeakSlot::new(key, &table.slab, 0);
                place.insert(KeyEntry { key: slot, value });
                None
            }
        }
    }

    /// The value attached to the object `key`.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let (k, other) = (Gc::new(0), Gc::new(0));
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, "k");
    /// assert_eq!(map.get(&k), Some(&"k"));
    /// assert_eq!(map.get(&other), None); // by identity, not by value
    /// ```
    pub fn get(&self, key: &Gc<K>) -> Option<&V> {
        let entry = self
            .table
            .find(identity_hash(key.header().as_ptr()), is_key(key))?;
        entry.key.is_live().then_some(&entry.value)
    }

    /// The value attached to the object `key`, mutably.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(0);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, 1);
    /// *map.get_mut(&k).unwrap() += 1;
    /// assert_eq!(map.get(&k), Some(&2));
    /// ```
    pub fn get_mut(&mut self, key: &Gc<K>) -> Option<&mut V> {
        self.table.remove_dead();
        let entry = self
            .table
            .entries
            .find_mut(identity_hash(key.header().as_ptr()), is_key(key))?;
        entry.key.is_live().then_some(&mut entry.value)
    }

    /// Whether the object `key` has an entry.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(0);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, ());
    /// assert!(map.contains_key(&k));
    /// ```
    pub fn contains_key(&self, key: &Gc<K>) -> bool {
        self.get(key).is_some()
    }

    /// Removes the entry of the object `key`, returning its value.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(0);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, 'v');
    /// assert_eq!(map.remove(&k), Some('v'));
    /// assert_eq!(map.remove(&k), None);
    /// ```
    pub fn remove(&mut self, key: &Gc<K>) -> Option<V> {
        let removed = self
            .table
            .remove(identity_hash(key.header().as_ptr()), is_key(key))?;
        removed.key.is_live().then_some(removed.value)
    }

    /// The value attached to `key`, inserting `make()` first if it has none.
    /// (A key that no longer upgrades, as a finalizer may see one, never
    /// has a live entry: each call makes and attaches a new value.)
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(0);
    /// let mut visits = WeakKeyMap::new();
    /// *visits.get_or_insert_with(&k, || 0) += 1;
    /// *visits.get_or_insert_with(&k, || 0) += 1;
    /// assert_eq!(visits.get(&k), Some(&2));
    /// ```
    pub fn get_or_insert_with(&mut self, key: &Gc<K>, make: impl FnOnce() -> V) -> &mut V {
        self.table.remove_dead();
        if !self.contains_key(key) {
            self.insert(key, make());
        }
        // Straight from the table: a key that no longer upgrades has a dead
        // entry, but an entry all the same.
        let entry = self
            .table
            .entries
            .find_mut(identity_hash(key.header().as_ptr()), is_key(key))
            .expect("inserted above");
        &mut entry.value
    }

    /// The number of entries whose key object is alive. Exact at all
    /// times, with one exception: a key whose death the trashcan queued
    /// (deep in a chain of drops) counts until the queue runs it.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, ());
    /// map.insert(&b, ());
    /// drop(a);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.table.live()
    }

    /// Whether no key object is alive.
    ///
    /// ```
    /// let map: gcptr::WeakKeyMap<u8, u8> = gcptr::WeakKeyMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live entries, in no particular order. A key that dies during
    /// the iteration is skipped; the iteration goes on.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(5);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, "five");
    /// let entries: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
    /// assert_eq!(entries, [(5, "five")]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (Gc<K>, &V)> + '_ {
        self.table
            .entries
            .iter()
            .filter_map(|e| Some((e.key.upgrade()?, &e.value)))
    }

    /// The live key objects.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(5);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, ());
    /// assert!(Gc::ptr_eq(&map.keys().next().unwrap(), &k));
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = Gc<K>> + '_ {
        self.iter().map(|(key, _)| key)
    }

    /// A `Weak` to each live key object, in no particular order: Python's
    /// `keyrefs()`. Each is a new weak reference, so none keeps its object
    /// alive; it upgrades until the object dies (whether or not the entry
    /// is still in the map by then). A key that dies during the iteration
    /// is skipped.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let (a, b) = (Gc::new('a'), Gc::new('b'));
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, 1);
    /// map.insert(&b, 2);
    /// drop(b);
    /// let refs: Vec<_> = map.weak_keys().collect();
    /// assert_eq!(refs.len(), 1);
    /// assert!(Gc::ptr_eq(&refs[0].upgrade().unwrap(), &a));
    /// drop(a);
    /// assert!(refs[0].upgrade().is_none()); // it kept nothing alive
    /// ```
    pub fn weak_keys(&self) -> impl Iterator<Item = Weak<K>> + '_ {
        self.table.entries.iter().filter_map(|e| e.key.downgrade())
    }

    /// The addresses of the live key objects' headers (for `WeakSet`'s
    /// comparisons, which need no strong reference).
    pub(super) fn live_objects(&self) -> impl Iterator<Item = *const Header> + '_ {
        self.table.live_entries().map(|e| e.key.address())
    }

    /// Whether the object whose header is at `object` has a live entry.
    /// (An address in a map names one object: an entry's `Weak` keeps its
    /// object's memory, so that no other object takes its address.)
    pub(super) fn has_live(&self, object: *const Header) -> bool {
        self.table
            .find(identity_hash(object), |e| e.key.is(object))
            .is_some_and(|e| e.key.is_live())
    }

    /// The values of the live entries.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(5);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, 'v');
    /// assert_eq!(map.values().collect::<Vec<_>>(), [&'v']);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, value)| value)
    }

    /// Keeps the live entries for which `keep` returns `true`; removes the
    /// rest, and every dead entry.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let keys: Vec<_> = (0..4).map(Gc::new).collect();
    /// let mut map: WeakKeyMap<i32, i32> = keys.iter().map(|k| (k.clone(), **k)).collect();
    /// map.retain(|_, v| *v >= 2);
    /// assert_eq!(map.len(), 2);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&Gc<K>, &mut V) -> bool) {
        self.table
            .retain(|e| e.key.upgrade().is_some_and(|key| keep(&key, &mut e.value)));
    }

    /// Removes every entry.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let k = Gc::new(1);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&k, "one");
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.table.clear();
    }
}

// SAFETY: the values are owned (and traced); the keys are weak edges.
unsafe impl<K: ?Sized + Trace, V: Trace> Trace for WeakKeyMap<K, V> {
    fn trace(&self, tracer: &mut Tracer) {
        self.table
            .entries
            .iter()
            .for_each(|e| e.value.trace(tracer));
    }

    fn __may_own_gc(depth: u32) -> bool {
        V::__may_own_gc(depth)
    }
}

impl<K: ?Sized + Trace, V> Default for WeakKeyMap<K, V> {
    /// An empty map, as [`WeakKeyMap::new`].
    ///
    /// ```
    /// let map: gcptr::WeakKeyMap<String, u32> = Default::default();
    /// assert!(map.is_empty());
    /// ```
    fn default() -> Self {
        WeakKeyMap::new()
    }
}

impl<K: ?Sized + Trace, V> Extend<(Gc<K>, V)> for WeakKeyMap<K, V> {
    /// Inserts each entry, then drops its `Gc`: a key that only the
    /// iterator held dies at once, and its entry with it.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let kept = Gc::new(1);
    /// let mut map = WeakKeyMap::new();
    /// map.extend([(kept.clone(), "kept"), (Gc::new(2), "temporary")]);
    /// assert_eq!(map.len(), 1);
    /// assert_eq!(map.get(&kept), Some(&"kept"));
    /// ```
    fn extend<I: IntoIterator<Item = (Gc<K>, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(&key, value);
        }
    }
}

impl<K: ?Sized + Trace, V> FromIterator<(Gc<K>, V)> for WeakKeyMap<K, V> {
    /// A map of the entries, as [`Extend`] inserts them.
    ///
    /// ```
    /// use gcptr::{Gc, WeakKeyMap};
    ///
    /// let nodes = [Gc::new('a'), Gc::new('b')];
    /// let labels: WeakKeyMap<char, usize> = nodes.iter().cloned().zip(0..).collect();
    /// assert_eq!(labels.get(&nodes[1]), Some(&1));
    /// drop(nodes);
    /// assert!(labels.is_empty());
    /// ```
    fn from_iter<I: IntoIterator<Item = (Gc<K>, V)>>(entries: I) -> Self {
        let mut map = WeakKeyMap::new();
        map.extend(entries);
        map
    }
}

impl<K: ?Sized + Trace + fmt::Debug, V: fmt::Debug> fmt::Debug for WeakKeyMap<K, V> {
    /// The live entries, as a map.
    ///
    /// ```
    /// let key = gcptr::Gc::new('k');
    /// let mut map = gcptr::WeakKeyMap::new();
    /// map.insert(&key, 1);
    /// assert_eq!(format!("{map:?}"), "{'k': 1}");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
