//! Programs over a small pool of nodes whose hand-written traces, `Drop`s,
//! finalizers and death callbacks meddle: drop roots, cut edges held by
//! *other* nodes, upgrade weak references, allocate past the threshold,
//! collect, freeze and unfreeze, call `referrers`, watch objects and
//! cancel the watching, arm other nodes to meddle in turn. Beside the
//! meddling nodes, the pool holds nodes with no `Drop` and no memory of
//! their own (a garbage set of them alone is freed without any drop,
//! `cycle::release_without_drops`), nodes whose edges are fixed at birth
//! (acyclic when they hold only acyclic or untracked objects), and plain
//! data with no drop glue at all (untracked, acyclic or tracked).
//!
//! Oracles (no model), each aborting with a message that names it: ASan
//! (use after free, double free, leaks), every node dropped and finalized
//! at most once, no node finalized after its drop nor dropped before its
//! finalizer ran, no node dropped while its own trace runs, no node that a
//! root reaches dropped, a canary intact in every trace, drop and
//! finalizer, no death callback run while its object still upgrades, nor
//! twice, nor once cancelled, every pending `Gc::on_death` callback run and
//! every node dropped (or, for those with no `Drop`, dead) by the time the
//! program is torn down, and no panic but the documented ones. Each input
//! runs on a fresh thread.
//!
//! The late mode (bit 7 of the config byte) tears nothing down: the thread
//! touches one to three late holders (thread-locals) before its first
//! `Gc`, so that they are destroyed after the collector's first exit
//! guard, and the program ends by moving its state, or parts of it, into
//! them (`hand_over`; the input's last four bytes say which parts go
//! where). Their destruction lets go of whatever cycles they held, which
//! the late exit guards must reclaim, while drops, finalizers, traces and
//! callbacks go on meddling (into the holders still alive). The
//! bookkeeping lives in a static (`BOOK`), which outlives the thread-locals:
//! after `join()`, every node was dropped once, every pending death callback
//! ran, and (checked by the last thread-local destroyed) every node with no
//! `Drop` is dead.
#![no_main]

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{DeathCallback, Gc, ObjectRef, Trace, Tracer, Weak, WeakSet, WeakValueMap};
use libfuzzer_sys::fuzz_target;

const MAGIC: u64 = 0x5EED_CAFE_F00D_BEEF;
const SLOTS: usize = 8;
const MAX_OPS: usize = 200;
/// How many kinds of meddling action there are (`act`).
const KINDS: usize = 20;
/// `DROPS` of a node with no `Drop` to count.
const NO_DROP: u8 = u8::MAX;

/// Whether to print each step, action, finalizer and drop to stderr
/// (`GCPTR_FUZZ_TRACE=1`), to follow a failing input.
static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

macro_rules! note {
    ($($arg:tt)*) => {
        if TRACE.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!($($arg)*);
        }
    };
}

fn fail(what: &str) -> ! {
    eprintln!("ORACLE FAILED: {what}");
    std::process::abort();
}

// ---------------------------------------------------------------- nodes

/// A strong handle to a node of any type.
#[derive(Clone)]
enum G {
    P(Gc<NodeP>),
    F(Gc<NodeF>),
    B(Gc<Bare<false>>),
    BF(Gc<Bare<true>>),
    A(Gc<Fixed>),
    L0(Gc<Leaf<UNTRACKED>>),
    L1(Gc<Leaf<ACYCLIC>>),
    L2(Gc<Leaf<TRACKED>>),
}

/// A weak handle to a node of any type.
#[derive(Clone)]
enum W {
    P(Weak<NodeP>),
    F(Weak<NodeF>),
    B(Weak<Bare<false>>),
    BF(Weak<Bare<true>>),
    A(Weak<Fixed>),
    L0(Weak<Leaf<UNTRACKED>>),
    L1(Weak<Leaf<ACYCLIC>>),
    L2(Weak<Leaf<TRACKED>>),
}

/// `$body` with `$x` bound to the handle in `$v`, whatever the variant of
/// `$e` (`G` or `W`): each arm is typed on its own.
macro_rules! each {
    ($e:ident, $v:expr, |$x:ident| $body:expr) => {
        match $v {
            $e::P($x) => $body,
            $e::F($x) => $body,
            $e::B($x) => $body,
            $e::BF($x) => $body,
            $e::A($x) => $body,
            $e::L0($x) => $body,
            $e::L1($x) => $body,
            $e::L2($x) => $body,
        }
    };
}

macro_rules! handles {
    ($($v:ident($t:ty)),*) => {$(
        impl From<Gc<$t>> for G {
            fn from(g: Gc<$t>) -> G {
                G::$v(g)
            }
        }
        impl From<Weak<$t>> for W {
            fn from(w: Weak<$t>) -> W {
                W::$v(w)
            }
        }
    )*};
}

handles! {
    P(NodeP), F(NodeF), B(Bare<false>), BF(Bare<true>), A(Fixed),
    L0(Leaf<UNTRACKED>), L1(Leaf<ACYCLIC>), L2(Leaf<TRACKED>)
}

impl G {
    /// The node (a read of the value: panics, as documented, if the
    /// collector dropped it and its type has drop glue).
    fn node(&self) -> &dyn Node {
        each!(G, self, |g| &**g as &dyn Node)
    }
    fn downgrade(&self) -> W {
        each!(G, self, |g| W::from(Gc::downgrade(g)))
    }
    /// Adds an edge to `to` if the node has room for it (outside any
    /// borrow, the caller drops what it displaced).
    fn add_edge(&self, to: G) -> Option<G> {
        match self.node().edges() {
            Some(e) => e.add(to),
            None => Some(to),
        }
    }
    fn from_ref(r: &ObjectRef) -> Option<G> {
        None.or_else(|| r.downcast::<NodeP>().map(G::from))
            .or_else(|| r.downcast::<NodeF>().map(G::from))
            .or_else(|| r.downcast::<Bare<false>>().map(G::from))
            .or_else(|| r.downcast::<Bare<true>>().map(G::from))
            .or_else(|| r.downcast::<Fixed>().map(G::from))
            .or_else(|| r.downcast::<Leaf<TRACKED>>().map(G::from))
    }
}

impl W {
    fn upgrade(&self) -> Option<G> {
        each!(W, self, |w| w.upgrade().map(G::from))
    }
}

// SAFETY: visits the one `Gc` it holds, and runs no other code; dropping
// it drops that `Gc` and nothing else.
unsafe impl Trace for G {
    fn trace(&self, tracer: &mut Tracer) {
        each!(G, self, |g| g.trace(tracer))
    }
    fn __drop_only_releases_gcs() -> bool {
        true
    }
}

#[derive(Clone, Copy, Debug)]
struct Action {
    kind: u8,
    a: u8,
    b: u8,
    after: bool,
}

impl Action {
    fn decode(k: u8, a: u8) -> Action {
        Action {
            kind: k & 0x1f,
            a: a & 0x0f,
            b: a >> 4,
            after: k & 0x80 != 0,
        }
    }
}

/// What the program asks of a node, whatever its type.
trait Node {
    fn id(&self) -> u32;
    /// The canary, and for a node with a `Drop`, that it did not run.
    fn check(&self, when: &str);
    fn edges(&self) -> Option<&dyn Edges> {
        None
    }
    /// The meddling part of a node whose trace and `Drop` meddle.
    fn meddler(&self) -> Option<&Inner> {
        None
    }
    /// What the finalizer of a finalizable node does.
    fn fin_action(&self) -> Option<&Cell<Option<Action>>> {
        None
    }
    /// Takes an edge out of a value we own.
    fn pop_edge(&mut self) -> Option<G> {
        None
    }
}

