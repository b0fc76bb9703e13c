//! Acyclic objects: values that cannot gain a `Gc` once shared, made from
//! untracked or acyclic objects, stay out of the collector's sight
//! (`gcptr::is_tracked` is false), yet every cycle that can pass through
//! them is still found.

use std::cell::{Cell, OnceCell, RefCell};

use gcptr::{Finalize, Gc, Trace, Weak, WeakValueMap};

thread_local! {
    static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static FINALIZED: Cell<u32> = const { Cell::new(0) };
}

fn dropped() -> Vec<u32> {
    let mut ids = DROPPED.with(|d| d.borrow().clone());
    ids.sort_unstable();
    ids
}

fn reset() {
    gcptr::collect();
    DROPPED.with(|d| d.borrow_mut().clear());
    FINALIZED.with(|f| f.set(0));
}

/// A node of either kind, as an edge.
#[derive(Trace, Clone)]
enum Any {
    Frozen(Gc<Frozen>),
    Mutable(Gc<Mutable>),
}

impl Any {
    fn is_tracked(&self) -> bool {
        match self {
            Any::Frozen(f) => gcptr::is_tracked(f),
            Any::Mutable(m) => gcptr::is_tracked(m),
        }
    }
}

/// Its edges are fixed once it is made.
#[derive(Trace)]
struct Frozen {
    #[gc(skip)]
    id: u32,
    kids: Vec<Any>,
}

/// Its edges can change through `&self`.
#[derive(Trace)]
struct Mutable {
    #[gc(skip)]
    id: u32,
    kids: RefCell<Vec<Any>>,
}

fn record_drop(id: u32) {
    // `try_with`: cycles a test leaves behind die at thread exit, maybe
    // after the record.
    let _ = DROPPED.try_with(|d| d.borrow_mut().push(id));
}

impl Drop for Frozen {
    fn drop(&mut self) {
        record_drop(self.id);
    }
}

impl Drop for Mutable {
    fn drop(&mut self) {
        record_drop(self.id);
    }
}

fn frozen(id: u32, kids: Vec<Any>) -> Gc<Frozen> {
    Gc::new(Frozen { id, kids })
}

fn mutable(id: u32) -> Gc<Mutable> {
    Gc::new(Mutable {
        id,
        kids: RefCell::new(Vec::new()),
    })
}

#[test]
fn an_immutable_tree_is_untracked_and_dies_by_count() {
    reset();
    gcptr::disable();
    let before = gcptr::count();
    let leaves: Vec<Any> = (0..4).map(|id| Any::Frozen(frozen(id, vec![]))).collect();
    let root = frozen(
        10,
        vec![Any::Frozen(frozen(11, leaves.clone())), leaves[0].clone()],
    );
    assert!(!gcptr::is_tracked(&root));
    assert!(leaves.iter().all(|l| !l.is_tracked()));
    assert_eq!(gcptr::count(), before, "acyclic objects do not count");
    assert!(gcptr::referrers(match &leaves[1] {
        Any::Frozen(f) => f,
        Any::Mutable(_) => unreachable!(),
    })
    .is_empty());
    assert_eq!(gcptr::collect(), 0);
    assert!(dropped().is_empty());
    drop(leaves);
    drop(root);
    assert_eq!(dropped(), [0, 1, 2, 3, 10, 11]);
    assert_eq!(gcptr::count(), before, "their deaths do not count either");
    gcptr::enable();
}

#[test]
fn owning_a_tracked_object_makes_an_immutable_object_tracked_and_its_cycle_collectable() {
    reset();
    let m = mutable(1);
    let f = frozen(2, vec![Any::Mutable(m.clone())]);
    assert!(
        gcptr::is_tracked(&f),
        "it reaches an object whose edges can change"
    );
    let above = frozen(3, vec![Any::Frozen(f.clone())]);
    assert!(gcptr::is_tracked(&above), "it reaches a tracked object");
    m.kids.borrow_mut().push(Any::Frozen(above.clone()));
    drop((m, f, above));
    assert!(dropped().is_empty());
    assert_eq!(gcptr::collect(), 3);
    assert_eq!(dropped(), [1, 2, 3]);
}

