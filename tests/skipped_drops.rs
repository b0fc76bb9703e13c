//! Garbage whose drops would do nothing but release each other's `Gc`s is
//! freed without them (`Trace::__drop_only_releases_gcs`), and only such
//! garbage: whatever a skipped drop would have released outside the set,
//! or run, is still released or run.

use std::cell::{Cell, RefCell};

use gcptr::{Gc, Trace, Weak};

/// A node whose drop does nothing but drop `Gc`s.
#[derive(Trace)]
struct Bare {
    next: RefCell<Option<Gc<Bare>>>,
    prev: RefCell<Option<Gc<Bare>>>,
}

fn bare() -> Gc<Bare> {
    Gc::new(Bare {
        next: RefCell::new(None),
        prev: RefCell::new(None),
    })
}

/// A doubly linked ring of `n` nodes.
fn ring(n: usize) -> Vec<Gc<Bare>> {
    let nodes: Vec<_> = (0..n).map(|_| bare()).collect();
    for (i, node) in nodes.iter().enumerate() {
        *node.next.borrow_mut() = Some(nodes[(i + 1) % n].clone());
        *node.prev.borrow_mut() = Some(nodes[(i + n - 1) % n].clone());
    }
    nodes
}

#[test]
fn a_dropped_ring_of_bare_nodes_is_freed_and_its_weak_references_fail() {
    assert!(<Bare as Trace>::__drop_only_releases_gcs());
    let nodes = ring(100);
    let weaks: Vec<Weak<Bare>> = nodes.iter().map(Gc::downgrade).collect();
    drop(nodes);
    assert_eq!(gcptr::collect(), 100);
    for weak in &weaks {
        assert!(weak.upgrade().is_none());
        assert_eq!(weak.strong_count(), 0);
    }
    // The memory the weak references kept goes with them (Miri and the
    // leak sanitizer see a leak otherwise).
    drop(weaks);
    assert_eq!(gcptr::collect(), 0);
}

#[test]
fn rings_found_from_a_few_reporters_are_freed_one_by_one() {
    // Few reporters next to a large generation 2: the collection takes
    // its roots from the reporters' buffer one at a time, and each ring
    // it meets is freed while the other roots still wait there.
    let live = ring(if cfg!(miri) { 200 } else { 2000 });
    gcptr::collect();
    let dead: Vec<Vec<Gc<Bare>>> = (0..3).map(|_| ring(5)).collect();
    gcptr::collect();
    let weaks: Vec<Weak<Bare>> = dead.iter().flatten().map(Gc::downgrade).collect();
    drop(dead);
    assert_eq!(gcptr::collect(), 15);
    assert!(weaks.iter().all(|w| w.upgrade().is_none()));
    assert!(live.iter().all(|node| Gc::strong_count(node) == 3));
}

/// A node that holds one object the collector never tracks, or none.
#[derive(Trace)]
struct Labelled {
    label: RefCell<Option<Gc<String>>>,
    next: RefCell<Option<Gc<Labelled>>>,
}

