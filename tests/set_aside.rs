//! Objects that `Gc::get_mut` sets aside: out of the collector's lists
//! while their value may be mutably borrowed, and back (into generation 0)
//! at their next lost reference or when an analysis meets an edge to
//! them. Whatever happens meanwhile, inside a collection or out, every
//! garbage cycle is still reclaimed, once, and nothing is traced while lent.

mod support;

use std::cell::{Cell, RefCell};

use gcptr::{Finalize, Gc, Trace, Tracer, Weak};
use support::{take_drops, DropLog, Node};

/// A node whose finalizer and `Drop` run test-chosen actions.
#[derive(Trace)]
#[gc(finalize)]
struct Hooked {
    log: DropLog,
    edges: RefCell<Vec<Gc<Hooked>>>,
    #[gc(skip)]
    on_finalize: fn(&Hooked),
    #[gc(skip)]
    on_drop: fn(&Hooked),
}

impl Finalize for Hooked {
    fn finalize(&self) {
        (self.on_finalize)(self);
    }
}

impl Drop for Hooked {
    fn drop(&mut self) {
        (self.on_drop)(self);
    }
}

fn nothing(_: &Hooked) {}

fn hooked(id: u32, on_finalize: fn(&Hooked), on_drop: fn(&Hooked)) -> Gc<Hooked> {
    Gc::new(Hooked {
        log: DropLog(id),
        edges: RefCell::new(Vec::new()),
        on_finalize,
        on_drop,
    })
}

/// An unreachable two-object cycle, ids 1 and 2, with these hooks.
fn garbage_cycle(on_finalize: fn(&Hooked), on_drop: fn(&Hooked)) {
    let a = hooked(1, on_finalize, on_drop);
    let b = hooked(2, on_finalize, on_drop);
    a.edges.borrow_mut().push(b.clone());
    b.edges.borrow_mut().push(a.clone());
}

/// The first edge of `hooked`, cloned then dropped: a lost reference.
fn clone_and_drop_peer(hooked: &Hooked) {
    drop(hooked.edges.borrow()[0].clone());
}

thread_local! {
    static STASH: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
    static HOOKED_STASH: RefCell<Vec<Gc<Hooked>>> = const { RefCell::new(Vec::new()) };
}

/// A node `id`, set aside by `get_mut`, whose only handles are two in
/// `STASH`.
fn stash_set_aside_node(id: u32) {
    let mut x = Node::new(id);
    Gc::get_mut(&mut x).expect("unique");
    STASH.with(|stash| stash.borrow_mut().extend([x.clone(), x]));
}

/// Empties `STASH` and drops one of its handles (a lost reference, which
/// makes a set-aside node wait if a collection runs); returns the rest.
fn take_stash_losing_one() -> Vec<Gc<Node>> {
    let mut stash = STASH.with(|stash| std::mem::take(&mut *stash.borrow_mut()));
    stash.pop();
    stash
}

/// Losing a reference (here the handles' drops, after `link` cloned them)
/// brings an object back at once. Before, only other objects' traces did,
/// and a cycle of set-aside objects alone was never collected.
#[test]
fn a_garbage_cycle_of_objects_set_aside_by_get_mut_is_collected() {
    take_drops();
    let mut a = Node::new(1);
    let mut b = Node::new(2);
    let mut c = Node::new(3);
    for node in [&mut a, &mut b, &mut c] {
        Gc::get_mut(node).expect("unique").log.0 += 10;
    }
    a.link(&b);
    b.link(&a);
    drop((a, b));
    // A self-cycle too.
    c.link(&c);
    drop(c);
    assert_eq!(gcptr::collect(), 3);
    assert_eq!(take_drops(), [11, 12, 13]);
}

/// As above, but the handles are lost while a collection runs (a `Drop`
/// it calls releases them): such objects wait for the collection to end,
/// then come back, and the next collection finds their cycle.
#[test]
fn set_aside_objects_that_lose_references_during_a_collection_come_back() {
    take_drops();
    let mut a = Node::new(11);
    let mut b = Node::new(12);
    for node in [&mut a, &mut b] {
        Gc::get_mut(node).expect("unique").log.0 += 10;
    }
    a.link(&b);
    b.link(&a);
    // The stash holds the only handles, so every loss comes from the drop.
    STASH.with(|stash| stash.borrow_mut().extend([a, b]));
    garbage_cycle(nothing, |hooked| {
        if hooked.log.0 == 1 {
            STASH.with(|stash| stash.borrow_mut().clear());
        }
    });
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [21, 22]);
}

/// An object set aside that loses a reference during a collection is held
/// by the collector until it ends, so `get_mut` cannot lend it out again
/// meanwhile (its `&mut` could outlive the collection, and the object then
/// come back into the lists under it). After the collection it is back,
/// and can be lent out again.
#[test]
fn an_object_waiting_to_come_back_is_not_lent_out() {
    thread_local!(static LENT_DURING: Cell<Option<bool>> = const { Cell::new(None) });
    let target = Node::new(1);
    let mut x = Node::new(2);
    Gc::get_mut(&mut x).expect("unique");
    x.link(&target);
    assert!(gcptr::referrers(&target).is_empty(), "set aside");
    STASH.with(|stash| stash.borrow_mut().extend([x.clone(), x]));
    garbage_cycle(nothing, |hooked| {
        if hooked.log.0 == 1 {
            STASH.with(|stash| {
                let mut stash = stash.borrow_mut();
                stash.pop();
                let lent = Gc::get_mut(&mut stash[0]).is_some();
                LENT_DURING.with(|cell| cell.set(Some(lent)));
            });
        }
    });
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(LENT_DURING.with(Cell::get), Some(false));
    assert_eq!(gcptr::referrers(&target).len(), 1, "back in the lists");
    let mut x = STASH
        .with(|stash| stash.borrow_mut().pop())
        .expect("stashed");
    Gc::get_mut(&mut x)
        .expect("unique after the collection")
        .log
        .0 += 1;
    assert_eq!(x.id(), 3);
}

