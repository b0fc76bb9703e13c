//! Weak containers stay exact: an entry goes the moment its object dies,
//! by count or by collection, with no call to purge it.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gcptr::{Gc, Trace, WeakKeyMap, WeakSet, WeakValueMap};
use support::{take_drops, Node};

#[derive(Trace, Debug)]
struct User {
    name: String,
}

fn user(name: &str) -> Gc<User> {
    Gc::new(User { name: name.into() })
}

#[test]
fn cache_returns_the_user_while_a_handle_lives_and_forgets_it_at_once() {
    let mut cache: WeakValueMap<u32, User> = WeakValueMap::new();
    let alice = cache.get_or_insert_with(1, || user("Alice"));
    let again = cache.get_or_insert_with(1, || panic!("must hit the cache"));
    assert!(Gc::ptr_eq(&alice, &again));
    assert_eq!(cache.len(), 1);
    drop(again);
    assert_eq!(cache.len(), 1);
    drop(alice);
    assert_eq!(cache.len(), 0, "gone the moment the last handle drops");
    assert!(cache.get(&1).is_none());
    assert!(!cache.contains_key(&1));
    let bob = cache.get_or_insert_with(1, || user("Bob"));
    assert_eq!(cache.get(&1).unwrap().name, "Bob");
    drop(bob);
    assert!(cache.is_empty());
}

#[test]
fn values_dying_in_a_collected_cycle_leave_their_maps() {
    take_drops();
    let mut map: WeakValueMap<&str, Node> = WeakValueMap::new();
    let a = Node::new(1);
    let b = Node::new(2);
    a.link(&b);
    b.link(&a);
    map.insert("a", &a);
    map.insert("b", &b);
    drop((a, b));
    assert_eq!(map.len(), 2, "a cycle is alive until collected");
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(map.len(), 0);
    assert!(map.get("a").is_none());
    assert_eq!(take_drops(), [1, 2]);
}

#[test]
fn a_value_in_two_maps_leaves_both() {
    let mut by_id = WeakValueMap::new();
    let mut by_name = WeakValueMap::new();
    let carol = user("Carol");
    by_id.insert(3, &carol);
    by_name.insert(String::from("Carol"), &carol);
    assert!(
        Gc::ptr_eq(&by_name.get("Carol").unwrap(), &carol),
        "String key by &str"
    );
    drop(carol);
    assert_eq!((by_id.len(), by_name.len()), (0, 0));
}

#[test]
fn a_value_that_dies_during_iteration_is_skipped_and_iteration_goes_on() {
    let users: Vec<_> = (0..10).map(|i| user(&format!("u{i}"))).collect();
    let mut map = WeakValueMap::new();
    for (i, u) in users.iter().enumerate() {
        map.insert(i, u);
    }
    let holder = RefCell::new(users);
    let mut seen = 0;
    for (_, value) in map.iter() {
        seen += 1;
        // Kill every other user (and the one we hold is fine to keep).
        holder
            .borrow_mut()
            .retain(|u| !u.name.ends_with(['1', '3', '5', '7', '9']));
        drop(value);
    }
    assert!(seen >= 5);
    assert_eq!(map.len(), 5);
    assert_eq!(map.iter().count(), 5);
    let mut names: Vec<_> = map.values().map(|u| u.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["u0", "u2", "u4", "u6", "u8"]);
}

#[test]
fn insert_replace_remove_and_retain_keep_len_exact() {
    let (a, b, c) = (user("a"), user("b"), user("c"));
    let mut map = WeakValueMap::new();
    assert!(map.insert(1, &a).is_none());
    assert!(Gc::ptr_eq(&map.insert(1, &b).unwrap(), &a));
    assert_eq!(map.len(), 1);
    drop(a); // replaced: its death must not change the count
    assert_eq!(map.len(), 1);
    map.insert(2, &c);
    assert!(Gc::ptr_eq(&map.remove(&1).unwrap(), &b));
    assert_eq!(map.len(), 1);
    drop(b);
    assert_eq!(map.len(), 1);
    map.retain(|_, v| v.name != "c");
    assert!(map.is_empty());
    drop(c);
    assert!(map.is_empty());
    map.extend([(5, user("kept"))]); // dies at once: Extend takes ownership
    assert!(map.is_empty());
}

