//! What an audit of every `unsafe` block of `gcptr/src` against DESIGN.md's
//! soundness promises tried, from safe code (and from hand-written `Trace`
//! impls that keep `Trace`'s written contract), at the blocks whose
//! invariant looked the most fragile: the death queue of the trashcan
//! (`collector/death.rs`: a queued object has a count of zero and is still
//! listed), the unborn object of `Gc::new_cyclic` and the fresh one of
//! `Gc::make_mut` (`gc.rs`: tracked, in no list, their value not written
//! yet while user code runs), the vtable word that points at a watcher
//! node (`header.rs`, `weak_maps`), read by the traces and frees of slice
//! objects, and `Deref`'s skipped test for types without drop glue
//! (`gc.rs`). Each test states what it pins; Miri (both borrow models)
//! checks that no read of uninitialised or freed memory happens on the
//! way, and that nothing leaks.

mod support;

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;

use gcptr::{Gc, ObjectRef, Trace, Tracer, Weak, WeakSet, WeakValueMap};
use support::{take_drops, DropLog};

thread_local! {
    /// The ids `support::take_drops` handed over since the last
    /// `take_dropped`.
    static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The ids dropped since the last call, sorted.
fn take_dropped() -> Vec<u32> {
    let mut ids = DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    ids.extend(take_drops());
    ids.sort_unstable();
    ids
}

/// Whether the value with `id` was dropped since the last `take_dropped`.
fn was_dropped(id: u32) -> bool {
    DROPPED.with(|d| {
        let mut d = d.borrow_mut();
        d.extend(take_drops());
        d.contains(&id)
    })
}

// ---- collector/death.rs: deaths the trashcan queued ----

/// A list node. Its fields drop in order: its log, then `next` (whose
/// death, past the trashcan's depth, is queued), then `probe`, which then
/// looks at the queued object through the handles it was given.
struct Link {
    log: DropLog,
    hub: Gc<u32>,
    next: RefCell<Option<Gc<Link>>>,
    probe: Probe,
}

// SAFETY: visits the two `Gc`s a `Link` owns, `hub` and `next`; `log` and
// `probe` own none that the node holds (`probe` holds a `Weak`, an
// `ObjectRef` and a handle to the hub, which the collector may only see as
// held from outside).
unsafe impl Trace for Link {
    fn trace(&self, tracer: &mut Tracer) {
        self.hub.trace(tracer);
        self.next.trace(tracer);
    }
}

/// Handles to the next node, and what they showed when the node holding
/// them was dropped.
#[derive(Default)]
struct Probe {
    next_id: Cell<u32>,
    next_weak: RefCell<Option<Weak<Link>>>,
    next_ref: RefCell<Option<ObjectRef>>,
    hub: RefCell<Option<Gc<u32>>>,
}

/// What a probe saw of the next node: its id, whether its `Drop` had run,
/// what its `Weak` upgraded to, what its `ObjectRef` downcast to and
/// counted, and whether `referrers` listed it as a holder of the hub that
/// every node points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sight {
    id: u32,
    dropped: bool,
    upgraded: bool,
    downcast: bool,
    strong: usize,
    listed_as_referrer: bool,
}

