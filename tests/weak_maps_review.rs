//! What an adversarial review of the weak containers and death callbacks
//! checked: maps moved and swapped while their nodes are linked, keys and
//! values whose `Hash`, `Eq` or `Drop` kill other entries, panic or call
//! `collect()` in the middle of a map's own call, callbacks that use,
//! drop or cancel what watches their object, panicking callbacks (by
//! count, by collection, while unwinding), maps inside the objects they
//! watch, unsized values and keys, deep chains under the trashcan, and
//! maps in thread-locals at thread exit.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use gcptr::{gc_coerce, Gc, Trace, WeakKeyMap, WeakSet, WeakValueMap};
use support::{panic_message, runs_here, take_drops, Node};

/// A self-cycle logged as `id`: only a collection frees it.
fn self_cycle(id: u32) -> Gc<Node> {
    let node = Node::new(id);
    node.link(&node);
    node
}

// ---------------------------------------------------------------------
// Maps moved while linked.

/// Nodes live in each map's slab, which the map only points at: moving a
/// map (into a `Box`, through a `Vec` that grows, `mem::swap`,
/// `mem::replace`) while its entries are linked into their objects'
/// watchers leaves every death told to the right map.
#[test]
fn maps_moved_and_swapped_while_linked_stay_exact() {
    let objects: Vec<_> = (0..6).map(Node::new).collect();
    let mut values: Vec<WeakValueMap<u32, Node>> = Vec::with_capacity(1);
    let mut keys: Vec<WeakKeyMap<Node, u32>> = Vec::with_capacity(1);
    let mut sets: Vec<Box<WeakSet<Node>>> = Vec::with_capacity(1);
    for round in 0..4 {
        // Each push may move the earlier maps into a bigger buffer.
        let (mut v, mut k, mut s) = (WeakValueMap::new(), WeakKeyMap::new(), WeakSet::new());
        for (i, o) in objects.iter().enumerate().skip(round) {
            v.insert(i as u32, o);
            k.insert(o, i as u32);
            s.insert(o);
        }
        values.push(v);
        keys.push(k);
        sets.push(Box::new(s));
    }
    values.swap(0, 3);
    let (low, high) = keys.split_at_mut(2);
    std::mem::swap(&mut low[1], &mut high[0]);
    let old = std::mem::replace(&mut *sets[0], WeakSet::new());
    sets.push(Box::new(old));
    let lens = |values: &[WeakValueMap<u32, Node>],
                keys: &[WeakKeyMap<Node, u32>],
                sets: &[Box<WeakSet<Node>>]| {
        (
            values.iter().map(|m| m.len()).collect::<Vec<_>>(),
            keys.iter().map(|m| m.len()).collect::<Vec<_>>(),
            sets.iter().map(|s| s.len()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        lens(&values, &keys, &sets),
        (vec![3, 5, 4, 6], vec![6, 4, 5, 3], vec![0, 5, 4, 3, 6])
    );
    let mut objects = objects;
    objects.remove(4); // object 4 dies: every map but those from round 4+
    assert_eq!(
        lens(&values, &keys, &sets),
        (vec![2, 4, 3, 5], vec![5, 3, 4, 2], vec![0, 4, 3, 2, 5])
    );
    // The maps' views agree with the counts, and a moved map still takes
    // its dead entries out.
    for v in &mut values {
        assert_eq!(v.iter().count(), v.len());
        assert!(v.get(&4).is_none());
        v.retain(|_, _| true);
    }
    let moved_again: Vec<_> = keys.drain(..).rev().collect();
    drop(objects);
    assert!(values.iter().all(|m| m.is_empty()));
    assert!(moved_again.iter().all(|m| m.is_empty()));
    assert!(sets.iter().all(|s| s.is_empty()));
    assert_eq!(take_drops(), [0, 1, 2, 3, 4, 5]);
}

// ---------------------------------------------------------------------
// Keys and values whose code kills entries, panics or collects during
// the map's own calls.

thread_local! {
    static HELD: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
    static KEY_DROPS: Cell<u32> = const { Cell::new(0) };
}

/// A key whose `Eq` and `Hash` may let go of the objects in `HELD` (which
/// the map watches), and whose `Drop` may panic or collect.
struct Meddler {
    id: u32,
    kill_on_eq: bool,
    kill_on_hash: bool,
    panic_on_drop: bool,
    collect_on_drop: bool,
}

impl Meddler {
    fn new(id: u32) -> Meddler {
        Meddler {
            id,
            kill_on_eq: false,
            kill_on_hash: false,
            panic_on_drop: false,
            collect_on_drop: false,
        }
    }
}

impl PartialEq for Meddler {
    fn eq(&self, other: &Self) -> bool {
        if self.kill_on_eq || other.kill_on_eq {
            HELD.with(|h| h.borrow_mut().clear());
        }
        self.id == other.id
    }
}

impl Eq for Meddler {}

impl std::hash::Hash for Meddler {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if self.kill_on_hash {
            HELD.with(|h| h.borrow_mut().clear());
        }
        self.id.hash(state);
    }
}

impl std::borrow::Borrow<u32> for Meddler {
    fn borrow(&self) -> &u32 {
        &self.id
    }
}

impl Drop for Meddler {
    fn drop(&mut self) {
        KEY_DROPS.set(KEY_DROPS.get() + 1);
        if self.collect_on_drop {
            gcptr::collect();
        }
        if self.panic_on_drop {
            panic!("key {} panics in its drop", self.id);
        }
    }
}

/// `len()`, `iter()` and `get` of a value map agree, for keys `0..n`.
fn assert_agrees(map: &WeakValueMap<Meddler, Node>, n: u32) {
    let live = (0..n).filter(|k| map.get(k).is_some()).count();
    assert_eq!(map.len(), live);
    assert_eq!(map.iter().count(), live);
    for (k, v) in map.iter() {
        assert_eq!(k.id, v.id(), "an entry kept another's value");
    }
}

/// A key's `Hash` or `Eq`, run by `insert`, `get` and `remove`, lets go of
/// the values of other entries (and of the very entry being replaced or
/// removed): each map call answers as if the value had died just before
/// it, `len()` is exact throughout, and the entries whose nodes went dead
/// while the table was being searched leave it once (no "gcptr bug").
#[test]
fn keys_whose_hash_or_eq_kill_entries_mid_call_leave_the_map_exact() {
    KEY_DROPS.set(0);
    let fill = |map: &mut WeakValueMap<Meddler, Node>| {
        let nodes: Vec<_> = (0..8).map(Node::new).collect();
        for n in &nodes {
            map.insert(Meddler::new(n.id()), n);
        }
        HELD.with(|h| *h.borrow_mut() = nodes);
        assert_eq!(map.len(), 8);
    };
    let mut map = WeakValueMap::new();

    // `insert` over a live entry whose value dies while `Eq` finds it.
    fill(&mut map);
    let replacement = Node::new(3);
    let mut key = Meddler::new(3);
    key.kill_on_eq = true;
    let old = map.insert(key, &replacement);
    assert!(old.is_none(), "the old value died before it was replaced");
    assert_eq!(map.len(), 1, "only the replacement is alive");
    assert!(Gc::ptr_eq(&map.get(&3).unwrap(), &replacement));
    assert_agrees(&map, 8);
    drop(replacement);
    assert_agrees(&map, 8);
    assert_eq!(map.len(), 0);
    assert_eq!(take_drops(), [0, 1, 2, 3, 3, 4, 5, 6, 7]);

    // `insert` of a new key whose `Hash` kills everything.
    fill(&mut map);
    let fresh = Node::new(9);
    let mut key = Meddler::new(9);
    key.kill_on_hash = true;
    assert!(map.insert(key, &fresh).is_none());
    assert_eq!(map.len(), 1);
    assert_agrees(&map, 10);
    drop(fresh);
    assert_eq!(map.len(), 0);
    assert_eq!(take_drops(), [0, 1, 2, 3, 4, 5, 6, 7, 9]);

    // `remove` whose `Eq` kills the entry it finds: nothing alive to return.
    fill(&mut map);
    let mut probe = Meddler::new(5);
    probe.kill_on_eq = true;
    let before = KEY_DROPS.get();
    // A `Meddler` looks up `Meddler`s too (`Borrow<Self>`).
    assert!(map.remove(&probe).is_none());
    assert_eq!(
        KEY_DROPS.get() - before,
        1,
        "the removed entry's key dropped"
    );
    assert_eq!(map.len(), 0);
    assert_agrees(&map, 8);
    assert_eq!(take_drops(), [0, 1, 2, 3, 4, 5, 6, 7]);

    // `get` (through `&self`) whose `Eq` kills the value it finds.
    fill(&mut map);
    assert!(map.get(&probe).is_none());
    assert!(!map.contains_key(&probe));
    assert_eq!(map.len(), 0);
    assert_eq!(take_drops(), [0, 1, 2, 3, 4, 5, 6, 7]);
    drop(probe);

    // The dead entries all leave at the next mutating call, once each.
    let before = KEY_DROPS.get();
    map.retain(|_, _| true);
    assert_eq!(KEY_DROPS.get() - before, 8, "the dead entries' keys, once");
    drop(map);
    assert_eq!(KEY_DROPS.get() - before, 8, "none left for the map's drop");
}

/// A dead entry's key panics when the map's next `&mut` call drops it: that
/// call panics with the key's message before it does anything else (its own
/// key argument is dropped, not leaked), the map stays exact and usable,
/// and the other dead entries go at the following call. Another dead key's
/// `Drop` calls `collect()`, which kills more of the map's values while it
/// takes out its dead entries: they go in the same call.
#[test]
fn a_dead_keys_drop_that_panics_or_collects_mid_call_leaves_the_map_usable() {
    KEY_DROPS.set(0);
    let mut map = WeakValueMap::new();
    let (a, b) = (Node::new(1), Node::new(2));
    let cycles: Vec<_> = (10..14).map(self_cycle).collect();
    let mut panicky = Meddler::new(1);
    panicky.panic_on_drop = true;
    map.insert(panicky, &a);
    let mut collecting = Meddler::new(2);
    collecting.collect_on_drop = true;
    map.insert(collecting, &b);
    for c in &cycles {
        map.insert(Meddler::new(c.id()), c);
    }
    drop(cycles); // garbage, alive until collected
    assert_eq!(map.len(), 6);
    drop(a);
    assert_eq!(map.len(), 5);
    let keep = Node::new(20);
    let failed = panic::catch_unwind(AssertUnwindSafe(|| map.insert(Meddler::new(20), &keep)));
    assert_eq!(
        panic_message(&failed.err().unwrap()),
        "key 1 panics in its drop"
    );
    assert_eq!(KEY_DROPS.get(), 2, "the dead key and the argument");
    assert_eq!(map.len(), 5);
    assert!(map.get(&20).is_none(), "the insert did not happen");
    drop(b); // its key collects the cycles when it is dropped
    assert_eq!(map.len(), 4);
    assert!(map.insert(Meddler::new(20), &keep).is_none());
    assert_eq!(map.len(), 1, "the cycles died while b's key was dropped");
    assert_eq!(
        KEY_DROPS.get(),
        2 + 1 + 4,
        "b's key, and the cycles' keys in the same call"
    );
    assert_eq!(take_drops(), [1, 2, 10, 11, 12, 13]);
    assert!(Gc::ptr_eq(&map.get(&20).unwrap(), &keep));
    drop(map);
    assert_eq!(KEY_DROPS.get(), 8);
    drop(keep);
    assert_eq!(take_drops(), [20]);
}

thread_local! {
    static CASCADE: RefCell<WeakValueMap<u32, Node>> = RefCell::new(WeakValueMap::new());
}

/// A value of a key map that, when dropped, lets go of the key of another
/// entry of the same map and puts entries in a second map.
struct Chained {
    next: Option<Gc<Node>>,
    log: u32,
}

impl Drop for Chained {
    fn drop(&mut self) {
        let spare = Node::new(100 + self.log);
        CASCADE.with(|m| m.borrow_mut().insert(self.log, &spare));
        // The spare dies at once, the next key with it.
        drop(spare);
        drop(self.next.take());
    }
}

/// The values of a key map form a chain: dropping one (when its key dies
/// and the map's next `&mut` call takes the entry out, or in `retain`,
/// `clear` or the map's drop) lets go of the next entry's key. Each
/// operation takes out the whole chain in one call, drops each value once,
/// and leaves `len()` exact; the values' `Drop`s use another map freely.
/// (`retain`: `retain_takes_out_the_entries_that_died_during_it`.)
#[test]
fn values_whose_drops_kill_the_next_key_go_in_one_call() {
    for how in ["remove_dead", "clear", "drop"] {
        take_drops();
        let mut map: WeakKeyMap<Node, Chained> = WeakKeyMap::new();
        let nodes: Vec<_> = (0..6).map(Node::new).collect();
        for (i, n) in nodes.iter().enumerate() {
            let next = nodes.get(i + 1).cloned();
            map.insert(
                n,
                Chained {
                    next,
                    log: i as u32,
                },
            );
        }
        let mut nodes = nodes.into_iter();
        let head = nodes.next().unwrap();
        drop(nodes); // the rest are held by the values, one by the next
        assert_eq!(map.len(), 6);
        match how {
            "remove_dead" => {
                drop(head);
                assert_eq!(map.len(), 5, "the head's value is not dropped yet");
                let spare = Gc::new(Node {
                    log: support::DropLog(99),
                    edges: RefCell::new(Vec::new()),
                });
                map.insert(
                    &spare,
                    Chained {
                        next: None,
                        log: 99,
                    },
                );
                assert_eq!(map.len(), 1, "the whole chain went in one call");
                assert_eq!(map.iter().count(), 1);
                drop(spare);
                map.retain(|_, _| true);
            }
            "clear" => {
                map.clear();
                assert_eq!(map.len(), 0);
                drop(head);
            }
            _ => {
                drop(std::mem::take(&mut map));
                drop(head);
            }
        }
        assert!(map.is_empty());
        let mut drops = take_drops();
        drops.retain(|&id| id < 100 || id == 99);
        drops.retain(|&id| id != 99);
        assert_eq!(drops, [0, 1, 2, 3, 4, 5], "{how}: each key dropped once");
        CASCADE.with(|m| {
            let mut m = m.borrow_mut();
            assert_eq!(m.len(), 0, "{how}: the spares died");
            m.clear();
        });
    }
}

/// `retain` "removes the rest, and every dead entry": also the entries
/// whose objects died while it ran (killed by `keep`, or by the drop of an
/// entry it let go), which it had already met and kept. Their keys and
/// values are dropped before it returns, a chain of them at once.
/// (They stayed in the table, uncounted, until the next `&mut` call.)
#[test]
fn retain_takes_out_the_entries_that_died_during_it() {
    // A key map whose values form a chain, as above, against the order in
    // which `retain` meets them: letting go of the entry it meets last
    // kills the key of the one it met before, and so on.
    take_drops();
    let mut map: WeakKeyMap<Node, Chained> = WeakKeyMap::new();
    let nodes: Vec<_> = (0..6).map(Node::new).collect();
    for n in &nodes {
        map.insert(
            n,
            Chained {
                next: None,
                log: n.id(),
            },
        );
    }
    let order: Vec<Gc<Node>> = map.keys().collect();
    for pair in order.windows(2) {
        map.get_mut(&pair[1]).unwrap().next = Some(pair[0].clone());
    }
    let head = order[5].clone();
    drop((nodes, order));
    map.retain(|k, _| !Gc::ptr_eq(k, &head));
    // The values of the entries that died during `retain` are dropped
    // with them, and the keys they held die in turn.
    assert_eq!(map.len(), 0, "a dead entry's value outlived retain");
    let mut drops = take_drops();
    drops.retain(|&id| id < 100); // the spares
    assert_eq!(drops.len(), 5, "every other key dropped, and its value");
    assert!(!drops.contains(&head.id()));
    drop(head);
    assert_eq!(take_drops().len(), 1);
    CASCADE.with(|m| m.borrow_mut().clear());

    // A value map whose `keep` kills the values of entries it met and kept.
    KEY_DROPS.set(0);
    let mut map = WeakValueMap::new();
    let nodes: Vec<_> = (0..6).map(Node::new).collect();
    for n in &nodes {
        map.insert(Meddler::new(n.id()), n);
    }
    let held = RefCell::new(nodes);
    let mut met = 0;
    map.retain(|_, _| {
        met += 1;
        if met == 6 {
            held.borrow_mut().clear(); // the five met before, and the sixth
        }
        true
    });
    assert_eq!(met, 6);
    assert_eq!(map.len(), 0);
    assert_eq!(
        KEY_DROPS.get(),
        6,
        "the dead entries' keys went with retain"
    );
    assert_eq!(take_drops(), [0, 1, 2, 3, 4, 5]);
}

// ---------------------------------------------------------------------
// Death callbacks that use, cancel or drop what watches their object.

thread_local! {
    static SHARED_MAP: RefCell<WeakValueMap<u32, Node>> = RefCell::new(WeakValueMap::new());
    static SHARED_KEYS: RefCell<WeakKeyMap<Node, u32>> = RefCell::new(WeakKeyMap::new());
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn seen(what: String) {
    SEEN.with(|s| s.borrow_mut().push(what));
}

/// A callback that uses the maps watching its object (and its peers):
/// reads them, inserts new live entries, removes others, iterates and
/// retains. By count and by collection alike, the maps have already left
/// out every object that died with it, and what the callback changes
/// stays as it left it.
#[test]
fn a_callback_may_use_every_map_that_watches_its_object() {
    for by_collection in [false, true] {
        let survivor = Node::new(50);
        let (a, b) = (Node::new(1), Node::new(2));
        if by_collection {
            a.link(&b);
            b.link(&a);
        }
        SHARED_MAP.with(|m| {
            let mut m = m.borrow_mut();
            m.insert(1, &a);
            m.insert(2, &b);
            m.insert(50, &survivor);
        });
        SHARED_KEYS.with(|m| {
            let mut m = m.borrow_mut();
            m.insert(&a, 1);
            m.insert(&b, 2);
            m.insert(&survivor, 50);
        });
        let fresh: Rc<RefCell<Vec<Gc<Node>>>> = Rc::default();
        let callbacks: Vec<_> = [&a, &b]
            .into_iter()
            .map(|x| {
                let (id, fresh) = (x.id(), fresh.clone());
                Gc::on_death(x, move || {
                    let new = Node::new(10 + id);
                    SHARED_MAP.with(|m| {
                        let mut m = m.borrow_mut();
                        seen(format!(
                            "{id}: len {} get {} iter {}",
                            m.len(),
                            m.get(&id).is_some(),
                            m.iter().count()
                        ));
                        m.insert(10 + id, &new);
                        m.retain(|k, _| *k != 50);
                    });
                    SHARED_KEYS.with(|m| {
                        let mut m = m.borrow_mut();
                        m.insert(&new, 10 + id);
                        assert_eq!(m.remove(&new), Some(10 + id));
                        m.insert(&new, 10 + id);
                    });
                    fresh.borrow_mut().push(new);
                })
            })
            .collect();
        drop((a, b));
        if by_collection {
            assert_eq!(gcptr::collect(), 2);
            // Both had died when either callback ran; whichever ran first
            // took the survivor's entry out.
            let mut s = SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
            s.sort();
            assert_eq!(
                s,
                ["1: len 1 get false iter 1", "2: len 1 get false iter 1"]
            );
        } else {
            // `b` was alive when `a`'s callback ran.
            assert_eq!(
                SEEN.with(|s| std::mem::take(&mut *s.borrow_mut())),
                ["1: len 2 get false iter 2", "2: len 1 get false iter 1"]
            );
        }
        assert!(callbacks.iter().all(|c| !c.is_pending()));
        assert_eq!(take_drops(), [1, 2]);
        SHARED_MAP.with(|m| {
            let m = m.borrow();
            assert_eq!(m.len(), 2, "the callbacks' entries, not the survivor's");
            assert!(m.get(&11).is_some() && m.get(&12).is_some() && m.get(&50).is_none());
        });
        SHARED_KEYS.with(|m| {
            let m = m.borrow();
            assert_eq!(m.len(), 3);
            assert_eq!(m.get(&survivor), Some(&50));
        });
        drop(fresh);
        drop(survivor);
        assert_eq!(take_drops(), [11, 12, 50]);
        SHARED_MAP.with(|m| assert!(m.borrow().is_empty()));
        SHARED_KEYS.with(|m| assert!(m.borrow().is_empty()));
    }
}

/// Callbacks of one object run newest first, each once: one may cancel
/// another that has not run yet (it never runs, `cancel` says it was
/// pending), drop a `WeakWithCallback` of the same object (cancelled with
/// it), and register a callback on a live object, which runs at that
/// object's death, not before.
#[test]
fn callbacks_of_one_object_may_cancel_drop_and_register_each_other() {
    for by_collection in [false, true] {
        let x = Node::new(1);
        if by_collection {
            x.link(&x);
        }
        let later = Node::new(2);
        let ran: Rc<RefCell<Vec<&str>>> = Rc::default();
        let log = |name: &'static str| {
            let ran = ran.clone();
            move || ran.borrow_mut().push(name)
        };
        let cancelled = Rc::new(Gc::on_death(&x, log("cancelled")));
        let weak_dropped = Rc::new(RefCell::new(Some(Gc::downgrade_with(
            &x,
            log("weak dropped"),
        ))));
        let registered = Rc::new(RefCell::new(Vec::new()));
        let (c, w, r, x_weak, l) = (
            cancelled.clone(),
            weak_dropped.clone(),
            registered.clone(),
            Gc::downgrade(&x),
            Gc::downgrade(&later),
        );
        let on_later = log("on later");
        let ran2 = ran.clone();
        let first = Gc::on_death(&x, move || {
            ran2.borrow_mut().push("first");
            assert!(c.cancel(), "still pending");
            assert!(!c.cancel(), "cancelled once");
            drop(w.borrow_mut().take());
            assert!(x_weak.upgrade().is_none());
            let l = l.upgrade().expect("alive");
            r.borrow_mut().push(Gc::on_death(&l, on_later));
        });
        drop(x);
        if by_collection {
            assert_eq!(gcptr::collect(), 1);
        }
        assert_eq!(*ran.borrow(), ["first"]);
        assert!(!first.is_pending() && !cancelled.is_pending());
        assert!(weak_dropped.borrow().is_none());
        let on_later = registered.borrow_mut().pop().unwrap();
        assert!(on_later.is_pending());
        drop(on_later); // dropping the handle does not cancel
        assert_eq!(take_drops(), [1]);
        drop(later);
        assert_eq!(*ran.borrow(), ["first", "on later"]);
        assert_eq!(take_drops(), [2]);
    }
}

// ---------------------------------------------------------------------
// Panicking callbacks.

/// Every callback runs once even when they panic: the death (by count) or
/// the collection completes (values dropped, maps exact, the collector
/// consistent) and then the first panic propagates: the newest callback's
/// of an object, the first object's of a collection. The rest are dropped.
#[test]
fn panicking_callbacks_all_run_and_the_first_panic_comes_out_after_the_death() {
    let ran = Rc::new(Cell::new(0));
    let panicking = |x: &Gc<Node>, what: &'static str| {
        let ran = ran.clone();
        Gc::on_death(x, move || {
            ran.set(ran.get() + 1);
            panic!("{what}");
        })
    };
    // By count.
    let mut map = WeakValueMap::new();
    let x = Node::new(1);
    map.insert(1, &x);
    let _older = panicking(&x, "older");
    let _newer = panicking(&x, "newer");
    let weak = Gc::downgrade(&x);
    let failed = panic::catch_unwind(AssertUnwindSafe(|| drop(x)));
    assert_eq!(panic_message(&failed.unwrap_err()), "newer");
    assert_eq!(ran.get(), 2);
    assert_eq!(take_drops(), [1], "the value was dropped");
    assert!(weak.upgrade().is_none());
    assert_eq!(map.len(), 0);

    // By collection: a ring of three, two of them with panicking callbacks,
    // and a finalizer-free peer watched by the map.
    ran.set(0);
    let ring: Vec<_> = (10..13).map(Node::new).collect();
    for i in 0..3 {
        ring[i].link(&ring[(i + 1) % 3]);
        map.insert(ring[i].id(), &ring[i]);
    }
    let callbacks = [
        panicking(&ring[0], "ring 10"),
        panicking(&ring[1], "ring 11"),
    ];
    let weaks: Vec<_> = ring.iter().map(Gc::downgrade).collect();
    drop(ring);
    let before = gcptr::stats();
    let failed = panic::catch_unwind(gcptr::collect);
    let message = panic_message(&failed.unwrap_err());
    assert!(message == "ring 10" || message == "ring 11", "{message}");
    assert_eq!(ran.get(), 2);
    assert!(callbacks.iter().all(|c| !c.is_pending()));
    assert_eq!(take_drops(), [10, 11, 12], "the collection completed");
    assert!(weaks.iter().all(|w| w.upgrade().is_none()));
    assert_eq!((map.len(), map.iter().count()), (0, 0));
    let after = gcptr::stats();
    assert_eq!(after[2].collections, before[2].collections + 1);
    assert_eq!(after[2].collected, before[2].collected + 3);
    assert_eq!(gcptr::collect(), 0, "nothing left over");
    drop(weaks);
    map.clear();
}

