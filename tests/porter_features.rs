//! The weak-container features a port of Python code reaches for, which
//! the port of CPython's `test_weakref.py` found missing
//! (`cpython_test_weakref.rs`): `WeakSet`'s comparisons (`is_subset`,
//! `is_superset`, `is_disjoint`, `==`) and its set algebra (`union`,
//! `intersection`, `difference`, `symmetric_difference` and the
//! operators `|`, `&`, `-`, `^`), `keyrefs()`/`valuerefs()`
//! (`WeakKeyMap::weak_keys`, `WeakValueMap::weak_values`), `pop` with the
//! key back (`WeakValueMap::remove_entry`), and the idioms that stand in
//! for `finalize.peek()` and a callback that receives its reference.
//!
//! Each is checked against objects that die by count, by a collection,
//! and during the call (a member killed by the code consuming an
//! iterator, by a key's `Eq`, by another member's drop), for what it
//! returns, and for keeping nothing alive (every object's `Drop` runs
//! once, when its last `Gc` goes, and the `Weak`s handed out stop
//! upgrading then).

mod support;

use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use gcptr::{Finalize, Gc, Trace, Weak, WeakKeyMap, WeakSet, WeakValueMap};
use support::{panic_message, take_drops, DropLog, Node};

/// A self-cycle logged as `id`: only a collection frees it.
fn self_cycle(id: u32) -> Gc<Node> {
    let node = Node::new(id);
    node.link(&node);
    node
}

/// A set of clones of `members`.
fn set_of(members: &[&Gc<Node>]) -> WeakSet<Node> {
    members.iter().map(|m| (*m).clone()).collect()
}

/// The ids of what an iterator of members yields, sorted.
fn ids(members: impl Iterator<Item = Gc<Node>>) -> Vec<u32> {
    let mut ids: Vec<u32> = members.map(|m| m.id()).collect();
    ids.sort_unstable();
    ids
}

// ---------------------------------------------------------------------
// WeakSet comparisons.

/// `is_subset`, `is_superset`, `is_disjoint` and `==` compare the live
/// members only: a member that dies by count, or that a collection
/// reclaims, stops counting at once in each, though its dead entry stays
/// in the table until a `&mut self` call (none is made here). And they
/// keep nothing alive: every object dies once, when its holders go.
#[test]
fn comparisons_follow_deaths_by_count_and_by_collection() {
    let (a, b) = (Node::new(1), Node::new(2));
    let cycle = self_cycle(3);
    let left = set_of(&[&a, &b, &cycle]);
    let right = set_of(&[&a]);
    let empty = WeakSet::new();
    assert!(right.is_subset(&left) && !left.is_subset(&right));
    assert!(left.is_superset(&right) && !right.is_superset(&left));
    assert!(!left.is_disjoint(&right) && left.is_disjoint(&empty));
    assert!(left != right && empty == WeakSet::new());

    drop(b); // by count
    assert_eq!(take_drops(), [2]);
    assert!(left != right && !left.is_subset(&right));

    drop(cycle);
    assert_eq!(take_drops(), [], "a cycle waits for a collection");
    assert!(left != right);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [3]);
    assert!(left == right);
    assert!(right == left);
    assert!(left.is_subset(&right) && left.is_superset(&right));

    drop(a);
    assert_eq!(take_drops(), [1]);
    assert!(left.is_disjoint(&right) && left.is_subset(&empty));
    assert!(left == empty && right == empty && empty.is_superset(&left));
}

/// Members are compared by identity, as they are held: two objects with
/// equal values are two members (Python's `WeakSet` would use `==`). The
/// same object in two sets is one member of both, whichever set saw it
/// first.
#[test]
fn comparisons_are_by_identity_not_by_value() {
    let x = Gc::new(String::from("same"));
    let y = Gc::new(String::from("same"));
    assert!(x == y);
    let with_x: WeakSet<String> = [x.clone()].into_iter().collect();
    let with_y: WeakSet<String> = [y.clone()].into_iter().collect();
    assert!(with_x != with_y && with_x.is_disjoint(&with_y));
    assert!(!with_x.is_subset(&with_y));
    let mut both = WeakSet::new();
    both.insert(&y);
    both.insert(&x);
    assert!(with_x.is_subset(&both) && with_y.is_subset(&both));
    assert!(both.is_superset(&with_x) && both != with_x);
    assert!((&with_x | &with_y) == both);
}

