//! [`WeakValueMap`]: Python's `WeakValueDictionary`.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use std::hash::RandomState;

use hashbrown::hash_table::Entry;

use super::table::{TableEntry, WeakSlot, WeakTable};
use crate::gc::Gc;
use crate::header::Header;
use crate::trace::{Trace, Tracer};
use crate::weak::Weak;

/// A map whose values are held weakly: Python's `WeakValueDictionary`.
///
/// An entry lasts as long as its value: the moment the value dies (its
/// last `Gc` dropped, or a collection reclaiming it), the entry is gone and
/// [`len`](WeakValueMap::len) no longer counts it, with no call needed.
/// This makes caches that never keep their values alive. The dead entry's
/// key is dropped by the map's next `&mut self` call (or with the map),
/// found by its hash: a death runs no code of the map's user, and touches
/// nothing that an iteration or a borrowed key could be using. Until then
/// the entry's `Weak` holds the dead value's memory, as any [`Weak`]
/// does (not the value, which is dropped at its death): a map that is only
/// read holds the memory of every value that died since its last `&mut
/// self` call; `retain(|_, _| true)` lets it go.
///
/// [`Weak`]: crate::Weak
///
/// # Examples
///
/// ```
/// use gcptr::{Gc, Trace, WeakValueMap};
///
/// #[derive(Trace)]
/// struct User {
///     name: String,
/// }
///
/// let mut cache: WeakValueMap<u32, User> = WeakValueMap::new();
/// let alice = cache.get_or_insert_with(1, || Gc::new(User { name: "Alice".into() }));
/// assert_eq!(cache.get(&1).unwrap().name, "Alice");
/// assert_eq!(cache.len(), 1);
/// drop(alice); // the last handle
/// assert_eq!(cache.len(), 0);
/// assert!(cache.get(&1).is_none());
/// ```
pub struct WeakValueMap<K, V: ?Sized + Trace> {
    table: WeakTable<ValueEntry<K, V>>,
    hasher: RandomState,
}

struct ValueEntry<K, V: ?Sized> {
    /// The low half of the key's hash (see [`KeyHash`]).
    hash: KeyHash,
    key: K,
    value: WeakSlot<V>,
}

/// The low 32 bits of a key's hash, which is what an entry keeps: it then
/// fits beside a `u32` key (a `u32`-keyed entry is 24 bytes: hash, key,
/// `Weak` and node address). The table's hash is spread back to 64 bits
/// from it ([`KeyHash::spread`]).
#[derive(Clone, Copy)]
struct KeyHash(u32);

impl KeyHash {
    fn of<Q: ?Sized + Hash>(hasher: &RandomState, key: &Q) -> KeyHash {
        KeyHash(hasher.hash_one(key) as u32)
    }

