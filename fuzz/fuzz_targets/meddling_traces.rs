//! Programs over a small pool of nodes whose hand-written traces, `Drop`s,
//! finalizers and death callbacks meddle: drop roots, cut edges held by
//! *other* nodes, upgrade weak references, allocate past the threshold,
//! collect, call `referrers`, watch objects. Oracles (no model): ASan
//! (use after free, double free, leaks), every node dropped and finalized
//! at most once, no node dropped while its own trace runs, no node that a
//! root reaches dropped, a canary intact in every trace and drop, every
//! node dropped by the time its thread has exited, and no panic but the
//! documented ones. Each input runs on a fresh thread.
#![no_main]

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{DeathCallback, Gc, Trace, Tracer, Weak, WeakSet, WeakValueMap, WeakWithCallback};
use libfuzzer_sys::fuzz_target;

const MAGIC: u64 = 0x5EED_CAFE_F00D_BEEF;
const SLOTS: usize = 8;
const MAX_OPS: usize = 200;

fn fail(what: &str) -> ! {
    eprintln!("ORACLE FAILED: {what}");
    std::process::abort();
}

// ---------------------------------------------------------------- nodes

#[derive(Clone)]
enum G {
    P(Gc<NodeP>),
    F(Gc<NodeF>),
}

#[derive(Clone)]
enum W {
    P(Weak<NodeP>),
    F(Weak<NodeF>),
}

impl G {
    fn inner(&self) -> &Inner {
        match self {
            G::P(g) => &g.0,
            G::F(g) => &g.0,
        }
    }
    fn downgrade(&self) -> W {
        match self {
            G::P(g) => W::P(Gc::downgrade(g)),
            G::F(g) => W::F(Gc::downgrade(g)),
        }
    }
}

impl W {
    fn upgrade(&self) -> Option<G> {
        match self {
            W::P(w) => w.upgrade().map(G::P),
            W::F(w) => w.upgrade().map(G::F),
        }
    }
}