/// A member whose death drops the last `Gc` of another member (through
/// its fields) takes both out of every comparison at once.
#[test]
fn a_members_drop_that_kills_another_member_counts_in_comparisons() {
    let holder = Node::new(10);
    let held = Node::new(11);
    let other = Node::new(12);
    let mut set = set_of(&[&holder, &held, &other]);
    holder.link(&held);
    drop(held); // now only `holder` holds it
    assert_eq!(set.len(), 3);
    let only_other = set_of(&[&other]);
    assert!(only_other.is_subset(&set) && set != only_other);
    drop(holder);
    assert_eq!(take_drops(), [10, 11]);
    assert!(set == only_other && set.len() == 1);
    // A `&mut self` call lets the dead entries go; the answers stay.
    set.retain(|_| true);
    assert!(set == only_other);
}

/// Two sets and a map over a garbage node and a live one.
type Watched = (WeakSet<Node>, WeakSet<Node>, WeakValueMap<u32, Node>);

thread_local! {
    /// What a garbage object's `Drop` saw of the sets in [`SETS`].
    static SEEN: RefCell<Vec<(bool, bool, bool, usize)>> = const { RefCell::new(Vec::new()) };
    /// The containers a [`Probe`] asks about.
    static SETS: RefCell<Option<Watched>> = const { RefCell::new(None) };
}

/// A self-cycle that holds a node, and whose `Drop` asks the sets in
/// [`SETS`] about it.
#[derive(Trace)]
struct Probe {
    log: DropLog,
    me: RefCell<Option<Gc<Probe>>>,
    peer: Gc<Node>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        SETS.with(|sets| {
            if let Some((with_peer, without, map)) = &*sets.borrow() {
                let seen = (
                    with_peer == without,
                    with_peer.is_subset(without),
                    without.is_disjoint(with_peer),
                    map.weak_values().count(),
                );
                SEEN.with(|s| s.borrow_mut().push(seen));
            }
        });
    }
}

/// From a `Drop` that a collection runs, the objects it condemned are no
/// members any more (as `len()` says, and as CPython clears weak
/// references before it runs finalizers): the comparisons and
/// `weak_values` skip them.
#[test]
fn condemned_objects_are_no_members_inside_the_collection() {
    let outside = Node::new(20);
    let peer = Node::new(21);
    let probe = Gc::new(Probe {
        log: DropLog(22),
        me: RefCell::new(None),
        peer: peer.clone(),
    });
    *probe.me.borrow_mut() = Some(probe.clone());
    let mut map = WeakValueMap::new();
    map.insert(1, &peer);
    map.insert(2, &outside);
    SETS.with(|s| *s.borrow_mut() = Some((set_of(&[&peer, &outside]), set_of(&[&outside]), map)));
    drop((peer, probe));
    assert_eq!(take_drops(), []);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [21, 22]);
    assert_eq!(SEEN.with(|s| s.take()), [(true, true, false, 1)]);
    SETS.with(|s| s.take());
    drop(outside);
    assert_eq!(take_drops(), [20]);
}

thread_local! {
    /// What [`Phoenix`]'s finalizer resurrects.
    static RESCUED: RefCell<Vec<Gc<Phoenix>>> = const { RefCell::new(Vec::new()) };
}

/// A self-cycle whose finalizer resurrects it.
#[derive(Trace)]
#[gc(finalize)]
struct Phoenix {
    log: DropLog,
    me: RefCell<Option<Gc<Phoenix>>>,
}

impl Finalize for Phoenix {
    fn finalize(&self) {
        if let Some(me) = self.me.borrow().clone() {
            RESCUED.with(|r| r.borrow_mut().push(me));
        }
    }
}