#[test]
fn map_dropped_before_its_values_is_fine() {
    let u = user("x");
    {
        let mut map = WeakValueMap::new();
        map.insert(0, &u);
    }
    drop(u);
    let v = user("y");
    let mut set = WeakSet::new();
    set.insert(&v);
    drop(set);
    drop(v);
}

#[test]
fn one_value_under_two_keys_counts_twice_and_leaves_each_key_on_its_own() {
    let u = user("twice");
    let mut map = WeakValueMap::new();
    map.insert("a", &u);
    map.insert("b", &u);
    assert_eq!(map.len(), 2);
    assert!(Gc::ptr_eq(&map.remove("a").unwrap(), &u));
    assert_eq!(map.len(), 1);
    map.insert("b", &u); // replaced by itself
    assert_eq!(map.len(), 1);
    let mut other = WeakValueMap::new();
    other.insert(1, &u);
    drop(u);
    assert_eq!((map.len(), other.len()), (0, 0));
    assert!(map.get("b").is_none() && other.get(&1).is_none());
}

#[test]
fn a_death_callback_may_drop_a_map_watching_the_same_object() {
    // The callback runs while the object's watchers are being told: the
    // containers are told first, in either order of registration, and the
    // map's drop finds the list consistent.
    for callback_first in [true, false] {
        let x = user("x");
        let y = user("y");
        let map = Rc::new(RefCell::new(Some(WeakValueMap::new())));
        let ran = Rc::new(Cell::new(false));
        let register = |x: &Gc<User>| {
            let (map, ran) = (map.clone(), ran.clone());
            Gc::on_death(x, move || {
                let dropped = map.borrow_mut().take().expect("runs once");
                assert_eq!(dropped.len(), 1, "x's entry is gone, y's is alive");
                drop(dropped);
                ran.set(true);
            })
        };
        let callback = callback_first.then(|| register(&x));
        map.borrow_mut().as_mut().unwrap().insert(0, &x);
        map.borrow_mut().as_mut().unwrap().insert(1, &y);
        let callback = callback.or_else(|| Some(register(&x))).unwrap();
        drop(x);
        assert!(ran.get() && !callback.is_pending());
        assert!(map.borrow().is_none());
        drop(y); // its node left with the map: nothing to tell
    }
}

thread_local! {
    static KEYS_ALIVE: Cell<isize> = const { Cell::new(0) };
}

/// A key that counts how many of its kind are alive.
#[derive(PartialEq, Eq, Hash, Debug)]
struct CountedKey(usize);

impl CountedKey {
    fn new(n: usize) -> Self {
        KEYS_ALIVE.set(KEYS_ALIVE.get() + 1);
        CountedKey(n)
    }
}

/// Looks keys up by their number (derived `Hash` hashes just the field).
impl std::borrow::Borrow<usize> for CountedKey {
    fn borrow(&self) -> &usize {
        &self.0
    }
}

impl Drop for CountedKey {
    fn drop(&mut self) {
        KEYS_ALIVE.set(KEYS_ALIVE.get() - 1);
    }
}

#[test]
fn a_dead_entry_leaves_the_table_at_the_next_mutating_call() {
    let mut map = WeakValueMap::new();
    let keep = user("keep");
    map.insert(CountedKey::new(usize::MAX), &keep);
    for i in 0..1000 {
        let temp = user("temp");
        map.insert(CountedKey::new(i), &temp);
        assert_eq!(KEYS_ALIVE.get(), 2, "the previous dead entry went");
        drop(temp);
        assert_eq!(map.len(), 1);
        assert_eq!(KEYS_ALIVE.get(), 2, "the key stays until a mutating call");
    }
    assert!(map.remove(&(usize::MAX - 1)).is_none());
    assert_eq!(KEYS_ALIVE.get(), 1, "no dead entry is left");
    assert_eq!(map.iter().count(), 1);
    assert_eq!(
        format!("{map:?}"),
        r#"{CountedKey(18446744073709551615): User { name: "keep" }}"#
    );
    drop(map);
    assert_eq!(KEYS_ALIVE.get(), 0);
}

