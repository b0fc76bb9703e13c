//! What a review of the public pointer API (`Gc`, `Weak`) and the
//! inspection functions (`referents`, `referrers`, `is_tracked`,
//! `ObjectRef`) checked against `std::rc` and CPython's `gc` module:
//! `make_mut` whose `Clone` collects, upgrades, panics or drops the other
//! handles, and the `&mut` it lends across collections (Miri sees no trace
//! of the borrowed value); `get_mut`, `try_unwrap`, `into_inner` and
//! `unwrap_or_clone` with `Weak`s and `ObjectRef`s alive; `new_cyclic`
//! whose closure reads counts, collects, lists referrers, keeps or drops
//! its `Weak`; every value trait (`==`, `cmp`, `hash`, `Debug`, `Display`,
//! `AsRef`, `Borrow`) of a peer the collector dropped, from a `Drop`;
//! counts in finalizers, by count and in a collection, and after a
//! resurrection; `referrers` and `referents` from `Drop`s and finalizers
//! during a collection; `ObjectRef`s that outlive their objects.

#![allow(dead_code)] // the `DropLog` fields exist to log their drops, not to be read

mod support;

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{Finalize, Gc, ObjectRef, Trace, Weak};
use support::{panic_message, take_drops, DropLog};

/// The start of the message of the panic a dead value's access raises.
const DEAD: &str = "gcptr: this object's value was already dropped by the cycle collector";

/// Restores the default thresholds when a test that lowers them ends, even
/// by a failed assertion.
struct Thresholds;

impl Thresholds {
    fn set(thresholds: [usize; 3]) -> Thresholds {
        gcptr::set_threshold(thresholds);
        Thresholds
    }
}

impl Drop for Thresholds {
    fn drop(&mut self) {
        gcptr::set_threshold([700, 10, 10]);
    }
}

// ---------------------------------------------------------------------
// `make_mut`

thread_local! {
    /// Strong handles a `Clone` impl kept.
    static KEPT: RefCell<Vec<Gc<Doc>>> = const { RefCell::new(Vec::new()) };
    /// A handle that a `Clone` impl drops (the other strong reference).
    static OTHER: RefCell<Option<Gc<Doc>>> = const { RefCell::new(None) };
    /// What `Doc::clone` does besides cloning.
    static ON_CLONE: Cell<OnClone> = const { Cell::new(OnClone::Nothing) };
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum OnClone {
    Nothing,
    /// Upgrades the value's `me` and keeps the handle, allocates tracked
    /// objects (the threshold is low: automatic collections) and collects.
    UpgradeAndCollect,
    /// Drops `OTHER`, the other strong reference to the object.
    DropOther,
    Panic,
}

/// A tracked document with a `Weak` to its own object and a logged drop.
#[derive(Trace)]
struct Doc {
    #[gc(skip)]
    log: DropLog,
    #[gc(skip)]
    text: String,
    me: Weak<Doc>,
    children: RefCell<Vec<Gc<Doc>>>,
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Doc({}, {:?})", self.log.0, self.text)
    }
}

impl Clone for Doc {
    fn clone(&self) -> Doc {
        match ON_CLONE.with(Cell::get) {
            OnClone::Nothing => {}
            OnClone::UpgradeAndCollect => {
                let me = self.me.upgrade().expect("the object being cloned is alive");
                KEPT.with(|k| k.borrow_mut().push(me));
                for i in 0..8 {
                    let n = doc(900 + i, "garbage");
                    n.children.borrow_mut().push(n.clone());
                }
                gcptr::collect();
            }
            OnClone::DropOther => drop(OTHER.with(|o| o.borrow_mut().take())),
            OnClone::Panic => panic!("clone failed"),
        }
        Doc {
            log: DropLog(self.log.0 + 100),
            text: self.text.clone(),
            me: self.me.clone(),
            children: RefCell::new(self.children.borrow().clone()),
        }
    }
}

/// A `Doc` whose `me` points at nothing: no `Weak` to it exists.
fn plain_doc(id: u32, text: &str) -> Gc<Doc> {
    Gc::new(Doc {
        log: DropLog(id),
        text: text.into(),
        me: Weak::new(),
        children: RefCell::new(Vec::new()),
    })
}

fn doc(id: u32, text: &str) -> Gc<Doc> {
    Gc::new_cyclic(|me| Doc {
        log: DropLog(id),
        text: text.into(),
        me: me.clone(),
        children: RefCell::new(Vec::new()),
    })
}

/// `make_mut` of a shared object whose `Clone` upgrades a `Weak` to the
/// object being cloned, keeps that handle, and runs automatic and full
/// collections that trace the object meanwhile: the clone goes to a new
/// object that `this` alone holds; the old object, its value untouched,
/// keeps the handles (the other one, the kept upgrade) and its `Weak`s.
#[test]
fn make_mut_whose_clone_upgrades_and_collects() {
    let _thresholds = Thresholds::set([2, 10, 10]);
    ON_CLONE.with(|c| c.set(OnClone::UpgradeAndCollect));
    let mut a = doc(1, "one");
    let other = a.clone();
    let weak = Gc::downgrade(&a);
    Gc::make_mut(&mut a).text.push_str(" (edited)");
    ON_CLONE.with(|c| c.set(OnClone::Nothing));
    assert!(!Gc::ptr_eq(&a, &other));
    assert_eq!(
        (a.text.as_str(), other.text.as_str()),
        ("one (edited)", "one")
    );
    assert_eq!(Gc::strong_count(&a), 1);
    assert_eq!(Gc::weak_count(&a), 0);
    assert_eq!(Gc::strong_count(&other), 2, "`other` and the kept upgrade");
    assert!(Gc::ptr_eq(&weak.upgrade().unwrap(), &other));
    // The clone's `me` is a clone of the old `Weak`: it names the old object.
    assert!(Gc::ptr_eq(&a.me.upgrade().unwrap(), &other));
    let garbage: Vec<u32> = take_drops();
    assert!(garbage.iter().all(|&id| id >= 900), "{garbage:?}");
    KEPT.with(|k| k.borrow_mut().clear());
    drop((a, other));
    assert_eq!(take_drops(), [1, 101]);
    assert!(weak.upgrade().is_none());
}