/// An object that a collection condemned and its finalizer resurrected
/// is no member of the containers that held it before (their entries were
/// told of its death, as CPython clears weak references first), and a
/// member of those that take it after: every new method agrees with
/// `len()` on both sides, and the object still dies once, by count, when
/// its cycle is cut.
#[test]
fn a_resurrected_object_counts_only_where_it_was_put_after() {
    let phoenix = Gc::new(Phoenix {
        log: DropLog(100),
        me: RefCell::new(None),
    });
    *phoenix.me.borrow_mut() = Some(phoenix.clone());
    let before: WeakSet<Phoenix> = [phoenix.clone()].into_iter().collect();
    let mut keys_before = WeakKeyMap::new();
    keys_before.insert(&phoenix, ());
    let mut values_before = WeakValueMap::new();
    values_before.insert(0, &phoenix);
    drop(phoenix);
    assert_eq!(gcptr::collect(), 0, "resurrected: not counted");
    assert_eq!(take_drops(), []);
    let phoenix = RESCUED.with(|r| r.borrow_mut().pop()).expect("resurrected");

    let after: WeakSet<Phoenix> = [phoenix.clone()].into_iter().collect();
    assert_eq!((before.len(), after.len()), (0, 1));
    assert!(before == WeakSet::new() && before != after && before.is_disjoint(&after));
    assert!(before.is_subset(&after) && !after.is_subset(&before));
    assert_eq!(after.difference(&before).count(), 1);
    assert_eq!(before.union(&after).count(), 1);
    assert_eq!((&before ^ &after).len(), 1);
    assert_eq!(keys_before.weak_keys().count(), 0);
    assert_eq!(values_before.weak_values().count(), 0);
    let mut values_after = WeakValueMap::new();
    values_after.insert(0, &phoenix);
    let weak = values_after.weak_values().next().expect("a live value");
    assert!(Gc::ptr_eq(&weak.upgrade().unwrap(), &phoenix));
    assert!(values_before.remove_entry(&0).is_none());
    let (_, again) = values_after.remove_entry(&0).expect("a live value");
    assert!(Gc::ptr_eq(&again, &phoenix));
    drop(again);

    // Cut the cycle: the object dies by count, once.
    let me = phoenix.me.borrow_mut().take();
    drop((me, phoenix));
    assert_eq!(take_drops(), [100]);
    assert!(weak.upgrade().is_none() && after.is_empty());
}

// ---------------------------------------------------------------------
// WeakSet's set algebra.

/// The four iterators give the live members, each once, by identity; the
/// operators collect the same into new sets, which hold their members
/// weakly too: once the objects die, every result is empty, and each
/// object was dropped once.
#[test]
fn set_algebra_gives_live_members_and_new_sets_that_hold_nothing() {
    let nodes: Vec<_> = (1..=5).map(Node::new).collect();
    let cycle = self_cycle(6);
    // left: 1 2 3 6, right: 3 4 6 (5 in neither)
    let left = set_of(&[&nodes[0], &nodes[1], &nodes[2], &cycle]);
    let right = set_of(&[&nodes[2], &nodes[3], &cycle]);
    assert_eq!(ids(left.union(&right)), [1, 2, 3, 4, 6]);
    assert_eq!(ids(left.intersection(&right)), [3, 6]);
    assert_eq!(ids(left.difference(&right)), [1, 2]);
    assert_eq!(ids(right.difference(&left)), [4]);
    assert_eq!(ids(left.symmetric_difference(&right)), [1, 2, 4]);
    let results = [
        &left | &right,
        &left & &right,
        &left - &right,
        &left ^ &right,
    ];
    let lens: Vec<_> = results.iter().map(WeakSet::len).collect();
    assert_eq!(lens, [5, 2, 2, 3]);
    assert!(results[0] == set_of(&[&nodes[0], &nodes[1], &nodes[2], &nodes[3], &cycle]));

    drop(cycle);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [6]);
    assert_eq!(ids(left.intersection(&right)), [3]);
    let lens: Vec<_> = results.iter().map(WeakSet::len).collect();
    assert_eq!(lens, [4, 1, 2, 3]);

    drop(nodes);
    assert_eq!(take_drops(), [1, 2, 3, 4, 5]);
    assert!(results.iter().all(WeakSet::is_empty));
    assert_eq!(left.union(&right).count(), 0);
    assert_eq!((&left ^ &right).len(), 0);
}