#[test]
fn get_mut_makes_an_acyclic_object_tracked_for_good() {
    reset();
    let mut f = frozen(1, vec![]);
    assert!(!gcptr::is_tracked(&f));
    let m = mutable(2);
    Gc::get_mut(&mut f)
        .expect("unique")
        .kids
        .push(Any::Mutable(m.clone()));
    assert!(gcptr::is_tracked(&f));
    m.kids.borrow_mut().push(Any::Frozen(f.clone()));
    drop((f, m));
    // The first collection sees the edge to the set-aside object and takes
    // it back; the next one finds the cycle.
    let mut reclaimed = 0;
    for _ in 0..3 {
        reclaimed += gcptr::collect();
    }
    assert_eq!(reclaimed, 2);
    assert_eq!(dropped(), [1, 2]);
}

#[test]
fn interior_mutability_keeps_a_type_tracked() {
    #[derive(Trace)]
    struct InOnceCell(OnceCell<Gc<u8>>);
    #[derive(Trace)]
    struct InRefCell(RefCell<Option<Gc<u8>>>);
    #[derive(Trace)]
    struct Nested(Vec<Option<(u8, InRefCell)>>);
    #[derive(Trace)]
    struct PlainCell(Cell<u64>, Gc<u8>);
    assert!(gcptr::is_tracked(&Gc::new(InOnceCell(OnceCell::new()))));
    assert!(gcptr::is_tracked(&Gc::new(InRefCell(RefCell::new(None)))));
    assert!(gcptr::is_tracked(&Gc::new(Nested(vec![]))));
    assert!(!gcptr::is_tracked(&Gc::new(PlainCell(
        Cell::new(0),
        Gc::new(1)
    ))));
}

#[test]
fn a_self_referring_weak_does_not_make_an_object_tracked() {
    reset();
    #[derive(Trace)]
    struct Window {
        me: Weak<Window>,
        child: Option<Gc<Frozen>>,
    }
    let w = Gc::new_cyclic(|me| Window {
        me: me.clone(),
        child: Some(frozen(1, vec![])),
    });
    assert!(!gcptr::is_tracked(&w));
    assert!(Gc::ptr_eq(&w.me.upgrade().unwrap(), &w));
    let weak = Gc::downgrade(&w);
    drop(w);
    assert!(weak.upgrade().is_none());
    assert_eq!(dropped(), [1]);
}

#[test]
fn an_acyclic_object_is_finalized_once_even_when_resurrected() {
    reset();
    #[derive(Trace)]
    #[gc(finalize)]
    struct Phoenix {
        me: Weak<Phoenix>,
        child: Gc<Frozen>,
    }
    thread_local!(static SAVED: RefCell<Option<Gc<Phoenix>>> = const { RefCell::new(None) });
    impl Finalize for Phoenix {
        fn finalize(&self) {
            FINALIZED.with(|f| f.set(f.get() + 1));
            SAVED.with(|s| *s.borrow_mut() = self.me.upgrade());
        }
    }
    impl Drop for Phoenix {
        fn drop(&mut self) {
            DROPPED.with(|d| d.borrow_mut().push(100));
        }
    }
    let p = Gc::new_cyclic(|me| Phoenix {
        me: me.clone(),
        child: frozen(1, vec![]),
    });
    assert!(!gcptr::is_tracked(&p));
    drop(p);
    assert_eq!(FINALIZED.with(Cell::get), 1);
    assert!(dropped().is_empty(), "resurrected by its finalizer");
    let back = SAVED.with(|s| s.borrow_mut().take()).expect("resurrected");
    assert!(!gcptr::is_tracked(&back));
    assert_eq!(back.child.id, 1);
    drop(back);
    assert_eq!(FINALIZED.with(Cell::get), 1, "finalized once");
    assert_eq!(dropped(), [1, 100]);
}