/// The edges of a node, however it holds them.
trait Edges {
    /// Adds an edge to `g`, if there is room; gives back what it displaced
    /// (or `g`), for the caller to drop outside the borrow.
    fn add(&self, g: G) -> Option<G>;
    /// Takes an edge out (not while it is borrowed).
    fn cut(&self, i: usize) -> Option<G>;
    /// A clone of an edge (not while it is mutably borrowed).
    fn pick(&self, i: usize) -> Option<G>;
    /// Clones of every edge (none while they are mutably borrowed).
    fn all(&self) -> Vec<G>;
}

impl Edges for RefCell<Vec<G>> {
    fn add(&self, g: G) -> Option<G> {
        match self.try_borrow_mut() {
            Ok(mut e) => {
                e.push(g);
                None
            }
            Err(_) => Some(g),
        }
    }
    fn cut(&self, i: usize) -> Option<G> {
        match self.try_borrow_mut() {
            Ok(mut e) if !e.is_empty() => {
                let i = i % e.len();
                Some(e.remove(i))
            }
            _ => None,
        }
    }
    fn pick(&self, i: usize) -> Option<G> {
        self.try_borrow()
            .ok()
            .and_then(|e| (!e.is_empty()).then(|| e[i % e.len()].clone()))
    }
    fn all(&self) -> Vec<G> {
        self.try_borrow().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Edges for [RefCell<Option<G>>; 2] {
    fn add(&self, g: G) -> Option<G> {
        for slot in self {
            if let Ok(mut s) = slot.try_borrow_mut() {
                if s.is_none() {
                    *s = Some(g);
                    return None;
                }
            }
        }
        match self[1].try_borrow_mut() {
            Ok(mut s) => s.replace(g),
            Err(_) => Some(g),
        }
    }
    fn cut(&self, i: usize) -> Option<G> {
        self[i % 2].try_borrow_mut().ok().and_then(|mut s| s.take())
    }
    fn pick(&self, i: usize) -> Option<G> {
        self[i % 2].try_borrow().ok().and_then(|s| s.clone())
    }
    fn all(&self) -> Vec<G> {
        self.iter()
            .filter_map(|s| s.try_borrow().ok().and_then(|s| s.clone()))
            .collect()
    }
}

/// Fixed edges: shared, they never change.
impl Edges for [Option<G>; 2] {
    fn add(&self, g: G) -> Option<G> {
        Some(g)
    }
    fn cut(&self, _: usize) -> Option<G> {
        None
    }
    fn pick(&self, i: usize) -> Option<G> {
        self[i % 2].clone()
    }
    fn all(&self) -> Vec<G> {
        self.iter().flatten().cloned().collect()
    }
}

fn new_id(drops: bool) -> u32 {
    book(|b| {
        b.drops.push(if drops { 0 } else { NO_DROP });
        b.finalized.push(0);
        b.drops.len() as u32 - 1
    })
}

/// A finalizer runs: at most once, never after the drop.
fn finalizing(id: u32) {
    note!("  finalize {id}");
    let (drops, finalized) = book(|b| {
        b.finalized[id as usize] += 1;
        if b.late {
            b.late_finalized += 1;
        }
        (b.drops[id as usize], b.finalized[id as usize])
    });
    if drops == 1 {
        fail(&format!("node {id} finalized after its drop"));
    }
    if finalized > 1 {
        fail(&format!("node {id} finalized twice"));
    }
}

struct Inner {
    id: u32,
    fin: bool,
    canary: Box<u64>,
    edges: RefCell<Vec<G>>,
    countdown: Cell<u32>,
    trace_action: Cell<Option<Action>>,
    drop_action: Cell<Option<Action>>,
    fin_action: Cell<Option<Action>>,
}

/// A node whose trace and `Drop` meddle.
struct NodeP(Inner);
/// As `NodeP`, with a finalizer that meddles too.
struct NodeF(Inner);

impl Inner {
    fn new(fin: bool) -> Inner {
        Inner {
            id: new_id(true),
            fin,
            canary: Box::new(MAGIC),
            edges: RefCell::new(Vec::new()),
            countdown: Cell::new(0),
            trace_action: Cell::new(None),
            drop_action: Cell::new(None),
            fin_action: Cell::new(None),
        }
    }

    fn check(&self, when: &str) {
        if *self.canary != MAGIC {
            fail(&format!("canary of node {} broken in {when}", self.id));
        }
        if book(|b| b.drops[self.id as usize]) != 0 {
            fail(&format!("node {} used in {when} after its drop", self.id));
        }
    }

    fn trace_impl(&self, tracer: &mut Tracer) {
        self.check("trace");
        book(|b| b.tracing.push(self.id));
        let mut meddle = None;
        let n = self.countdown.get();
        if n > 0 {
            self.countdown.set(n - 1);
            if n == 1 {
                meddle = self.trace_action.take();
            }
        }
        if let Some(a) = meddle.filter(|a| !a.after) {
            act(a, Ctx::Trace, Some(&self.edges));
            self.check("trace after meddling");
        }
        self.edges.trace(tracer);
        if let Some(a) = meddle.filter(|a| a.after) {
            act(a, Ctx::Trace, Some(&self.edges));
            self.check("trace after meddling");
        }
        let popped = book(|b| {
            let p = b.tracing.iter().rposition(|&i| i == self.id);
            p.map(|p| b.tracing.remove(p))
        });
        if popped.is_none() {
            fail("tracing stack");
        }
    }

    fn clone_fresh(&self) -> Inner {
        let fresh = Inner::new(self.fin);
        *fresh.edges.borrow_mut() = self.edges.borrow().clone();
        fresh
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if *self.canary != MAGIC {
            fail(&format!("canary of node {} broken in drop", self.id));
        }
        let id = self.id as usize;
        note!("  drop {id}");
        let (tracing, finalized, drops) = book(|b| {
            b.drops[id] += 1;
            if b.late {
                b.late_drops += 1;
                if !b.in_holder {
                    b.guard_drops += 1;
                }
            }
            (b.tracing.contains(&self.id), b.finalized[id], b.drops[id])
        });
        if tracing {
            fail(&format!("node {} dropped while its trace runs", self.id));
        }
        if self.fin && finalized == 0 {
            fail(&format!(
                "node {} dropped before its finalizer ran",
                self.id
            ));
        }
        if drops > 1 {
            fail(&format!("node {} dropped twice", self.id));
        }
        if let Some(a) = self.drop_action.take() {
            act(a, Ctx::Drop, Some(&self.edges));
        }
        *self.canary = 0;
    }
}

impl Clone for NodeP {
    fn clone(&self) -> Self {
        NodeP(self.0.clone_fresh())
    }
}
impl Clone for NodeF {
    fn clone(&self) -> Self {
        NodeF(self.0.clone_fresh())
    }
}

// SAFETY: visits exactly its edges; what it runs never mutably borrows the
// `RefCell` of a node whose trace is running (`TRACING`).
unsafe impl Trace for NodeP {
    fn trace(&self, tracer: &mut Tracer) {
        self.0.trace_impl(tracer)
    }
}

// SAFETY: as `NodeP`.
unsafe impl Trace for NodeF {
    fn trace(&self, tracer: &mut Tracer) {
        self.0.trace_impl(tracer)
    }
    fn __has_finalizer() -> bool {
        true
    }
    fn __finalize(&self) {
        self.0.check("finalize");
        finalizing(self.0.id);
        if let Some(a) = self.0.fin_action.take() {
            act(a, Ctx::Fin, Some(&self.0.edges));
            self.0.check("finalize after meddling");
        }
    }
}

/// The `Node` methods of a node type that wraps an `Inner` (`NodeP`,
/// `NodeF`).
macro_rules! node_of_inner {
    () => {
        fn id(&self) -> u32 {
            self.0.id
        }
        fn check(&self, when: &str) {
            self.0.check(when)
        }
        fn edges(&self) -> Option<&dyn Edges> {
            Some(&self.0.edges)
        }
        fn meddler(&self) -> Option<&Inner> {
            Some(&self.0)
        }
        fn pop_edge(&mut self) -> Option<G> {
            self.0.edges.get_mut().pop()
        }
    };
}

impl Node for NodeP {
    node_of_inner!();
}

impl Node for NodeF {
    node_of_inner!();
    fn fin_action(&self) -> Option<&Cell<Option<Action>>> {
        Some(&self.0.fin_action)
    }
}

/// A node with no `Drop` and no memory of its own: its drop only releases
/// its edges, so a garbage set of such nodes alone (whose edges all lead
/// into the set) is freed without any drop. Its trace runs no code that
/// could make a reference (point 6 of `Trace`'s contract), so it never
/// meddles; its finalizer (`FIN`) does.
struct Bare<const FIN: bool> {
    id: u32,
    canary: u64,
    fin_action: Cell<Option<Action>>,
    edges: [RefCell<Option<G>>; 2],
}

impl<const FIN: bool> Bare<FIN> {
    fn new() -> Self {
        Bare {
            id: new_id(false),
            canary: MAGIC,
            fin_action: Cell::new(None),
            edges: [RefCell::new(None), RefCell::new(None)],
        }
    }
}

impl<const FIN: bool> Clone for Bare<FIN> {
    fn clone(&self) -> Self {
        let fresh = Bare::new();
        for (to, from) in fresh.edges.iter().zip(&self.edges) {
            *to.borrow_mut() = from.borrow().clone();
        }
        fresh
    }
}

// SAFETY: visits exactly its edges. Its drop does nothing but drop them,
// and it runs no code but their traces and a test of its canary, which
// makes no reference.
unsafe impl<const FIN: bool> Trace for Bare<FIN> {
    fn trace(&self, tracer: &mut Tracer) {
        Node::check(self, "trace");
        self.edges.trace(tracer);
    }
    fn __drop_only_releases_gcs() -> bool {
        true
    }
    fn __has_finalizer() -> bool {
        FIN
    }
    fn __finalize(&self) {
        Node::check(self, "finalize");
        finalizing(self.id);
        if let Some(a) = self.fin_action.take() {
            act(a, Ctx::Fin, Some(&self.edges));
            Node::check(self, "finalize after meddling");
        }
    }
}

impl<const FIN: bool> Node for Bare<FIN> {
    fn id(&self) -> u32 {
        self.id
    }
    fn check(&self, when: &str) {
        if self.canary != MAGIC {
            fail(&format!("canary of bare node {} broken in {when}", self.id));
        }
    }
    fn edges(&self) -> Option<&dyn Edges> {
        Some(&self.edges)
    }
    fn fin_action(&self) -> Option<&Cell<Option<Action>>> {
        FIN.then_some(&self.fin_action)
    }
    fn pop_edge(&mut self) -> Option<G> {
        let [a, b] = &mut self.edges;
        b.get_mut().take().or_else(|| a.get_mut().take())
    }
}

/// A node whose edges are fixed when it is made (`__edges_fixed`): acyclic,
/// never tracked, if it holds only acyclic or untracked objects then.
/// `Gc::get_mut` and `Gc::make_mut` may still take them out. No `Drop`.
struct Fixed {
    id: u32,
    canary: u64,
    edges: [Option<G>; 2],
}

impl Fixed {
    fn new(edges: [Option<G>; 2]) -> Self {
        Fixed {
            id: new_id(false),
            canary: MAGIC,
            edges,
        }
    }
}

impl Clone for Fixed {
    fn clone(&self) -> Self {
        Fixed::new(self.edges.clone())
    }
}

// SAFETY: visits exactly its edges, which never change while it is
// shared; it runs no other code but a test of its canary, and its drop
// only drops its edges.
unsafe impl Trace for Fixed {
    fn trace(&self, tracer: &mut Tracer) {
        Node::check(self, "trace");
        self.edges.trace(tracer);
    }
    fn __edges_fixed(_: u32) -> bool {
        true
    }
    fn __drop_only_releases_gcs() -> bool {
        true
    }
}

impl Node for Fixed {
    fn id(&self) -> u32 {
        self.id
    }
    fn check(&self, when: &str) {
        if self.canary != MAGIC {
            fail(&format!(
                "canary of fixed node {} broken in {when}",
                self.id
            ));
        }
    }
    fn edges(&self) -> Option<&dyn Edges> {
        Some(&self.edges)
    }
    fn pop_edge(&mut self) -> Option<G> {
        let [a, b] = &mut self.edges;
        b.take().or_else(|| a.take())
    }
}

const UNTRACKED: u8 = 0;
const ACYCLIC: u8 = 1;
const TRACKED: u8 = 2;

/// Plain data, no drop glue at all (`Gc`'s deref skips its `DEAD` test):
/// untracked (it says it can own no `Gc`), acyclic (it may, but its edges
/// are fixed and it has none) or tracked.
struct Leaf<const K: u8> {
    id: u32,
    canary: u64,
}

impl<const K: u8> Leaf<K> {
    fn new() -> Self {
        Leaf {
            id: new_id(false),
            canary: MAGIC,
        }
    }
}

impl<const K: u8> Clone for Leaf<K> {
    fn clone(&self) -> Self {
        Leaf::new()
    }
}

// SAFETY: owns no `Gc`, and runs no code but a test of its canary.
unsafe impl<const K: u8> Trace for Leaf<K> {
    fn trace(&self, _: &mut Tracer) {
        Node::check(self, "trace");
    }
    fn __may_own_gc(_: u32) -> bool {
        K != UNTRACKED
    }
    fn __edges_fixed(_: u32) -> bool {
        K != TRACKED
    }
    fn __drop_only_releases_gcs() -> bool {
        true
    }
}

impl<const K: u8> Node for Leaf<K> {
    fn id(&self) -> u32 {
        self.id
    }
    fn check(&self, when: &str) {
        if self.canary != MAGIC {
            fail(&format!("canary of leaf {} broken in {when}", self.id));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    P,
    F,
    B,
    BF,
    A,
    L0,
    L1,
    L2,
}

/// The kinds a selector picks, finalizable ones often.
const POOL: [Kind; 12] = [
    Kind::P,
    Kind::F,
    Kind::P,
    Kind::F,
    Kind::B,
    Kind::BF,
    Kind::A,
    Kind::L0,
    Kind::F,
    Kind::BF,
    Kind::L1,
    Kind::L2,
];

fn kind_of(sel: u8) -> Kind {
    POOL[sel as usize % POOL.len()]
}

fn new_node(kind: Kind) -> G {
    let g = match kind {
        Kind::P => G::P(Gc::new(NodeP(Inner::new(false)))),
        Kind::F => G::F(Gc::new(NodeF(Inner::new(true)))),
        Kind::B => G::B(Gc::new(Bare::new())),
        Kind::BF => G::BF(Gc::new(Bare::new())),
        Kind::A => G::A(Gc::new(Fixed::new([None, None]))),
        Kind::L0 => G::L0(Gc::new(Leaf::new())),
        Kind::L1 => G::L1(Gc::new(Leaf::new())),
        Kind::L2 => G::L2(Gc::new(Leaf::new())),
    };
    register(&g);
    g
}

fn new_fixed(edges: [Option<G>; 2]) -> G {
    let g = G::A(Gc::new(Fixed::new(edges)));
    register(&g);
    g
}

/// Half the nodes with no `Drop` (even ids) are watched by a weak
/// reference, so that teardown can tell whether they died; the other half
/// keep the paths of objects that no `Weak` holds.
fn register(g: &G) {
    let id = g.node().id();
    note!(
        "  new {id} at {:p}",
        each!(G, g, |g| Gc::as_ptr(g) as *const u8)
    );
    if id % 2 == 0 && book(|b| b.drops[id as usize]) == NO_DROP {
        let _ = LIVES.try_with(|l| l.0.borrow_mut().push((id, g.downgrade())));
    }
}

/// A new object made by `Gc::new_cyclic`, and its weak reference to
/// itself, which the closure cloned.
fn new_cyclic<T: Trace + 'static>(make: impl FnOnce() -> T) -> (Gc<T>, Weak<T>) {
    let mut w = None;
    let g = Gc::new_cyclic(|me| {
        w = Some(me.clone());
        make()
    });
    (g, w.expect("new_cyclic ran the closure"))
}

// ---------------------------------------------------------------- state

#[derive(Default)]
struct State {
    roots: [Option<G>; SLOTS],
    weaks: [Option<W>; SLOTS],
    zombies: Vec<G>,
    /// Each with its serial in `DEATH_CALLBACKS`.
    callbacks: Vec<(DeathCallback, usize)>,
    /// Weak references with callbacks, of any type (while any exists,
    /// no garbage is dropped before the end of its collection).
    wwc: Vec<Box<dyn std::any::Any>>,
}

/// A `Gc::on_death` callback: registered but not run, run, or never to
/// run (cancelled, or its object did not upgrade).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    Armed,
    Ran,
    Off,
}

/// The bookkeeping of one run, outside any thread-local: in the late mode
/// nodes die while the thread's thread-locals are destroyed, and are
/// counted after `join()`. Runs are sequential (each joins its thread), so
/// one static serves them all; `run` resets it. Never locked across a call
/// to code that could lock it again.
#[derive(Default)]
struct Book {
    /// Per node id: drops (`NO_DROP` for a node with no `Drop`).
    drops: Vec<u8>,
    finalized: Vec<u8>,
    /// Ids of the nodes whose trace runs.
    tracing: Vec<u32>,
    death_callbacks: Vec<Pending>,
    /// A late holder's destruction began: the collector's first exit guard
    /// has run.
    late: bool,
    /// A holder's destructor runs (drops now are by count, or by a
    /// collection it called; drops while `late` and not `in_holder` are a
    /// late exit guard's).
    in_holder: bool,
    /// Actions run by an exit guard's collection since the last holder's
    /// destructor (`EXIT_ACTIONS`).
    exit_actions: u32,
    late_drops: u64,
    guard_drops: u64,
    late_finalized: u64,
}

static BOOK: std::sync::Mutex<Book> = std::sync::Mutex::new(Book {
    drops: Vec::new(),
    finalized: Vec::new(),
    tracing: Vec::new(),
    death_callbacks: Vec::new(),
    late: false,
    in_holder: false,
    exit_actions: 0,
    late_drops: 0,
    guard_drops: 0,
    late_finalized: 0,
});

fn book<R>(f: impl FnOnce(&mut Book) -> R) -> R {
    f(&mut BOOK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The program's state in a thread-local: `STATE`, or a late holder. Its
/// destructor drops what it holds, catching a documented panic (a panic
/// escaping a thread-local's destructor would abort).
struct Holder {
    state: RefCell<State>,
    late: bool,
}

impl Holder {
    fn new(late: bool) -> Holder {
        Holder {
            state: RefCell::new(State::default()),
            late,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut());
        let late = self.late;
        book(|b| {
            b.late |= late;
            b.in_holder = true;
        });
        let _ = catch_unwind(AssertUnwindSafe(|| drop(state)));
        // The exit guard that runs next (if this destructor used gcptr)
        // gets a fresh allowance.
        book(|b| {
            b.in_holder = false;
            b.exit_actions = 0;
        });
    }
}

/// The weak references that watch half the nodes with no `Drop`. In the
/// late mode it is touched first, so that it is destroyed last, after the
/// late exit guards: then every node must be dead.
struct Lives(RefCell<Vec<(u32, W)>>);

impl Drop for Lives {
    fn drop(&mut self) {
        let lives = std::mem::take(self.0.get_mut());
        for (id, w) in &lives {
            if w.upgrade().is_some() {
                fail(&format!(
                    "node {id}, which has no Drop, alive after the late holders"
                ));
            }
        }
        let _ = catch_unwind(AssertUnwindSafe(|| drop(lives)));
    }
}

/// How many late holders the run touched (the late mode).
const HOLDERS: usize = 3;

/// The late mode: how many actions one exit guard's collection may run
/// (from finalizers, `Drop`s and callbacks it runs), to bound the run's
/// time. (It was 6 while an exit collection stopped after eight rounds and
/// left what the eighth round's finalizers made: fixed, with its test in
/// `tests/thread_exit_fuzz_found.rs`.)
const EXIT_ACTIONS: u32 = 64;

thread_local! {
    static TEARDOWN: Cell<bool> = const { Cell::new(false) };
    static STATE: Holder = Holder::new(false);
    static LATE_0: Holder = Holder::new(true);
    static LATE_1: Holder = Holder::new(true);
    static LATE_2: Holder = Holder::new(true);
    static LATE_HOLDERS: Cell<usize> = const { Cell::new(0) };
    static VMAP: RefCell<WeakValueMap<u8, NodeP>> = RefCell::new(WeakValueMap::new());
    static WSET_P: RefCell<WeakSet<NodeP>> = RefCell::new(WeakSet::new());
    static WSET_F: RefCell<WeakSet<NodeF>> = RefCell::new(WeakSet::new());
    static WSET_B: RefCell<WeakSet<Bare<false>>> = RefCell::new(WeakSet::new());
    static CALLBACKS_RUN: Cell<u32> = const { Cell::new(0) };
    static LIVES: Lives = const { Lives(RefCell::new(Vec::new())) };
    static BUDGET: Cell<u32> = const { Cell::new(400) };
}

// Which actions ran from where (GCPTR_FUZZ_STATS=1 prints them).
// (The last row: actions run late, from anywhere, in the late mode.)
static ACTION_COUNTS: [[std::sync::atomic::AtomicU64; KINDS]; 6] =
    [const { [const { std::sync::atomic::AtomicU64::new(0) }; KINDS] }; 6];
// The late mode: runs, nodes dropped late (after the first exit guard),
// of those by a late exit guard's collection, late finalizers, and
// actions skipped late (no holder left, or the collector gone).
static LATE_RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LATE_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static GUARD_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LATE_FINALIZED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static LATE_SKIPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static RUNS_WITH_GUARD_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn count(c: &std::sync::atomic::AtomicU64, n: u64) {
    c.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

fn count_action(ctx: Ctx, kind: u8) {
    count(&ACTION_COUNTS[ctx as usize][kind as usize], 1);
}

fn count_action_late(kind: u8) {
    count(&ACTION_COUNTS[5][kind as usize], 1);
}

fn print_stats() {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "late mode: {} runs ({} with drops by a late guard), {} nodes dropped late, {} by a late guard, {} finalized late, {} late actions skipped",
        load(&LATE_RUNS),
        load(&RUNS_WITH_GUARD_DROPS),
        load(&LATE_DROPS),
        load(&GUARD_DROPS),
        load(&LATE_FINALIZED),
        load(&LATE_SKIPPED),
    );
    let names = ["Top", "Trace", "Drop", "Fin", "Callback", "(late)"];
    for (i, row) in ACTION_COUNTS.iter().enumerate() {
        let v: Vec<u64> = row
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        eprintln!("actions from {:9}: {:?}", names[i], v);
    }
}

const LATE: [&std::thread::LocalKey<Holder>; HOLDERS] = [&LATE_0, &LATE_1, &LATE_2];

/// `f` on the program's state: `STATE` while it lives, then the late
/// holder that is destroyed next (the last touched of those still alive);
/// `None` once none is left.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    let mut f = Some(f);
    let late = LATE_HOLDERS.with(Cell::get);
    let keys = std::iter::once(&STATE).chain(LATE[..late].iter().rev().copied());
    for key in keys {
        if let Ok(r) =
            key.try_with(|h| (f.take().expect("not yet called"))(&mut h.state.borrow_mut()))
        {
            return Some(r);
        }
    }
    None
}

/// Whether `with_state` would find a state.
fn state_alive() -> bool {
    let late = LATE_HOLDERS.with(Cell::get);
    std::iter::once(&STATE)
        .chain(LATE[..late].iter().copied())
        .any(|key| key.try_with(|_| ()).is_ok())
}

fn st<R: Default>(f: impl FnOnce(&mut State) -> R) -> R {
    with_state(f).unwrap_or_default()
}
fn root(i: u8) -> Option<G> {
    st(|s| s.roots[i as usize % SLOTS].clone())
}
fn set_root(i: u8, g: Option<G>) {
    let old = st(|s| std::mem::replace(&mut s.roots[i as usize % SLOTS], g));
    drop(old);
}
fn set_weak(i: u8, w: Option<W>) {
    let old = st(|s| std::mem::replace(&mut s.weaks[i as usize % SLOTS], w));
    drop(old);
}
fn weak(i: u8) -> Option<W> {
    st(|s| s.weaks[i as usize % SLOTS].clone())
}
fn tracing(id: u32) -> bool {
    book(|b| b.tracing.contains(&id))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    Top,
    Trace,
    Drop,
    Fin,
    Callback,
}

/// Where a handle that `ctx` made goes: a trace's (and a `Drop`'s clone
/// of its own edge) may find a value the collection drops, so they are
/// kept apart from the roots, whose reach must stay alive.
fn keep(ctx: Ctx, i: u8, g: G, tainted: bool) {
    if TEARDOWN.with(Cell::get) {
        return;
    }
    // By address (`new` notes each node's): the value may be dropped.
    let address = each!(G, &g, |g| Gc::as_ptr(g) as *const u8);
    note!(
        "  keep {address:p} from {ctx:?} (slot {}, tainted {tainted})",
        i as usize % SLOTS
    );
    if ctx == Ctx::Trace || tainted {
        st(|s| s.zombies.push(g));
    } else {
        set_root(i, Some(g));
    }
}

/// Watches `g` with a death callback (`Gc::on_death`) or a weak reference
/// with one (`with_weak`). The callback runs `action`, with the edges that
/// `g` had when it began to watch (held weakly, upgraded when it runs) as
/// its own. It must find `g` no longer upgrading, and an `on_death` one
/// must run once, unless cancelled, by the end of the teardown.
fn watch(g: &G, action: Option<Action>, with_weak: bool) {
    let me = g.downgrade();
    let peers: Vec<W> = match g.node().edges() {
        Some(e) if action.is_some() => e.all().iter().map(G::downgrade).collect(),
        _ => Vec::new(),
    };
    let serial = (!with_weak).then(|| {
        book(|b| {
            b.death_callbacks.push(Pending::Armed);
            b.death_callbacks.len() - 1
        })
    });
    let watched = g.node().id();
    let cb = move || {
        note!("  callback for {watched}");
        CALLBACKS_RUN.with(|c| c.set(c.get() + 1));
        if me.upgrade().is_some() {
            fail("a death callback ran while its object still upgrades");
        }
        if let Some(serial) = serial {
            let was = book(|b| std::mem::replace(&mut b.death_callbacks[serial], Pending::Ran));
            match was {
                Pending::Armed => {}
                Pending::Ran => fail("a death callback ran twice"),
                Pending::Off => fail("a cancelled or refused death callback ran"),
            }
        }
        if let Some(a) = action.filter(|_| !TEARDOWN.with(Cell::get)) {
            let own = RefCell::new(peers.iter().filter_map(W::upgrade).collect::<Vec<G>>());
            act(a, Ctx::Callback, Some(&own));
            drop(own);
        }
    };
    if with_weak {
        let w = each!(G, g, |g| Box::new(Gc::downgrade_with(g, cb))
            as Box<dyn std::any::Any>);
        st(|s| s.wwc.push(w));
    } else {
        let serial = serial.expect("an on_death serial");
        let c = each!(G, g, |g| Gc::on_death(g, cb));
        if !c.is_pending() {
            // Refused: the object no longer upgrades.
            book(|b| b.death_callbacks[serial] = Pending::Off);
        }
        st(|s| s.callbacks.push((c, serial)));
    }
}

/// One meddling action, from a trace, `Drop`, finalizer, callback or the
/// program itself; `own` is the edges of the node that runs it (for a
/// callback, those its object had).
fn act(a: Action, ctx: Ctx, own: Option<&dyn Edges>) {
    if TEARDOWN.with(Cell::get) {
        return;
    }
    let late = book(|b| b.late);
    // Late (the late mode, after the first exit guard): not once no late
    // holder is left to keep what it makes, nor once the collector is gone
    // (`threshold()` reads zeros then; a cycle made then would leak, as
    // documented).
    if late && (!state_alive() || gcptr::threshold() == [0; 3]) {
        count(&LATE_SKIPPED, 1);
        return;
    }
    // In the late mode, once `STATE` is gone, outside any holder's
    // destructor: an exit guard's collection runs this, at most
    // `EXIT_ACTIONS` times.
    if LATE_HOLDERS.with(Cell::get) > 0
        && STATE.try_with(|_| ()).is_err()
        && !book(|b| {
            let allowed = b.in_holder || b.exit_actions < EXIT_ACTIONS;
            if allowed && !b.in_holder {
                b.exit_actions += 1;
            }
            allowed
        })
    {
        count(&LATE_SKIPPED, 1);
        return;
    }
    if BUDGET.with(|b| b.replace(b.get().saturating_sub(1))) == 0 {
        return;
    }
    let kind = a.kind % KINDS as u8;
    note!("  act {kind} {} {} from {ctx:?}", a.a, a.b);
    count_action(ctx, kind);
    if late {
        count_action_late(kind);
    }
    match kind {
        0 => set_root(a.a, None),
        1 => {
            // Cut an edge held by another node (never one whose trace runs).
            if let Some(g) = root(a.a) {
                let n = g.node();
                let cut = match n.edges() {
                    Some(e) if !tracing(n.id()) => e.cut(a.b as usize),
                    _ => None,
                };
                drop(g);
                drop(cut);
            }
        }
        2 => {
            if let Some(g) = weak(a.a).and_then(|w| w.upgrade()) {
                keep(ctx, a.b, g, false);
            }
        }
        3 => drop(weak(a.a).and_then(|w| w.upgrade())),
        4 => {
            // Allocate past the threshold: a garbage cycle and a chain.
            let n = 2 + a.a as usize;
            let nodes: Vec<G> = (0..n)
                .map(|i| new_node(if i % 3 == 1 { Kind::F } else { Kind::P }))
                .collect();
            for i in 0..n {
                let displaced = nodes[i].add_edge(nodes[(i + 1) % n].clone());
                drop(displaced);
            }
            if a.b & 1 == 1 {
                keep(ctx, a.b >> 1, nodes[0].clone(), false);
            }
            // Arm one of them: its trace meddles too.
            let armed = nodes[a.b as usize % n].node().meddler().expect("a meddler");
            armed.countdown.set(1 + (a.a as u32 & 3));
            armed.trace_action.set(Some(Action::decode(
                a.b.wrapping_mul(29).wrapping_add(a.a),
                a.a ^ a.b,
            )));
            armed.drop_action.set(Some(Action::decode(
                a.a.wrapping_mul(13).wrapping_add(a.b),
                a.b,
            )));
            // Every finalizer meddles.
            for (i, g) in nodes.iter().enumerate() {
                if let Some(f) = g.node().fin_action() {
                    let i = i as u8;
                    f.set(Some(Action::decode(
                        a.b.wrapping_mul(5).wrapping_add(3 * a.a).wrapping_add(i),
                        a.a.wrapping_add(i.wrapping_mul(17)),
                    )));
                }
            }
            // And a callback watches one.
            if a.b & 2 != 0 {
                let follow = Action::decode(a.a.wrapping_mul(7).wrapping_add(a.b), a.b ^ a.a);
                watch(&nodes[n - 1], Some(follow), a.b & 4 != 0 && a.a & 1 != 0);
            }
            drop(nodes);
        }
        5 => drop(gcptr::collect()),
        6 => drop(gcptr::collect_generation(a.a as usize % 3)),
        7 => {
            if let Some(g) = root(a.a) {
                let found = each!(G, &g, |g| gcptr::referrers(g));
                if a.b & 1 == 1 {
                    // Keep what refers to it: a live object refers to a root.
                    if let Some(r) = found.iter().find_map(G::from_ref) {
                        keep(ctx, a.b >> 1, r, false);
                    }
                }
                drop(found);
            }
        }
        8 => {
            if let Some(g) = root(a.a) {
                let follow = Action::decode(a.b, a.b.wrapping_mul(7));
                let follow = (a.b & 8 != 0).then_some(follow);
                watch(&g, follow, a.b & 1 == 1);
            }
        }
        9 => {
            if let Some(g) = root(a.a) {
                match &g {
                    G::P(p) => {
                        let old = VMAP.try_with(|m| {
                            m.try_borrow_mut().ok().map(|mut m| {
                                let _ = WSET_P
                                    .try_with(|s| s.try_borrow_mut().ok().map(|mut s| s.insert(p)));
                                m.insert(a.b, p)
                            })
                        });
                        drop(old);
                    }
                    G::F(f) => {
                        let _ =
                            WSET_F.try_with(|s| s.try_borrow_mut().ok().map(|mut s| s.insert(f)));
                    }
                    G::B(b) => {
                        let _ =
                            WSET_B.try_with(|s| s.try_borrow_mut().ok().map(|mut s| s.insert(b)));
                    }
                    _ => {}
                }
            }
        }
        10 => {
            // Keep a clone of one of our own edges (a finalizer resurrects).
            if let Some(e) = own.and_then(|own| own.pick(a.a as usize)) {
                keep(ctx, a.b, e, ctx != Ctx::Fin && ctx != Ctx::Callback);
            }
        }
        11 => {
            let z = st(|s| {
                if s.zombies.is_empty() {
                    None
                } else {
                    let i = a.a as usize % s.zombies.len();
                    Some(s.zombies.swap_remove(i))
                }
            });
            drop(z);
        }
        12 => {
            // Make a weak reference to a root.
            if let Some(g) = root(a.a) {
                set_weak(a.b, Some(g.downgrade()));
            }
        }
        13 => match a.b % 4 {
            // Freeze or unfreeze (both do nothing while a collection runs).
            0 => gcptr::freeze(),
            1 | 2 => gcptr::unfreeze(),
            _ => drop(gcptr::freeze_count()),
        },
        14 => {
            // A chain deeper than the trashcan's depth, hung from a root
            // (or a garbage cycle), one node of it armed to drop; or a
            // chain of bare nodes, freed without drops if garbage.
            let len = 40 + 8 * a.a as usize;
            let bare = a.b & 4 != 0;
            let pick = |i: usize| match (bare, i % 5 == 4) {
                (false, false) => Kind::P,
                (false, true) => Kind::F,
                (true, false) => Kind::B,
                (true, true) => Kind::BF,
            };
            let head = new_node(pick(a.b as usize));
            let mut tail = head.clone();
            for i in 0..len {
                let next = new_node(pick(i));
                if i == len / 2 + a.b as usize {
                    if let Some(m) = next.node().meddler() {
                        m.drop_action
                            .set(Some(Action::decode(a.a.wrapping_add(a.b), a.b)));
                        m.countdown.set(1 + (a.b as u32 & 3));
                        m.trace_action
                            .set(Some(Action::decode(a.b.wrapping_mul(11), a.a)));
                    }
                    if let Some(f) = next.node().fin_action() {
                        f.set(Some(Action::decode(a.a.wrapping_mul(3), a.b ^ 5)));
                    }
                }
                drop(tail.add_edge(next.clone()));
                tail = next;
            }
            if a.b & 1 == 1 {
                drop(tail.add_edge(head.clone()));
            } else {
                keep(ctx, a.b >> 3, head.clone(), false);
            }
            drop(tail);
            drop(head);
        }
        15 => {
            // Look a value up in the weak value map.
            let g = VMAP
                .try_with(|m| m.try_borrow().ok().and_then(|m| m.get(&a.b)))
                .ok()
                .flatten();
            if let Some(g) = g {
                keep(ctx, a.a, G::P(g), false);
            }
        }
        16 => {
            // Arm a root to meddle: its finalizer, its `Drop` or its trace.
            if let Some(g) = root(a.a) {
                let n = g.node();
                let then = Action::decode(a.b.wrapping_mul(37).wrapping_add(a.a), a.b ^ 0x5a);
                match (a.b % 3, n.fin_action(), n.meddler()) {
                    (0, Some(f), _) | (_, Some(f), None) => f.set(Some(then)),
                    (1, _, Some(m)) => m.drop_action.set(Some(then)),
                    (_, _, Some(m)) => {
                        m.countdown.set(1 + (a.b as u32 >> 2));
                        m.trace_action.set(Some(then));
                    }
                    _ => {}
                }
            }
        }
        17 => {
            // Stop watching: cancel a death callback, or drop weak
            // references with callbacks (one, or all).
            match a.b % 3 {
                0 => {
                    let c = st(|s| s.callbacks.pop());
                    if let Some((c, serial)) = c {
                        if c.cancel() {
                            book(|b| b.death_callbacks[serial] = Pending::Off);
                        }
                        drop(c);
                    }
                }
                1 => drop(st(|s| s.wwc.pop())),
                _ => drop(st(|s| std::mem::take(&mut s.wwc))),
            }
        }
        18 => {
            // A ring of bare nodes, some finalizable, with a leaf and a
            // fixed node hung from it: garbage, or held from a root.
            let n = 1 + a.a as usize % 6;
            let ring: Vec<G> = (0..n)
                .map(|i| {
                    new_node(if (i + a.b as usize) % 4 == 3 {
                        Kind::BF
                    } else {
                        Kind::B
                    })
                })
                .collect();
            for i in 0..n {
                drop(ring[i].add_edge(ring[(i + 1) % n].clone()));
                if let Some(f) = ring[i].node().fin_action() {
                    f.set(Some(Action::decode(a.a.wrapping_add(i as u8 * 9), a.b)));
                }
            }
            if a.b & 2 != 0 {
                let leaf = new_node([Kind::L0, Kind::L1, Kind::L2][a.a as usize % 3]);
                let hang = [Some(leaf), (a.a & 8 != 0).then(|| ring[0].clone())];
                // Acyclic if it holds the leaf alone and that leaf is.
                let fixed = new_fixed(hang);
                drop(ring[n - 1].add_edge(fixed));
            }
            if a.b & 1 == 1 {
                keep(ctx, a.b >> 2, ring[0].clone(), false);
            }
            drop(ring);
        }
        _ => {
            // A new node of any kind, kept; finalizable ones meddle when
            // finalized, and some are watched.
            let g = new_node(kind_of(a.a.wrapping_add(a.b)));
            if let Some(f) = g.node().fin_action() {
                f.set(Some(Action::decode(
                    a.b.wrapping_mul(3).wrapping_add(1),
                    a.a,
                )));
            }
            if a.b & 1 == 1 {
                let follow = Action::decode(a.a.wrapping_mul(11).wrapping_add(a.b), a.b);
                watch(&g, Some(follow), false);
            }
            keep(ctx, a.b >> 1, g, false);
        }
    }
}

// ---------------------------------------------------------------- program

/// Every node a root reaches is alive and intact. (Not that it upgrades:
/// the `Weak`s made before a finalizer resurrected an object never upgrade
/// again.)
fn check_reach() {
    let roots: Vec<G> = st(|s| s.roots.iter().flatten().cloned().collect());
    let mut seen = std::collections::HashSet::new();
    // Each node to look at, and the node that reached it (none for a root).
    let mut stack: Vec<(G, Option<u32>)> = roots.into_iter().map(|g| (g, None)).collect();
    while let Some((g, from)) = stack.pop() {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let n = g.node();
            n.check("reachability check");
            n.id()
        }));
        let id = match r {
            Ok(id) => id,
            Err(_) => {
                note!("  dropped value reached from {from:?}");
                fail("a node that a root reaches has a dropped value")
            }
        };
        if seen.insert(id) {
            if let Some(e) = g.node().edges() {
                stack.extend(e.all().into_iter().map(|e| (e, Some(id))));
            }
        }
        drop(g);
    }
}