// SAFETY: visits the one `Gc` it holds.
unsafe impl Trace for G {
    fn trace(&self, tracer: &mut Tracer) {
        match self {
            G::P(g) => g.trace(tracer),
            G::F(g) => g.trace(tracer),
        }
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

struct Inner {
    id: u32,
    canary: Box<u64>,
    edges: RefCell<Vec<G>>,
    countdown: Cell<u32>,
    trace_action: Cell<Option<Action>>,
    drop_action: Cell<Option<Action>>,
    fin_action: Cell<Option<Action>>,
}

struct NodeP(Inner);
struct NodeF(Inner);

impl Inner {
    fn new() -> Inner {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        DROPS.with(|d| d.borrow_mut().push(0));
        FINALIZED.with(|d| d.borrow_mut().push(0));
        Inner {
            id,
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
        if DROPS.with(|d| d.borrow()[self.id as usize]) != 0 {
            fail(&format!("node {} used in {when} after its drop", self.id));
        }
    }

    fn trace_impl(&self, tracer: &mut Tracer) {
        self.check("trace");
        TRACING.with(|t| t.borrow_mut().push(self.id));
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
        TRACING.with(|t| {
            let mut t = t.borrow_mut();
            match t.iter().rposition(|&i| i == self.id) {
                Some(p) => {
                    t.remove(p);
                }
                None => fail("tracing stack"),
            }
        });
    }

    fn clone_fresh(&self) -> Inner {
        let fresh = Inner::new();
        *fresh.edges.borrow_mut() = self.edges.borrow().clone();
        fresh
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if *self.canary != MAGIC {
            fail(&format!("canary of node {} broken in drop", self.id));
        }
        if TRACING.with(|t| t.borrow().contains(&self.id)) {
            fail(&format!("node {} dropped while its trace runs", self.id));
        }
        DROPS.with(|d| {
            let mut d = d.borrow_mut();
            d[self.id as usize] += 1;
            if d[self.id as usize] > 1 {
                fail(&format!("node {} dropped twice", self.id));
            }
        });
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
        let id = self.0.id;
        self.0.check("finalize");
        FINALIZED.with(|d| {
            let mut d = d.borrow_mut();
            d[id as usize] += 1;
            if d[id as usize] > 1 {
                fail(&format!("node {id} finalized twice"));
            }
        });
        if let Some(a) = self.0.fin_action.take() {
            act(a, Ctx::Fin, Some(&self.0.edges));
        }
    }
}

// ---------------------------------------------------------------- state

#[derive(Default)]
struct State {
    roots: [Option<G>; SLOTS],
    weaks: [Option<W>; SLOTS],
    zombies: Vec<G>,
    callbacks: Vec<DeathCallback>,
    wwc_p: Vec<WeakWithCallback<NodeP>>,
    wwc_f: Vec<WeakWithCallback<NodeF>>,
}

thread_local! {
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
    static DROPS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static FINALIZED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static TRACING: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static TEARDOWN: Cell<bool> = const { Cell::new(false) };
    static STATE: RefCell<State> = RefCell::new(State::default());
    static VMAP: RefCell<WeakValueMap<u8, NodeP>> = RefCell::new(WeakValueMap::new());
    static WSET_P: RefCell<WeakSet<NodeP>> = RefCell::new(WeakSet::new());
    static WSET_F: RefCell<WeakSet<NodeF>> = RefCell::new(WeakSet::new());
    static CALLBACKS_RUN: Cell<u32> = const { Cell::new(0) };
    static BUDGET: Cell<u32> = const { Cell::new(400) };
}

// Which actions ran from where (GCPTR_FUZZ_STATS=1 prints them).
static ACTION_COUNTS: [[std::sync::atomic::AtomicU64; 16]; 5] =
    [const { [const { std::sync::atomic::AtomicU64::new(0) }; 16] }; 5];

fn count_action(ctx: Ctx, kind: u8) {
    ACTION_COUNTS[ctx as usize][kind as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn print_stats() {
    let names = ["Top", "Trace", "Drop", "Fin", "Callback"];
    for (i, row) in ACTION_COUNTS.iter().enumerate() {
        let v: Vec<u64> = row
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        eprintln!("actions from {:9}: {:?}", names[i], v);
    }
}

fn st<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
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
    TRACING.with(|t| t.borrow().contains(&id))
}

fn new_node(fin: bool) -> G {
    if fin {
        G::F(Gc::new(NodeF(Inner::new())))
    } else {
        G::P(Gc::new(NodeP(Inner::new())))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
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
    if ctx == Ctx::Trace || tainted {
        st(|s| s.zombies.push(g));
    } else {
        set_root(i, Some(g));
    }
}

fn watch(ctx: Ctx, g: &G, action: Option<Action>, with_weak: bool) {
    let cb = move || {
        CALLBACKS_RUN.with(|c| c.set(c.get() + 1));
        if let Some(a) = action {
            act(a, Ctx::Callback, None);
        }
    };
    let _ = ctx;
    if with_weak {
        match g {
            G::P(g) => {
                let w = Gc::downgrade_with(g, cb);
                st(|s| s.wwc_p.push(w));
            }
            G::F(g) => {
                let w = Gc::downgrade_with(g, cb);
                st(|s| s.wwc_f.push(w));
            }
        }
    } else {
        let c = match g {
            G::P(g) => Gc::on_death(g, cb),
            G::F(g) => Gc::on_death(g, cb),
        };
        st(|s| s.callbacks.push(c));
    }
}

/// One meddling action, from a trace, `Drop`, finalizer, callback or the
/// program itself.
fn act(a: Action, ctx: Ctx, own: Option<&RefCell<Vec<G>>>) {
    if TEARDOWN.with(Cell::get) || BUDGET.with(|b| b.replace(b.get().saturating_sub(1))) == 0 {
        return;
    }
    count_action(ctx, a.kind % 16);
    match a.kind % 16 {
        0 => set_root(a.a, None),
        1 => {
            // Cut an edge held by another node (never one whose trace runs).
            if let Some(g) = root(a.a) {
                let n = g.inner();
                if !tracing(n.id) {
                    let cut = match n.edges.try_borrow_mut() {
                        Ok(mut e) if !e.is_empty() => {
                            let i = a.b as usize % e.len();
                            Some(e.remove(i))
                        }
                        _ => None,
                    };
                    drop(g);
                    drop(cut);
                }
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
            let nodes: Vec<G> = (0..n).map(|i| new_node(i % 3 == 1)).collect();
            for i in 0..n {
                nodes[i]
                    .inner()
                    .edges
                    .borrow_mut()
                    .push(nodes[(i + 1) % n].clone());
            }
            if a.b & 1 == 1 {
                keep(ctx, a.b >> 1, nodes[0].clone(), false);
            }
            // Arm one of them: its trace meddles too.
            let armed = nodes[a.b as usize % n].inner();
            armed.countdown.set(1 + (a.a as u32 & 3));
            armed.trace_action.set(Some(Action::decode(
                a.b.wrapping_mul(29).wrapping_add(a.a),
                a.a ^ a.b,
            )));
            armed.drop_action.set(Some(Action::decode(
                a.a.wrapping_mul(13).wrapping_add(a.b),
                a.b,
            )));
            nodes[1].inner().fin_action.set(Some(Action::decode(
                a.b.wrapping_mul(5).wrapping_add(3 * a.a),
                a.a,
            )));
            drop(nodes);
        }
        5 => drop(gcptr::collect()),
        6 => drop(gcptr::collect_generation(a.a as usize % 3)),
        7 => {
            if let Some(g) = root(a.a) {
                let found = match &g {
                    G::P(g) => gcptr::referrers(g),
                    G::F(g) => gcptr::referrers(g),
                };
                if a.b & 1 == 1 {
                    // Keep what refers to it: a live object refers to a root.
                    for r in &found {
                        if let Some(p) = r.downcast::<NodeP>() {
                            keep(ctx, a.b >> 1, G::P(p), false);
                            break;
                        }
                    }
                }
                drop(found);
            }
        }
        8 => {
            if let Some(g) = root(a.a) {
                let follow = Action::decode(a.b, a.b.wrapping_mul(7));
                let follow = (a.b & 8 != 0).then_some(follow);
                watch(ctx, &g, follow, a.b & 1 == 1);
            }
        }
        9 => {
            if let Some(g) = root(a.a) {
                match &g {
                    G::P(p) => {
                        let old = VMAP.with(|m| {
                            m.try_borrow_mut().ok().map(|mut m| {
                                WSET_P.with(|s| s.try_borrow_mut().ok().map(|mut s| s.insert(p)));
                                m.insert(a.b, p)
                            })
                        });
                        drop(old);
                    }
                    G::F(f) => {
                        WSET_F.with(|s| s.try_borrow_mut().ok().map(|mut s| s.insert(f)));
                    }
                }
            }
        }
        10 => {
            // Keep a clone of one of our own edges (a finalizer resurrects).
            if let Some(own) = own {
                let e = own
                    .try_borrow()
                    .ok()
                    .and_then(|e| (!e.is_empty()).then(|| e[a.a as usize % e.len()].clone()));
                if let Some(e) = e {
                    keep(ctx, a.b, e, ctx != Ctx::Fin);
                }
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
        14 => {
            // A chain deeper than the trashcan's depth, hung from a root
            // (or a garbage cycle), one node of it armed to drop.
            let len = 40 + 8 * a.a as usize;
            let head = new_node(a.b & 2 != 0);
            let mut tail = head.clone();
            for i in 0..len {
                let next = new_node(i % 5 == 4);
                if i == len / 2 + a.b as usize {
                    next.inner()
                        .drop_action
                        .set(Some(Action::decode(a.a.wrapping_add(a.b), a.b)));
                    next.inner().countdown.set(1 + (a.b as u32 & 3));
                    next.inner()
                        .trace_action
                        .set(Some(Action::decode(a.b.wrapping_mul(11), a.a)));
                }
                tail.inner().edges.borrow_mut().push(next.clone());
                tail = next;
            }
            if a.b & 1 == 1 {
                tail.inner().edges.borrow_mut().push(head.clone());
            } else {
                keep(ctx, a.b >> 2, head.clone(), false);
            }
            drop(tail);
            drop(head);
        }
        _ => {
            // Look a value up in the weak value map.
            let g = VMAP.with(|m| m.try_borrow().ok().and_then(|m| m.get(&a.b)));
            if let Some(g) = g {
                keep(ctx, a.a, G::P(g), false);
            }
        }
    }
}

// ---------------------------------------------------------------- program

/// Every node a root reaches is alive and intact.
fn check_reach() {
    let roots: Vec<G> = st(|s| s.roots.iter().flatten().cloned().collect());
    let mut seen = std::collections::HashSet::new();
    let mut stack = roots;
    while let Some(g) = stack.pop() {
        let r = catch_unwind(AssertUnwindSafe(|| {
            let n = g.inner();
            n.check("reachability check");
            n.id
        }));
        let id = match r {
            Ok(id) => id,
            Err(_) => fail("a node that a root reaches has a dropped value"),
        };
        if seen.insert(id) {
            if let Ok(e) = g.inner().edges.try_borrow() {
                stack.extend(e.iter().cloned());
            }
        }
        drop(g);
    }
}

fn step(op: &[u8; 4]) {
    let [code, x, y, z] = *op;
    match code % 24 {
        0 | 1 => {
            let g = new_node(code & 0x20 != 0);
            if code & 0x40 != 0 {
                g.inner().fin_action.set(Some(Action::decode(z, y)));
            }
            if z & 0x7 != 0 {
                g.inner().countdown.set((z & 0x7) as u32);
                g.inner().trace_action.set(Some(Action::decode(y, z >> 3)));
            }
            set_root(x, Some(g));
        }
        2 | 3 => {
            if let (Some(a), Some(b)) = (root(x), root(y)) {
                a.inner().edges.borrow_mut().push(b);
            }
        }
        4 => {
            if let Some(a) = root(x) {
                let cut = {
                    let mut e = a.inner().edges.borrow_mut();
                    (!e.is_empty()).then(|| {
                        let i = y as usize % e.len();
                        e.remove(i)
                    })
                };
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
                let action = (z & 1 == 1).then(|| Action::decode(y, z >> 1));
                watch(Ctx::Top, &g, action, code & 0x20 != 0);
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
                match g {
                    G::P(p) => match Gc::try_unwrap(p) {
                        Ok(v) => drop(v),
                        Err(p) => set_root(x, Some(G::P(p))),
                    },
                    G::F(f) => match Gc::try_unwrap(f) {
                        Ok(v) => drop(v),
                        Err(f) => set_root(x, Some(G::F(f))),
                    },
                }
            }
        }
        18 => {
            // make_mut / get_mut: take an edge out of the value we own.
            if let Some(mut g) = st(|s| s.roots[x as usize % SLOTS].take()) {
                let cut = if y & 1 == 0 {
                    let e = match &mut g {
                        G::P(p) => &mut Gc::make_mut(p).0.edges,
                        G::F(f) => &mut Gc::make_mut(f).0.edges,
                    };
                    e.get_mut().pop()
                } else {
                    let e = match &mut g {
                        G::P(p) => Gc::get_mut(p).map(|v| &mut v.0.edges),
                        G::F(f) => Gc::get_mut(f).map(|v| &mut v.0.edges),
                    };
                    e.and_then(|e| e.get_mut().pop())
                };
                set_root(x, Some(g));
                drop(cut);
            }
        }
        19 => {
            // new_cyclic: the node holds an edge to a root, and its weak
            // reference to itself is kept.
            let target = root(y);
            let fin = code & 0x20 != 0;
            let mut w = None;
            let g = if fin {
                G::F(Gc::new_cyclic(|me| {
                    w = Some(W::F(me.clone()));
                    let n = NodeF(Inner::new());
                    n.0.edges.borrow_mut().extend(target);
                    n
                }))
            } else {
                G::P(Gc::new_cyclic(|me| {
                    w = Some(W::P(me.clone()));
                    let n = NodeP(Inner::new());
                    n.0.edges.borrow_mut().extend(target);
                    n
                }))
            };
            if z & 0x7 != 0 {
                g.inner().countdown.set((z & 0x7) as u32);
                g.inner().trace_action.set(Some(Action::decode(z, y >> 3)));
            }
            set_weak(x, w);
            set_root(x, Some(g));
        }
        20 => {
            if let Some(g) = root(x) {
                g.inner().countdown.set(1 + (z & 0x7) as u32);
                g.inner().trace_action.set(Some(Action::decode(y, z >> 3)));
            }
        }
        21 => {
            if let Some(g) = root(x) {
                let a = Some(Action::decode(y, z));
                if code & 0x20 != 0 {
                    g.inner().fin_action.set(a);
                } else {
                    g.inner().drop_action.set(a);
                }
            }
        }
        22 => {
            // Touch a zombie: its value is intact or reading it panics.
            let z = st(|s| {
                (!s.zombies.is_empty()).then(|| s.zombies[x as usize % s.zombies.len()].clone())
            });
            if let Some(z) = z {
                let _ = catch_unwind(AssertUnwindSafe(|| z.inner().check("zombie touch")));
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

fn run(ops: Vec<[u8; 4]>, config: u8) -> (Vec<u8>, Vec<u8>) {
    if config & 1 == 0 {
        gcptr::disable();
    } else {
        gcptr::enable();
        gcptr::set_threshold([1 + (config as usize >> 1) % 16, 2, 2]);
    }
    for op in &ops {
        let _ = catch_unwind(AssertUnwindSafe(|| step(op)));
        check_reach();
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
    }));
    for _ in 0..3 {
        let _ = catch_unwind(gcptr::collect);
    }
    let _ = catch_unwind(AssertUnwindSafe(|| drop(st(std::mem::take))));
    (
        DROPS.with(|d| d.borrow().clone()),
        FINALIZED.with(|d| d.borrow().clone()),
    )
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let ops: Vec<[u8; 4]> = rest
        .chunks_exact(4)
        .take(MAX_OPS)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    let joined = std::thread::spawn(move || {
        let (drops, fins) = run(ops, config);
        if let Some(i) = drops.iter().position(|&n| n == 0) {
            fail(&format!("node {i} never dropped after teardown"));
        }
        let _ = fins;
    })
    .join();
    // Only documented panics get here (the hook aborts on others).
    let _ = joined;
    if std::env::var_os("GCPTR_FUZZ_STATS").is_some() {
        print_stats();
    }
});