#[test]
fn entries_removed_while_their_death_is_pending_are_not_removed_twice() {
    // `retain` kills a value whose entry it then drops itself: the node that
    // the death put on the dead list finds no entry later, not the new one
    // for the same key (whose value may even sit at the same address).
    let mut map = WeakValueMap::new();
    let victim = RefCell::new(Some(user("victim")));
    map.insert(CountedKey::new(1), victim.borrow().as_ref().unwrap());
    let other = user("other");
    map.insert(CountedKey::new(2), &other);
    map.retain(|_, _| {
        victim.borrow_mut().take();
        true
    });
    assert_eq!(map.len(), 1);
    let again = user("again");
    map.insert(CountedKey::new(1), &again);
    assert_eq!(map.len(), 2);
    assert!(map.remove(&3).is_none());
    assert_eq!(map.get(&1).unwrap().name, "again");
    assert_eq!(map.len(), 2);
    assert_eq!(KEYS_ALIVE.get(), 2);
    drop(again);
    assert!(map.get(&1).is_none());
    assert!(map.remove(&3).is_none());
    assert_eq!(KEYS_ALIVE.get(), 1, "key 2's");
    drop(map);
}

#[test]
fn a_dead_key_leaves_a_weak_key_map_with_its_value_at_the_next_mutating_call() {
    let mut map = WeakKeyMap::new();
    let keep = Gc::new(0u32);
    map.insert(&keep, CountedKey::new(0));
    for i in 1..100 {
        let temp = Gc::new(i);
        map.insert(&temp, CountedKey::new(i as usize));
        assert_eq!(KEYS_ALIVE.get(), 2);
        drop(temp);
        assert_eq!(map.len(), 1);
    }
    map.remove(&keep);
    assert_eq!(KEYS_ALIVE.get(), 0, "the last dead entry's value went too");
    assert!(map.is_empty());
}

#[test]
fn weak_key_map_entries_go_with_their_keys() {
    let (k1, k2) = (Gc::new(1u32), Gc::new(1u32));
    let mut map = WeakKeyMap::new();
    map.insert(&k1, "one");
    map.insert(&k2, "other one");
    assert_eq!(map.get(&k1), Some(&"one"), "by identity, not value");
    assert_eq!(map.len(), 2);
    drop(k1);
    assert_eq!(map.len(), 1);
    assert_eq!(map.values().collect::<Vec<_>>(), [&"other one"]);
    *map.get_mut(&k2).unwrap() = "changed";
    assert_eq!(map.remove(&k2), Some("changed"));
    assert!(map.is_empty());
}

#[test]
fn weak_key_map_keys_dying_in_a_cycle_leave_the_map() {
    take_drops();
    let a = Node::new(1);
    a.link(&a);
    let mut map = WeakKeyMap::new();
    map.insert(&a, String::from("meta"));
    drop(a);
    assert_eq!(map.len(), 1);
    gcptr::collect();
    assert_eq!(map.len(), 0);
    assert_eq!(take_drops(), [1]);
}

trait Observer: Trace {
    fn notify(&self, event: &str);
}

#[derive(Trace)]
struct Logger {
    #[gc(skip)]
    seen: Rc<RefCell<Vec<String>>>,
}

impl Observer for Logger {
    fn notify(&self, event: &str) {
        self.seen.borrow_mut().push(event.to_owned());
    }
}

#[test]
fn weak_set_of_observers_where_observers_drop_out() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let first = Gc::new(Logger { seen: seen.clone() });
    let second = Gc::new(Logger { seen: seen.clone() });
    let mut observers = WeakSet::new();
    assert!(observers.insert(&first));
    assert!(!observers.insert(&first));
    observers.insert(&second);
    for o in observers.iter() {
        o.notify("one");
    }
    drop(first);
    assert_eq!(observers.len(), 1);
    for o in observers.iter() {
        o.notify("two");
    }
    assert_eq!(seen.borrow().len(), 3);
    assert!(observers.contains(&second));
    assert!(observers.remove(&second));
    assert!(observers.is_empty());
}