/// The `&mut` that `make_mut` lends (on both of its paths: a shared
/// object cloned, a unique one with `Weak`s moved to a fresh allocation)
/// lives across automatic and full collections that the program's own
/// allocations start: the collector never traces the borrowed value
/// (Miri would report the read under either borrow model), and the object
/// comes back into its care at its next lost reference: a cycle closed
/// through it afterwards is collected.
#[test]
fn make_mut_reference_lives_across_collections() {
    let _thresholds = Thresholds::set([1, 1, 1]);
    for shared in [true, false] {
        let mut a = doc(1, "one");
        let other = shared.then(|| a.clone());
        let weak = (!shared).then(|| Gc::downgrade(&a));
        let m = Gc::make_mut(&mut a);
        m.text.push('!');
        for i in 0..4 {
            let n = doc(900 + i, "garbage");
            n.children.borrow_mut().push(n.clone());
        }
        gcptr::collect();
        m.text.push('?');
        m.children.get_mut().push(doc(2, "child"));
        gcptr::collect();
        m.text.push('.');
        assert_eq!(a.text, "one!?.");
        assert!(gcptr::is_tracked(&a));
        // A cycle through the new object is found once it is let go.
        let child = a.children.borrow()[0].clone();
        child.children.borrow_mut().push(a.clone());
        drop((a, child));
        assert_eq!(gcptr::collect(), 2, "shared: {shared}");
        let mut drops = take_drops();
        drops.retain(|&id| id < 900);
        let expected: &[u32] = if shared { &[2, 101] } else { &[1, 2] };
        assert_eq!(drops, expected, "shared: {shared}");
        if let Some(weak) = weak {
            assert!(weak.upgrade().is_none(), "make_mut disassociates the Weak");
        }
        drop(other);
        take_drops();
    }
}

/// `make_mut` of a shared object whose `Clone` drops the other strong
/// reference: the old object's last handle is then `this`'s, and it dies
/// as `make_mut` puts the clone in its place, its value dropped once.
#[test]
fn make_mut_whose_clone_drops_the_other_handle() {
    let mut a = doc(1, "one");
    let weak = Gc::downgrade(&a);
    OTHER.with(|o| *o.borrow_mut() = Some(a.clone()));
    ON_CLONE.with(|c| c.set(OnClone::DropOther));
    Gc::make_mut(&mut a).text.push('!');
    ON_CLONE.with(|c| c.set(OnClone::Nothing));
    assert_eq!(take_drops(), [1], "the old object died in make_mut");
    assert!(weak.upgrade().is_none());
    assert_eq!(a.text, "one!");
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (1, 0));
    drop(a);
    assert_eq!(take_drops(), [101]);
}

/// `make_mut` and `unwrap_or_clone` whose `Clone` panics change nothing:
/// `this` still holds the old object, the counts are back, and nothing is
/// dropped (as `Rc::make_mut`).
#[test]
fn make_mut_and_unwrap_or_clone_whose_clone_panics_change_nothing() {
    let mut a = doc(1, "one");
    let other = a.clone();
    let weak = Gc::downgrade(&a);
    ON_CLONE.with(|c| c.set(OnClone::Panic));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        Gc::make_mut(&mut a);
    }));
    assert_eq!(panic_message(&caught.unwrap_err()), "clone failed");
    assert!(Gc::ptr_eq(&a, &other));
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (2, 2));
    let caught = catch_unwind(AssertUnwindSafe(|| Gc::unwrap_or_clone(other.clone())));
    assert_eq!(panic_message(&caught.unwrap_err()), "clone failed");
    ON_CLONE.with(|c| c.set(OnClone::Nothing));
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (2, 2));
    assert_eq!(take_drops(), Vec::<u32>::new());
    drop(other);
    assert_eq!(Gc::unwrap_or_clone(a).text, "one");
    assert_eq!(take_drops(), [1]);
    assert!(weak.upgrade().is_none());
}

// ---------------------------------------------------------------------
// `get_mut`, `try_unwrap`, `into_inner`: the handles that keep a value
// shared.