/// A callback that panics while the thread is already unwinding (its object
/// dies by count in a drop that the unwinding runs, or in a collection a
/// `Drop` starts during it) does not abort the process: its panic is
/// dropped, as a `Drop`'s would be by CPython, and the first one goes on.
/// Run in a child process: a failure aborts.
#[test]
fn a_callback_panicking_during_unwinding_does_not_abort() {
    if !runs_here("a_callback_panicking_during_unwinding_does_not_abort") {
        return;
    }
    struct CollectsOnDrop;
    impl Drop for CollectsOnDrop {
        fn drop(&mut self) {
            gcptr::collect();
        }
    }
    let ran = Rc::new(Cell::new(0));
    let x = Node::new(1);
    let cycle = self_cycle(2);
    let mut map = WeakValueMap::new();
    map.insert(1, &x);
    map.insert(2, &cycle);
    let callbacks: Vec<_> = [&x, &cycle]
        .into_iter()
        .map(|o| {
            let ran = ran.clone();
            Gc::on_death(o, move || {
                ran.set(ran.get() + 1);
                panic!("callback");
            })
        })
        .collect();
    let failed = panic::catch_unwind(AssertUnwindSafe(move || {
        // Dropped in reverse order by the unwinding: the collector first,
        // with the cycle already garbage, then `x`.
        let _x = x;
        let _collects = CollectsOnDrop;
        drop(cycle);
        panic!("the first panic");
    }));
    assert_eq!(panic_message(&failed.unwrap_err()), "the first panic");
    assert_eq!(ran.get(), 2);
    assert!(callbacks.iter().all(|c| !c.is_pending()));
    assert_eq!(take_drops(), [1, 2]);
    assert_eq!(map.len(), 0);
}