#[test]
fn on_death_runs_once_when_the_object_dies_by_count_or_by_collection() {
    let fired = Rc::new(Cell::new(0));
    let x = Gc::new(7u8);
    let counter = fired.clone();
    let callback = Gc::on_death(&x, move || counter.set(counter.get() + 1));
    assert!(callback.is_pending());
    let y = x.clone();
    drop(x);
    assert_eq!(fired.get(), 0);
    drop(y);
    assert_eq!(fired.get(), 1);
    assert!(!callback.is_pending());

    take_drops();
    let node = Node::new(1);
    node.link(&node);
    let counter = fired.clone();
    let weak = Gc::downgrade(&node);
    Gc::on_death(&node, move || {
        // Runs before any finalizer or Drop, with the object unreachable.
        assert!(weak.upgrade().is_none());
        assert!(take_drops().is_empty());
        counter.set(counter.get() + 10);
    });
    drop(node);
    assert_eq!(fired.get(), 1);
    gcptr::collect();
    assert_eq!(fired.get(), 11);
    assert_eq!(take_drops(), [1]);
}

#[test]
fn cancelled_death_callbacks_never_run() {
    let x = Gc::new(String::from("x"));
    let callback = Gc::on_death(&x, || panic!("cancelled"));
    assert!(callback.cancel());
    assert!(!callback.cancel());
    drop(x);
}

#[test]
fn weak_with_callback_fires_on_death_and_not_after_the_handle_is_dropped() {
    let fired = Rc::new(Cell::new(0));
    let x = Gc::new(1u8);
    let counter = fired.clone();
    let kept = Gc::downgrade_with(&x, move || counter.set(counter.get() + 1));
    let counter = fired.clone();
    let dropped_handle = Gc::downgrade_with(&x, move || counter.set(counter.get() + 100));
    assert!(kept.is_pending() && dropped_handle.is_pending());
    drop(dropped_handle);
    drop(x);
    assert_eq!(fired.get(), 1);
    assert!(!kept.is_pending());
    assert!(kept.upgrade().is_none());
}

#[test]
fn callbacks_of_weak_references_owned_by_the_garbage_do_not_run() {
    // CPython's rule: a weakref that dies in the same cycle as its referent
    // does not call back.
    #[derive(Trace)]
    struct Owner {
        partner: RefCell<Option<Gc<Owner>>>,
        watching: RefCell<Option<gcptr::WeakWithCallback<Owner>>>,
    }
    let fired = Rc::new(Cell::new(0));
    let a = Gc::new(Owner {
        partner: RefCell::new(None),
        watching: RefCell::new(None),
    });
    let b = Gc::new(Owner {
        partner: RefCell::new(Some(a.clone())),
        watching: RefCell::new(None),
    });
    *a.partner.borrow_mut() = Some(b.clone());
    let counter = fired.clone();
    *a.watching.borrow_mut() = Some(Gc::downgrade_with(&b, move || {
        counter.set(counter.get() + 1)
    }));
    // A handle outside the garbage still fires.
    let counter = fired.clone();
    let outside = Gc::downgrade_with(&b, move || counter.set(counter.get() + 10));
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(fired.get(), 10);
    assert!(!outside.is_pending());
}

#[test]
fn a_watched_object_late_in_a_garbage_cycle_still_lets_every_value_drop_once() {
    take_drops();
    let ring: Vec<_> = (1..=5).map(Node::new).collect();
    for i in 0..5 {
        ring[i].link(&ring[(i + 1) % 5]);
    }
    let mut map = WeakValueMap::new();
    map.insert("last", &ring[4]); // only the last-allocated member is watched
    drop(ring);
    assert_eq!(gcptr::collect(), 5);
    assert_eq!(take_drops(), [1, 2, 3, 4, 5]);
    assert!(map.is_empty());
}

// ---- watchers of objects that no longer upgrade, and panics mid-insert ----

#[derive(Trace)]
#[gc(finalize)]
struct Registers {
    me: RefCell<Option<Gc<Registers>>>,
}

thread_local! {
    static REGISTERED: RefCell<Option<gcptr::DeathCallback>> = const { RefCell::new(None) };
    static CONDEMNED_MAP: RefCell<WeakValueMap<u32, Registers>> = RefCell::new(WeakValueMap::new());
    static CONDEMNED_KEYS: RefCell<WeakKeyMap<Registers, u32>> = RefCell::new(WeakKeyMap::new());
    static CONDEMNED_SET: RefCell<WeakSet<Registers>> = RefCell::new(WeakSet::new());
}