/// An `ObjectRef` (from `referrers`) holds a weak unit, as a `Weak` does:
/// `get_mut` refuses while it lives, `make_mut` moves the value away from
/// it and `try_unwrap` takes the value from under it; either way it stops
/// upgrading (`downcast` is `None`, its strong count 0), as the `Weak`s do,
/// and the old memory goes with the last of them (Miri's leak check).
#[test]
fn object_refs_count_as_weak_references() {
    for how in ["make_mut", "try_unwrap"] {
        let leaf = Gc::new(5u32);
        let mut holder = Gc::new(RefCell::new(vec![leaf.clone()]));
        let found: Vec<ObjectRef> = gcptr::referrers(&leaf);
        assert_eq!(found.len(), 1);
        assert_eq!(Gc::weak_count(&holder), 1, "the ObjectRef's unit");
        assert!(Gc::get_mut(&mut holder).is_none());
        let weak = Gc::downgrade(&holder);
        match how {
            "make_mut" => {
                Gc::make_mut(&mut holder).get_mut().push(leaf.clone());
                assert_eq!(holder.borrow().len(), 2);
                assert!(Gc::get_mut(&mut holder).is_some());
            }
            _ => {
                let value = Gc::try_unwrap(holder).unwrap();
                assert_eq!(value.borrow().len(), 1);
                holder = Gc::new(value);
            }
        }
        assert!(found[0].downcast::<RefCell<Vec<Gc<u32>>>>().is_none());
        assert_eq!(found[0].strong_count(), 0);
        assert!(weak.upgrade().is_none());
        assert_eq!((weak.strong_count(), weak.weak_count()), (0, 0));
        assert_eq!(found[0].address(), weak.as_ptr().cast::<()>());
        assert_ne!(found[0].address(), Gc::as_ptr(&holder).cast::<()>());
        drop((found, weak));
    }
}

/// `try_unwrap`, `into_inner` and `unwrap_or_clone` as `Rc`'s: refused
/// (the handle given back intact) while another strong reference exists;
/// with only `Weak`s left, the value comes out, the `Weak`s stop upgrading
/// and report counts of 0, and no finalizer runs for the moved value.
#[test]
fn unwrapping_as_rc_does() {
    let a = doc(1, "one");
    let b = a.clone();
    let weak = Gc::downgrade(&a);
    let a = Gc::try_unwrap(a).unwrap_err();
    assert!(Gc::ptr_eq(&a, &b));
    assert_eq!(Gc::strong_count(&a), 2);
    assert!(Gc::into_inner(a).is_none());
    assert_eq!(Gc::strong_count(&b), 1);
    assert_eq!(weak.strong_count(), 1);
    let value = Gc::into_inner(b).unwrap();
    assert!(weak.upgrade().is_none());
    assert_eq!((weak.strong_count(), weak.weak_count()), (0, 0));
    // The value's own `me` is one of those `Weak`s.
    assert!(value.me.upgrade().is_none());
    assert_eq!(take_drops(), Vec::<u32>::new());
    drop(value);
    assert_eq!(take_drops(), [1]);
    let c = Gc::new(7u8);
    let d = c.clone();
    assert_eq!(Gc::unwrap_or_clone(c), 7);
    assert_eq!(Gc::strong_count(&d), 1);
    assert_eq!(Gc::unwrap_or_clone(d), 7);
}

// ---------------------------------------------------------------------
// `new_cyclic`

thread_local! {
    static CYCLIC_SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static CYCLIC_KEPT: RefCell<Option<Weak<Doc>>> = const { RefCell::new(None) };
}

/// Inside `new_cyclic`'s closure, as in `Rc::new_cyclic`'s, the `Weak`
/// does not upgrade and both its counts are 0; the half-made object is in
/// no list, so a full collection there neither traces its uninitialized
/// value (Miri) nor counts it, and `referrers` does not list it. A clone
/// of the `Weak` kept past the closure upgrades once it returns.
#[test]
fn new_cyclic_closure_sees_a_half_made_object() {
    let leaf = Gc::new(9u32);
    let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
    let a = Gc::new_cyclic(|me: &Weak<Doc>| {
        let seen = format!(
            "upgrade: {}, strong: {}, weak: {}, collect: {}, referrers: {}",
            me.upgrade().is_some(),
            me.strong_count(),
            me.weak_count(),
            gcptr::collect(),
            gcptr::referrers(&leaf).len(),
        );
        CYCLIC_SEEN.with(|s| s.borrow_mut().push(seen));
        CYCLIC_KEPT.with(|k| *k.borrow_mut() = Some(me.clone()));
        Doc {
            log: DropLog(1),
            text: "a".into(),
            me: me.clone(),
            children: RefCell::new(vec![doc(2, "child")]),
        }
    });
    let seen = CYCLIC_SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
    assert_eq!(
        seen,
        ["upgrade: false, strong: 0, weak: 0, collect: 0, referrers: 1"]
    );
    let kept = CYCLIC_KEPT.with(|k| k.borrow_mut().take()).unwrap();
    assert!(Gc::ptr_eq(&kept.upgrade().unwrap(), &a));
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (1, 2));
    assert!(gcptr::is_tracked(&a));
    drop(kept);
    assert_eq!(Gc::weak_count(&a), 1);
    drop((a, holder));
    assert_eq!(take_drops(), [1, 2]);
}

/// A `new_cyclic` closure that drops every `Weak` it made and returns a
/// value without one: the object is an ordinary one, with no `Weak`, and
/// `get_mut` lends its value.
#[test]
fn new_cyclic_whose_closure_keeps_no_weak() {
    let mut a = Gc::new_cyclic(|me: &Weak<Doc>| {
        let clones: Vec<Weak<Doc>> = (0..3).map(|_| me.clone()).collect();
        assert_eq!(me.weak_count(), 0, "no strong reference yet");
        drop(clones);
        Doc {
            log: DropLog(1),
            text: "a".into(),
            me: Weak::new(),
            children: RefCell::new(Vec::new()),
        }
    });
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (1, 0));
    Gc::get_mut(&mut a).unwrap().text.push('!');
    assert_eq!(Gc::try_unwrap(a).ok().unwrap().text, "a!");
    assert_eq!(take_drops(), [1]);
}