thread_local! {
    static SIGHTS: RefCell<Vec<Sight>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Probe {
    fn drop(&mut self) {
        let (Some(weak), Some(object)) = (self.next_weak.take(), self.next_ref.take()) else {
            return;
        };
        let id = self.next_id.get();
        let upgraded = weak.upgrade().is_some();
        let downcast = object.downcast::<Link>().is_some();
        let strong = object.strong_count();
        // `referrers` walks the lists, where a queued object still is, and
        // traces the objects it finds there with a count.
        let holders = gcptr::referrers(self.hub.borrow().as_ref().expect("a hub"));
        assert!(
            holders.iter().all(|holder| holder.strong_count() > 0),
            "`referrers` listed an object with no strong reference"
        );
        let listed_as_referrer = holders
            .iter()
            .any(|holder| holder.address() == object.address());
        let sight = Sight {
            id,
            dropped: was_dropped(id),
            upgraded,
            downcast,
            strong,
            listed_as_referrer,
        };
        SIGHTS.with(|s| s.borrow_mut().push(sight));
        // A full collection that meets the queued object (a root: its
        // count is zero) and the live rest of the list.
        gcptr::collect();
    }
}

/// A death that the trashcan queued (past its depth, a node of a long list
/// waits in `State::deferred` with a count of zero, still in its list)
/// hands out no strong reference to user code that runs before it: its
/// `Weak` upgrades to nothing, an `ObjectRef` to it downcasts to nothing
/// and counts no strong reference, `referrers` passes over it (it would
/// trace a value whose death is under way), and a full collection run
/// then leaves it to the queue. Every node is dropped once, and nothing
/// leaks (Miri).
#[test]
fn a_death_the_trashcan_queued_hands_out_no_strong_reference() {
    // Past the trashcan's depth (48) once, or twice.
    const LEN: u32 = if cfg!(miri) { 60 } else { 100 };
    take_dropped();
    SIGHTS.with(|s| s.borrow_mut().clear());
    let hub = Gc::new(7u32);
    let nodes: Vec<Gc<Link>> = (0..LEN)
        .map(|id| {
            Gc::new(Link {
                log: DropLog(id),
                hub: hub.clone(),
                next: RefCell::new(None),
                probe: Probe::default(),
            })
        })
        .collect();
    for pair in nodes.windows(2) {
        *pair[0].next.borrow_mut() = Some(pair[1].clone());
    }
    for i in 0..LEN as usize - 2 {
        let next = &nodes[i + 1];
        // `next` is the one object that refers to the node after it.
        let object = gcptr::referrers(&nodes[i + 2])
            .into_iter()
            .find(|holder| holder.address() == Gc::as_ptr(next).cast())
            .expect("the next node refers to the one after it");
        let probe = &nodes[i].probe;
        probe.next_id.set(next.log.0);
        *probe.next_weak.borrow_mut() = Some(Gc::downgrade(next));
        *probe.next_ref.borrow_mut() = Some(object);
        *probe.hub.borrow_mut() = Some(hub.clone());
    }
    let head = nodes[0].clone();
    drop(nodes);
    drop(head);
    let sights = SIGHTS.with(|s| s.take());
    assert_eq!(sights.len(), LEN as usize - 2, "every probe looked");
    for sight in &sights {
        // Dead, or queued (not dropped yet): alive to no one.
        assert!(
            !sight.upgraded && !sight.downcast && sight.strong == 0,
            "a dying object handed out a reference: {sight:?}"
        );
        assert!(
            !sight.listed_as_referrer,
            "`referrers` traced a dying object: {sight:?}"
        );
    }
    assert!(
        sights.iter().any(|sight| !sight.dropped),
        "no death was queued: the list is shorter than the trashcan's depth"
    );
    assert_eq!(take_dropped(), (0..LEN).collect::<Vec<_>>());
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(Gc::strong_count(&hub), 1, "every node let go of the hub");
}

// ---- gc.rs: objects whose value is not written yet ----

const MAGIC: u64 = 0x5eed_cafe_f00d_d00d;

thread_local! {
    /// Set by a trace that found a value without its magic number: one
    /// that was never written (Miri reports the read itself).
    static UNWRITTEN_TRACED: Cell<bool> = const { Cell::new(false) };
}

/// A value whose trace checks that it was written.
#[derive(Clone)]
struct Canary {
    magic: u64,
    log_id: u32,
    me: Weak<Canary>,
    edges: RefCell<Vec<Gc<Canary>>>,
}

impl Drop for Canary {
    fn drop(&mut self) {
        assert_eq!(self.magic, MAGIC, "dropped a value never written");
        drop(DropLog(self.log_id));
    }
}

// SAFETY: visits the `Gc`s in `edges`, each once, and changes nothing.
unsafe impl Trace for Canary {
    fn trace(&self, tracer: &mut Tracer) {
        if self.magic != MAGIC {
            UNWRITTEN_TRACED.with(|u| u.set(true));
        }
        self.edges.trace(tracer);
    }
}

fn canary(id: u32) -> Gc<Canary> {
    Gc::new(Canary {
        magic: MAGIC,
        log_id: id,
        me: Weak::new(),
        edges: RefCell::new(Vec::new()),
    })
}

/// Everything user code can do to the collector, from inside the window
/// where an object is tracked but its value not written: automatic
/// collections (threshold 1) over garbage cycles made here, a full
/// collection, `referrers` (which traces every listed object), and
/// `freeze`/`unfreeze` (which move the lists). Returns the garbage's ids.
fn meddle_in_the_window(first_id: u32, held: &Gc<Canary>) -> Vec<u32> {
    let thresholds = gcptr::threshold();
    gcptr::set_threshold([1, 1, 1]);
    let ids: Vec<u32> = (first_id..first_id + 6).collect();
    for pair in ids.chunks(2) {
        let (a, b) = (canary(pair[0]), canary(pair[1]));
        a.edges.borrow_mut().push(b.clone());
        b.edges.borrow_mut().push(a);
    }
    gcptr::collect();
    let holders = gcptr::referrers(held);
    gcptr::freeze();
    gcptr::unfreeze();
    gcptr::collect();
    gcptr::set_threshold(thresholds);
    assert!(
        holders.is_empty(),
        "only an unlisted object holds it: {} holders",
        holders.len()
    );
    ids
}

/// `Gc::new_cyclic` allocates and tracks its object (strong count 0, in
/// no list) before its closure has written the value. A closure that
/// runs collections (automatic ones over garbage it makes, a full one),
/// `referrers` and `freeze`/`unfreeze` must never get the unborn value
/// traced: no edge can reach an object that no `Gc` points at, and the
/// lists do not hold it. Then the object is tracked once, and a cycle
/// through it is collected, each value dropped once.
#[test]
fn a_new_cyclic_closure_that_collects_never_gets_the_unborn_value_traced() {
    take_dropped();
    UNWRITTEN_TRACED.with(|u| u.set(false));
    let held = canary(100);
    let mut garbage = Vec::new();
    let object = Gc::new_cyclic(|me: &Weak<Canary>| {
        garbage = meddle_in_the_window(1, &held);
        assert!(me.upgrade().is_none(), "an unborn object upgraded");
        assert_eq!(me.strong_count(), 0);
        Canary {
            magic: MAGIC,
            log_id: 0,
            me: me.clone(),
            edges: RefCell::new(vec![held.clone()]),
        }
    });
    assert!(
        !UNWRITTEN_TRACED.with(Cell::get),
        "an unborn value was traced"
    );
    assert_eq!(take_dropped(), garbage, "the window's garbage, once each");
    assert!(Gc::ptr_eq(&object.me.upgrade().unwrap(), &object));
    assert!(gcptr::is_tracked(&object));
    // A cycle through it: the object, then `held`, then back.
    held.edges.borrow_mut().push(object.clone());
    drop(object);
    drop(held);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_dropped(), [0, 100]);
    assert!(!UNWRITTEN_TRACED.with(Cell::get));
}