#[test]
fn an_untracked_object_held_by_garbage_is_released() {
    assert!(<Labelled as Trace>::__drop_only_releases_gcs());
    let label = Gc::new(String::from("only the cycle holds me"));
    assert!(!gcptr::is_tracked(&label));
    let weak_label = Gc::downgrade(&label);
    let a = Gc::new(Labelled {
        label: RefCell::new(Some(label)),
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert!(
        weak_label.upgrade().is_none(),
        "the label's last reference was the garbage's to release"
    );
}

#[test]
fn an_acyclic_object_held_by_garbage_is_released() {
    #[derive(Trace)]
    struct Leaf {
        value: Gc<u64>,
    }
    #[derive(Trace)]
    struct Holder {
        leaf: Gc<Leaf>,
        next: RefCell<Option<Gc<Holder>>>,
    }
    assert!(<Holder as Trace>::__drop_only_releases_gcs());
    let leaf = Gc::new(Leaf { value: Gc::new(5) });
    assert!(!gcptr::is_tracked(&leaf), "its edges are fixed");
    let weak_leaf = Gc::downgrade(&leaf);
    let a = Gc::new(Holder {
        leaf,
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert!(weak_leaf.upgrade().is_none());
}

#[test]
fn a_live_object_held_by_garbage_loses_only_the_garbage_reference() {
    let live = ring(3);
    let dead = ring(4);
    *dead[0].next.borrow_mut() = Some(live[0].clone());
    assert_eq!(Gc::strong_count(&live[0]), 4);
    let weak_dead = Gc::downgrade(&dead[2]);
    drop(dead);
    assert_eq!(gcptr::collect(), 4);
    assert!(weak_dead.upgrade().is_none());
    assert_eq!(
        Gc::strong_count(&live[0]),
        3,
        "its handle and its two ring neighbours"
    );
}

#[test]
fn edges_hidden_by_a_forgotten_borrow_are_still_released() {
    let extra = Gc::new(String::from("behind a borrow"));
    let weak_extra = Gc::downgrade(&extra);
    let a = Gc::new(Labelled {
        label: RefCell::new(Some(extra)),
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    // The trace cannot read the label any more, and must not assume that
    // dropping the node would release nothing but the cycle.
    std::mem::forget(a.label.borrow_mut());
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert!(weak_extra.upgrade().is_none());
}

thread_local!(static DROPS: Cell<usize> = const { Cell::new(0) });

/// Half of a two-type cycle: this one has a `Drop` of its own.
#[derive(Trace)]
struct Logged {
    peer: RefCell<Option<Gc<Plain>>>,
}

impl Drop for Logged {
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

#[derive(Trace)]
struct Plain {
    peer: RefCell<Option<Gc<Logged>>>,
}

#[test]
fn one_member_with_a_drop_of_its_own_makes_the_whole_set_drop() {
    assert!(!<Logged as Trace>::__drop_only_releases_gcs());
    assert!(<Plain as Trace>::__drop_only_releases_gcs());
    DROPS.with(|d| d.set(0));
    let plain = Gc::new(Plain {
        peer: RefCell::new(None),
    });
    let logged = Gc::new(Logged {
        peer: RefCell::new(Some(plain.clone())),
    });
    *plain.peer.borrow_mut() = Some(logged);
    drop(plain);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(DROPS.with(Cell::get), 1);
}

thread_local! {
    static TO_UPGRADE: RefCell<Option<Weak<Stashing>>> = const { RefCell::new(None) };
    static STASHED: RefCell<Option<Gc<Stashing>>> = const { RefCell::new(None) };
}

/// Plain data whose hand-written trace upgrades a `Weak` and keeps the
/// result, as `Trace`'s contract allows.
struct Stasher;

// SAFETY: owns no `Gc`, visits none, changes nothing of `self`.
unsafe impl Trace for Stasher {
    fn trace(&self, _: &mut gcptr::Tracer) {
        let weak = TO_UPGRADE.with(|w| w.borrow_mut().take());
        if let Some(strong) = weak.and_then(|w| w.upgrade()) {
            STASHED.with(|s| *s.borrow_mut() = Some(strong));
        }
    }
}

#[derive(Trace)]
struct Stashing {
    next: RefCell<Option<Gc<Stashing>>>,
    stasher: Stasher,
}

#[test]
fn a_reference_made_by_a_trace_keeps_the_memory_of_the_garbage() {
    // The gathering pass counts a member's references when it takes it
    // in; a trace that then makes one more (here by upgrading a `Weak`)
    // would leave a `Gc` to freed memory if the set were freed on those
    // counts. A hand-written trace may run such code, so its type (and
    // whatever holds it) never takes that path, and the set is dropped.
    assert!(!<Stashing as Trace>::__drop_only_releases_gcs());
    let stashing = || {
        Gc::new(Stashing {
            next: RefCell::new(None),
            stasher: Stasher,
        })
    };
    let a = stashing();
    let b = stashing();
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    TO_UPGRADE.with(|w| *w.borrow_mut() = Some(Gc::downgrade(&a)));
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    let stashed = STASHED.with(|s| s.borrow_mut().take());
    let stashed = stashed.expect("the trace upgraded its Weak");
    assert_eq!(Gc::strong_count(&stashed), 1, "its memory is alive");
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stashed.next.borrow().is_some()
    }));
    assert!(read.is_err(), "its value was dropped with the garbage");
    drop(stashed);
}

/// A node of the random graphs below: up to three edges, and a label (an
/// untracked object) on some.
#[derive(Trace)]
struct GraphNode {
    edges: RefCell<[Option<Gc<GraphNode>>; 3]>,
    label: Option<Gc<String>>,
}

/// Random graphs of small clusters, with a few edges between them, a
/// label on one node of some clusters (so that some garbage sets are freed
/// without drops and some with), and some handles kept: after a
/// collection, exactly the nodes reachable from the kept handles live, and
/// exactly the labels of the nodes that died are released.
#[test]
fn random_graphs_keep_exactly_what_their_handles_reach() {
    const CLUSTER: usize = 6;
    const NODES: usize = CLUSTER * if cfg!(miri) { 4 } else { 40 };
    let seeds = if cfg!(miri) { 2 } else { 40 };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |below: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % below
    };
    for _ in 0..seeds {
        let labelled: Vec<bool> = (0..NODES)
            .map(|i| i % CLUSTER == 0 && random(3) == 0)
            .collect();
        let nodes: Vec<Gc<GraphNode>> = (0..NODES)
            .map(|i| {
                Gc::new(GraphNode {
                    edges: RefCell::new([None, None, None]),
                    label: labelled[i].then(|| Gc::new(format!("node {i}"))),
                })
            })
            .collect();
        let mut adjacency = vec![Vec::new(); NODES];
        for (from, edges) in adjacency.iter_mut().enumerate() {
            for slot in 0..3 {
                if random(3) != 0 {
                    let to = if random(12) == 0 {
                        random(NODES)
                    } else {
                        from - from % CLUSTER + random(CLUSTER)
                    };
                    nodes[from].edges.borrow_mut()[slot] = Some(nodes[to].clone());
                    edges.push(to);
                }
            }
        }
        let kept: Vec<usize> = (0..NODES).filter(|_| random(12) == 0).collect();
        let mut reachable = [false; NODES];
        let mut stack = kept.clone();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut reachable[i], true) {
                stack.extend(&adjacency[i]);
            }
        }
        let weaks: Vec<Weak<GraphNode>> = nodes.iter().map(Gc::downgrade).collect();
        let labels: Vec<Option<Weak<String>>> = nodes
            .iter()
            .map(|n| n.label.as_ref().map(Gc::downgrade))
            .collect();
        let handles: Vec<Gc<GraphNode>> = kept.iter().map(|&i| nodes[i].clone()).collect();
        drop(nodes);
        gcptr::collect();
        for i in 0..NODES {
            assert_eq!(weaks[i].upgrade().is_some(), reachable[i], "node {i}");
            if let Some(label) = &labels[i] {
                assert_eq!(label.upgrade().is_some(), reachable[i], "label {i}");
            }
        }
        drop(handles);
        gcptr::collect();
        assert!(weaks.iter().all(|w| w.upgrade().is_none()));
        assert!(labels.iter().flatten().all(|l| l.upgrade().is_none()));
    }
}