impl gcptr::Finalize for Registers {
    fn finalize(&self) {
        // The object is condemned: it no longer upgrades, and nothing will
        // tell a watcher registered now.
        let me = self.me.borrow().clone().expect("the cycle is intact");
        let callback = Gc::on_death(&me, || panic!("must not run"));
        REGISTERED.with(|r| *r.borrow_mut() = Some(callback));
        CONDEMNED_MAP.with(|m| m.borrow_mut().insert(1, &me));
        CONDEMNED_KEYS.with(|m| *m.borrow_mut().get_or_insert_with(&me, || 0) += 1);
        CONDEMNED_SET.with(|s| s.borrow_mut().insert(&me));
    }
}

#[test]
fn watchers_of_a_condemned_object_are_refused() {
    let a = Gc::new(Registers {
        me: RefCell::new(None),
    });
    *a.me.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    let callback = REGISTERED
        .with(|r| r.borrow_mut().take())
        .expect("the finalizer ran");
    assert!(!callback.is_pending(), "dropped at registration");
    assert!(
        !callback.cancel(),
        "nothing to cancel, and no freed memory touched"
    );
    CONDEMNED_MAP.with(|m| {
        let m = m.borrow();
        assert_eq!((m.len(), m.iter().count()), (0, 0));
        assert!(m.get(&1).is_none());
    });
    CONDEMNED_KEYS.with(|m| assert_eq!(m.borrow().len(), 0));
    CONDEMNED_SET.with(|s| assert_eq!(s.borrow().len(), 0));
}

struct PanickyKey(bool);

impl std::hash::Hash for PanickyKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        assert!(!self.0, "hash failed");
        state.write_u8(0);
    }
}
impl PartialEq for PanickyKey {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for PanickyKey {}

#[test]
fn a_key_whose_hash_panics_leaves_the_map_exact() {
    let v = user("v");
    {
        let mut map: WeakValueMap<PanickyKey, User> = WeakValueMap::new();
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map.insert(PanickyKey(true), &v);
        }));
        assert!(failed.is_err());
        assert_eq!(map.len(), 0);
        map.insert(PanickyKey(false), &v);
        assert_eq!(map.len(), 1);
    } // the map, and its slab, go before the value
    drop(v); // nothing is left watching it
}

#[derive(Trace)]
struct RingNode {
    next: RefCell<Option<Gc<RingNode>>>,
}