/// Each iterator tests a member when it reaches it: members that the
/// consuming code kills (by count, or by a collection it runs) before
/// their turn are skipped, and the iteration goes on. Whatever it yields
/// is alive.
#[test]
fn members_killed_while_the_algebra_iterates_are_skipped() {
    type Pick =
        for<'a> fn(&'a WeakSet<Node>, &'a WeakSet<Node>) -> Box<dyn Iterator<Item = Gc<Node>> + 'a>;
    let picks: [(&str, Pick, usize); 4] = [
        ("union", |l, r| Box::new(l.union(r)), 8),
        ("intersection", |l, r| Box::new(l.intersection(r)), 4),
        ("difference", |l, r| Box::new(l.difference(r)), 2),
        (
            "symmetric_difference",
            |l, r| Box::new(l.symmetric_difference(r)),
            4,
        ),
    ];
    for (name, pick, all) in picks {
        // left: 0..6, right: 2..8; 0, 2, 4, 6 by count, the odd ones cycles.
        let mut holders: Vec<Option<Gc<Node>>> = (0..8)
            .map(|id| {
                Some(if id % 2 == 0 {
                    Node::new(id)
                } else {
                    self_cycle(id)
                })
            })
            .collect();
        let left: WeakSet<Node> = holders[..6].iter().flatten().cloned().collect();
        let right: WeakSet<Node> = holders[2..].iter().flatten().cloned().collect();
        assert_eq!(pick(&left, &right).count(), all, "{name}");
        let mut yielded = Vec::new();
        for member in pick(&left, &right) {
            if yielded.is_empty() {
                // Kill every other object but this one: by count, then the
                // cycles by a collection.
                for holder in &mut holders {
                    if holder.as_ref().is_some_and(|h| !Gc::ptr_eq(h, &member)) {
                        *holder = None;
                    }
                }
                gcptr::collect();
            }
            assert!(left.contains(&member) || right.contains(&member), "{name}");
            yielded.push(member.id());
        }
        assert_eq!(
            yielded.len(),
            1,
            "{name}: only the first was alive after it"
        );
        let mut dead = take_drops();
        dead.retain(|id| *id != yielded[0]);
        assert_eq!(dead.len(), 7, "{name}: each other object dropped once");
        drop(holders);
        gcptr::collect(); // the odd ones are cycles
        assert_eq!(take_drops(), yielded, "{name}");
        assert!(left.is_empty() && right.is_empty());
    }
}

// ---------------------------------------------------------------------
// keyrefs() / valuerefs().

/// `weak_keys` and `weak_values` give a `Weak` per live entry, none for
/// an entry whose object died by count or by a collection (its dead entry
/// still in the table), and the `Weak`s keep nothing alive: each upgrades
/// until its object dies, also once its entry has left the map, and every
/// object is dropped once.
#[test]
fn weak_keys_and_values_skip_the_dead_and_keep_nothing_alive() {
    let (a, b) = (Node::new(30), Node::new(31));
    let cycle = self_cycle(32);
    let mut keys = WeakKeyMap::new();
    let mut values = WeakValueMap::new();
    for (i, object) in [&a, &b, &cycle].into_iter().enumerate() {
        keys.insert(object, i);
        values.insert(i, object);
    }
    let live_ids = |refs: Vec<Weak<Node>>| ids(refs.iter().map(|w| w.upgrade().unwrap()));
    assert_eq!(live_ids(keys.weak_keys().collect()), [30, 31, 32]);
    assert_eq!(live_ids(values.weak_values().collect()), [30, 31, 32]);
    let early_keys: Vec<_> = keys.weak_keys().collect();
    let early_values: Vec<_> = values.weak_values().collect();

    drop(b);
    drop(cycle);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [31, 32]);
    assert_eq!(live_ids(keys.weak_keys().collect()), [30]);
    assert_eq!(live_ids(values.weak_values().collect()), [30]);
    let upgraded = |refs: &[Weak<Node>]| refs.iter().filter_map(Weak::upgrade).count();
    assert_eq!((upgraded(&early_keys), upgraded(&early_values)), (1, 1));

    // Out of the map, the `Weak` still upgrades while its object lives.
    keys.clear();
    assert_eq!(
        values.remove_entry(&0).map(|(k, v)| (k, v.id())),
        Some((0, 30))
    );
    assert_eq!((upgraded(&early_keys), upgraded(&early_values)), (1, 1));
    assert_eq!(Gc::strong_count(&a), 1, "nothing handed out holds it");
    drop(a);
    assert_eq!(take_drops(), [30]);
    assert_eq!((upgraded(&early_keys), upgraded(&early_values)), (0, 0));
    assert_eq!(values.weak_values().count(), 0);
}