/// `Gc::make_mut` of a unique value with a `Weak` moves the value to a
/// fresh allocation: it allocates that object (tracked, in no list, its
/// value unwritten), then tells the old object's watchers, whose callbacks
/// are user code, and only then moves the value over. A death callback
/// that runs collections, `referrers` and `freeze`/`unfreeze` in that
/// window gets neither object traced (the old one is out of the
/// collector's care, the fresh one unwritten), and the object the value
/// points at stays alive (the edge from the moving value counts as one
/// from outside). The value arrives whole, the old `Weak` stays dead, and
/// a cycle through the fresh object is collected, each value dropped once.
#[test]
fn make_mut_whose_death_callback_collects_moves_the_value_whole() {
    take_dropped();
    UNWRITTEN_TRACED.with(|u| u.set(false));
    let held = canary(100);
    let mut x = canary(0);
    x.edges.borrow_mut().push(held.clone());
    let before = Gc::downgrade(&x);
    let garbage = std::rc::Rc::new(RefCell::new(Vec::new()));
    let callback = {
        let garbage = garbage.clone();
        let held = held.clone();
        Gc::on_death(&x, move || {
            *garbage.borrow_mut() = meddle_in_the_window(1, &held);
        })
    };
    let value = Gc::make_mut(&mut x);
    assert_eq!((value.magic, value.log_id), (MAGIC, 0));
    assert!(!callback.is_pending(), "the old object's callback ran");
    assert!(
        !UNWRITTEN_TRACED.with(Cell::get),
        "an unwritten value was traced"
    );
    assert_eq!(
        take_dropped(),
        *garbage.borrow(),
        "the window's garbage only"
    );
    assert!(
        before.upgrade().is_none(),
        "the old object's `Weak` stays dead"
    );
    assert_eq!(Gc::strong_count(&held), 2, "held by the value and the test");
    assert!(Gc::ptr_eq(&x.edges.borrow()[0], &held));
    // A cycle through the fresh object.
    held.edges.borrow_mut().push(x.clone());
    drop(x);
    drop(held);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_dropped(), [0, 100]);
}