fn step(op: &[u8; 4]) {
    let [code, x, y, z] = *op;
    note!("step {} {x} {y} {z}", code % 24);
    // The step, and a selector beside it.
    let sel = code / 24;
    match code % 24 {
        0 | 1 => {
            let k = kind_of(sel);
            let g = if k == Kind::A {
                new_fixed([root(y), root(z >> 3)])
            } else {
                new_node(k)
            };
            if let Some(f) = g.node().fin_action() {
                f.set(Some(Action::decode(z, y)));
            }
            if let Some(m) = g.node().meddler() {
                if z & 0x7 != 0 {
                    m.countdown.set((z & 0x7) as u32);
                    m.trace_action.set(Some(Action::decode(y, z >> 3)));
                }
            }
            match x >> 6 {
                0 => {}
                // Weak references with callbacks keep every collection
                // from dropping garbage early: fewer of them.
                3 if y & 1 == 1 => watch(&g, Some(Action::decode(z ^ y, y)), true),
                _ => watch(&g, Some(Action::decode(y.wrapping_add(z), z)), false),
            }
            set_root(x, Some(g));
        }
        2 | 3 => {
            if let (Some(a), Some(b)) = (root(x), root(y)) {
                drop(a.add_edge(b));
            }
        }
        4 => {
            if let Some(a) = root(x) {
                let cut = a.node().edges().and_then(|e| e.cut(y as usize));
                drop(cut);
            }
        }
        5 | 6 => set_root(x, None),
        7 => set_root(y, root(x)),
        8 => {
            if let Some(g) = root(x) {
                set_weak(y, Some(g.downgrade()));
            }
        }
        9 => {
            if let Some(g) = weak(x).and_then(|w| w.upgrade()) {
                set_root(y, Some(g));
            }
        }
        10 => {
            if let Some(g) = root(x) {
                let action = (z != 0).then(|| Action::decode(y, z >> 1));
                watch(&g, action, code & 0x20 != 0 && z & 1 != 0);
            }
        }
        11 => act(Action::decode(9, x | (y << 4)), Ctx::Top, None),
        12 => drop(gcptr::collect()),
        13 => drop(gcptr::collect_generation(x as usize % 3)),
        14 => {
            if x & 1 == 0 {
                gcptr::freeze()
            } else {
                gcptr::unfreeze()
            }
        }
        15 => match x % 3 {
            0 => gcptr::enable(),
            1 => gcptr::disable(),
            _ => gcptr::set_threshold([
                1 + (y as usize % 24),
                1 + (z as usize % 4),
                1 + (z as usize >> 4),
            ]),
        },
        16 => act(Action::decode(7, x | (y << 4)), Ctx::Top, None),
        17 => {
            // try_unwrap
            if let Some(g) = st(|s| s.roots[x as usize % SLOTS].take()) {
                each!(G, g, |g| match Gc::try_unwrap(g) {
                    Ok(v) => {
                        // Moved out of its object: no finalizer is owed.
                        book(|b| b.finalized[v.id() as usize] = 1);
                        drop(v)
                    }
                    Err(g) => set_root(x, Some(G::from(g))),
                })
            }
        }
        18 => {
            // make_mut / get_mut: take an edge out of the value we own.
            if let Some(mut g) = st(|s| s.roots[x as usize % SLOTS].take()) {
                let cut = if y & 1 == 0 {
                    each!(G, &mut g, |g| Gc::make_mut(g).pop_edge())
                } else {
                    each!(G, &mut g, |g| Gc::get_mut(g).and_then(|v| v.pop_edge()))
                };
                set_root(x, Some(g));
                drop(cut);
            }
        }
        19 => {
            // new_cyclic: the node holds an edge to a root, and its weak
            // reference to itself is kept.
            let target = root(y);
            let (g, w) = match kind_of(sel) {
                Kind::P => {
                    let (g, w) = new_cyclic(|| NodeP(Inner::new(false)));
                    (G::from(g), W::from(w))
                }
                Kind::F => {
                    let (g, w) = new_cyclic(|| NodeF(Inner::new(true)));
                    (G::from(g), W::from(w))
                }
                Kind::BF => {
                    let (g, w) = new_cyclic(Bare::<true>::new);
                    (G::from(g), W::from(w))
                }
                Kind::A => {
                    let target = target.clone();
                    let (g, w) = new_cyclic(|| Fixed::new([target, None]));
                    (G::from(g), W::from(w))
                }
                _ => {
                    let (g, w) = new_cyclic(Bare::<false>::new);
                    (G::from(g), W::from(w))
                }
            };
            register(&g);
            if !matches!(g, G::A(_)) {
                drop(target.and_then(|t| g.add_edge(t)));
            }
            if let Some(m) = g.node().meddler() {
                if z & 0x7 != 0 {
                    m.countdown.set((z & 0x7) as u32);
                    m.trace_action.set(Some(Action::decode(z, y >> 3)));
                }
            }
            if let Some(f) = g.node().fin_action() {
                f.set(Some(Action::decode(y, z)));
            }
            set_weak(x, Some(w));
            set_root(x, Some(g));
        }
        20 => {
            if let Some(g) = root(x) {
                if let Some(m) = g.node().meddler() {
                    m.countdown.set(1 + (z & 0x7) as u32);
                    m.trace_action.set(Some(Action::decode(y, z >> 3)));
                }
            }
        }
        21 => {
            if let Some(g) = root(x) {
                let a = Some(Action::decode(y, z));
                let n = g.node();
                match (n.fin_action(), n.meddler()) {
                    (Some(f), _) if code & 0x20 != 0 || n.meddler().is_none() => f.set(a),
                    (_, Some(m)) => m.drop_action.set(a),
                    _ => {}
                }
            }
        }
        22 => {
            // Touch a zombie: its value is intact or reading it panics.
            let z = st(|s| {
                (!s.zombies.is_empty()).then(|| s.zombies[x as usize % s.zombies.len()].clone())
            });
            if let Some(z) = z {
                let _ = catch_unwind(AssertUnwindSafe(|| z.node().check("zombie touch")));
            }
        }
        _ => act(Action::decode(y, z), Ctx::Top, None),
    }
}