// ---------------------------------------------------------------------
// Unsized values and keys.

trait Shape: Trace {
    fn sides(&self) -> u32;
}

#[derive(Trace)]
struct Polygon {
    sides: u32,
    log: support::DropLog,
}

impl Shape for Polygon {
    fn sides(&self) -> u32 {
        self.sides
    }
}

fn polygon(sides: u32) -> Gc<Polygon> {
    Gc::new(Polygon {
        sides,
        log: support::DropLog(sides),
    })
}

/// `Gc<[T]>`, `Gc<str>` and `Gc<dyn Trait>` as values, keys and members:
/// held weakly, found by identity (the header, whatever the pointer's
/// metadata: two coercions of one object are one key and one member), and
/// let go at once when they die, by count or in a collected cycle through
/// `dyn` and slice edges.
#[test]
fn unsized_values_keys_and_members() {
    let slice: Gc<[u32]> = Gc::from(vec![1, 2, 3]);
    let text: Gc<str> = Gc::from("text");
    let mut slices: WeakValueMap<&str, [u32]> = WeakValueMap::new();
    let mut texts: WeakKeyMap<str, usize> = WeakKeyMap::new();
    slices.insert("s", &slice);
    texts.insert(&text, text.len());
    assert_eq!(&*slices.get("s").unwrap(), [1, 2, 3]);
    assert_eq!(texts.get(&text), Some(&4));
    assert_eq!(texts.get(&Gc::from("text")), None, "by identity");
    drop((slice, text));
    assert_eq!((slices.len(), texts.len()), (0, 0));
    assert!(slices.get("s").is_none());

    let square = polygon(4);
    let as_dyn: Gc<dyn Shape> = gc_coerce!(square.clone() => dyn Shape);
    let again: Gc<dyn Shape> = gc_coerce!(square.clone() => dyn Shape);
    let mut shapes: WeakSet<dyn Shape> = WeakSet::new();
    let mut names: WeakKeyMap<dyn Shape, &str> = WeakKeyMap::new();
    let mut by_name: WeakValueMap<&str, dyn Shape> = WeakValueMap::new();
    assert!(shapes.insert(&as_dyn));
    assert!(!shapes.insert(&again), "the same object");
    assert_eq!(names.insert(&as_dyn, "square"), None);
    assert_eq!(names.insert(&again, "still square"), Some("square"));
    by_name.insert("square", &again);
    assert_eq!((shapes.len(), names.len(), by_name.len()), (1, 1, 1));
    assert_eq!(by_name.get("square").unwrap().sides(), 4);
    drop((as_dyn, again));
    assert_eq!(shapes.len(), 1, "still held by `square`");
    drop(square);
    assert_eq!((shapes.len(), names.len(), by_name.len()), (0, 0, 0));
    assert_eq!(take_drops(), [4]);

    // A cycle through a `dyn` edge and a slice edge.
    #[derive(Trace)]
    struct Holder {
        log: support::DropLog,
        shapes: RefCell<Vec<Gc<dyn Shape>>>,
        slice: RefCell<Option<Gc<[Gc<Holder>]>>>,
    }
    impl Shape for Holder {
        fn sides(&self) -> u32 {
            0
        }
    }
    let holder = Gc::new(Holder {
        log: support::DropLog(7),
        shapes: RefCell::new(Vec::new()),
        slice: RefCell::new(None),
    });
    let as_dyn: Gc<dyn Shape> = gc_coerce!(holder.clone() => dyn Shape);
    holder.shapes.borrow_mut().push(as_dyn.clone());
    let slice: Gc<[Gc<Holder>]> = Gc::from(vec![holder.clone()]);
    *holder.slice.borrow_mut() = Some(slice.clone());
    let mut slices: WeakKeyMap<[Gc<Holder>], u8> = WeakKeyMap::new();
    slices.insert(&slice, 1);
    shapes.insert(&as_dyn);
    by_name.insert("holder", &as_dyn);
    drop((holder, as_dyn, slice));
    assert_eq!((shapes.len(), by_name.len(), slices.len()), (1, 1, 1));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!((shapes.len(), by_name.len(), slices.len()), (0, 0, 0));
    assert!(by_name.get("holder").is_none());
    assert_eq!(take_drops(), [7]);
}