// ---- header.rs and weak_maps: a vtable word that points at a watcher ----

/// A slice element that can point back at its slice.
struct Element {
    _log: DropLog,
    back: RefCell<Option<Gc<[Element]>>>,
}

// SAFETY: visits the one `Gc` an element owns.
unsafe impl Trace for Element {
    fn trace(&self, tracer: &mut Tracer) {
        self.back.trace(tracer);
    }
}

/// While something watches an object, its header's vtable word points at
/// the first watcher node, which holds the vtable. A tracked slice's trace
/// and free read its length through the vtable (`Header::slice_len_slot`),
/// so a watched slice in a garbage cycle is traced, told and freed through
/// that indirection: watched by a `WeakSet`, a `WeakValueMap` and a death
/// callback, it is collected, each watcher told once, each element dropped
/// once, and the memory freed with the slice's own layout (Miri).
#[test]
fn a_watched_slice_in_a_cycle_is_traced_told_and_freed_through_its_watchers() {
    take_dropped();
    let slice: Gc<[Element]> = (0..5)
        .map(|id| Element {
            _log: DropLog(id),
            back: RefCell::new(None),
        })
        .collect();
    let mut set = WeakSet::new();
    set.insert(&slice);
    let mut map = WeakValueMap::new();
    map.insert("slice", &slice);
    let told = std::rc::Rc::new(Cell::new(0));
    let callback = {
        let told = told.clone();
        Gc::on_death(&slice, move || told.set(told.get() + 1))
    };
    let weak = Gc::downgrade(&slice);
    // Every element points back: five edges to the slice from itself.
    for element in slice.iter() {
        *element.back.borrow_mut() = Some(slice.clone());
    }
    assert_eq!(gcptr::referents(&*slice).len(), 5);
    drop(slice);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(told.get(), 1);
    assert!(!callback.is_pending());
    assert_eq!((set.len(), map.len()), (0, 0));
    assert!(weak.upgrade().is_none());
    assert_eq!(take_dropped(), [0, 1, 2, 3, 4]);
    assert_eq!(map.get("slice").map(|_| ()), None);
    drop(weak);
}

// ---- gc.rs: `Deref` of a dead value without drop glue ----

/// A value without drop glue that holds a `Gc` all the same, inside a
/// `ManuallyDrop` (as unsafe code that leaks a reference on purpose may).
struct Plain {
    number: u64,
    keeper: RefCell<ManuallyDrop<Option<Gc<Keeper>>>>,
}

// SAFETY: visits the one `Gc` a `Plain` can own (`ManuallyDrop`'s trace is
// its contents').
unsafe impl Trace for Plain {
    fn trace(&self, tracer: &mut Tracer) {
        self.keeper.trace(tracer);
    }
}

/// A value with a `Drop` that keeps a handle to its `Plain` peer.
struct Keeper {
    _log: DropLog,
    plain: RefCell<Option<Gc<Plain>>>,
}

// SAFETY: visits the one `Gc` a `Keeper` owns.
unsafe impl Trace for Keeper {
    fn trace(&self, tracer: &mut Tracer) {
        self.plain.trace(tracer);
    }
}

thread_local! {
    static KEPT: RefCell<Option<Gc<Plain>>> = const { RefCell::new(None) };
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let plain = self.plain.borrow_mut().take();
        if let Some(plain) = plain {
            // `Plain` has no drop glue: `Deref` skips the dead test, and
            // reads the bytes the collector's "drop" left as they were.
            assert_eq!(plain.number, 42);
            KEPT.with(|k| *k.borrow_mut() = Some(plain));
        }
    }
}