thread_local! {
    static IN_PROGRAM: Cell<bool> = const { Cell::new(false) };
}

fn documented(msg: &str) -> bool {
    msg.contains("value was already dropped by the cycle collector")
        || msg.contains("`trace` must only visit edges")
}

fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                String::from("<non-string panic>")
            };
            if documented(&msg) {
                return;
            }
            eprintln!("UNDOCUMENTED PANIC: {msg} at {:?}", info.location());
            std::process::abort();
        }));
    });
}

/// The late mode's end: moves the program's state, or parts of it, into
/// the late holders, which the thread touched before its first `Gc`, so
/// that they are destroyed after the collector's first exit guard. What
/// no holder takes stays in `STATE`, destroyed before that guard.
///
/// `layout`: `[_, roots 0-3, roots 4-7, weaks | zombies | callbacks |
/// weak references with callbacks]`, two bits each, a holder's index
/// (`STATE`'s if there is no such holder).
fn hand_over(layout: [u8; 4]) {
    let holders = LATE_HOLDERS.with(Cell::get);
    let dest = |bits: u8| Some(bits as usize & 3).filter(|&d| d < holders);
    let mut all = st(std::mem::take);
    let mut parts: Vec<State> = (0..holders).map(|_| State::default()).collect();
    for (i, root) in all.roots.iter_mut().enumerate() {
        if let Some(d) = dest(layout[1 + i / 4] >> (2 * (i % 4))) {
            parts[d].roots[i] = root.take();
        }
    }
    if let Some(d) = dest(layout[3]) {
        parts[d].weaks = std::mem::take(&mut all.weaks);
    }
    if let Some(d) = dest(layout[3] >> 2) {
        parts[d].zombies = std::mem::take(&mut all.zombies);
    }
    if let Some(d) = dest(layout[3] >> 4) {
        parts[d].callbacks = std::mem::take(&mut all.callbacks);
    }
    if let Some(d) = dest(layout[3] >> 6) {
        parts[d].wwc = std::mem::take(&mut all.wwc);
    }
    st(|s| *s = all);
    for (part, key) in parts.into_iter().zip(LATE) {
        key.with(|h| *h.state.borrow_mut() = part);
    }
}