#[test]
fn a_weak_value_map_forgets_an_acyclic_value_when_it_dies() {
    reset();
    let mut cache = WeakValueMap::new();
    let f = frozen(1, vec![Any::Frozen(frozen(2, vec![]))]);
    assert!(!gcptr::is_tracked(&f));
    cache.insert("tree", &f);
    assert!(Gc::ptr_eq(&cache.get("tree").unwrap(), &f));
    drop(f);
    assert_eq!(cache.len(), 0);
    assert!(cache.get("tree").is_none());
    assert_eq!(dropped(), [1, 2]);
}

#[test]
fn try_unwrap_of_an_acyclic_object_leaves_the_counts_alone() {
    reset();
    gcptr::disable();
    let before = gcptr::count();
    let f = frozen(1, vec![Any::Frozen(frozen(2, vec![]))]);
    let Ok(value) = Gc::try_unwrap(f) else {
        panic!("unique")
    };
    assert_eq!(gcptr::count(), before);
    drop(value);
    assert_eq!(dropped(), [1, 2]);
    gcptr::enable();
}

#[test]
fn a_long_acyclic_chain_drops_without_recursion() {
    reset();
    #[derive(Trace)]
    struct Link(Option<Gc<Link>>);
    let mut head = Gc::new(Link(None));
    for _ in 0..if cfg!(miri) { 1_000 } else { 1_000_000 } {
        head = Gc::new(Link(Some(head)));
    }
    assert!(!gcptr::is_tracked(&head));
    drop(head);
}