// ---------------------------------------------------------------------
// Maps inside the objects they watch.

#[derive(Trace)]
struct Registry {
    log: support::DropLog,
    peer: RefCell<Option<Gc<Registry>>>,
    values: RefCell<WeakValueMap<u32, Registry>>,
    keys: RefCell<WeakKeyMap<Registry, Gc<Node>>>,
    members: RefCell<WeakSet<Registry>>,
}

fn registry(id: u32) -> Gc<Registry> {
    Gc::new(Registry {
        log: support::DropLog(id),
        peer: RefCell::new(None),
        values: RefCell::new(WeakValueMap::new()),
        keys: RefCell::new(WeakKeyMap::new()),
        members: RefCell::new(WeakSet::new()),
    })
}

fn register(owner: &Gc<Registry>, watched: &Gc<Registry>) {
    owner.values.borrow_mut().insert(watched.log.0, watched);
    owner
        .keys
        .borrow_mut()
        .insert(watched, Node::new(100 + watched.log.0));
    owner.members.borrow_mut().insert(watched);
}

/// An object whose maps watch itself and a peer: when it dies (by count,
/// or with the peer in a collected cycle) its own death is told to the
/// maps it owns, then they are dropped with its value, with nodes on
/// their dead lists and entries still linked to the peer; every value
/// drops once, and the peer's maps go on exact.
#[test]
fn maps_owned_by_the_objects_they_watch() {
    // By count: `a` watches itself and `b`; `b` watches `a`.
    let (a, b) = (registry(1), registry(2));
    register(&a, &a);
    register(&a, &b);
    register(&b, &a);
    drop(a);
    assert_eq!(take_drops(), [1, 101, 102], "a, and its key map's values");
    assert_eq!(b.values.borrow().len(), 0);
    assert_eq!(b.keys.borrow().len(), 0);
    assert_eq!(b.members.borrow().len(), 0);
    drop(b);
    assert_eq!(take_drops(), [2, 101]);

    // In a collected cycle.
    let (a, b) = (registry(3), registry(4));
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    register(&a, &a);
    register(&a, &b);
    register(&b, &a);
    register(&b, &b);
    let outside = registry(5);
    register(&a, &outside);
    register(&outside, &a);
    drop((a, b));
    // The two, and the nodes their key maps hold (tracked objects too).
    assert_eq!(gcptr::collect(), 7);
    let mut drops = take_drops();
    drops.sort_unstable();
    assert_eq!(drops, [3, 4, 103, 103, 104, 104, 105]);
    assert_eq!(outside.values.borrow().len(), 0);
    assert_eq!(outside.members.borrow().len(), 0);
    drop(outside);
    assert_eq!(take_drops(), [5, 103]);
}