/// An object killed by the code that consumes `weak_keys` or
/// `weak_values` (through another object's drop, here) before its turn
/// is skipped; the iteration goes on.
#[test]
fn entries_killed_during_weak_keys_and_values_are_skipped() {
    for as_values in [false, true] {
        let objects: Vec<_> = (40..46).map(Node::new).collect();
        // 40 holds the last handles of 41..46.
        for held in &objects[1..] {
            objects[0].link(held);
        }
        let mut keys = WeakKeyMap::new();
        let mut values = WeakValueMap::new();
        for (i, object) in objects.iter().enumerate() {
            keys.insert(object, i);
            values.insert(i, object);
        }
        let mut objects = objects.into_iter();
        let mut first = objects.next();
        drop(objects);
        assert_eq!(take_drops(), []);
        let refs: Box<dyn Iterator<Item = Weak<Node>>> = if as_values {
            Box::new(values.weak_values())
        } else {
            Box::new(keys.weak_keys())
        };
        let mut seen = 0;
        for weak in refs {
            seen += 1;
            // The first kills all: itself, and the rest through its edges.
            drop(first.take());
            assert!(weak.upgrade().is_none());
        }
        assert_eq!(seen, 1, "as_values: {as_values}");
        assert_eq!(take_drops(), [40, 41, 42, 43, 44, 45]);
        assert!(keys.is_empty() && values.is_empty());
    }
}

// ---------------------------------------------------------------------
// pop() with the key back.

/// A key compared and hashed by `name`, told apart by its log id.
struct Key {
    name: &'static str,
    log: DropLog,
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.name == other.name
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.name
    }
}

fn key(name: &'static str, id: u32) -> Key {
    Key {
        name,
        log: DropLog(id),
    }
}

/// `remove_entry` hands back the key the map held (not an equal one the
/// caller has) with the live value; for a value that died by count or by
/// a collection it returns `None` and drops the held key, once; the entry
/// leaves either way.
#[test]
fn remove_entry_gives_the_held_key_or_drops_a_dead_values_key() {
    let (a, b) = (Node::new(50), Node::new(51));
    let cycle = self_cycle(52);
    let mut map = WeakValueMap::new();
    map.insert(key("a", 150), &a);
    map.insert(key("b", 151), &b);
    map.insert(key("c", 152), &cycle);
    // A second key equal to "a" replaces nothing but the value: the map
    // keeps its first key and drops the new one.
    map.insert(key("a", 160), &a);
    assert_eq!(take_drops(), [160]);

    let (held, value) = map.remove_entry("a").unwrap();
    assert_eq!((held.log.0, value.id()), (150, 50));
    assert!(Gc::ptr_eq(&value, &a));
    assert_eq!(map.len(), 2);
    drop((held, value));
    assert_eq!(take_drops(), [150]);

    drop(b);
    assert_eq!(take_drops(), [51]);
    assert!(map.remove_entry("b").is_none());
    assert_eq!(take_drops(), [151], "the dead value's key, dropped once");

    drop(cycle);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [52]);
    assert!(map.remove_entry("c").is_none());
    assert_eq!(take_drops(), [152]);
    assert!(map.is_empty() && map.remove_entry("c").is_none());
    map.retain(|_, _| true);
    assert_eq!(take_drops(), [], "nothing left to drop");
    drop(a);
    assert_eq!(take_drops(), [50]);
}

thread_local! {
    /// The last handles that [`Killer`]'s `Eq` drops.
    static VICTIMS: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
}