/// Garbage the collection condemned looks set aside too (in no list); one
/// that loses a reference in a peer's finalizer waits like the others,
/// and is still reclaimed once.
#[test]
fn a_condemned_object_that_loses_a_reference_is_reclaimed_once() {
    take_drops();
    garbage_cycle(clone_and_drop_peer, nothing);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    assert_eq!(gcptr::collect(), 0);
}

/// As above, but the finalizer also resurrects the cycle, which the
/// collection relinks: the wait must not link it a second time.
#[test]
fn a_resurrected_object_that_lost_a_reference_is_linked_once() {
    take_drops();
    garbage_cycle(
        |hooked| {
            let peer = hooked.edges.borrow()[0].clone();
            HOOKED_STASH.with(|stash| {
                let mut stash = stash.borrow_mut();
                if stash.is_empty() {
                    stash.push(peer.clone());
                }
            });
        },
        nothing,
    );
    assert_eq!(gcptr::collect(), 0);
    assert!(take_drops().is_empty());
    for generation in 0..3 {
        assert_eq!(gcptr::collect_generation(generation), 0);
    }
    let resurrected = HOOKED_STASH.with(|stash| stash.borrow()[0].clone());
    assert_eq!(gcptr::referrers(&resurrected).len(), 1, "linked once");
    drop(resurrected);
    HOOKED_STASH.with(|stash| stash.borrow_mut().clear());
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
}

/// An object waiting to come back whose value a `Drop` moves out with
/// `try_unwrap`: its memory is freed, its value dropped once.
#[test]
fn a_waiting_object_unwrapped_during_the_collection() {
    take_drops();
    stash_set_aside_node(7);
    garbage_cycle(nothing, |hooked| {
        if hooked.log.0 == 1 {
            let mut stash = take_stash_losing_one();
            let node = Gc::try_unwrap(stash.pop().expect("stashed"))
                .ok()
                .expect("the only strong reference");
            assert_eq!(node.id(), 7);
        }
    });
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2, 7]);
    assert_eq!(gcptr::collect(), 0);
}

/// An object waiting to come back that dies by count before the
/// collection ends.
#[test]
fn a_waiting_object_that_dies_during_the_collection() {
    take_drops();
    stash_set_aside_node(7);
    garbage_cycle(nothing, |hooked| {
        if hooked.log.0 == 1 {
            drop(take_stash_losing_one()); // the object waits, then dies
        }
    });
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2, 7]);
    assert_eq!(gcptr::collect(), 0);
}

/// A set-aside object dying by count runs its finalizer, which revives it
/// for a moment and runs a collection in which that handle is lost: the
/// object comes back into generation 0 while its death holds it, and the
/// death must take it out of the lists again.
#[test]
fn a_dying_object_relinked_while_its_finalizer_runs() {
    thread_local!(static ME: RefCell<Option<Weak<Hooked>>> = const { RefCell::new(None) });
    take_drops();
    let mut x = hooked(
        5,
        |hooked| {
            if hooked.log.0 != 5 {
                return;
            }
            let me = ME.with(|me| me.borrow().as_ref().and_then(Weak::upgrade));
            HOOKED_STASH.with(|stash| stash.borrow_mut().extend(me));
            garbage_cycle(nothing, |hooked| {
                if hooked.log.0 == 1 {
                    HOOKED_STASH.with(|stash| stash.borrow_mut().clear());
                }
            });
            assert_eq!(gcptr::collect(), 2);
        },
        nothing,
    );
    Gc::get_mut(&mut x).expect("unique");
    ME.with(|me| *me.borrow_mut() = Some(Gc::downgrade(&x)));
    drop(x);
    assert_eq!(take_drops(), [1, 2, 5]);
    let y = Node::new(9);
    assert!(
        gcptr::referrers(&y).is_empty(),
        "no dead object in the lists"
    );
    for generation in 0..3 {
        assert_eq!(gcptr::collect_generation(generation), 0);
    }
    ME.with(|me| me.borrow_mut().take());
}

/// A `trace` that drops a handle (abusive, but safe code) makes a
/// set-aside object lose a reference during an analysis: it waits too.
#[test]
fn a_loss_during_an_analysis() {
    struct DropsWhileTracing;
    // SAFETY: owns no Gc; drops one from the stash while tracing.
    unsafe impl Trace for DropsWhileTracing {
        fn trace(&self, _: &mut Tracer) {
            STASH.with(|stash| {
                if let Ok(mut stash) = stash.try_borrow_mut() {
                    stash.pop();
                }
            });
        }
    }
    take_drops();
    let abuser = Gc::new(RefCell::new(Some(DropsWhileTracing)));
    // A lost reference, so that the full collection starts from it and
    // traces it.
    drop(abuser.clone());
    let mut x = Node::new(7);
    Gc::get_mut(&mut x).expect("unique");
    x.link(&x); // a self-cycle, set aside
    STASH.with(|stash| stash.borrow_mut().push(x));
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [7]);
    drop(abuser);
}