// ---------------------------------------------------------------------
// Finalizers and `Drop`s that a collection runs.

thread_local! {
    static DURING: RefCell<WeakValueMap<u32, Mourner>> = RefCell::new(WeakValueMap::new());
    static DURING_KEYS: RefCell<WeakKeyMap<Mourner, u32>> = RefCell::new(WeakKeyMap::new());
}

#[derive(Trace)]
#[gc(finalize)]
struct Mourner {
    log: support::DropLog,
    peer_id: u32,
    peer: RefCell<Option<Gc<Mourner>>>,
}

impl gcptr::Finalize for Mourner {
    fn finalize(&self) {
        let id = self.log.0;
        let Some(peer) = self.peer.borrow().clone() else {
            return;
        };
        // Finalizers run while the cycle is intact.
        assert_eq!(peer.log.0, self.peer_id);
        let (len, get, peer_get) = DURING.with(|m| {
            let m = m.borrow();
            (
                m.len(),
                m.get(&id).is_some(),
                m.get(&self.peer_id).is_some(),
            )
        });
        seen(format!(
            "finalize {id}: len {len} get {get} peer {peer_get}"
        ));
    }
}

impl Drop for Mourner {
    fn drop(&mut self) {
        let id = self.log.0;
        // The peer may be dropped already; its `Gc` still names it.
        let Some(peer) = self.peer.borrow_mut().take() else {
            return;
        };
        DURING.with(|m| {
            let mut m = m.borrow_mut();
            let (len, get) = (m.len(), m.get(&id).is_some());
            // An entry for a dead object: dead at once, never counted.
            m.insert(1000 + self.peer_id, &peer);
            seen(format!(
                "drop {id}: len {len} get {get} after insert {} {}",
                m.len(),
                m.get(&(1000 + self.peer_id)).is_some()
            ));
        });
        DURING_KEYS.with(|m| {
            let mut m = m.borrow_mut();
            *m.get_or_insert_with(&peer, || 0) += 1;
            assert_eq!(m.len(), 1, "only the outsider");
            assert!(m.get(&peer).is_none());
        });
    }
}