// ---------------------------------------------------------------------
// The value traits of a dead peer.

thread_local! {
    /// What `Probe::drop` saw of its peer, one line per operation.
    static PROBED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A node of a garbage cycle whose `Drop` tries every operation on the
/// peer it holds, which the collector condemned (and may have dropped).
#[derive(Trace)]
struct Probe {
    #[gc(skip)]
    log: DropLog,
    #[gc(skip)]
    id: u32,
    peer: RefCell<Option<Gc<Probe>>>,
}

impl Clone for Probe {
    fn clone(&self) -> Probe {
        Probe {
            log: DropLog(self.log.0 + 100),
            id: self.id,
            peer: RefCell::new(self.peer.borrow().clone()),
        }
    }
}

impl PartialEq for Probe {
    fn eq(&self, other: &Probe) -> bool {
        self.id == other.id
    }
}
impl Eq for Probe {}
impl PartialOrd for Probe {
    fn partial_cmp(&self, other: &Probe) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Probe {
    fn cmp(&self, other: &Probe) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}
impl Hash for Probe {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Probe({})", self.id)
    }
}
impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probe {}", self.id)
    }
}

/// How `op` ended: "ok: ..." or the panic's message, cut to `DEAD`'s
/// length when it is the collector's.
fn outcome(op: impl FnOnce() -> String) -> String {
    match catch_unwind(AssertUnwindSafe(op)) {
        Ok(s) => format!("ok: {s}"),
        Err(payload) => {
            let message = panic_message(&payload);
            if message.starts_with(DEAD) {
                "dead".into()
            } else {
                message
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let Some(mut peer) = self.peer.borrow_mut().take() else {
            return;
        };
        let other = peer.clone();
        let (p, q) = (&peer, &other);
        let lines = [
            outcome(|| format!("{}", *p == *q)),
            outcome(|| format!("{}", *p != *q)),
            outcome(|| format!("{:?}", p.cmp(q))),
            outcome(|| format!("{:?}", p.partial_cmp(q))),
            outcome(|| format!("{}", p < q)),
            outcome(|| {
                let mut h = DefaultHasher::new();
                p.hash(&mut h);
                "hashed".into()
            }),
            outcome(|| format!("{p:?}")),
            outcome(|| format!("{p}")),
            outcome(|| AsRef::<Probe>::as_ref(p).id.to_string()),
            outcome(|| std::borrow::Borrow::<Probe>::borrow(p).id.to_string()),
            outcome(|| p.id.to_string()),
            // What reads no value works.
            outcome(|| (format!("{:p}", *p) == format!("{:p}", Gc::as_ptr(p))).to_string()),
            outcome(|| Gc::ptr_eq(p, &p.clone()).to_string()),
            outcome(|| Gc::downgrade(p).upgrade().is_none().to_string()),
            outcome(|| Gc::try_unwrap(p.clone()).is_err().to_string()),
        ];
        let mut lines = lines.to_vec();
        drop(other);
        lines.push(outcome(|| Gc::get_mut(&mut peer).is_none().to_string()));
        lines.push(outcome(|| {
            Gc::make_mut(&mut peer);
            "made".into()
        }));
        PROBED.with(|p| p.borrow_mut().extend(lines));
    }
}

/// Every value trait of a `Gc` whose value the collector dropped (or is
/// about to: the peer, condemned, in a `Drop` the collection runs) panics
/// with the collector's message, never reading freed memory (Miri): `==`,
/// `!=`, `cmp`, `partial_cmp`, `<`, `hash`, `Debug`, `Display`, `AsRef`,
/// `Borrow`, `Deref`; and `make_mut`, which would clone it. What reads no
/// value works: `{:p}`, `ptr_eq`, `clone`, `downgrade` (which never
/// upgrades), `try_unwrap` (refused), `get_mut` (`None`).
#[test]
fn value_traits_of_a_dead_peer_panic_with_the_collectors_message() {
    let a = Gc::new(Probe {
        log: DropLog(1),
        id: 1,
        peer: RefCell::new(None),
    });
    let b = Gc::new(Probe {
        log: DropLog(2),
        id: 2,
        peer: RefCell::new(Some(a.clone())),
    });
    *a.peer.borrow_mut() = Some(b);
    drop(a);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    let probed = PROBED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    // Each `Drop` sees its peer condemned, whether or not its value is
    // dropped yet.
    let mut expected = vec!["dead"; 11];
    expected.extend(["ok: true"; 5]);
    expected.push("dead");
    assert_eq!(probed, [expected.clone(), expected].concat());
}

// ---------------------------------------------------------------------
// Counts and inspection in finalizers and `Drop`s.

thread_local! {
    static FIN_SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static RESCUED: RefCell<Vec<Gc<Fin>>> = const { RefCell::new(Vec::new()) };
}

#[derive(Trace)]
#[gc(finalize)]
struct Fin {
    #[gc(skip)]
    log: DropLog,
    me: Weak<Fin>,
    peer: RefCell<Option<Gc<Fin>>>,
    #[gc(skip)]
    rescues: bool,
}

impl Finalize for Fin {
    fn finalize(&self) {
        let me = self.me.upgrade();
        let mut line = format!(
            "{}: me {:?}, weak {}/{}",
            self.log.0,
            me.as_ref()
                .map(|m| (Gc::strong_count(m), Gc::weak_count(m))),
            self.me.strong_count(),
            self.me.weak_count(),
        );
        if let Some(peer) = &*self.peer.borrow() {
            line += &format!(
                "; peer {}/{} tracked {} referrers {}",
                Gc::strong_count(peer),
                Gc::weak_count(peer),
                gcptr::is_tracked(peer),
                gcptr::referrers(peer).len(),
            );
            if self.rescues {
                RESCUED.with(|r| r.borrow_mut().push(peer.clone()));
            }
        }
        FIN_SEEN.with(|s| s.borrow_mut().push(line));
    }
}

fn fin(id: u32, rescues: bool) -> Gc<Fin> {
    Gc::new_cyclic(|me| Fin {
        log: DropLog(id),
        me: me.clone(),
        peer: RefCell::new(None),
        rescues,
    })
}

fn fin_seen() -> Vec<String> {
    FIN_SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// The counts a finalizer reads. By count, the finalizer runs with a
/// strong reference held for its `&self` (CPython likewise resurrects the
/// object for `__del__`): its own `Weak` upgrades, and counts 2 with that
/// upgrade. In a collection, its own `Weak` is cleared (counts 0), and a
/// peer's weak count includes the collector's unit, as `Gc::weak_count`
/// documents; the condemned set is in no list, so `referrers` finds no
/// referrer among it (as CPython's `gc.get_referrers`, which walks the
/// generations, does not while the unreachable list is finalized). A
/// rescued peer keeps its old `Weak`s in its weak count, cleared.
#[test]
fn counts_in_finalizers_and_after_a_resurrection() {
    let a = fin(1, false);
    drop(a);
    assert_eq!(fin_seen(), ["1: me Some((2, 1)), weak 2/1"]);
    assert_eq!(take_drops(), [1]);

    for rescues in [false, true] {
        let a = fin(1, rescues);
        let b = fin(2, false);
        *a.peer.borrow_mut() = Some(b.clone());
        *b.peer.borrow_mut() = Some(a.clone());
        let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
        drop((a, b));
        let found = gcptr::collect();
        // Each peer: its own `me`, the collector's unit, and `wa`/`wb`.
        let peer = "peer 1/3 tracked true referrers 0";
        assert_eq!(
            fin_seen(),
            [
                format!("1: me None, weak 0/0; {peer}"),
                format!("2: me None, weak 0/0; {peer}")
            ]
        );
        assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
        if !rescues {
            assert_eq!(found, 2);
            assert_eq!(take_drops(), [1, 2]);
            continue;
        }
        assert_eq!(found, 0, "B rescued, and A with it");
        assert_eq!(take_drops(), Vec::<u32>::new());
        let b = RESCUED.with(|r| r.borrow_mut().pop()).unwrap();
        assert_eq!(b.log.0, 2);
        // `RESCUED`'s handle and A's edge; `me` and `wb`, both cleared.
        assert_eq!((Gc::strong_count(&b), Gc::weak_count(&b)), (2, 2));
        assert_eq!((wb.strong_count(), wb.weak_count()), (0, 0));
        assert!(gcptr::is_tracked(&b));
        let a = b.peer.borrow().clone().unwrap();
        assert_eq!(gcptr::referrers(&a).len(), 1, "B refers to A");
        let fresh = Gc::downgrade(&a);
        assert!(Gc::ptr_eq(&fresh.upgrade().unwrap(), &a));
        assert_eq!(fresh.weak_count(), 3, "me, wa and fresh");
        drop((a, b));
        assert_eq!(gcptr::collect(), 2);
        assert_eq!(fin_seen(), Vec::<String>::new(), "finalized once");
        assert_eq!(take_drops(), [1, 2]);
        assert!(fresh.upgrade().is_none());
    }
}

thread_local! {
    static INSPECTED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static LEAF: RefCell<Option<Gc<u32>>> = const { RefCell::new(None) };
}

/// A garbage node whose `Drop` inspects the graph.
#[derive(Trace)]
struct Inspector {
    #[gc(skip)]
    log: DropLog,
    peer: RefCell<Option<Gc<Inspector>>>,
    leaf: Gc<u32>,
}

impl Drop for Inspector {
    fn drop(&mut self) {
        let leaf = LEAF.with(|l| l.borrow().clone()).unwrap();
        let referrers: Vec<&str> = gcptr::referrers(&leaf)
            .iter()
            .map(ObjectRef::type_name)
            .map(|name| name.split('<').next().unwrap())
            .collect();
        let referents = gcptr::referents(&*self);
        let peer = self
            .peer
            .borrow()
            .as_ref()
            .map(|p| Gc::as_ptr(p).cast::<()>());
        INSPECTED.with(|i| {
            i.borrow_mut().push(format!(
                "{}: referrers {referrers:?}, referents {} (peer first: {}, leaf: {})",
                self.log.0,
                referents.len(),
                peer.is_some_and(|p| referents[0] == p),
                referents.last() == Some(&Gc::as_ptr(&self.leaf).cast::<()>()),
            ))
        });
    }
}

/// `referrers` and `referents` from the `Drop`s of a collection: the
/// condemned set is in no list, so its members are not referrers (live
/// ones are), and `referents` of a dropping value lists its edges,
/// its dead peer's address included, reading nothing of the peer.
#[test]
fn referrers_and_referents_from_drops_of_a_collection() {
    let leaf = Gc::new(7u32);
    LEAF.with(|l| *l.borrow_mut() = Some(leaf.clone()));
    let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
    let a = Gc::new(Inspector {
        log: DropLog(1),
        peer: RefCell::new(None),
        leaf: leaf.clone(),
    });
    let b = Gc::new(Inspector {
        log: DropLog(2),
        peer: RefCell::new(Some(a.clone())),
        leaf: leaf.clone(),
    });
    *a.peer.borrow_mut() = Some(b);
    assert_eq!(gcptr::referrers(&leaf).len(), 3);
    drop(a);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    let seen = INSPECTED.with(|i| std::mem::take(&mut *i.borrow_mut()));
    assert_eq!(seen.len(), 2);
    // Only the live holder is a referrer; each value still has its edge
    // to its peer (fields drop after `Drop::drop`), dropped or not.
    let line = "referrers [\"core::cell::RefCell\"], referents 2 (peer first: true, leaf: true)";
    assert_eq!(seen, [format!("1: {line}"), format!("2: {line}")]);
    LEAF.with(|l| l.borrow_mut().take());
    assert_eq!(Gc::strong_count(&leaf), 2);
    drop(holder);
}

/// An `ObjectRef` that outlives its object: its type name and address
/// stay readable, its strong count is 0, it never downcasts, and the
/// object's memory is not handed to a new object while it lives (every
/// new address differs); the memory goes with it (Miri's leak check).
#[test]
fn object_ref_outlives_its_object() {
    for by_collection in [false, true] {
        let leaf = Gc::new(1u32);
        let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
        if by_collection {
            holder.borrow_mut().push(Gc::new(0u32));
        }
        let found = gcptr::referrers(&leaf);
        assert_eq!(found.len(), 1);
        let address = found[0].address();
        assert_eq!(address, Gc::as_ptr(&holder).cast::<()>());
        let name = found[0].type_name();
        drop(holder);
        assert_eq!(found[0].strong_count(), 0);
        assert!(found[0].downcast::<RefCell<Vec<Gc<u32>>>>().is_none());
        assert_eq!(found[0].type_name(), name);
        assert_eq!(found[0].address(), address);
        let debug = format!("{:?}", found[0]);
        assert!(debug.contains("strong_count: 0"), "{debug}");
        let new: Vec<_> = (0..64)
            .map(|i| Gc::new(RefCell::new(vec![Gc::new(i)])))
            .collect();
        assert!(new.iter().all(|n| Gc::as_ptr(n).cast::<()>() != address));
        drop(found);
        drop(new);
        assert_eq!(gcptr::referrers(&leaf).len(), 0);
    }
}

/// `referents` lists the edges that a value's trace visits: of `&*x` (what
/// the README's table says for `gc.get_referents(x)`), `x`'s edges; of
/// `&x`, the one edge that a `Gc` is, to `x` itself. An edge behind a
/// `RefCell` that is mutably borrowed is not listed (the trace cannot read
/// it), where CPython's `gc.get_referents` always sees every edge.
#[test]
fn referents_of_a_value_and_of_its_gc() {
    let leaf = Gc::new(3u8);
    let x = Gc::new(RefCell::new(vec![leaf.clone(), leaf.clone()]));
    let leaf_address = Gc::as_ptr(&leaf).cast::<()>();
    assert_eq!(gcptr::referents(&*x), [leaf_address, leaf_address]);
    assert_eq!(gcptr::referents(&x), [Gc::as_ptr(&x).cast::<()>()]);
    let borrowed = x.borrow_mut();
    assert_eq!(gcptr::referents(&*x), Vec::<*const ()>::new());
    assert_eq!(gcptr::referrers(&leaf).len(), 0, "nor is x a referrer then");
    drop(borrowed);
    assert_eq!(gcptr::referrers(&leaf).len(), 1);
}

/// `is_tracked` follows an object's kind: an acyclic object (immutable,
/// made of untracked objects) is untracked until `get_mut` or `make_mut`
/// lends its value, and tracked for good after; an object of plain data
/// never is; an object with a `RefCell` around a `Gc` always is. Only
/// tracked objects are searched by `referrers`, and not one whose value
/// `get_mut` or `make_mut` lent, until it next loses a reference (the
/// `&mut` may live until then: a limit, where CPython's
/// `gc.get_referrers` finds every referrer).
#[test]
fn is_tracked_through_get_mut_and_make_mut() {
    #[derive(Trace, Clone)]
    struct Pair(Gc<u8>, Gc<u8>);
    let before = gcptr::count()[0];
    let mut p = Gc::new(Pair(Gc::new(1), Gc::new(2)));
    assert!(!gcptr::is_tracked(&p));
    assert!(!gcptr::is_tracked(&p.0));
    assert_eq!(gcptr::count()[0], before, "acyclic: not counted");
    // Only tracked objects are searched, as documented.
    let second = p.1.clone();
    assert_eq!(gcptr::referrers(&second).len(), 0);
    Gc::get_mut(&mut p).unwrap().0 = Gc::new(3);
    assert!(gcptr::is_tracked(&p));
    assert_eq!(*p.0, 3);
    // Set aside while its `&mut` may live, it is searched only once it
    // is back in the collector's lists: at its next lost reference.
    assert_eq!(gcptr::referrers(&second).len(), 0, "set aside");
    drop(p.clone());
    let found = gcptr::referrers(&second);
    assert_eq!(found.len(), 1, "tracked for good: a referrer now");
    assert!(Gc::ptr_eq(&found[0].downcast::<Pair>().unwrap(), &p));
    drop(found);
    let mut q = Gc::new(Pair(Gc::new(4), Gc::new(5)));
    let _w = Gc::downgrade(&q);
    Gc::make_mut(&mut q).1 = Gc::new(6);
    assert!(gcptr::is_tracked(&q));
    let mut r = Gc::new(Pair(Gc::new(7), Gc::new(8)));
    let r2 = r.clone();
    Gc::make_mut(&mut r).1 = Gc::new(9);
    assert!(gcptr::is_tracked(&r) && !gcptr::is_tracked(&r2));
    assert_eq!((*r.1, *r2.1), (9, 8));
    assert!(gcptr::is_tracked(&Gc::new(RefCell::new(None::<Gc<u8>>))));
}

// ---------------------------------------------------------------------
// The API on live objects, from the finalizers of a collection.

thread_local! {
    /// Live objects, each held only here.
    static LIVE: RefCell<Vec<Gc<Doc>>> = const { RefCell::new(Vec::new()) };
    static LIVE_WEAK: RefCell<Option<Weak<Doc>>> = const { RefCell::new(None) };
    static MEDDLED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A garbage node whose finalizer works on the live objects in `LIVE`.
#[derive(Trace)]
#[gc(finalize)]
struct Meddler {
    #[gc(skip)]
    log: DropLog,
    peer: RefCell<Option<Gc<Meddler>>>,
}

impl Finalize for Meddler {
    fn finalize(&self) {
        if MEDDLED.with(|m| !m.borrow().is_empty()) {
            return;
        }
        let mut live = LIVE.with(|l| std::mem::take(&mut *l.borrow_mut()));
        let mut line = Vec::new();
        // The unique one: lent, edited, given back.
        line.push(
            Gc::get_mut(&mut live[0])
                .map(|d| d.text.push('!'))
                .is_some(),
        );
        // The one with a `Weak`: moved to a fresh object.
        let before = Gc::as_ptr(&live[1]);
        Gc::make_mut(&mut live[1]).text.push('?');
        line.push(!std::ptr::eq(before, Gc::as_ptr(&live[1])));
        // The third: unwrapped, then made again.
        let third = live.pop().unwrap();
        let value = Gc::try_unwrap(third).expect("the only handle");
        live.push(Gc::new(value));
        MEDDLED.with(|m| m.borrow_mut().push(format!("{line:?}")));
        LIVE.with(|l| *l.borrow_mut() = live);
    }
}

/// `get_mut`, `make_mut` and `try_unwrap` of live objects (old ones that
/// reported a loss and wait in the reporters' buffer, and young ones),
/// from a finalizer that a collection runs: each works as outside a
/// collection, the collection completes, and cycles closed through the
/// objects afterwards are all found (none lost from the collector's care,
/// none counted twice).
#[test]
fn get_mut_make_mut_and_try_unwrap_of_live_objects_from_a_finalizer() {
    for old in [true, false] {
        let live: Vec<Gc<Doc>> = (1..=3).map(|i| plain_doc(i, "live")).collect();
        LIVE_WEAK.with(|w| *w.borrow_mut() = Some(Gc::downgrade(&live[1])));
        if old {
            gcptr::collect();
            // A lost reference: each reports, into the reporters' buffer.
            for d in &live {
                drop(d.clone());
            }
        }
        LIVE.with(|l| *l.borrow_mut() = live);
        let a = Gc::new(Meddler {
            log: DropLog(10),
            peer: RefCell::new(None),
        });
        let b = Gc::new(Meddler {
            log: DropLog(11),
            peer: RefCell::new(Some(a.clone())),
        });
        *a.peer.borrow_mut() = Some(b);
        drop(a);
        assert_eq!(gcptr::collect(), 2, "old: {old}");
        assert_eq!(take_drops(), [10, 11]);
        let meddled = MEDDLED.with(|m| std::mem::take(&mut *m.borrow_mut()));
        assert_eq!(meddled, ["[true, true]"]);
        let live = LIVE.with(|l| std::mem::take(&mut *l.borrow_mut()));
        let texts: Vec<&str> = live.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["live!", "live?", "live"]);
        assert!(LIVE_WEAK
            .with(|w| w.borrow_mut().take())
            .unwrap()
            .upgrade()
            .is_none());
        // Each closes a cycle of its own, and each cycle is found.
        for d in &live {
            d.children.borrow_mut().push(d.clone());
        }
        drop(live);
        assert_eq!(gcptr::collect(), 3, "old: {old}");
        assert_eq!(take_drops(), [1, 2, 3]);
        assert_eq!(gcptr::collect(), 0);
    }
}

// ---------------------------------------------------------------------
// Marker traits and identity, as `Rc`'s.

/// `Gc<T>` is `UnwindSafe`, `RefUnwindSafe` and `Unpin` where `Rc<T>` is
/// (`Rc<T>: RefUnwindSafe` for `T: RefUnwindSafe` since Rust 1.58): a
/// closure that borrows a `Gc` can go to `catch_unwind` as one that
/// borrows an `Rc` can. `Weak` is `Unpin` (and, as `rc::Weak`, neither
/// `UnwindSafe` nor `RefUnwindSafe`). Without `Gc`'s `RefUnwindSafe` impl
/// this test does not compile.
#[test]
fn marker_traits_as_rc() {
    fn unwind_safe<T: std::panic::UnwindSafe>(_: &T) {}
    fn ref_unwind_safe<T: std::panic::RefUnwindSafe>(_: &T) {}
    fn unpin<T: Unpin>(_: &T) {}
    let rc = std::rc::Rc::new(5u32);
    let gc = Gc::new(5u32);
    unwind_safe(&rc);
    unwind_safe(&gc);
    ref_unwind_safe(&rc);
    ref_unwind_safe(&gc);
    unpin(&gc);
    unpin(&Gc::downgrade(&gc));
    let sum = catch_unwind(|| *gc + *rc).unwrap();
    assert_eq!(sum, 10);
}

/// Equality of two handles to one object runs `T::eq`: `Rc` skips it for
/// a `T: Eq` (a specialization std alone may use), `Gc` cannot, so a
/// `Gc` of a dead value is not equal to itself but panics, and an `Eq`
/// type's `eq` runs even for `Gc::ptr_eq` handles. A float NaN is unequal
/// to itself through both.
#[test]
fn equality_of_one_object_runs_eq() {
    thread_local!(static EQ_CALLS: Cell<u32> = const { Cell::new(0) });
    #[derive(Trace, Eq)]
    struct Counted(u8);
    impl PartialEq for Counted {
        fn eq(&self, other: &Counted) -> bool {
            EQ_CALLS.with(|c| c.set(c.get() + 1));
            self.0 == other.0
        }
    }
    let rc = std::rc::Rc::new(Counted(1));
    assert!(rc == rc.clone());
    assert_eq!(
        EQ_CALLS.with(Cell::get),
        0,
        "Rc compares the pointers first"
    );
    let gc = Gc::new(Counted(1));
    assert!(gc == gc.clone());
    assert_eq!(EQ_CALLS.with(Cell::get), 1, "Gc compares the values");
    let nan = Gc::new(f64::NAN);
    assert!(nan != nan.clone());
    assert_eq!(nan.partial_cmp(&nan), None);
}

// ---------------------------------------------------------------------
// An object set aside by `get_mut` that loses a reference during a
// collection.

thread_local! {
    static ASIDE: RefCell<Option<Gc<Doc>>> = const { RefCell::new(None) };
    static ASIDE_SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// A garbage node whose `Drop` works on the object in `ASIDE`.
#[derive(Trace)]
struct AsideUser {
    #[gc(skip)]
    log: DropLog,
    peer: RefCell<Option<Gc<AsideUser>>>,
}

impl Drop for AsideUser {
    fn drop(&mut self) {
        let Some(mut x) = ASIDE.with(|a| a.borrow_mut().take()) else {
            return;
        };
        // A reference lost during the collection: the collector holds the
        // object until the collection ends, with a unit of weak count.
        drop(x.clone());
        let before = Gc::as_ptr(&x);
        let line = format!(
            "weak {}, get_mut {}",
            Gc::weak_count(&x),
            Gc::get_mut(&mut x).is_some()
        );
        Gc::make_mut(&mut x).text.push('!');
        let moved = !std::ptr::eq(before, Gc::as_ptr(&x));
        ASIDE_SEEN.with(|s| {
            s.borrow_mut()
                .push(format!("{line}, make_mut moved {moved}"))
        });
        ASIDE.with(|a| *a.borrow_mut() = Some(x));
    }
}

/// An object set aside by `get_mut` (its `&mut` gone) that loses a
/// reference in a `Drop` that a collection runs waits for the collection's
/// end with the collector's unit of weak count: `weak_count` counts it and
/// `get_mut` refuses, as documented, and `make_mut` moves the value to a
/// fresh object, though no `Weak` exists (`Rc::make_mut` would not move
/// it). After the collection, the object is an ordinary one again, and a
/// cycle through it is found.
#[test]
fn an_object_set_aside_losing_a_reference_during_a_collection() {
    let mut x = plain_doc(1, "x");
    Gc::get_mut(&mut x).unwrap().text.push('.');
    ASIDE.with(|a| *a.borrow_mut() = Some(x));
    let a = Gc::new(AsideUser {
        log: DropLog(10),
        peer: RefCell::new(None),
    });
    let b = Gc::new(AsideUser {
        log: DropLog(11),
        peer: RefCell::new(Some(a.clone())),
    });
    *a.peer.borrow_mut() = Some(b);
    drop(a);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [10, 11]);
    let seen = ASIDE_SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
    // Both `Drop`s: the fresh object `make_mut` lends is set aside too.
    assert_eq!(seen, ["weak 1, get_mut false, make_mut moved true"; 2]);
    let mut x = ASIDE.with(|a| a.borrow_mut().take()).unwrap();
    assert_eq!(x.text, "x.!!");
    assert_eq!(Gc::weak_count(&x), 0);
    assert!(Gc::get_mut(&mut x).is_some());
    x.children.borrow_mut().push(x.clone());
    drop(x);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [1]);
}