    /// The table's hash: the multiplication keeps the low bits (which the
    /// table indexes by) as random as the key's, and mixes all 32 bits into
    /// the high ones (which it tags entries with).
    #[inline]
    fn spread(self) -> u64 {
        u64::from(self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

impl<K, V: ?Sized> TableEntry for ValueEntry<K, V> {
    type Object = V;

    #[inline]
    fn hash(&self) -> u64 {
        self.hash.spread()
    }

    #[inline]
    fn hash_of(key_hash: u32, _: *const Header) -> u64 {
        KeyHash(key_hash).spread()
    }

    #[inline]
    fn slot(&self) -> &WeakSlot<V> {
        &self.value
    }
}

impl<K: Hash + Eq, V: ?Sized + Trace> WeakValueMap<K, V> {
    /// An empty map.
    ///
    /// ```
    /// let map: gcptr::WeakValueMap<String, u32> = gcptr::WeakValueMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakValueMap {
            table: WeakTable::new(),
            hasher: RandomState::new(),
        }
    }

    /// Maps `key` to `value` (held weakly). Returns the value the key had,
    /// if it was alive.
    ///
    /// A value that no longer upgrades (a finalizer's view of an object
    /// that a collection found to be garbage) makes a dead entry at once:
    /// not counted by `len`, never returned by `get`.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut map = WeakValueMap::new();
    /// assert!(map.insert("k", &a).is_none());
    /// assert!(Gc::ptr_eq(&map.insert("k", &b).unwrap(), &a));
    /// ```
    pub fn insert(&mut self, key: K, value: &Gc<V>) -> Option<Gc<V>> {
        self.table.remove_dead();
        let key_hash = KeyHash::of(&self.hasher, &key);
        // Hashing and comparing keys runs user code, which may panic: the
        // new entry is watched only once its place is found. The duplicate
        // key, and the old entry, are dropped (user code again) once the
        // table is consistent.
        let table = &mut self.table;
        match table
            .entries
            .entry(key_hash.spread(), |e| e.key == key, ValueEntry::hash)
        {
            Entry::Occupied(mut found) => {
                let entry = found.get_mut();
                // The entry keeps its key, and so its hash (which a `Hash`
                // that disagrees with `Eq` could make differ from this key's).
                let new = WeakSlot::new(value, &table.slab, entry.hash.0);
                let old = core::mem::replace(&mut entry.value, new);
                // SAFETY: the slot of an entry of this table, replaced.
                unsafe { table.slab.forget(&old) };
                let old = old.upgrade();
                // The duplicate key's `Drop` may panic: drop it while the
                // result is a local (see `remove`).
                drop(key);
                old
            }
            Entry::Vacant(place) => {
                let value = WeakSlot::new(value, &table.slab, key_hash.0);
                place.insert(ValueEntry {
                    hash: key_hash,
                    key,
                    value,
                });
                None
            }
        }
    }

    /// The value of `key`, if it is alive.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let v = Gc::new(5);
    /// map.insert(String::from("five"), &v);
    /// assert_eq!(map.get("five").as_deref(), Some(&5)); // &str looks up String keys
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<Gc<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.find(key)?.value.upgrade()
    }