/// A key whose `Eq` kills the objects in [`VICTIMS`] (its own entry's
/// value among them).
struct Killer(&'static str, #[allow(dead_code)] DropLog); // the log records the drop

impl Hash for Killer {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for Killer {
    fn eq(&self, other: &Killer) -> bool {
        VICTIMS.with(|v| v.take());
        self.0 == other.0
    }
}

impl Eq for Killer {}

/// A key's `Eq`, run by `remove_entry`'s lookup, that kills the value of
/// the very entry being removed and another one: `remove_entry` returns
/// `None` (the value is dead by the time it would be upgraded), drops the
/// held key once, and `len()` counts only the entry left alive.
#[test]
fn remove_entry_whose_key_eq_kills_the_value_returns_none() {
    let (doomed, also_doomed, kept) = (Node::new(60), Node::new(61), Node::new(62));
    let mut map = WeakValueMap::new();
    map.insert(Killer("doomed", DropLog(160)), &doomed);
    map.insert(Killer("also", DropLog(161)), &also_doomed);
    map.insert(Killer("kept", DropLog(162)), &kept);
    VICTIMS.with(|v| v.borrow_mut().extend([doomed, also_doomed]));
    let query = Killer("doomed", DropLog(170));
    assert!(map.remove_entry(&query).is_none());
    assert_eq!(take_drops(), [60, 61, 160]);
    assert_eq!(map.len(), 1);
    assert!(map.get(&Killer("kept", DropLog(171))).is_some());
    drop(query);
    assert_eq!(take_drops(), [170, 171]);
    drop(map);
    assert_eq!(take_drops(), [161, 162]);
    drop(kept);
    assert_eq!(take_drops(), [62]);
}

/// A held key whose `Drop` panics, when `remove_entry` finds its value
/// dead: the panic comes out of `remove_entry`, the entry is gone, and the
/// map stays exact and usable.
#[test]
fn remove_entry_of_a_dead_value_whose_key_drop_panics() {
    struct Loud(u32);
    impl Drop for Loud {
        fn drop(&mut self) {
            if self.0 == 1 && !std::thread::panicking() {
                panic!("key 1's drop panicked");
            }
        }
    }
    impl PartialEq for Loud {
        fn eq(&self, other: &Loud) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Loud {}
    impl Hash for Loud {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }
    let (dead, live) = (Node::new(70), Node::new(71));
    let mut map = WeakValueMap::new();
    map.insert(Loud(1), &dead);
    map.insert(Loud(2), &live);
    drop(dead);
    let query = Loud(1);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| map.remove_entry(&query).is_none()));
    std::mem::forget(query);
    assert_eq!(
        panic_message(&outcome.unwrap_err()),
        "key 1's drop panicked"
    );
    assert_eq!(map.len(), 1);
    let (key, value) = map.remove_entry(&Loud(2)).unwrap();
    assert!(key.0 == 2 && Gc::ptr_eq(&value, &live));
    assert!(map.is_empty() && map.iter().next().is_none());
    drop((key, value, live, map));
    assert_eq!(take_drops(), [70, 71]);
}

// ---------------------------------------------------------------------
// What stands in for `finalize.peek()` and `callback(ref)`.

/// Python's `finalize.peek()` gives the object and whether the callback
/// is pending; gcptr's `DeathCallback` gives the second
/// (`is_pending`), and a `Weak` kept beside it the first, without keeping
/// the object alive: both answer as `peek` would before and after a
/// `cancel`, a `run_now` and the object's death.
#[test]
fn a_weak_beside_a_death_callback_answers_peek() {
    let runs = Rc::new(RefCell::new(0));
    let peek = |weak: &Weak<Node>, callback: &gcptr::DeathCallback| {
        (weak.upgrade().map(|o| o.id()), callback.is_pending())
    };
    let objects: Vec<_> = (80..83).map(Node::new).collect();
    let watched: Vec<_> = objects
        .iter()
        .map(|o| {
            let runs = runs.clone();
            let callback = Gc::on_death(o, move || *runs.borrow_mut() += 1);
            (Gc::downgrade(o), callback)
        })
        .collect();
    assert_eq!(peek(&watched[0].0, &watched[0].1), (Some(80), true));
    assert!(watched[1].1.cancel());
    assert_eq!(peek(&watched[1].0, &watched[1].1), (Some(81), false));
    assert!(watched[2].1.run_now());
    assert_eq!(peek(&watched[2].0, &watched[2].1), (Some(82), false));
    assert_eq!(*runs.borrow(), 1);
    assert_eq!(Gc::strong_count(&objects[0]), 1, "neither holds it");
    drop(objects);
    assert_eq!(take_drops(), [80, 81, 82]);
    assert_eq!(*runs.borrow(), 2, "only the pending one ran at the death");
    let after: Vec<_> = watched.iter().map(|(w, c)| peek(w, c)).collect();
    assert_eq!(after, [(None, false); 3]);
}

/// Python's `weakref.ref(x, callback)` passes the dead reference to the
/// callback, mostly to find and remove it from a registry. In gcptr the
/// callback captures a `Weak` made before (its own `downgrade_with`
/// handle cannot be borrowed by it): the capture is the same object's
/// reference by `Weak::ptr_eq`, upgrades to nothing inside the callback,
/// and lets the callback remove the right registry entry.
#[test]
fn a_captured_weak_stands_in_for_the_callbacks_reference() {
    let registry: Rc<RefCell<Vec<Weak<Node>>>> = Rc::default();
    let objects: Vec<_> = (90..93).map(Node::new).collect();
    let handles: Vec<_> = objects
        .iter()
        .map(|o| {
            let me = Gc::downgrade(o);
            registry.borrow_mut().push(me.clone());
            let registry = registry.clone();
            Gc::downgrade_with(o, move || {
                assert!(me.upgrade().is_none(), "dead inside its callback");
                registry.borrow_mut().retain(|r| !Weak::ptr_eq(r, &me));
            })
        })
        .collect();
    assert!(Weak::ptr_eq(handles[1].weak(), &registry.borrow()[1]));
    let mut objects = objects.into_iter();
    let first = objects.next();
    drop(objects); // 91 and 92 die
    assert_eq!(take_drops(), [91, 92]);
    let left: Vec<_> = registry.borrow().iter().filter_map(Weak::upgrade).collect();
    assert_eq!(left.len(), 1);
    assert_eq!(registry.borrow().len(), 1);
    assert!(Weak::ptr_eq(&registry.borrow()[0], handles[0].weak()));
    drop((left, first));
    assert_eq!(take_drops(), [90]);
    assert!(registry.borrow().is_empty());
}

/// What [`ask`] records: when, the set's `len()`, the members `union`
/// gives, whether the set equals a copy made of its `iter()`, and the
/// `Weak`s `weak_values` gives.
type Answer = (&'static str, usize, usize, bool, usize);

/// A set and a map of [`Watcher`]s.
type WatcherContainers = (WeakSet<Watcher>, WeakValueMap<u32, Watcher>);

thread_local! {
    /// The containers a [`Watcher`]'s finalizer and a death callback ask
    /// about.
    static WATCHED: RefCell<Option<WatcherContainers>> = const { RefCell::new(None) };
    /// What they saw.
    static ANSWERS: RefCell<Vec<Answer>> = const { RefCell::new(Vec::new()) };
}

/// An object whose finalizer asks the containers in [`WATCHED`].
#[derive(Trace)]
#[gc(finalize)]
struct Watcher {
    log: DropLog,
}

/// Records what `when` sees of the containers in [`WATCHED`] (an
/// [`Answer`]), and checks that the map's `len()` is the set's.
fn ask(when: &'static str) {
    WATCHED.with(|w| {
        if let Some((set, map)) = &*w.borrow() {
            let copy: WeakSet<Watcher> = set.iter().collect();
            let answer = (
                when,
                set.len(),
                set.union(&WeakSet::new()).count(),
                *set == copy,
                map.weak_values().count(),
            );
            assert_eq!(answer.1, map.len(), "{when}");
            ANSWERS.with(|a| a.borrow_mut().push(answer));
        }
    });
}

impl Finalize for Watcher {
    fn finalize(&self) {
        ask("finalize");
    }
}

/// In a finalizer run by count the object is still a member (as
/// `len()` says, and as CPython's `__del__` still finds its weak
/// references); in its death callback, run after, it no longer is
/// (`condemned_objects_are_no_members_inside_the_collection` has a
/// collection's side): the new methods agree with `len()` at each point.
#[test]
fn the_new_methods_agree_with_len_in_finalizers_and_callbacks() {
    let by_count = Gc::new(Watcher { log: DropLog(110) });
    let other = Gc::new(Watcher { log: DropLog(111) });
    let set: WeakSet<Watcher> = [by_count.clone(), other.clone()].into_iter().collect();
    let mut map = WeakValueMap::new();
    map.insert(0, &by_count);
    map.insert(1, &other);
    WATCHED.with(|w| *w.borrow_mut() = Some((set, map)));
    let _callback = Gc::on_death(&by_count, || ask("callback"));
    drop(by_count);
    assert_eq!(take_drops(), [110]);
    let answers = ANSWERS.with(|a| a.take());
    assert_eq!(
        answers,
        [("finalize", 2, 2, true, 2), ("callback", 1, 1, true, 1)]
    );
    WATCHED.with(|w| w.take());
    drop(other);
    assert_eq!(take_drops(), [111]);
}