/// Inside the finalizers and `Drop`s that a collection runs, the maps have
/// left out every object of the garbage (`len`, `get`); a `Drop` that puts
/// a dead peer (whose `Gc` it still holds) into a map makes a dead entry,
/// never counted or returned, whose `Weak` keeps only the peer's memory
/// until the map's next `&mut` call takes it out.
#[test]
fn finalizers_and_drops_of_a_collection_see_its_garbage_gone_from_the_maps() {
    let outsider = Gc::new(Mourner {
        log: support::DropLog(9),
        peer_id: 9,
        peer: RefCell::new(None),
    });
    *outsider.peer.borrow_mut() = Some(outsider.clone());
    let [a, b] = [1, 2].map(|id| {
        Gc::new(Mourner {
            log: support::DropLog(id),
            peer_id: 3 - id,
            peer: RefCell::new(None),
        })
    });
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    DURING.with(|m| {
        let mut m = m.borrow_mut();
        m.insert(1, &a);
        m.insert(2, &b);
        m.insert(9, &outsider);
    });
    DURING_KEYS.with(|m| {
        m.borrow_mut().insert(&a, 1);
        m.borrow_mut().insert(&outsider, 9);
    });
    let weak_a = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    let mut s = SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
    s.sort();
    assert_eq!(
        s,
        [
            "drop 1: len 1 get false after insert 1 false",
            "drop 2: len 1 get false after insert 1 false",
            "finalize 1: len 1 get false peer false",
            "finalize 2: len 1 get false peer false",
        ]
    );
    assert_eq!(take_drops(), [1, 2]);
    assert!(weak_a.upgrade().is_none());
    DURING.with(|m| {
        let mut m = m.borrow_mut();
        assert_eq!((m.len(), m.iter().count()), (1, 1));
        m.retain(|_, _| true); // takes the dead entries out
    });
    DURING_KEYS.with(|m| {
        let mut m = m.borrow_mut();
        assert_eq!(m.len(), 1);
        m.retain(|_, _| true);
    });
    // The memory of `a` is no longer held by the maps.
    assert_eq!(weak_a.strong_count(), 0);
    *outsider.peer.borrow_mut() = None;
    drop(outsider);
    assert_eq!(take_drops(), [9]);
    SEEN.with(|s| s.borrow_mut().clear());
    DURING.with(|m| assert!(m.borrow().is_empty()));
}

// ---------------------------------------------------------------------
// Deep chains, and thread exit.

/// A chain of nodes deeper than the trashcan's limit, each watched by two
/// maps and a callback that reads one of them: dropping the head returns
/// with every entry gone and every callback run once, with no overflow of
/// the stack. (While the trashcan's queue waits, `len()` still counts the
/// queued deaths: the documented exception, so the callbacks see the count
/// fall, though not always by one.)
#[test]
fn a_deep_chain_of_watched_objects_dies_under_the_trashcan() {
    let n = support::scaled(100_000) as u32;
    let map = Rc::new(RefCell::new(WeakValueMap::new()));
    let mut keys = WeakKeyMap::new();
    let counts: Rc<RefCell<Vec<usize>>> = Rc::default();
    let mut callbacks = Vec::new();
    let mut head = Node::new(0);
    for id in 1..n {
        let node = Node::new(id);
        node.link(&head);
        map.borrow_mut().insert(id, &node);
        keys.insert(&node, id);
        let (map, counts) = (map.clone(), counts.clone());
        callbacks.push(Gc::on_death(&node, move || {
            counts.borrow_mut().push(map.borrow().len());
        }));
        head = node;
    }
    take_drops();
    assert_eq!(map.borrow().len(), n as usize - 1);
    drop(head);
    assert_eq!(map.borrow().len(), 0);
    assert_eq!(keys.len(), 0);
    assert!(callbacks.iter().all(|c| !c.is_pending()));
    let counts = counts.borrow();
    assert_eq!(counts.len(), n as usize - 1, "each callback once");
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "never back up");
    assert_eq!(*counts.last().unwrap(), 0);
    assert_eq!(take_drops().len(), n as usize);
    keys.clear();
}

