//! An adversarial review of the collector core (`gcptr/src/collector/`,
//! `gcptr/src/header.rs`): user code that the contract allows (`Drop`
//! impls, finalizers) meddling with the graph at every stage of a
//! collection, over objects of several kinds at once.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use gcptr::{Finalize, Gc, Trace, Weak};
use support::{take_drops, Node};

/// An edge to an object of any of the three kinds.
#[derive(Trace, Clone)]
enum Edge {
    /// A node with a `Drop` impl that meddles.
    M(Gc<Meddler>),
    /// A node with a finalizer that meddles (and a `Drop` that counts).
    F(Gc<Phoenix>),
    /// A node whose drop only releases `Gc`s: its garbage may be freed
    /// without drops.
    B(Gc<Bare>),
}

#[derive(Trace)]
struct Meddler {
    #[gc(skip)]
    id: u32,
    #[gc(skip)]
    act: u8,
    edges: RefCell<Vec<Edge>>,
}

#[derive(Trace)]
#[gc(finalize)]
struct Phoenix {
    #[gc(skip)]
    id: u32,
    #[gc(skip)]
    act: u8,
    edges: RefCell<Vec<Edge>>,
}

#[derive(Trace)]
struct Bare {
    a: RefCell<Option<Edge>>,
    b: RefCell<Option<Edge>>,
}