/// Runs the program and tears it down; returns each node's drop count. In
/// the late mode (`layout`), hands the program over to the late holders
/// instead, and returns nothing.
fn run(ops: Vec<[u8; 4]>, config: u8, layout: Option<[u8; 4]>) -> Vec<u8> {
    if config & 1 == 0 {
        gcptr::disable();
    } else {
        gcptr::enable();
        gcptr::set_threshold([1 + (config as usize >> 1) % 16, 2, 2]);
    }
    if layout.is_some() {
        // First used after the collector: destroyed before its first exit
        // guard, whenever a late action uses them.
        let _ = (VMAP.with(|_| ()), WSET_P.with(|_| ()), WSET_F.with(|_| ()));
        let _ = (WSET_B.with(|_| ()), STATE.with(|_| ()));
    }
    for op in &ops {
        let _ = catch_unwind(AssertUnwindSafe(|| step(op)));
        check_reach();
    }
    if let Some(layout) = layout {
        // Late meddling gets a budget of its own.
        BUDGET.with(|b| b.set(b.get().max(100)));
        let _ = catch_unwind(AssertUnwindSafe(|| hand_over(layout)));
        return Vec::new();
    }
    // Teardown: no more meddling; drop everything, then collect.
    TEARDOWN.with(|t| t.set(true));
    gcptr::unfreeze();
    let state = st(std::mem::take);
    let _ = catch_unwind(AssertUnwindSafe(|| drop(state)));
    let _ = catch_unwind(AssertUnwindSafe(|| {
        VMAP.with(|m| m.borrow_mut().clear());
        WSET_P.with(|m| m.borrow_mut().clear());
        WSET_F.with(|m| m.borrow_mut().clear());
        WSET_B.with(|m| m.borrow_mut().clear());
    }));
    for _ in 0..3 {
        let _ = catch_unwind(gcptr::collect);
    }
    let _ = catch_unwind(AssertUnwindSafe(|| drop(st(std::mem::take))));
    // Nodes with no `Drop`: the watched half is dead.
    let lives = LIVES.with(|l| std::mem::take(&mut *l.0.borrow_mut()));
    for (id, w) in &lives {
        if w.upgrade().is_some() {
            fail(&format!(
                "node {id}, which has no Drop, alive after teardown"
            ));
        }
    }
    drop(lives);
    check_book("teardown")
}