thread_local! {
    static EXIT_EARLY: RefCell<WeakValueMap<u32, support::Reporter>> =
        RefCell::new(WeakValueMap::new());
    static EXIT_HELD: RefCell<Vec<Gc<support::Reporter>>> = const { RefCell::new(Vec::new()) };
    static EXIT_LATE: RefCell<WeakKeyMap<support::Reporter, u32>> =
        RefCell::new(WeakKeyMap::new());
    static EXIT_CALLBACKS: RefCell<Vec<gcptr::DeathCallback>> =
        const { RefCell::new(Vec::new()) };
}

/// Maps in thread-locals at thread exit, destroyed before and after the
/// objects they watch (held by another thread-local, or garbage cycles the
/// exit collection reclaims), with callbacks registered on those objects
/// that read the maps (`try_with`: they may be gone): every object is
/// dropped once and every callback runs once before the thread is joined.
#[test]
fn maps_in_thread_locals_at_thread_exit() {
    let (drops, dropped) = std::sync::mpsc::channel();
    let (calls, called) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Destroyed in the reverse order of their first use: EXIT_LATE
        // first, then EXIT_CALLBACKS, EXIT_HELD and EXIT_EARLY.
        EXIT_EARLY.with(|_| {});
        EXIT_HELD.with(|_| {});
        EXIT_CALLBACKS.with(|_| {});
        EXIT_LATE.with(|_| {});
        let reporter = |id| Gc::new(support::Reporter(id, drops.clone(), RefCell::new(None)));
        for id in 0..6 {
            let r = reporter(id);
            if id % 2 == 0 {
                *r.2.borrow_mut() = Some(r.clone()); // garbage at exit
            }
            EXIT_EARLY.with(|m| m.borrow_mut().insert(id, &r));
            EXIT_LATE.with(|m| m.borrow_mut().insert(&r, id));
            let calls = calls.clone();
            let callback = Gc::on_death(&r, move || {
                let early = EXIT_EARLY.try_with(|m| m.borrow().len()).ok();
                let late = EXIT_LATE.try_with(|m| m.borrow().len()).ok();
                let _ = calls.send((id, early, late));
            });
            EXIT_CALLBACKS.with(|c| c.borrow_mut().push(callback));
            if id % 2 == 1 {
                EXIT_HELD.with(|h| h.borrow_mut().push(r));
            }
        }
        assert_eq!(EXIT_EARLY.with(|m| m.borrow().len()), 6);
    })
    .join()
    .unwrap();
    let mut ids: Vec<u32> = dropped.try_iter().collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5], "each dropped once");
    let mut calls: Vec<_> = called.try_iter().collect();
    calls.sort_unstable();
    assert_eq!(calls.len(), 6, "each callback once: {calls:?}");
    for (i, &(id, early, _late)) in calls.iter().enumerate() {
        assert_eq!(id, i as u32);
        // The early map outlives every object; its count never includes
        // a dead one.
        assert!(early.is_some_and(|len| len < 6), "{calls:?}");
    }
    // The held objects die one at a time, each told before the next dies.
    let mut held: Vec<_> = calls.iter().filter(|c| c.0 % 2 == 1).map(|c| c.1).collect();
    held.sort_unstable();
    held.dedup();
    assert_eq!(held.len(), 3, "{calls:?}");
}

// ---------------------------------------------------------------------
// Limits, pinned.

/// A key map's values are strong (traced, as the values of Python's
/// `WeakKeyDictionary`): a value that holds its own key keeps the key, and
/// so the entry, alive while the map lives, even when nothing else does.
/// Only removing the entry (or dropping the map) lets the key go. As in
/// Python, this is a leak by design, not by accident: no ephemerons.
#[test]
fn a_key_held_by_its_own_value_lives_as_long_as_the_map() {
    let mut map: WeakKeyMap<Node, Gc<Node>> = WeakKeyMap::new();
    let key = Node::new(1);
    map.insert(&key, key.clone());
    let weak = Gc::downgrade(&key);
    drop(key);
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(map.len(), 1);
    let key = weak.upgrade().expect("held by the value");
    assert!(map.remove(&key).is_some());
    drop(key);
    assert_eq!(take_drops(), [1]);
    assert_eq!(map.len(), 0);
}

/// A death callback that captures its own object keeps it alive: the
/// callback belongs to the object's watchers, which no trace shows, so the
/// capture looks like a reference from outside, and no collection frees
/// the object (Python's `weakref.finalize` documents the same trap).
/// Cancelling the callback drops the capture, and the object dies then,
/// by count, with no callback left to run.
#[test]
fn a_callback_that_captures_its_object_keeps_it_until_cancelled() {
    let x = self_cycle(1);
    let captured = x.clone();
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let callback = Gc::on_death(&x, move || {
        let _ = &captured;
        flag.set(true);
    });
    let weak = Gc::downgrade(&x);
    drop(x);
    assert_eq!(gcptr::collect(), 0, "held by its own callback");
    assert!(weak.upgrade().is_some());
    assert!(callback.cancel());
    assert!(weak.upgrade().is_some(), "still the self-cycle");
    assert_eq!(gcptr::collect(), 1);
    assert!(!ran.get());
    assert_eq!(take_drops(), [1]);
}

// ---------------------------------------------------------------------
// Unique access to watched objects.