    fn find<Q>(&self, key: &Q) -> Option<&ValueEntry<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = KeyHash::of(&self.hasher, key).spread();
        self.table.find(hash, |e| e.key.borrow() == key)
    }

    /// Whether `key` has a live value.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let v = Gc::new(5);
    /// map.insert(1, &v);
    /// assert!(map.contains_key(&1));
    /// drop(v);
    /// assert!(!map.contains_key(&1));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.find(key).is_some_and(|e| e.value.is_live())
    }

    /// Removes `key`, returning its value if it was alive.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let v = Gc::new(5);
    /// map.insert(1, &v);
    /// assert_eq!(map.remove(&1).as_deref(), Some(&5));
    /// assert!(map.is_empty());
    /// ```
    pub fn remove<Q>(&mut self, key: &Q) -> Option<Gc<V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = KeyHash::of(&self.hasher, key).spread();
        // The key is dropped (user code) after the entry is forgotten.
        let removed = self.table.remove(hash, |e| e.key.borrow() == key)?;
        let value = removed.value.upgrade();
        // Drop the entry (its key's `Drop` may panic) while `value` is a
        // local that unwinding drops, not the return value, which a panic
        // in a later drop would leak (rust-lang/rust#47949).
        drop(removed);
        value
    }

    /// Removes `key`, returning the key the map held and its value, if the
    /// value was alive (`HashMap::remove_entry`). An entry whose value died
    /// leaves the map all the same, and its key is dropped, as
    /// [`remove`](WeakValueMap::remove) drops it; Python's `pop(key,
    /// default)` is `remove(&key)` with a default.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let v = Gc::new(5);
    /// map.insert(String::from("five"), &v);
    /// let (key, value) = map.remove_entry("five").unwrap();
    /// assert_eq!(key, "five"); // the map's own `String`, moved out
    /// assert!(Gc::ptr_eq(&value, &v));
    /// assert!(map.is_empty());
    ///
    /// map.insert(String::from("gone"), &Gc::new(6)); // dies at once
    /// assert_eq!(map.remove_entry("gone"), None);
    /// ```
    pub fn remove_entry<Q>(&mut self, key: &Q) -> Option<(K, Gc<V>)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = KeyHash::of(&self.hasher, key).spread();
        let ValueEntry {
            key: held,
            value: slot,
            ..
        } = self.table.remove(hash, |e| e.key.borrow() == key)?;
        // With no live value the key is dropped here (its `Drop` may
        // panic), when no `Gc` is a local that a panic would leak.
        let value = slot.upgrade()?;
        Some((held, value))
    }

    /// The value of `key` if it is alive; otherwise the result of `make`,
    /// which is inserted. The cache pattern in one call.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut cache = WeakValueMap::new();
    /// let first = cache.get_or_insert_with(7, || Gc::new(49));
    /// let again = cache.get_or_insert_with(7, || unreachable!());
    /// assert!(Gc::ptr_eq(&first, &again));
    /// ```
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> Gc<V>) -> Gc<V> {
        self.table.remove_dead();
        if let Some(value) = self.get(&key) {
            return value;
        }
        let value = make();
        self.insert(key, &value);
        value
    }

    /// The number of entries whose value is alive. Exact at all times,
    /// with one exception: a value whose death the trashcan queued (deep in
    /// a chain of drops) counts until the queue runs it, as CPython's
    /// trashcan delays clearing weak references.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// map.insert(1, &a);
    /// map.insert(2, &b);
    /// drop(a);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.table.live()
    }

    /// Whether no entry has a live value.
    ///
    /// ```
    /// let map: gcptr::WeakValueMap<u8, u8> = gcptr::WeakValueMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live entries, in no particular order. A value that dies during
    /// the iteration is skipped; the iteration goes on.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let (a, b) = (Gc::new(10), Gc::new(20));
    /// map.insert("a", &a);
    /// map.insert("b", &b);
    /// drop(b);
    /// let live: Vec<_> = map.iter().map(|(k, v)| (*k, *v)).collect();
    /// assert_eq!(live, [("a", 10)]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&K, Gc<V>)> + '_ {
        self.table
            .entries
            .iter()
            .filter_map(|e| Some((&e.key, e.value.upgrade()?)))
    }

    /// The keys of the live entries.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let a = Gc::new(1);
    /// map.insert('x', &a);
    /// assert_eq!(map.keys().collect::<Vec<_>>(), [&'x']);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(key, _)| key)
    }

    /// The live values.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let mut map = WeakValueMap::new();
    /// let a = Gc::new(1);
    /// map.insert('x', &a);
    /// assert_eq!(map.values().map(|v| *v).sum::<i32>(), 1);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = Gc<V>> + '_ {
        self.iter().map(|(_, value)| value)
    }

    /// A `Weak` to each live value, in no particular order: Python's
    /// `valuerefs()`. Each is a new weak reference, so none keeps its
    /// value alive; it upgrades until the value dies (whether or not the
    /// entry is still in the map by then). A value that dies during the
    /// iteration is skipped.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut map = WeakValueMap::new();
    /// map.insert("a", &a);
    /// map.insert("b", &b);
    /// drop(b);
    /// let refs: Vec<_> = map.weak_values().collect();
    /// assert_eq!(refs.len(), 1);
    /// assert!(Gc::ptr_eq(&refs[0].upgrade().unwrap(), &a));
    /// drop(a);
    /// assert!(refs[0].upgrade().is_none()); // it kept nothing alive
    /// ```
    pub fn weak_values(&self) -> impl Iterator<Item = Weak<V>> + '_ {
        self.table
            .entries
            .iter()
            .filter_map(|e| e.value.downgrade())
    }

    /// Keeps the live entries for which `keep` returns `true`; removes the
    /// rest, and every dead entry.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let values: Vec<_> = (0..4).map(Gc::new).collect();
    /// let mut map: WeakValueMap<usize, i32> = values.iter().cloned().enumerate().collect();
    /// map.retain(|_, v| **v % 2 == 0);
    /// assert_eq!(map.len(), 2);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &Gc<V>) -> bool) {
        self.table
            .retain(|e| e.value.upgrade().is_some_and(|value| keep(&e.key, &value)));
    }

    /// Removes every entry.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let a = Gc::new(1);
    /// let mut map = WeakValueMap::new();
    /// map.insert(1, &a);
    /// map.clear();
    /// assert!(map.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.table.clear();
    }
}