thread_local! {
    static RING_MAP: RefCell<WeakValueMap<u32, RingNode>> = RefCell::new(WeakValueMap::new());
    static SEEN: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn callbacks_during_a_collection_see_every_map_exact() {
    let a = Gc::new(RingNode {
        next: RefCell::new(None),
    });
    let b = Gc::new(RingNode {
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b.clone());
    RING_MAP.with(|m| {
        m.borrow_mut().insert(1, &a);
        m.borrow_mut().insert(2, &b);
    });
    let callbacks: Vec<_> = [&a, &b]
        .into_iter()
        .map(|x| {
            Gc::on_death(x, || {
                let seen = RING_MAP.with(|m| {
                    let m = m.borrow();
                    (m.len(), m.iter().count())
                });
                SEEN.with(|s| s.borrow_mut().push(seen));
            })
        })
        .collect();
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    assert!(callbacks.iter().all(|c| !c.is_pending()));
    assert_eq!(SEEN.with(|s| s.borrow().clone()), [(0, 0), (0, 0)]);
}

/// A key whose `Hash` disagrees with its `Eq` (a logic error, which must
/// still leave the map exact): equal keys may hash differently.
struct Shifty {
    id: u32,
    hash: u32,
}

impl PartialEq for Shifty {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Shifty {}

impl std::hash::Hash for Shifty {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
    }
}

#[test]
fn a_key_whose_hash_disagrees_with_eq_leaves_the_map_exact() {
    let (x, y) = (user("x"), user("y"));
    let mut map: WeakValueMap<Shifty, User> = WeakValueMap::new();
    map.insert(Shifty { id: 1, hash: 0 }, &x);
    // Look for a differently hashed equal key that the table still finds
    // (same 7-bit tag, same bucket group).
    let mut replaced = false;
    for hash in 1..2000 {
        if map.insert(Shifty { id: 1, hash }, &y).is_some() {
            replaced = true;
            break;
        }
        map.remove(&Shifty { id: 1, hash });
        assert_eq!(map.len(), 1);
    }
    assert!(replaced, "some equal key with another hash was found");
    assert_eq!(map.len(), 1);
    assert_eq!(map.iter().count(), 1);
    drop(y);
    assert_eq!(map.len(), 0);
    assert_eq!(map.len(), map.iter().count());
    drop(x);
    assert!(map.is_empty());
    map.insert(Shifty { id: 2, hash: 2 }, &user("gone at once"));
    assert!(map.is_empty());
}

#[test]
fn many_keys_on_one_value_come_and_go_one_at_a_time() {
    let n = if cfg!(miri) { 40 } else { 20_000 };
    let shared = user("shared");
    let mut map = WeakValueMap::new();
    for key in 0..n {
        map.insert(key, &shared);
    }
    assert_eq!(map.len(), n);
    // Oldest first: the entry whose node sits deepest in the list.
    for key in 0..n / 2 {
        assert!(Gc::ptr_eq(&map.remove(&key).unwrap(), &shared));
    }
    map.retain(|key, _| key % 2 == 0);
    assert_eq!(map.len(), n / 4);
    let mut other = WeakValueMap::new();
    for key in 0..n {
        other.insert(key, &shared);
    }
    other.clear();
    assert!(other.is_empty());
    drop(shared);
    assert!(map.is_empty());
    assert_eq!(map.iter().count(), 0);
}

#[test]
fn every_mut_call_takes_out_dead_entries_first() {
    let keep = user("keep");
    let mut map = WeakValueMap::new();
    map.insert(CountedKey::new(0), &keep);
    map.insert(CountedKey::new(1), &user("temp"));
    assert_eq!(KEYS_ALIVE.get(), 2);
    let hit = map.get_or_insert_with(CountedKey::new(0), || unreachable!());
    assert!(Gc::ptr_eq(&hit, &keep));
    assert_eq!(KEYS_ALIVE.get(), 1, "even a hit took the dead entry out");
    drop(map);

    let mut set = WeakSet::new();
    let (a, b) = (Gc::new(1), Gc::new(2));
    set.insert(&a);
    set.insert(&b);
    drop(b);
    assert!(!set.insert(&a));
    assert_eq!(set.len(), 1);
    assert_eq!(set.iter().count(), 1);
}

trait Shape: Trace {
    fn area(&self) -> u32;
}

#[derive(Trace)]
struct Square(u32);

impl Shape for Square {
    fn area(&self) -> u32 {
        self.0 * self.0
    }
}

#[test]
fn maps_of_trait_objects_hold_them_weakly_and_let_them_go() {
    let (a, b) = (Gc::new(Square(2)), Gc::new(Square(3)));
    let (da, db) = (
        gcptr::gc_coerce!(a.clone() => dyn Shape),
        gcptr::gc_coerce!(b.clone() => dyn Shape),
    );
    let mut by_name: WeakValueMap<&str, dyn Shape> = WeakValueMap::new();
    by_name.insert("a", &da);
    by_name.insert("b", &db);
    let mut labels: WeakKeyMap<dyn Shape, &str> = WeakKeyMap::new();
    labels.insert(&da, "small");
    labels.insert(&db, "large");
    assert_eq!(by_name.get("b").unwrap().area(), 9);
    assert_eq!(labels.get(&da), Some(&"small"));
    drop((a, da));
    assert_eq!(by_name.len(), 1);
    assert_eq!(labels.len(), 1);
    assert!(by_name.get("a").is_none());
    by_name.insert("c", &db); // takes the dead entry out first
    assert_eq!(by_name.iter().map(|(_, s)| s.area()).sum::<u32>(), 18);
    assert_eq!(labels.remove(&db), Some("large"));
    drop((b, db));
    assert!(by_name.is_empty() && labels.is_empty());
}

/// A callback's captures are dropped when it is cancelled, after its handle
/// has let go of it: a capture whose `Drop` asks the handle whether it is
/// pending gets `false` (it panicked on a borrowed `RefCell` before).
#[test]
fn a_cancelled_callbacks_captures_may_ask_its_handle() {
    struct Asks(
        Rc<std::cell::OnceCell<gcptr::DeathCallback>>,
        Rc<Cell<Option<bool>>>,
    );
    impl Drop for Asks {
        fn drop(&mut self) {
            if let Some(callback) = self.0.get() {
                self.1.set(Some(callback.is_pending()));
            }
        }
    }
    let x = Gc::new(1u32);
    let slot = Rc::new(std::cell::OnceCell::new());
    let answer = Rc::new(Cell::new(None));
    let asks = Asks(slot.clone(), answer.clone());
    let callback = Gc::on_death(&x, move || drop(asks));
    assert!(slot.set(callback).is_ok());
    assert!(slot.get().unwrap().cancel());
    assert_eq!(
        answer.get(),
        Some(false),
        "no longer pending, asked from its own drop"
    );
    drop(x);
}

/// A self-cycle logged as `id`.
fn self_cycle(id: u32) -> Gc<Node> {
    let node = Node::new(id);
    node.edges.borrow_mut().push(node.clone());
    node
}

#[test]
fn a_retain_whose_closure_kills_entries_collects_and_panics_leaves_the_maps_exact() {
    let held: RefCell<Vec<Option<Gc<Node>>>> =
        RefCell::new((0..8).map(|id| Some(self_cycle(id))).collect());
    let mut values: WeakValueMap<u32, Node> = WeakValueMap::new();
    let mut keys: WeakKeyMap<Node, u32> = WeakKeyMap::new();
    for (id, node) in held.borrow().iter().enumerate() {
        values.insert(id as u32, node.as_ref().unwrap());
        keys.insert(node.as_ref().unwrap(), id as u32);
    }
    let mut calls = 0;
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        values.retain(|&id, _| {
            calls += 1;
            // Two other entries' objects become garbage, and are collected.
            let dropped = {
                let mut held = held.borrow_mut();
                (
                    held[(id as usize + 1) % 8].take(),
                    held[(id as usize + 3) % 8].take(),
                )
            };
            drop(dropped);
            gcptr::collect();
            if calls == 3 {
                panic!("the closure panics");
            }
            id % 2 == 0
        });
    }));
    assert!(failed.is_err());
    let live: Vec<u32> = (0..8)
        .filter(|&id| held.borrow()[id as usize].is_some())
        .collect();
    let mut dropped = take_drops();
    dropped.sort_unstable();
    let dead: Vec<u32> = (0..8).filter(|id| !live.contains(id)).collect();
    assert_eq!(dropped, dead, "each object dropped once its handle went");
    assert_eq!(values.len(), values.iter().count());
    for (&id, node) in values.iter() {
        assert!(live.contains(&id), "entry {id} outlived its value");
        assert_eq!(node.log.0, id);
    }
    let mut key_ids: Vec<u32> = keys.iter().map(|(_, &id)| id).collect();
    key_ids.sort_unstable();
    assert_eq!(key_ids, live, "the key map holds exactly the live objects");
    assert_eq!(keys.len(), live.len());
    drop(held);
    gcptr::collect();
    let mut dropped = take_drops();
    dropped.sort_unstable();
    assert_eq!(dropped, live, "the rest dropped once");
    assert_eq!((values.len(), keys.len()), (0, 0));
}

/// Garbage holding a weak-key map whose keys are the garbage itself, and
/// whose values hold it.
#[derive(Trace)]
struct MapOwner {
    log: support::DropLog,
    map: RefCell<WeakKeyMap<MapOwner, Gc<MapOwner>>>,
}

#[test]
fn a_weak_key_map_keyed_by_the_garbage_that_owns_it_drops_each_once() {
    let owner = |id| {
        Gc::new(MapOwner {
            log: support::DropLog(id),
            map: RefCell::new(WeakKeyMap::new()),
        })
    };
    let (a, b) = (owner(7), owner(8));
    a.map.borrow_mut().insert(&a, b.clone());
    a.map.borrow_mut().insert(&b, a.clone());
    b.map.borrow_mut().insert(&a, a.clone());
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [7, 8]);
    assert_eq!(gcptr::collect(), 0);
}