/// `make_mut` and `try_unwrap` of a watched object whose only strong
/// reference is the caller's: the value leaves the object, which dies to
/// its watchers (entries gone at once, callbacks run once, weak references
/// cleared); `make_mut`'s fresh object starts unwatched and can be watched
/// anew. `get_mut` refuses while a map's `Weak` exists, and a death
/// callback alone (no `Weak`) does not stop it, nor run.
#[test]
fn unique_access_to_watched_objects() {
    let ran = Rc::new(Cell::new(0));
    let count = |ran: &Rc<Cell<u32>>| {
        let ran = ran.clone();
        move || ran.set(ran.get() + 1)
    };
    let mut values = WeakValueMap::new();
    let mut set = WeakSet::new();

    let mut x = Gc::new(5u32);
    values.insert(1, &x);
    set.insert(&x);
    let callback = Gc::on_death(&x, count(&ran));
    assert!(Gc::get_mut(&mut x).is_none(), "the maps hold `Weak`s");
    let before = Gc::as_ptr(&x);
    *Gc::make_mut(&mut x) += 1;
    assert_ne!(Gc::as_ptr(&x), before, "moved to a fresh object");
    assert_eq!((values.len(), set.len(), ran.get()), (0, 0, 1));
    assert!(!callback.is_pending() && values.get(&1).is_none());
    assert!(!set.contains(&x), "the fresh object is not a member");
    values.insert(1, &x);
    set.insert(&x);
    assert_eq!(*values.get(&1).unwrap(), 6);

    let callback = Gc::on_death(&x, count(&ran));
    assert_eq!(Gc::try_unwrap(x), Ok(6));
    assert_eq!((values.len(), set.len(), ran.get()), (0, 0, 2));
    assert!(!callback.is_pending());

    let mut y = Gc::new(7u32);
    let callback = Gc::on_death(&y, count(&ran));
    *Gc::get_mut(&mut y).expect("no `Weak`") += 1;
    assert!(callback.is_pending(), "still watched");
    values.insert(2, &y);
    assert_eq!(*values.get(&2).unwrap(), 8);
    drop(y);
    assert_eq!((values.len(), ran.get()), (0, 3));
}

/// A `WeakKeyMap` and a `WeakSet` iterated while the loop body lets go of
/// entries and collects cycles among them (the members found garbage are
/// skipped from then on, none is met twice or after its death).
#[test]
fn key_maps_and_sets_iterated_while_the_body_collects() {
    let held: RefCell<Vec<Option<Gc<Node>>>> =
        RefCell::new((0..12).map(|id| Some(self_cycle(id))).collect());
    let mut keys = WeakKeyMap::new();
    let mut set = WeakSet::new();
    for n in held.borrow().iter().flatten() {
        keys.insert(n, n.id());
        set.insert(n);
    }
    let mut met = Vec::new();
    for (k, &id) in keys.iter() {
        assert_eq!(k.id(), id);
        met.push(id);
        drop(k);
        // Let go of this one and the next two, and collect them.
        for other in [id, (id + 1) % 12, (id + 2) % 12] {
            held.borrow_mut()[other as usize] = None;
        }
        gcptr::collect();
        assert_eq!(keys.len(), held.borrow().iter().flatten().count());
    }
    assert!(met.len() <= 12 && met.len() >= 4, "{met:?}");
    assert_eq!(keys.len(), 0);
    let mut unique = met.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), met.len(), "none met twice: {met:?}");
    assert_eq!(set.iter().count(), 0);
    let mut all = take_drops();
    all.dedup();
    assert_eq!(all, (0..12).collect::<Vec<_>>(), "each once");
}

// ---------------------------------------------------------------------
// Finalizers run by a death by count.

thread_local! {
    static SELF_MAP: RefCell<Option<WeakValueMap<u32, SelfWatcher>>> =
        RefCell::new(Some(WeakValueMap::new()));
    static SELF_SET: RefCell<WeakSet<SelfWatcher>> = RefCell::new(WeakSet::new());
    static KEPT: RefCell<Vec<Gc<SelfWatcher>>> = const { RefCell::new(Vec::new()) };
    static CALLED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

#[derive(Trace)]
#[gc(finalize)]
struct SelfWatcher {
    id: u32,
    me: gcptr::Weak<SelfWatcher>,
    #[gc(skip)]
    resurrect: bool,
    #[gc(skip)]
    drop_map: bool,
}

impl gcptr::Finalize for SelfWatcher {
    fn finalize(&self) {
        // Dying by count, the object still upgrades in its finalizer.
        let me = self.me.upgrade().expect("alive in its finalizer");
        SELF_SET.with(|s| {
            let mut s = s.borrow_mut();
            assert!(s.contains(&me));
            s.insert(&me);
        });
        SELF_MAP.with(|m| {
            if self.drop_map {
                drop(m.borrow_mut().take());
            } else if let Some(m) = m.borrow_mut().as_mut() {
                assert_eq!(m.len(), 1, "still counted in its finalizer");
                m.insert(self.id + 100, &me);
                assert_eq!(m.len(), 2);
            }
        });
        let id = self.id;
        // Registered on an object that still upgrades: runs at its death.
        drop(Gc::on_death(&me, move || {
            CALLED.with(|c| c.borrow_mut().push(id));
        }));
        if self.resurrect {
            KEPT.with(|k| k.borrow_mut().push(me));
        }
    }
}

/// A finalizer run by a death by count (the object still upgrades then)
/// watches its own object anew: map entries, a set member and a death
/// callback made there are told at once if the object then dies, and
/// stay live if the finalizer resurrected it (until its death for good,
/// which runs the callback once and the finalizer never again). A
/// finalizer may also drop the map that watches its object.
#[test]
fn a_finalizer_run_by_count_may_watch_its_own_object() {
    for (resurrect, drop_map) in [(false, false), (true, false), (false, true)] {
        SELF_MAP.with(|m| *m.borrow_mut() = Some(WeakValueMap::new()));
        let x = Gc::new_cyclic(|me| SelfWatcher {
            id: 1,
            me: me.clone(),
            resurrect,
            drop_map,
        });
        SELF_MAP.with(|m| m.borrow_mut().as_mut().unwrap().insert(1, &x));
        SELF_SET.with(|s| s.borrow_mut().insert(&x));
        drop(x);
        let set_len = SELF_SET.with(|s| s.borrow().len());
        let map_len = SELF_MAP.with(|m| m.borrow().as_ref().map(|m| m.len()));
        let called = CALLED.with(|c| std::mem::take(&mut *c.borrow_mut()));
        if resurrect {
            assert_eq!((set_len, map_len, called.len()), (1, Some(2), 0));
            let x = KEPT.with(|k| k.borrow_mut().pop()).unwrap();
            SELF_MAP.with(|m| {
                let m = m.borrow();
                let m = m.as_ref().unwrap();
                assert!(Gc::ptr_eq(&m.get(&1).unwrap(), &x));
                assert!(Gc::ptr_eq(&m.get(&101).unwrap(), &x));
            });
            drop(x); // for good: no finalizer this time
            assert_eq!(CALLED.with(|c| std::mem::take(&mut *c.borrow_mut())), [1]);
            assert!(KEPT.with(|k| k.borrow().is_empty()));
        } else {
            assert_eq!(called, [1]);
            assert_eq!(map_len, if drop_map { None } else { Some(0) });
        }
        assert_eq!(SELF_SET.with(|s| s.borrow().len()), 0);
        assert_eq!(
            SELF_MAP.with(|m| m.borrow().as_ref().map_or(0, |m| m.len())),
            0
        );
        SELF_SET.with(|s| s.borrow_mut().clear());
    }
}