/// Every pending death callback ran, and every node was dropped (once: its
/// `Drop` checks that); returns each node's drop count.
fn check_book(when: &str) -> Vec<u8> {
    let (drops, callbacks) = book(|b| (b.drops.clone(), b.death_callbacks.clone()));
    if let Some(i) = callbacks.iter().position(|&p| p == Pending::Armed) {
        fail(&format!(
            "death callback {i} never ran (nor was cancelled) after {when}"
        ));
    }
    if let Some(i) = drops.iter().position(|&n| n == 0) {
        fail(&format!("node {i} never dropped after {when}"));
    }
    drops
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    if std::env::var_os("GCPTR_FUZZ_TRACE").is_some() {
        TRACE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let mut ops: Vec<[u8; 4]> = rest
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    // The late mode (bit 7, unused before): the last chunk is its layout
    // (`hand_over`), not a step, and the thread touches 1 to 3 late
    // holders before its first `Gc`.
    let layout = if config & 0x80 != 0 {
        Some(ops.pop().unwrap_or_default())
    } else {
        None
    };
    ops.truncate(MAX_OPS);
    book(|b| *b = Book::default());
    let joined = std::thread::spawn(move || {
        if let Some(layout) = layout {
            // In this order: destroyed in the reverse one, LIVES last.
            LIVES.with(|_| ());
            let holders = 1 + layout[0] as usize % HOLDERS;
            for key in &LATE[..holders] {
                key.with(|_| ());
            }
            LATE_HOLDERS.with(|h| h.set(holders));
        }
        run(ops, config, layout);
    })
    .join();
    // Only documented panics get here (the hook aborts on others).
    let _ = joined;
    if layout.is_some() {
        // The thread's thread-locals are all destroyed: every node went,
        // whether before the first exit guard or after it.
        check_book("thread exit");
        let (late, guard, fin) = book(|b| (b.late_drops, b.guard_drops, b.late_finalized));
        count(&LATE_RUNS, 1);
        count(&LATE_DROPS, late);
        count(&GUARD_DROPS, guard);
        count(&LATE_FINALIZED, fin);
        if guard > 0 {
            count(&RUNS_WITH_GUARD_DROPS, 1);
        }
    }
    if std::env::var_os("GCPTR_FUZZ_STATS").is_some() {
        print_stats();
    }
});