/// `Deref` skips its test for a dead value when the type has no drop glue
/// (dropping such a value changes none of its bytes). That is sound only
/// while the memory stays allocated: a `Drop` run by a collection keeps a
/// handle to a garbage peer of such a type, and reads it during the
/// collection and after; its memory lives with the handle (Miri), and the
/// `Gc` leaked inside its `ManuallyDrop`, taken back and dropped, releases
/// the last of the other peer, already dead (nothing leaks).
#[test]
fn a_dead_value_without_drop_glue_is_read_from_memory_its_handle_keeps() {
    take_dropped();
    let keeper = Gc::new(Keeper {
        _log: DropLog(1),
        plain: RefCell::new(None),
    });
    let plain = Gc::new(Plain {
        number: 42,
        keeper: RefCell::new(ManuallyDrop::new(Some(keeper.clone()))),
    });
    *keeper.plain.borrow_mut() = Some(plain.clone());
    let weak_keeper = Gc::downgrade(&keeper);
    drop((keeper, plain));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_dropped(), [1]);
    let kept = KEPT
        .with(|k| k.borrow_mut().take())
        .expect("the Drop kept it");
    assert_eq!(kept.number, 42, "read after the collection");
    assert!(weak_keeper.upgrade().is_none());
    // The leaked edge: a strong reference to a dead `Keeper`.
    let leaked = ManuallyDrop::into_inner(std::mem::replace(
        &mut *kept.keeper.borrow_mut(),
        ManuallyDrop::new(None),
    ));
    drop(kept);
    let leaked = leaked.expect("the edge was never released");
    assert_eq!(Gc::strong_count(&leaked), 1);
    drop(leaked);
    drop(weak_keeper);
    assert_eq!(take_dropped(), Vec::<u32>::new(), "no second drop");
}

// ---- inspect.rs: `ObjectRef::downcast` and the type of every handle ----

trait Shape: Trace {
    fn sides(&self) -> u32;
}

/// A shape that points at something, so that `referrers` finds it.
struct Square {
    sides: Cell<u32>,
    target: RefCell<Option<Gc<u8>>>,
}

// SAFETY: visits the one `Gc` a `Square` owns.
unsafe impl Trace for Square {
    fn trace(&self, tracer: &mut Tracer) {
        self.target.trace(tracer);
    }
}

impl Shape for Square {
    fn sides(&self) -> u32 {
        self.sides.get()
    }
}

/// A `Gc<dyn Shape>` whose trait object's lifetime bound is `'a`: an
/// unsizing coercion, which stays allowed.
fn shape_for<'a>(square: Gc<Square>, _: &'a str) -> Gc<dyn Shape + 'a> {
    gcptr::gc_coerce!(square => dyn Shape + 'a)
}

/// `ObjectRef::downcast` hands out a handle of the type an object was
/// made with, so every handle must keep that type: `Gc` and `Weak` are
/// invariant in `T` (this review's fix; before it, a subtyping let
/// `get_mut` store a borrow of a local, or a function that keeps its
/// `'static` argument, in an object that `downcast` then handed out as
/// its made type: a use after free under Miri, from safe code; the
/// `compile_fail` examples on `gc::_GC_IS_INVARIANT` are those programs).
/// What stays allowed: unsizing to a trait object (with a shorter
/// lifetime bound too) and to a slice, `get_mut` at the made type, and a
/// `downcast` that sees what it wrote.
#[test]
fn handles_keep_the_made_type_and_still_unsize() {
    let target = Gc::new(0u8);
    let mut square = Gc::new(Square {
        sides: Cell::new(4),
        target: RefCell::new(Some(target.clone())),
    });
    Gc::get_mut(&mut square).unwrap().sides.set(5);
    let local = String::from("a borrow for the trait object's bound");
    let shape = shape_for(square.clone(), &local);
    assert_eq!(shape.sides(), 5);
    let weak_shape: Weak<dyn Shape> = gcptr::gc_coerce!(Gc::downgrade(&square) => dyn Shape);
    drop(square);
    let holder = gcptr::referrers(&target)
        .into_iter()
        .next()
        .expect("the square refers to the target");
    let back = holder.downcast::<Square>().expect("made as a `Square`");
    assert_eq!(back.sides(), 5);
    assert!(holder.downcast::<u8>().is_none());
    assert!(std::ptr::addr_eq(Gc::as_ptr(&back), Gc::as_ptr(&shape)));
    drop((shape, back));
    assert!(weak_shape.upgrade().is_none());
    let array = Gc::new([1u8, 2, 3]);
    let slice: Gc<[u8]> = gcptr::gc_coerce!(array => [u8]);
    assert_eq!(&*slice, [1, 2, 3]);
}