// SAFETY: the keys are owned (and traced); the values are weak edges.
unsafe impl<K: Trace, V: ?Sized + Trace> Trace for WeakValueMap<K, V> {
    fn trace(&self, tracer: &mut Tracer) {
        self.table.entries.iter().for_each(|e| e.key.trace(tracer));
    }

    fn __may_own_gc(depth: u32) -> bool {
        K::__may_own_gc(depth)
    }
}

impl<K: Hash + Eq, V: ?Sized + Trace> Default for WeakValueMap<K, V> {
    /// An empty map, as [`WeakValueMap::new`].
    ///
    /// ```
    /// let map: gcptr::WeakValueMap<u32, String> = Default::default();
    /// assert!(map.is_empty());
    /// ```
    fn default() -> Self {
        WeakValueMap::new()
    }
}

impl<K: Hash + Eq, V: ?Sized + Trace> Extend<(K, Gc<V>)> for WeakValueMap<K, V> {
    /// Inserts each entry, then drops its `Gc`: a value that only the
    /// iterator held dies at once, and its entry with it (as a temporary
    /// put in a `WeakValueDictionary` does).
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let kept = Gc::new(1);
    /// let mut map = WeakValueMap::new();
    /// map.extend([("kept", kept.clone()), ("temporary", Gc::new(2))]);
    /// assert_eq!(map.len(), 1);
    /// assert!(map.contains_key("kept"));
    /// ```
    fn extend<I: IntoIterator<Item = (K, Gc<V>)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, &value);
        }
    }
}

impl<'a, K: Hash + Eq, V: ?Sized + Trace> Extend<(K, &'a Gc<V>)> for WeakValueMap<K, V> {
    /// Inserts each entry.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut map = WeakValueMap::new();
    /// map.extend([("a", &a), ("b", &b)]);
    /// assert_eq!(map.len(), 2);
    /// drop(a);
    /// assert_eq!(map.len(), 1);
    /// ```
    fn extend<I: IntoIterator<Item = (K, &'a Gc<V>)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl<K: Hash + Eq, V: ?Sized + Trace> FromIterator<(K, Gc<V>)> for WeakValueMap<K, V> {
    /// A map of the entries, as [`Extend`] inserts them.
    ///
    /// ```
    /// use gcptr::{Gc, WeakValueMap};
    ///
    /// let users: Vec<Gc<String>> = vec![Gc::new("ada".into()), Gc::new("bob".into())];
    /// let by_id: WeakValueMap<usize, String> = users.iter().cloned().enumerate().collect();
    /// assert_eq!(by_id.get(&1).as_deref().map(String::as_str), Some("bob"));
    /// drop(users);
    /// assert!(by_id.is_empty());
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, Gc<V>)>>(entries: I) -> Self {
        let mut map = WeakValueMap::new();
        map.extend(entries);
        map
    }
}

impl<K: Hash + Eq + fmt::Debug, V: ?Sized + Trace + fmt::Debug> fmt::Debug for WeakValueMap<K, V> {
    /// The live entries, as a map.
    ///
    /// ```
    /// let value = gcptr::Gc::new(7);
    /// let mut map = gcptr::WeakValueMap::new();
    /// map.insert("seven", &value);
    /// assert_eq!(format!("{map:?}"), r#"{"seven": 7}"#);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