/// A tiny deterministic generator (xorshift), so that each seed is one
/// reproducible program.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Random programs over frozen and mutable nodes, against a model graph:
/// after a full collection exactly the nodes unreachable from the roots
/// have been dropped, each once, and `is_tracked` is false exactly for
/// frozen nodes never lent out by `get_mut` whose kids were all such.
/// `GCPTR_ACYCLIC_PROGRAMS=100000 cargo test --release --test acyclic`
/// runs more.
#[test]
fn random_graphs_match_the_model() {
    let programs: u64 = std::env::var("GCPTR_ACYCLIC_PROGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(miri) { 3 } else { 300 });
    let steps = if cfg!(miri) { 40 } else { 200 };
    for seed in 1..=programs {
        reset();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Model: kids of each node by id, whether it is acyclic.
        let mut kids: Vec<Vec<usize>> = Vec::new();
        let mut acyclic: Vec<bool> = Vec::new();
        let mut roots: Vec<(usize, Any)> = Vec::new();
        for _ in 0..steps {
            let id = kids.len();
            match rng.below(6) {
                0 | 1 => {
                    let n = if roots.is_empty() { 0 } else { rng.below(3) };
                    let picked: Vec<(usize, Any)> = (0..n)
                        .map(|_| roots[rng.below(roots.len())].clone())
                        .collect();
                    acyclic.push(picked.iter().all(|(k, _)| acyclic[*k]));
                    kids.push(picked.iter().map(|(k, _)| *k).collect());
                    let node = frozen(id as u32, picked.into_iter().map(|(_, a)| a).collect());
                    roots.push((id, Any::Frozen(node)));
                }
                2 => {
                    acyclic.push(false);
                    kids.push(Vec::new());
                    roots.push((id, Any::Mutable(mutable(id as u32))));
                }
                3 if !roots.is_empty() => {
                    let (from, node) = roots[rng.below(roots.len())].clone();
                    let (to, target) = roots[rng.below(roots.len())].clone();
                    match node {
                        Any::Mutable(m) => {
                            m.kids.borrow_mut().push(target);
                            kids[from].push(to);
                        }
                        Any::Frozen(mut f) => {
                            // The clone in `roots` makes it shared: take it
                            // out, try `get_mut`, put it back.
                            let at = roots.iter().position(|(i, _)| *i == from).unwrap();
                            let shared = roots.iter().filter(|(i, _)| *i == from).count();
                            if shared == 1 {
                                roots.swap_remove(at);
                                if let Some(value) = Gc::get_mut(&mut f) {
                                    value.kids.push(target);
                                    kids[from].push(to);
                                    acyclic[from] = false;
                                }
                                roots.push((from, Any::Frozen(f)));
                            }
                        }
                    }
                }
                4 if !roots.is_empty() => {
                    roots.swap_remove(rng.below(roots.len()));
                }
                5 => {
                    gcptr::collect_generation(rng.below(3));
                }
                _ => {}
            }
            for (id, node) in &roots {
                assert_eq!(node.is_tracked(), !acyclic[*id], "seed {seed}: node {id}");
            }
        }
        // Reachability in the model.
        let mut alive = vec![false; kids.len()];
        let mut stack: Vec<usize> = roots.iter().map(|(id, _)| *id).collect();
        while let Some(id) = stack.pop() {
            if !std::mem::replace(&mut alive[id], true) {
                stack.extend(&kids[id]);
            }
        }
        // Objects set aside by `get_mut` come back one collection later.
        for _ in 0..3 {
            gcptr::collect();
        }
        let expected: Vec<u32> = (0..kids.len())
            .filter(|&id| !alive[id])
            .map(|id| id as u32)
            .collect();
        assert_eq!(dropped(), expected, "seed {seed}");
        drop(roots);
        for _ in 0..3 {
            gcptr::collect();
        }
        let all: Vec<u32> = (0..kids.len() as u32).collect();
        assert_eq!(dropped(), all, "seed {seed}: everything dies at the end");
    }
}

/// A two-object garbage cycle; the weak reference tells whether it died.
fn garbage_pair(id: u32) -> Weak<Mutable> {
    let a = mutable(id);
    let b = mutable(id + 1);
    a.kids.borrow_mut().push(Any::Mutable(b.clone()));
    b.kids.borrow_mut().push(Any::Mutable(a.clone()));
    Gc::downgrade(&a)
}

#[test]
fn an_object_made_tracked_by_get_mut_or_make_mut_is_counted_once_each_way() {
    #[derive(Trace, Clone)]
    struct Cow(Vec<Gc<u8>>);
    reset();
    gcptr::disable();
    let keep = mutable(1);
    let before = gcptr::count();
    let mut a = Gc::new(Cow(vec![]));
    Gc::get_mut(&mut a).unwrap().0.push(Gc::new(1));
    assert_eq!(gcptr::count()[0], before[0] + 1, "counted once tracked");
    drop(a);
    let mut b = Gc::new(Cow(vec![]));
    Gc::make_mut(&mut b).0.clear();
    let Ok(_) = Gc::try_unwrap(b) else {
        panic!("unique")
    };
    let mut c = Gc::new(Cow(vec![]));
    Gc::make_mut(&mut c).0.clear();
    drop(c);
    assert_eq!(gcptr::count(), before, "each death undoes its own count");
    drop(keep);
    gcptr::enable();
}

/// Copy-on-write edits of acyclic objects between allocations of tracked
/// ones must not hold generation 0 below its threshold.
#[test]
fn copy_on_write_edits_leave_automatic_collection_working() {
    #[derive(Trace, Clone)]
    struct Cow(Vec<Gc<u8>>);
    reset();
    let rounds = if cfg!(miri) { 400 } else { 20_000 };
    let mut weaks = Vec::new();
    for i in 0..rounds {
        weaks.push(garbage_pair(2 * i));
        for _ in 0..2 {
            let mut cow = Gc::new(Cow(vec![]));
            Gc::make_mut(&mut cow).0.clear();
        }
    }
    let alive = weaks.iter().filter(|w| w.upgrade().is_some()).count();
    assert!(
        alive < 2 * 700,
        "{alive} of {rounds} garbage cycles outlived automatic collection"
    );
    gcptr::collect();
}

/// A `Gc<[T]>` is acyclic as a `Gc<Vec<T>>` is: a tree whose children are
/// slices of `Gc`s, built bottom-up, is out of the collector's sight, dies
/// by count, and a million levels of it drop without recursion; a slice
/// over a tracked object, or of cells, stays tracked and its cycle is
/// collected; `get_mut` makes an acyclic slice tracked.
#[test]
fn slices_of_fixed_edges_are_acyclic() {
    reset();
    gcptr::disable();
    let before = gcptr::count();
    let leaves: Gc<[Any]> = (0..3).map(|id| Any::Frozen(frozen(id, vec![]))).collect();
    let kids: Gc<[Gc<[Any]>]> = Gc::from(vec![leaves.clone(), Gc::from(Vec::new())]);
    assert!(!gcptr::is_tracked(&leaves) && !gcptr::is_tracked(&kids));
    assert_eq!(gcptr::count(), before, "acyclic slices do not count");
    assert_eq!(gcptr::collect(), 0);
    drop(leaves);
    assert!(dropped().is_empty());
    drop(kids);
    assert_eq!(dropped(), [0, 1, 2]);
    assert_eq!(gcptr::count(), before);

    // Over a tracked object: tracked, and a cycle through it is found.
    let m = mutable(7);
    let over: Gc<[Any]> = Gc::from(vec![Any::Mutable(m.clone())]);
    assert!(gcptr::is_tracked(&over));
    let holder = frozen(8, vec![]);
    assert!(!gcptr::is_tracked(&holder));
    #[derive(Trace)]
    struct Holds(Gc<[Any]>);
    let back = Gc::new(Holds(over.clone()));
    assert!(gcptr::is_tracked(&back), "it reaches a tracked slice");
    drop(holder);
    assert_eq!(dropped(), [0, 1, 2, 8]);
    m.kids.borrow_mut().push(Any::Frozen(frozen(9, vec![])));
    let cycle_closer = Gc::new(Mutable {
        id: 10,
        kids: RefCell::new(Vec::new()),
    });
    cycle_closer.kids.borrow_mut().push(Any::Mutable(m.clone()));
    m.kids.borrow_mut().push(Any::Mutable(cycle_closer.clone()));
    drop((m, over, back, cycle_closer));
    assert_eq!(
        gcptr::collect(),
        2,
        "the mutable pair; the slice died by count"
    );
    assert_eq!(dropped(), [0, 1, 2, 7, 8, 9, 10]);

    // `get_mut` makes an acyclic slice tracked for good.
    let mut alone: Gc<[Any]> = Gc::from(vec![Any::Frozen(frozen(11, vec![]))]);
    assert!(!gcptr::is_tracked(&alone));
    let slots = Gc::get_mut(&mut alone).expect("the only handle");
    slots[0] = Any::Mutable(mutable(12));
    assert!(gcptr::is_tracked(&alone));
    drop(alone);
    assert_eq!(dropped(), [0, 1, 2, 7, 8, 9, 10, 11, 12]);
    gcptr::enable();
}

/// A million-level chain of one-element slices, each acyclic, drops
/// without recursion on a small stack.
#[test]
fn a_deep_chain_of_acyclic_slices_drops_without_recursion() {
    #[derive(Trace)]
    struct Link(Option<Gc<[Link]>>);
    let depth = if cfg!(miri) { 1_000 } else { 1_000_000 };
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut head: Option<Gc<[Link]>> = None;
            for _ in 0..depth {
                head = Some(Gc::from(vec![Link(head.take())]));
            }
            assert!(!gcptr::is_tracked(head.as_ref().unwrap()));
            assert_eq!(gcptr::count(), [0, 0, 0]);
            drop(head);
        })
        .unwrap()
        .join()
        .unwrap();
}