thread_local! {
    static ROOTS: RefCell<Vec<Edge>> = const { RefCell::new(Vec::new()) };
    static SEED: Cell<u64> = const { Cell::new(1) };
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
    /// id -> (drops, finalizations)
    static LIFE: RefCell<HashMap<u32, (u32, u32)>> = RefCell::new(HashMap::new());
    static BARE_WEAKS: RefCell<Vec<Weak<Bare>>> = const { RefCell::new(Vec::new()) };
    static FAULTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

fn rand() -> u64 {
    SEED.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

fn below(n: usize) -> usize {
    (rand() % n as u64) as usize
}

fn fault(message: String) {
    FAULTS.with(|f| f.borrow_mut().push(message));
}

fn new_id() -> u32 {
    let id = NEXT_ID.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    LIFE.with(|l| l.borrow_mut().insert(id, (0, 0)));
    id
}

fn meddler(act: u8) -> Edge {
    Edge::M(Gc::new(Meddler {
        id: new_id(),
        act,
        edges: RefCell::new(Vec::new()),
    }))
}

fn phoenix(act: u8) -> Edge {
    Edge::F(Gc::new(Phoenix {
        id: new_id(),
        act,
        edges: RefCell::new(Vec::new()),
    }))
}

fn bare() -> Edge {
    let b = Gc::new(Bare {
        a: RefCell::new(None),
        b: RefCell::new(None),
    });
    BARE_WEAKS.with(|w| w.borrow_mut().push(Gc::downgrade(&b)));
    Edge::B(b)
}

impl Edge {
    /// Whether the object's value may be read: its weak references
    /// upgrade (not dead, not condemned by a running collection).
    fn alive(&self) -> bool {
        match self {
            Edge::M(g) => Gc::downgrade(g).upgrade().is_some(),
            Edge::F(g) => Gc::downgrade(g).upgrade().is_some(),
            Edge::B(g) => Gc::downgrade(g).upgrade().is_some(),
        }
    }

    /// Adds an edge to `to`, if this object is alive; returns whether it
    /// did. Whatever it replaces is dropped after the borrow ends.
    fn link(&self, to: Edge) -> bool {
        if !self.alive() {
            return false;
        }
        let old = match self {
            Edge::M(g) => {
                g.edges.borrow_mut().push(to);
                None
            }
            Edge::F(g) => {
                g.edges.borrow_mut().push(to);
                None
            }
            Edge::B(g) => {
                if rand() & 1 == 0 {
                    g.a.borrow_mut().replace(to)
                } else {
                    g.b.borrow_mut().replace(to)
                }
            }
        };
        drop(old);
        true
    }

    /// Takes one edge out of this object (if alive), dropped by the caller.
    fn unlink(&self) -> Option<Edge> {
        if !self.alive() {
            return None;
        }
        match self {
            Edge::M(g) => {
                let mut edges = g.edges.borrow_mut();
                let n = edges.len();
                (n > 0).then(|| edges.swap_remove(below(n)))
            }
            Edge::F(g) => {
                let mut edges = g.edges.borrow_mut();
                let n = edges.len();
                (n > 0).then(|| edges.swap_remove(below(n)))
            }
            Edge::B(g) => {
                if rand() & 1 == 0 {
                    g.a.borrow_mut().take()
                } else {
                    g.b.borrow_mut().take()
                }
            }
        }
    }
}

fn random_root() -> Option<Edge> {
    ROOTS.with(|r| {
        let r = r.borrow();
        (!r.is_empty()).then(|| r[below(r.len())].clone())
    })
}

fn push_root(edge: Edge) {
    ROOTS.with(|r| r.borrow_mut().push(edge));
}

fn take_root() -> Option<Edge> {
    ROOTS.with(|r| {
        let mut r = r.borrow_mut();
        let n = r.len();
        (n > 0).then(|| r.swap_remove(below(n)))
    })
}

/// User code run by a `Drop` or a finalizer: `own` are the object's own
/// edges (taken out of a `Drop`'s value, or cloned by a finalizer).
fn meddle(act: u8, mut own: Vec<Edge>) {
    // Bounded: a meddler's drop can make meddlers.
    if DEPTH.with(|d| d.get()) > 3 {
        return;
    }
    DEPTH.with(|d| d.set(d.get() + 1));
    match act % 10 {
        // Keep a peer (perhaps dead: only its memory stays).
        1 if !own.is_empty() => push_root(own.swap_remove(below(own.len()))),
        2 => drop(take_root()),
        3 => {
            // A new garbage cycle.
            let a = meddler(0);
            let b = phoenix(0);
            a.link(b.clone());
            b.link(a.clone());
            if rand() & 1 == 0 {
                a.link(bare());
            }
        }
        4 => {
            let found = gcptr::collect();
            if found != 0 && DEPTH.with(|d| d.get()) > 0 && in_collection() {
                fault(format!("a nested collect() returned {found}"));
            }
        }
        5 => {
            if let (Some(from), Some(to)) = (random_root(), random_root()) {
                from.link(to);
            }
        }
        6 => {
            if let Some(mut root) = take_root() {
                let other = random_root();
                match &mut root {
                    Edge::M(g) => {
                        if let Some(value) = Gc::get_mut(g) {
                            value.edges.get_mut().extend(other);
                        }
                    }
                    Edge::F(g) => {
                        if let Some(value) = Gc::get_mut(g) {
                            value.edges.get_mut().extend(other);
                        }
                    }
                    Edge::B(g) => {
                        if let Some(value) = Gc::get_mut(g) {
                            *value.a.get_mut() = other;
                        }
                    }
                }
                push_root(root);
            }
        }
        7 => {
            // Unwrap a peer whose last reference this object held.
            if let Some(edge) = own.pop() {
                match edge {
                    Edge::M(g) => drop(Gc::try_unwrap(g)),
                    Edge::F(g) => drop(Gc::try_unwrap(g)),
                    Edge::B(g) => drop(Gc::try_unwrap(g)),
                }
            }
        }
        8 => {
            gcptr::freeze();
            if rand() & 1 == 0 {
                gcptr::unfreeze();
            }
        }
        9 => {
            // Link a peer (if readable) to a root: resurrection from a
            // finalizer, a dead end from a `Drop`.
            if let (Some(peer), Some(root)) = (own.first(), random_root()) {
                root.link(peer.clone());
                peer.link(root);
            }
        }
        _ => {}
    }
    DEPTH.with(|d| d.set(d.get() - 1));
    drop(own);
}

thread_local! {
    static COLLECTING: Cell<bool> = const { Cell::new(false) };
}

fn in_collection() -> bool {
    COLLECTING.with(Cell::get)
}

fn note(id: u32, finalized: bool) {
    LIFE.with(|l| {
        let mut l = l.borrow_mut();
        let entry = l.entry(id).or_insert((0, 0));
        if finalized {
            entry.1 += 1;
        } else {
            entry.0 += 1;
        }
    });
}

impl Drop for Meddler {
    fn drop(&mut self) {
        note(self.id, false);
        let own = std::mem::take(self.edges.get_mut());
        meddle(self.act, own);
    }
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        note(self.id, false);
    }
}

impl Finalize for Phoenix {
    fn finalize(&self) {
        note(self.id, true);
        // Clones, as a finalizer reads its value in place.
        let own = self
            .edges
            .try_borrow()
            .map(|e| e.clone())
            .unwrap_or_default();
        meddle(self.act, own);
    }
}

fn collect_counted(generation: usize) -> usize {
    COLLECTING.with(|c| c.set(true));
    let found = gcptr::collect_generation(generation);
    COLLECTING.with(|c| c.set(false));
    found
}

fn random_act() -> u8 {
    if matches!(rand() % 3, 0) {
        0
    } else {
        (rand() % 10) as u8
    }
}

/// Runs one random program of `steps` steps on a fresh thread, then lets
/// everything go and checks that every object died once.
fn run_program(seed: u64, steps: usize) {
    std::thread::spawn(move || {
        SEED.with(|s| s.set(seed | 1));
        gcptr::set_threshold([1 + below(12), 1 + below(3), 1 + below(3)]);
        for _ in 0..steps {
            match below(16) {
                0..=1 => push_root(meddler(random_act())),
                2 => push_root(phoenix(random_act())),
                3 => push_root(bare()),
                4..=6 => {
                    if let (Some(from), Some(to)) = (random_root(), random_root()) {
                        from.link(to);
                    }
                }
                7 => {
                    if let Some(from) = random_root() {
                        drop(from.unlink());
                    }
                }
                8..=9 => drop(take_root()),
                10 => {
                    if let Some(root) = random_root() {
                        push_root(root);
                    }
                }
                11 => {
                    collect_counted(below(3));
                }
                12 => meddle(random_act(), Vec::new()),
                13 => {
                    // Move a root into another root's edges, with no count
                    // going down (after a `get_mut`, say: no loss brings it
                    // back), or `get_mut` one. (A dead `to` drops it.)
                    if rand() & 1 == 0 {
                        if let (Some(moved), Some(to)) = (take_root(), random_root()) {
                            to.link(moved);
                        }
                    } else {
                        meddle(6, Vec::new());
                    }
                }
                14 => {
                    gcptr::freeze();
                    if rand() & 3 != 0 {
                        gcptr::unfreeze();
                    }
                }
                _ => {
                    // Follow an edge into a root.
                    if let Some(from) = random_root() {
                        if let Some(edge) = from.unlink() {
                            from.link(edge.clone());
                            push_root(edge);
                        }
                    }
                }
            }
            let faults = FAULTS.with(|f| f.borrow().clone());
            assert!(faults.is_empty(), "seed {seed}: {faults:?}");
            LIFE.with(|l| {
                for (id, &(drops, fins)) in l.borrow().iter() {
                    assert!(
                        drops <= 1 && fins <= 1,
                        "seed {seed}: object {id}: {drops} drops, {fins} finalizations"
                    );
                }
            });
        }
        gcptr::unfreeze();
        for round in 0.. {
            let roots = ROOTS.with(|r| std::mem::take(&mut *r.borrow_mut()));
            let had = roots.len();
            drop(roots);
            // A `Drop` may have frozen objects: frozen ones are never
            // collected.
            gcptr::unfreeze();
            let found = collect_counted(2);
            if had == 0
                && found == 0
                && gcptr::freeze_count() == 0
                && ROOTS.with(|r| r.borrow().is_empty())
            {
                break;
            }
            assert!(round < 100, "seed {seed}: never settles");
        }
        LIFE.with(|l| {
            for (id, &(drops, fins)) in l.borrow().iter() {
                assert_eq!(drops, 1, "seed {seed}: object {id} dropped {drops} times");
                assert!(fins <= 1, "seed {seed}: object {id} finalized {fins} times");
            }
        });
        BARE_WEAKS.with(|w| {
            for (i, weak) in w.borrow().iter().enumerate() {
                assert!(weak.upgrade().is_none(), "seed {seed}: bare {i} alive");
            }
        });
        let faults = FAULTS.with(|f| f.borrow().clone());
        assert!(faults.is_empty(), "seed {seed}: {faults:?}");
    })
    .join()
    .unwrap();
}

/// Random programs whose `Drop`s and finalizers meddle (keep peers, drop
/// roots, make garbage, collect, `get_mut`, `try_unwrap`, freeze, link
/// peers to roots) over nodes of three kinds, one of which may be freed
/// without its drops: every object is dropped once and finalized at most
/// once, and nothing is left once the roots go.
#[test]
fn meddling_programs_drop_everything_once() {
    let (programs, steps) = if cfg!(miri) { (6, 60) } else { (400, 300) };
    let programs = std::env::var("GCPTR_CORE_PROGRAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(programs);
    for seed in 0..programs {
        run_program(0x9e37_79b9_7f4a_7c15 ^ (seed * 0x1234_5678_9abc), steps);
    }
}

// An object that `Gc::get_mut` set aside is in no list until it loses a
// reference or an analysis meets an edge to it. Its last handle can move
// into a cycle with no loss, and the cycle then holds it through that
// edge alone. An analysis used to leave it out of its set and bring it
// back afterwards: its edges then counted as references from outside, so
// the cycle looked alive to the collection that met it, and only the
// next one found it.

/// `n -> a -> n`, where `a` was set aside by `get_mut` and its handle moved
/// into `n`, and the edge back made through `n`'s edge: no reference to
/// `a` was lost, and `n` lost its last handle from outside.
fn cycle_through_a_set_aside_object(a_id: u32, n_id: u32) {
    let mut a = Node::new(a_id);
    let n = Node::new(n_id);
    Gc::get_mut(&mut a).expect("unique");
    n.edges.borrow_mut().push(a);
    n.edges.borrow()[0].link(&n);
    drop(n);
}

/// A full collection finds the cycle that a set-aside object closes, in
/// one call (it took two).
#[test]
fn collect_finds_a_cycle_through_a_set_aside_object_at_once() {
    take_drops();
    cycle_through_a_set_aside_object(1, 2);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    assert_eq!(gcptr::collect(), 0);
}

/// So does a young collection, whose set is given whole (it grows by the
/// set-aside objects its edges meet), and a full collection of everything
/// that runs while other objects are frozen (a set given whole too).
#[test]
fn young_and_frozen_collections_find_a_cycle_through_a_set_aside_object() {
    gcptr::disable();
    take_drops();
    cycle_through_a_set_aside_object(1, 2);
    assert_eq!(gcptr::collect_generation(0), 2);
    assert_eq!(take_drops(), [1, 2]);

    let frozen = Node::new(3);
    gcptr::freeze();
    cycle_through_a_set_aside_object(4, 5);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [4, 5]);
    assert_eq!(gcptr::freeze_count(), 1);
    gcptr::unfreeze();
    drop(frozen);
    assert_eq!(take_drops(), [3]);
    gcptr::enable();
}

/// A chain of set-aside objects, each moved into the one before, the
/// last holding a listed object that holds the first: one collection takes
/// the whole chain in (the set follows edges from one set-aside object to
/// the next), where one collection per link of the chain was needed.
#[test]
fn a_chain_of_set_aside_objects_is_taken_in_whole() {
    take_drops();
    let head = Node::new(100);
    let mut next = head.clone();
    for id in (1..=5).rev() {
        let mut node = Node::new(id);
        Gc::get_mut(&mut node)
            .expect("unique")
            .edges
            .get_mut()
            .push(next);
        next = node;
    }
    head.edges.borrow_mut().push(next);
    drop(head);
    assert_eq!(gcptr::collect(), 6);
    assert_eq!(take_drops(), [1, 2, 3, 4, 5, 100]);
}

#[derive(Trace)]
#[gc(finalize)]
struct Rescuer {
    #[gc(skip)]
    log: support::DropLog,
    edges: RefCell<Vec<Gc<Rescuer>>>,
}

thread_local! {
    static RESCUED: RefCell<Vec<Gc<Rescuer>>> = const { RefCell::new(Vec::new()) };
    static FINALIZED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl Finalize for Rescuer {
    fn finalize(&self) {
        FINALIZED.with(|f| f.borrow_mut().push(self.log.0));
        if self.log.0 & 1 == 0 {
            let peers = self.edges.borrow().clone();
            RESCUED.with(|r| r.borrow_mut().extend(peers));
        }
    }
}

fn rescuer(id: u32) -> Gc<Rescuer> {
    Gc::new(Rescuer {
        log: support::DropLog(id),
        edges: RefCell::new(Vec::new()),
    })
}

fn finalized() -> Vec<u32> {
    let mut ids = FINALIZED.with(|f| std::mem::take(&mut *f.borrow_mut()));
    ids.sort_unstable();
    ids
}

/// A set-aside object taken into garbage with finalizers is finalized and
/// dropped once; one that a peer's finalizer resurrects survives, is
/// tracked again, and is reclaimed by a later collection once let go.
#[test]
fn set_aside_objects_taken_into_garbage_are_finalized_and_resurrected_as_peers() {
    take_drops();
    // 1 <-> 3 (set aside): neither rescues.
    let mut a = rescuer(3);
    let n = rescuer(1);
    Gc::get_mut(&mut a).expect("unique");
    n.edges.borrow_mut().push(a);
    n.edges.borrow()[0].edges.borrow_mut().push(n.clone());
    drop(n);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(finalized(), [1, 3]);
    assert_eq!(take_drops(), [1, 3]);

    // 2 <-> 5 (set aside): 2's finalizer rescues 5, which holds 2.
    let mut a = rescuer(5);
    let n = rescuer(2);
    Gc::get_mut(&mut a).expect("unique");
    n.edges.borrow_mut().push(a);
    n.edges.borrow()[0].edges.borrow_mut().push(n.clone());
    let watch = Gc::downgrade(&n.edges.borrow()[0]);
    drop(n);
    assert_eq!(gcptr::collect(), 0, "both resurrected");
    assert_eq!(finalized(), [2, 5]);
    assert!(take_drops().is_empty());
    let five = RESCUED.with(|r| r.borrow()[0].clone());
    assert!(gcptr::is_tracked(&five));
    assert!(watch.upgrade().is_none(), "cleared by the collection");
    drop(five);
    RESCUED.with(|r| r.borrow_mut().clear());
    assert_eq!(gcptr::collect(), 2);
    assert!(finalized().is_empty(), "finalizers ran once");
    assert_eq!(take_drops(), [2, 5]);
}

/// While the `&mut` that `get_mut` lent lives, its handle sits in a
/// mutably borrowed `RefCell` of a listed object: the collections that run
/// meanwhile (young and full, each tracing that object) show no edge to
/// it, so none takes it in or reads its value (Miri checks the write
/// through the `&mut` after them), and once the borrow ends the cycle it
/// closes is found.
#[test]
fn a_set_aside_object_whose_mut_lives_is_not_taken_in() {
    gcptr::disable();
    take_drops();
    let holder = Node::new(1);
    holder.link(&Node::new(2));
    // A loss: the full collection starts from `holder`.
    drop(holder.clone());
    {
        let mut edges = holder.edges.borrow_mut();
        let value = Gc::get_mut(&mut edges[0]).expect("unique");
        assert_eq!(gcptr::collect_generation(0), 0);
        assert_eq!(gcptr::collect(), 0);
        value.log.0 += 10;
        value.edges.get_mut().push(holder.clone());
    }
    drop(holder);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 12]);
    gcptr::enable();
}
