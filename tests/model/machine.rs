//! The operation language of the model-based test, the real heap it drives
//! and the reference model it is checked against.
//!
//! Shared, unchanged, by `tests/model.rs` (proptest) and by the fuzz target
//! `fuzz/fuzz_targets/ops.rs` (which includes this file with `#[path]`), so
//! it depends on nothing but `gcptr` and std.
//!
//! # The real heap
//!
//! Objects are [`Obj`]s: a `Gc<PlainNode>` (no finalizer), a
//! `Gc<FinNode>` (`#[gc(finalize)]`) or a `Gc<BareNode>`. The first two
//! carry a [`Body`]: an id, strong edges (`RefCell<EdgeList>`, at most
//! [`EDGE_SLOTS`]) and weak edges (`RefCell<Vec<WObj>>`). A bare node holds
//! an id, strong edges and maybe a tag (below), and has no `Drop` impl: its
//! drop does nothing but release `Gc`s, so a collection may free a set of
//! bare garbage without running any drop. The harness holds *roots* (strong
//! handles), a pool of `Weak`s, and finalizers may store handles in the
//! thread-local *resurrection list* `RES`.
//!
//! Every `Drop` of a body and every finalizer appends an [`Event`] to a
//! thread-local log, recording what it saw of its peers; after each
//! operation the log must equal, as a multiset, the events the model
//! predicts for that operation. So every death is checked to happen in the
//! operation the model says, exactly once, and never earlier. A bare node
//! records nothing: its deaths are checked through `gcptr::count()`, what
//! `collect` returns, weak upgrades, and (under ASan) freed memory. A
//! tagged one holds an untracked `Gc<Tag>` of its own, whose `Drop`
//! records an event: garbage that holds one must be dropped, not freed
//! without its drops.
//!
//! # The model
//!
//! A plain graph: for each object its strong count, edges, generation
//! (0, 1, 2, or 3 for frozen), flags `dead`, `finalized`, `weak_cleared`,
//! and its weak epoch; for each weak reference, its object and the epoch it
//! was made in. It states the contract, not the algorithm:
//!
//! * Reference counting: an object whose count reaches zero dies at once
//!   (its finalizer runs first, with the object held, and may resurrect
//!   it); its edges then go, depth first, in the order they were added.
//! * A collection of generation `g` looks at the live objects of
//!   generations `0..=g`. Those reachable from a root, from `RES`, or from
//!   a live object outside the set survive and move to `min(g + 1, 2)`. The
//!   rest are garbage: their weak references stop upgrading, their
//!   finalizers (not yet run) run with the whole set intact, and what a
//!   finalizer made reachable again is resurrected (moved up, like a
//!   survivor; the first time, into its next weak epoch, where the weak
//!   references made from then on upgrade). The remaining garbage is
//!   marked dead, then each value is dropped. The call returns the number
//!   dropped.
//! * Automatic collection follows CPython's rules (thresholds on `count()`,
//!   the 25% rule for full collections, which waits for 50%, then 100%,
//!   while automatic full collections find nothing), and gcptr's own: a
//!   young one that moved up a quiet object, or that left a reporter in
//!   generation 2, is followed by a full one once generation 0 has grown
//!   by twice what the last full one found alive. So with automatic
//!   collection on the model is still exact.
//!
//! Drop order inside one collection is unspecified; the model only makes
//! predictions that do not depend on it (the finalizers here never make a
//! prediction order-dependent: they resurrect through strong edges their
//! object holds, or through a `Weak` to themselves).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use gcptr::{Finalize, Gc, Trace, Weak, WeakSet, WeakValueMap};

/// Objects per program. Deaths by count nest at most this deep, below the
/// depth (48) at which gcptr starts deferring them, so that the model's
/// depth-first order is the real one.
pub const MAX_OBJECTS: usize = 40;

// ------------------------------------------------------------ the language

/// What a finalizer does besides recording that it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinMode {
    /// Reads every peer (which must be intact) and nothing else.
    Observe,
    /// Stores a clone of each of its strong edges in `RES`: resurrects its
    /// peers, and itself through a cycle.
    ResurrectEdges,
    /// Upgrades a `Weak` to itself and stores it in `RES`: resurrects
    /// itself when it dies by count (a collection has cleared that `Weak`
    /// before the finalizer runs, so then it cannot).
    ResurrectSelf,
    /// Upgrades the `Weak` that `Gc::new_cyclic` handed to the object
    /// being allocated (in `NEWBORN` until `new_cyclic` returns), stores a
    /// clone in `RES` and drops the upgraded handle: a lost reference to
    /// an object the collector has not linked yet. Does something only in
    /// an automatic collection that such an allocation runs.
    AdoptNewborn,
}

/// The type of a new object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// No finalizer.
    Plain,
    /// `#[gc(finalize)]`, allocated with `Gc::new_cyclic`.
    Fin(FinMode),
    /// No `Drop` impl and no weak edges: [`BareNode`]. A tagged one also
    /// holds an untracked `Gc<Tag>` that no other object holds, whose
    /// `Drop` records an event: a collection that frees the node without
    /// its drop would skip it.
    Bare { tagged: bool },
}

/// One step of a program. Indices are taken modulo the length of what
/// they index; an operation on an empty list does nothing.
///
/// To extend the language: add a variant here, its real effect and its
/// model effect in [`Harness::apply`], a generator in `tests/model.rs` and
/// a byte code in [`Op::decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Allocates an object and holds it as a new root.
    Alloc(Kind),
    /// `roots[from].edges.push(roots[to].clone())`, unless `roots[from]`
    /// holds [`EDGE_SLOTS`] edges.
    AddEdge { from: u8, to: u8 },
    /// Removes (and drops) `roots[from].edges[edge]`.
    RemoveEdge { from: u8, edge: u8 },
    /// Clears all strong edges of `roots[from]`, in order.
    ClearEdges { from: u8 },
    /// Roots a clone of `roots[from].edges[edge]`.
    Follow { from: u8, edge: u8 },
    /// Roots a clone of `roots[root]`.
    CloneRoot(u8),
    /// Drops `roots[root]` (`swap_remove`).
    DropRoot(u8),
    /// Puts `Gc::downgrade(&roots[root])` in the weak pool.
    Downgrade(u8),
    /// Upgrades `weaks[weak]`; roots the result if `keep`.
    Upgrade { weak: u8, keep: bool },
    /// Drops `weaks[weak]` (`swap_remove`).
    DropWeak(u8),
    /// `roots[from].weaks.push(Gc::downgrade(&roots[to]))`, unless
    /// `roots[from]` is bare.
    StoreWeak { from: u8, to: u8 },
    /// Upgrades `roots[from].weaks[idx]`; roots the result if `keep`.
    UpgradeStored { from: u8, idx: u8, keep: bool },
    /// `gcptr::collect_generation(generation % 3)`.
    Collect(u8),
    /// `gcptr::collect()`.
    CollectAll,
    /// `gcptr::freeze()`.
    Freeze,
    /// `gcptr::unfreeze()`.
    Unfreeze,
    /// Empties `RES`, dropping what finalizers stored there, in order.
    DropResurrected,
    /// Empties `RES` into the roots: what finalizers resurrected can then
    /// be downgraded, linked and put in the weak containers.
    AdoptResurrected,
    /// `map.insert(key % KEYS, &roots[root])`, in the `WeakValueMap` of
    /// the root's type (none for a bare root).
    MapInsert { key: u8, root: u8 },
    /// `map.remove(key % KEYS)` in the plain (`fin == false`) or finalizer
    /// map.
    MapRemove { key: u8, fin: bool },
    /// `map.get(key % KEYS)`; roots the result if `keep`.
    MapGet { key: u8, fin: bool, keep: bool },
    /// `set.insert(&roots[root])`, in the `WeakSet` of the root's type
    /// (none for a bare root).
    SetInsert(u8),
    /// `set.remove(&roots[root])`.
    SetRemove(u8),
    /// `Gc::get_mut(&mut roots[root])`, writing through the `&mut` if it
    /// is lent: the object is set aside until its next lost reference, or
    /// until a collection meets an edge to it.
    GetMut(u8),
    /// Moves `roots[root]` into the edges of another root, `roots[from]`
    /// (taken after the removal): a reference that changes hands with no
    /// count going down. Nothing if there is one root or none, or if
    /// `roots[from]` holds [`EDGE_SLOTS`] edges.
    MoveRoot { root: u8, from: u8 },
}

/// Keys of the weak value maps.
pub const KEYS: u8 = 6;

/// Strong edges an object can hold: `AddEdge` and `MoveRoot` do nothing
/// to an object that has this many.
pub const EDGE_SLOTS: usize = 6;

impl Op {
    /// Decodes one operation from the front of `bytes` (for the fuzzer);
    /// `None` when `bytes` is empty. Missing argument bytes read as 0.
    pub fn decode(bytes: &mut &[u8]) -> Option<Op> {
        let (&tag, rest) = bytes.split_first()?;
        *bytes = rest;
        let mut arg = || -> u8 {
            match bytes.split_first() {
                Some((&b, rest)) => {
                    *bytes = rest;
                    b
                }
                None => 0,
            }
        };
        // Weights, out of 42: the common operations take several codes.
        Some(match tag % 42 {
            0..=2 => Op::Alloc(Kind::Plain),
            3 => Op::Alloc(Kind::Fin(FinMode::Observe)),
            4 => Op::Alloc(Kind::Fin(FinMode::ResurrectEdges)),
            5 => Op::Alloc(Kind::Fin(FinMode::ResurrectSelf)),
            6..=10 => Op::AddEdge {
                from: arg(),
                to: arg(),
            },
            11 | 12 => Op::RemoveEdge {
                from: arg(),
                edge: arg(),
            },
            13 => Op::DropResurrected,
            14 => Op::Follow {
                from: arg(),
                edge: arg(),
            },
            15 => Op::CloneRoot(arg()),
            16..=19 => Op::DropRoot(arg()),
            20 => Op::Downgrade(arg()),
            21 => {
                let b = arg();
                Op::Upgrade {
                    weak: b >> 1,
                    keep: b & 1 != 0,
                }
            }
            22 => Op::DropWeak(arg()),
            23 => Op::StoreWeak {
                from: arg(),
                to: arg(),
            },
            24 => {
                let (from, b) = (arg(), arg());
                Op::UpgradeStored {
                    from,
                    idx: b >> 1,
                    keep: b & 1 != 0,
                }
            }
            25..=27 => Op::Collect(arg() % 3),
            28 => Op::CollectAll,
            29 => {
                if arg() & 1 != 0 {
                    Op::Freeze
                } else {
                    Op::Unfreeze
                }
            }
            30 => Op::AdoptResurrected,
            31 => Op::MapInsert {
                key: arg(),
                root: arg(),
            },
            32 => {
                let b = arg();
                Op::MapRemove {
                    key: b >> 1,
                    fin: b & 1 != 0,
                }
            }
            33 => {
                let b = arg();
                Op::MapGet {
                    key: b >> 2,
                    fin: b & 1 != 0,
                    keep: b & 2 != 0,
                }
            }
            34 => Op::SetInsert(arg()),
            35 => Op::SetRemove(arg()),
            37 => Op::GetMut(arg()),
            38 => Op::MoveRoot {
                root: arg(),
                from: arg(),
            },
            39 => Op::Alloc(Kind::Bare { tagged: false }),
            40 => Op::Alloc(Kind::Bare { tagged: true }),
            41 => Op::Alloc(Kind::Fin(FinMode::AdoptNewborn)),
            _ => Op::ClearEdges { from: arg() },
        })
    }
}

/// How a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// `None`: automatic collection off (`gcptr::disable()`). `Some(t)`:
    /// on, with `gcptr::set_threshold(t)`.
    pub automatic: Option<[usize; 3]>,
}

impl Config {
    /// Decodes a configuration from the first byte of `bytes`.
    pub fn decode(bytes: &mut &[u8]) -> Config {
        let Some((&b, rest)) = bytes.split_first() else {
            return Config { automatic: None };
        };
        *bytes = rest;
        let automatic = (b & 1 != 0).then(|| {
            [
                usize::from(b >> 1 & 7) + 1,
                usize::from(b >> 4 & 3),
                usize::from(b >> 6 & 3),
            ]
        });
        Config { automatic }
    }
}

// ------------------------------------------------------------ the real heap

/// What the `Drop` of a body or a finalizer saw.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Event {
    pub what: What,
    pub id: u32,
    /// For each strong edge, in order: the peer's id and, for a `Drop`,
    /// whether `Weak::upgrade` of it succeeded; for a finalizer, whether
    /// its value could be read.
    pub peers: Vec<(u32, bool)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum What {
    Finalized,
    Dropped,
    /// The tag of a bare node (no peers).
    TagDropped,
}

thread_local! {
    static EVENTS: RefCell<Vec<Event>> = const { RefCell::new(Vec::new()) };
    /// Where finalizers store what they resurrect.
    static RES: RefCell<Vec<Obj>> = const { RefCell::new(Vec::new()) };
    /// Object id by value address, to name a peer without reading it (its
    /// value may be dropped). A held `Gc` keeps its address from reuse.
    static IDS: RefCell<HashMap<usize, u32>> = RefCell::new(HashMap::new());
    /// The `Weak` a finalizer object's `Gc::new_cyclic` handed out, while
    /// that call runs.
    static NEWBORN: RefCell<Option<Weak<FinNode>>> = const { RefCell::new(None) };
}

/// Automatic collections so far that skipped their analysis.
fn skipped_collections() -> usize {
    gcptr::stats().iter().map(|s| s.skipped).sum()
}

fn record(event: Event) {
    // At thread exit (after a failed assertion) the log may be gone.
    let _ = EVENTS.try_with(|e| e.borrow_mut().push(event));
}

fn take_events() -> Vec<Event> {
    let mut events = EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()));
    events.sort();
    events
}

/// Strong edges in order, in fixed slots: unlike a `Vec`, dropping the
/// list does nothing but release `Gc`s, so a bare node keeps that fact.
#[derive(Trace, Default)]
pub struct EdgeList {
    /// `slots[..len]` are `Some`, the rest `None`.
    slots: [Option<Obj>; EDGE_SLOTS],
    #[gc(skip)]
    len: usize,
}

impl EdgeList {
    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = &Obj> {
        self.slots[..self.len].iter().flatten()
    }

    fn get(&self, i: usize) -> &Obj {
        self.iter().nth(i).expect("an edge index below len")
    }

    fn push(&mut self, obj: Obj) {
        assert!(self.len < EDGE_SLOTS, "harness: an edge list is full");
        self.slots[self.len] = Some(obj);
        self.len += 1;
    }

    /// Removes edge `i`, keeping the others in order.
    fn remove(&mut self, i: usize) -> Obj {
        let removed = self.slots[i].take().expect("an edge index below len");
        self.slots[i..self.len].rotate_left(1);
        self.len -= 1;
        removed
    }
}

/// What a plain or a finalizer object holds.
#[derive(Trace)]
pub struct Body {
    id: u32,
    edges: RefCell<EdgeList>,
    weaks: RefCell<Vec<WObj>>,
}

impl Drop for Body {
    fn drop(&mut self) {
        // Runs before the edges are dropped: every peer is still held.
        let peers = self
            .edges
            .get_mut()
            .iter()
            .map(|e| (e.id_by_address(), e.downgrade().upgrade().is_some()))
            .collect();
        record(Event {
            what: What::Dropped,
            id: self.id,
            peers,
        });
    }
}

#[derive(Trace)]
pub struct PlainNode(Body);

#[derive(Trace)]
#[gc(finalize)]
pub struct FinNode {
    body: Body,
    #[gc(skip)]
    mode: FinMode,
    me: Weak<FinNode>,
}

impl Finalize for FinNode {
    fn finalize(&self) {
        let edges = self.body.edges.borrow();
        let peers = edges
            .iter()
            .map(|e| {
                // A peer's value is readable unless it is dead; reading a
                // dead one must panic, never read freed memory.
                let read = panic::catch_unwind(AssertUnwindSafe(|| e.id()));
                if let Ok(id) = read {
                    assert_eq!(id, e.id_by_address(), "a peer's id changed");
                }
                (e.id_by_address(), read.is_ok())
            })
            .collect();
        record(Event {
            what: What::Finalized,
            id: self.body.id,
            peers,
        });
        match self.mode {
            FinMode::Observe => {}
            FinMode::ResurrectEdges => {
                let _ = RES.try_with(|r| r.borrow_mut().extend(edges.iter().cloned()));
            }
            FinMode::ResurrectSelf => {
                if let Some(me) = self.me.upgrade() {
                    let _ = RES.try_with(|r| r.borrow_mut().push(Obj::Fin(me)));
                }
            }
            FinMode::AdoptNewborn => {
                let newborn = NEWBORN
                    .try_with(|n| n.borrow().as_ref().and_then(Weak::upgrade))
                    .ok()
                    .flatten();
                if let Some(newborn) = newborn {
                    let _ = RES.try_with(|r| r.borrow_mut().push(Obj::Fin(newborn.clone())));
                    drop(newborn); // a lost reference
                }
            }
        }
    }
}

/// An object whose drop only releases the `Gc`s it holds (no `Drop` impl,
/// no `Weak`, no heap memory of its own).
#[derive(Trace)]
pub struct BareNode {
    id: u32,
    edges: RefCell<EdgeList>,
    tag: Option<Gc<Tag>>,
}

/// Held by a tagged bare node alone: untracked (it holds no `Gc`), so an
/// edge to it leaves any set the collector analyses, and the node's drop
/// is the only thing that releases it.
#[derive(Trace)]
pub struct Tag(u32);

impl Drop for Tag {
    fn drop(&mut self) {
        record(Event {
            what: What::TagDropped,
            id: self.0,
            peers: Vec::new(),
        });
    }
}

/// A strong handle to an object of any type.
#[derive(Trace, Clone)]
pub enum Obj {
    Plain(Gc<PlainNode>),
    Fin(Gc<FinNode>),
    Bare(Gc<BareNode>),
}

/// A weak handle to an object of any type.
#[derive(Trace, Clone)]
pub enum WObj {
    Plain(Weak<PlainNode>),
    Fin(Weak<FinNode>),
    Bare(Weak<BareNode>),
}

impl Obj {
    fn new(id: u32, kind: Kind) -> Obj {
        let edges = || RefCell::new(EdgeList::default());
        let body = || Body {
            id,
            edges: edges(),
            weaks: RefCell::new(Vec::new()),
        };
        let obj = match kind {
            Kind::Plain => Obj::Plain(Gc::new(PlainNode(body()))),
            Kind::Fin(mode) => {
                let obj = Gc::new_cyclic(|me| {
                    NEWBORN.with(|n| *n.borrow_mut() = Some(me.clone()));
                    FinNode {
                        body: body(),
                        mode,
                        me: me.clone(),
                    }
                });
                NEWBORN.with(|n| n.borrow_mut().take());
                Obj::Fin(obj)
            }
            Kind::Bare { tagged } => Obj::Bare(Gc::new(BareNode {
                id,
                edges: edges(),
                tag: tagged.then(|| Gc::new(Tag(id))),
            })),
        };
        IDS.with(|ids| ids.borrow_mut().insert(obj.address(), id));
        obj
    }

    /// The id stored in the value (a read of the value).
    fn id(&self) -> u32 {
        match self {
            Obj::Plain(g) => g.0.id,
            Obj::Fin(g) => g.body.id,
            Obj::Bare(g) => g.id,
        }
    }

    fn edges(&self) -> &RefCell<EdgeList> {
        match self {
            Obj::Plain(g) => &g.0.edges,
            Obj::Fin(g) => &g.body.edges,
            Obj::Bare(g) => &g.edges,
        }
    }

    /// Weak edges; a bare node has none.
    fn weaks(&self) -> Option<&RefCell<Vec<WObj>>> {
        match self {
            Obj::Plain(g) => Some(&g.0.weaks),
            Obj::Fin(g) => Some(&g.body.weaks),
            Obj::Bare(_) => None,
        }
    }

    /// `Gc::get_mut`, narrowed to the id.
    fn get_mut_id(&mut self) -> Option<&mut u32> {
        match self {
            Obj::Plain(g) => Gc::get_mut(g).map(|node| &mut node.0.id),
            Obj::Fin(g) => Gc::get_mut(g).map(|node| &mut node.body.id),
            Obj::Bare(g) => Gc::get_mut(g).map(|node| &mut node.id),
        }
    }

    fn address(&self) -> usize {
        match self {
            Obj::Plain(g) => Gc::as_ptr(g).cast::<()>().addr(),
            Obj::Fin(g) => Gc::as_ptr(g).cast::<()>().addr(),
            Obj::Bare(g) => Gc::as_ptr(g).cast::<()>().addr(),
        }
    }

    fn id_by_address(&self) -> u32 {
        let address = self.address();
        IDS.try_with(|ids| ids.borrow().get(&address).copied())
            .ok()
            .flatten()
            .unwrap_or(u32::MAX)
    }

    fn strong_count(&self) -> usize {
        match self {
            Obj::Plain(g) => Gc::strong_count(g),
            Obj::Fin(g) => Gc::strong_count(g),
            Obj::Bare(g) => Gc::strong_count(g),
        }
    }

    fn downgrade(&self) -> WObj {
        match self {
            Obj::Plain(g) => WObj::Plain(Gc::downgrade(g)),
            Obj::Fin(g) => WObj::Fin(Gc::downgrade(g)),
            Obj::Bare(g) => WObj::Bare(Gc::downgrade(g)),
        }
    }
}

impl WObj {
    fn upgrade(&self) -> Option<Obj> {
        match self {
            WObj::Plain(w) => w.upgrade().map(Obj::Plain),
            WObj::Fin(w) => w.upgrade().map(Obj::Fin),
            WObj::Bare(w) => w.upgrade().map(Obj::Bare),
        }
    }

    fn strong_count(&self) -> usize {
        match self {
            WObj::Plain(w) => w.strong_count(),
            WObj::Fin(w) => w.strong_count(),
            WObj::Bare(w) => w.strong_count(),
        }
    }
}

impl fmt::Debug for Obj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.id_by_address())
    }
}

// ---------------------------------------------------------------- the model

const FROZEN: u8 = 3;
/// Set aside by `Gc::get_mut`: in no generation.
const SET_ASIDE: u8 = 4;

#[derive(Clone, Debug)]
struct MObj {
    kind: Kind,
    strong: usize,
    edges: Vec<usize>,
    weaks: Vec<MWeak>,
    generation: u8,
    dead: bool,
    finalized: bool,
    weak_cleared: bool,
    /// Resurrected by a collection's finalizer once (gcptr's `EPOCH`).
    epoch: bool,
    /// Reported a lost reference since a full collection last analysed it
    /// (gcptr's `QUIET`): full collections start from these.
    quiet: bool,
}

/// A weak reference in the model: its object, and the object's weak epoch
/// when it was made.
#[derive(Clone, Copy, Debug, PartialEq)]
struct MWeak {
    id: usize,
    epoch: bool,
}

/// The reference model of the heap.
#[derive(Clone, Debug, Default)]
pub struct Model {
    objs: Vec<MObj>,
    roots: Vec<usize>,
    weaks: Vec<MWeak>,
    res: Vec<usize>,
    counts: [usize; 3],
    /// The next full collection looks at every object, not only what the
    /// quiet ones reach: objects were unfrozen since the last one that did.
    analyse_everything: bool,
    automatic: Option<[usize; 3]>,
    long_lived_total: usize,
    long_lived_pending: usize,
    /// The 25% rule's quarter as a shift: 2, less while automatic full
    /// collections find nothing.
    long_lived_shift: u32,
    /// Generation 0's growth (its count at each collection) since the last
    /// full collection began, and how many objects that one analysed and
    /// found alive.
    grown_since_full: usize,
    full_survivors: usize,
    /// A young collection moved up a quiet object, since the last full
    /// collection began or automatic collection last looked.
    quiet_survived: bool,
    /// An object of generation 2 reported a lost reference, or a quiet one
    /// came into it, since the last full collection began (gcptr's
    /// reporters' buffer is not empty).
    old_reports: bool,
    events: Vec<Event>,
    /// The weak value maps (plain, finalizer): key to object, dead or not.
    maps: [HashMap<u8, MWeak>; 2],
    /// The weak sets (plain, finalizer): members, dead or not.
    sets: [Vec<MWeak>; 2],
    /// The finalizer object being allocated, while its allocation's
    /// automatic collection runs.
    newborn: Option<usize>,
}

impl Model {
    /// Whether a weak reference to `id` made now would upgrade.
    fn upgradable(&self, id: usize) -> bool {
        let o = &self.objs[id];
        !o.dead && o.strong > 0 && !o.weak_cleared
    }

    /// A weak reference to `id`, made now.
    fn weak_to(&self, id: usize) -> MWeak {
        MWeak {
            id,
            epoch: self.objs[id].epoch,
        }
    }

    /// Whether `weak` upgrades: only in the epoch it was made in.
    fn upgrades(&self, weak: MWeak) -> bool {
        self.upgradable(weak.id) && self.objs[weak.id].epoch == weak.epoch
    }

    /// Whether the weak set of `id`'s kind has a live entry for it.
    fn is_member(&self, id: usize) -> bool {
        self.sets[usize::from(self.is_fin(id))]
            .iter()
            .any(|&m| m.id == id && self.upgrades(m))
    }

    fn is_fin(&self, id: usize) -> bool {
        matches!(self.objs[id].kind, Kind::Fin(_))
    }

    /// Live entries of a weak container: an entry goes when its object can
    /// no longer be upgraded.
    fn map_len(&self, fin: bool) -> usize {
        self.maps[usize::from(fin)]
            .values()
            .filter(|&&w| self.upgrades(w))
            .count()
    }

    fn set_len(&self, fin: bool) -> usize {
        self.sets[usize::from(fin)]
            .iter()
            .filter(|&&w| self.upgrades(w))
            .count()
    }

    fn note_death(&mut self) {
        self.counts[0] = self.counts[0].saturating_sub(1);
    }

    /// An allocation, which may run an automatic collection first; gcptr
    /// reported whether that collection `skipped` its analysis.
    ///
    /// The new object exists during that collection, set aside (not
    /// linked), and a finalizer object's is reachable through `NEWBORN`.
    /// It is linked into generation 0 afterwards, unless a lost reference
    /// brought it there first.
    fn alloc(&mut self, kind: Kind, skipped: bool) -> usize {
        self.counts[0] += 1;
        self.objs.push(MObj {
            kind,
            strong: 1,
            edges: Vec::new(),
            weaks: Vec::new(),
            generation: SET_ASIDE,
            dead: false,
            finalized: false,
            weak_cleared: false,
            epoch: false,
            quiet: false,
        });
        let id = self.objs.len() - 1;
        self.newborn = self.is_fin(id).then_some(id);
        let mut collected = false;
        if let Some(threshold) = self.automatic {
            if threshold[0] != 0 && self.counts[0] > threshold[0] {
                collected = self.collect_automatically(threshold, skipped);
            }
        }
        self.newborn = None;
        assert!(
            collected || !skipped,
            "gcptr skipped a collection the model does not run"
        );
        if self.objs[id].generation == SET_ASIDE {
            self.objs[id].generation = 0;
        }
        self.roots.push(id);
        id
    }

    /// Whether a collection ran.
    fn collect_automatically(&mut self, threshold: [usize; 3], skipped: bool) -> bool {
        for generation in (0..3).rev() {
            if self.counts[generation] > threshold[generation] {
                if generation == 2
                    && self.long_lived_pending < self.long_lived_total >> self.long_lived_shift
                {
                    continue;
                }
                let reclaimed = self.collect(generation, !skipped);
                if generation == 2 && !skipped {
                    // Full collections that find nothing wait longer.
                    self.long_lived_shift = if reclaimed == 0 {
                        self.long_lived_shift.saturating_sub(1)
                    } else {
                        2
                    };
                }
                if generation < 2 {
                    self.reach_into_older();
                }
                return true;
            }
        }
        false
    }

    /// After a young automatic collection: a full one, if garbage may
    /// have escaped it, full collections gather what the quiet objects
    /// reach, and generation 0 grew enough.
    fn reach_into_older(&mut self) {
        let escaped = std::mem::take(&mut self.quiet_survived) || self.old_reports;
        let gathers = !self.analyse_everything && self.frozen() == 0;
        if escaped && gathers && self.grown_since_full >= 2 * self.full_survivors {
            self.collect(2, true);
        }
    }

    fn inc(&mut self, id: usize) {
        self.objs[id].strong += 1;
    }

    /// One strong reference to `id` goes.
    fn dec(&mut self, id: usize) {
        let o = &mut self.objs[id];
        assert!(o.strong > 0, "model: strong count underflow of #{id}");
        o.strong -= 1;
        if o.strong == 0 && !o.dead {
            self.die(id);
        } else {
            self.lost_reference(id);
        }
    }

    /// A reference to `id` went and others remain: it is quiet, and an
    /// object set aside comes back, into generation 0.
    fn lost_reference(&mut self, id: usize) {
        let o = &mut self.objs[id];
        if o.strong > 0 && !o.dead {
            self.old_reports |= o.generation == 2;
            o.quiet = true;
            if o.generation == SET_ASIDE {
                o.generation = 0;
            }
        }
    }

    /// `Gc::get_mut` lent the value of `id` (`lent`), or refused.
    fn get_mut(&mut self, id: usize, lent: bool) {
        let o = &self.objs[id];
        let weak_holders = self.weaks.iter().filter(|w| w.id == id).count()
            + self
                .objs
                .iter()
                .filter(|h| !h.dead)
                .flat_map(|h| &h.weaks)
                .filter(|w| w.id == id)
                .count();
        if o.strong == 1 && !o.dead && weak_holders == 0 && !self.is_fin(id) {
            // Weak map and set entries hold `Weak`s too, and leave lazily:
            // only refusals are then unpredictable.
            if !lent {
                return;
            }
        } else {
            assert!(!lent, "get_mut lent #{id}, shared or dead in the model");
            return;
        }
        self.objs[id].generation = SET_ASIDE;
        self.objs[id].quiet = false;
    }

    /// Death by count.
    fn die(&mut self, id: usize) {
        if let Kind::Fin(mode) = self.objs[id].kind {
            if !self.objs[id].finalized {
                self.objs[id].finalized = true;
                self.objs[id].strong = 1; // held while the finalizer runs
                self.finalize(id, mode);
                self.objs[id].strong -= 1;
                if self.objs[id].strong > 0 {
                    self.lost_reference(id);
                    return; // resurrected
                }
            }
        }
        self.objs[id].dead = true;
        self.note_death();
        self.drop_value(id);
    }

    fn finalize(&mut self, id: usize, mode: FinMode) {
        let edges = self.objs[id].edges.clone();
        let peers = edges
            .iter()
            .map(|&e| (e as u32, !self.objs[e].dead))
            .collect();
        self.events.push(Event {
            what: What::Finalized,
            id: id as u32,
            peers,
        });
        match mode {
            FinMode::Observe => {}
            FinMode::ResurrectEdges => {
                for e in edges {
                    self.inc(e);
                    self.res.push(e);
                }
            }
            FinMode::ResurrectSelf => {
                // Its `Weak` to itself was made with it.
                if self.upgrades(MWeak { id, epoch: false }) {
                    self.inc(id);
                    self.res.push(id);
                }
            }
            FinMode::AdoptNewborn => {
                let made_with_it = |n| MWeak {
                    id: n,
                    epoch: false,
                };
                if let Some(newborn) = self.newborn.filter(|&n| self.upgrades(made_with_it(n))) {
                    self.inc(newborn);
                    self.res.push(newborn);
                    self.lost_reference(newborn);
                }
            }
        }
    }

    /// Drops the value of `id`, which is marked dead.
    fn drop_value(&mut self, id: usize) {
        let edges = std::mem::take(&mut self.objs[id].edges);
        self.objs[id].weaks.clear();
        if let Kind::Bare { tagged } = self.objs[id].kind {
            if tagged {
                self.events.push(Event {
                    what: What::TagDropped,
                    id: id as u32,
                    peers: Vec::new(),
                });
            }
        } else {
            let peers = edges
                .iter()
                .map(|&e| (e as u32, self.upgradable(e)))
                .collect();
            self.events.push(Event {
                what: What::Dropped,
                id: id as u32,
                peers,
            });
            // `Body::drop` upgraded a `Weak` to each peer, and dropped it:
            // a lost reference for each one that upgraded.
            for &e in &edges {
                if self.upgradable(e) {
                    self.lost_reference(e);
                }
            }
        }
        // A collection may free a set of bare garbage without dropping
        // it: then these edges all lead into the set, whose members are
        // dead already, and releasing them changes nothing.
        for e in edges {
            self.dec(e);
        }
    }

    /// Whether `id` can take another strong edge.
    fn has_room(&self, id: usize) -> bool {
        self.objs[id].edges.len() < EDGE_SLOTS
    }

    /// Marks, within `set`, what is reachable from outside it: from a root,
    /// `RES`, or a live object not in `set`.
    fn reachable_within(&self, set: &[bool]) -> Vec<bool> {
        let mut reached = vec![false; self.objs.len()];
        // The object being allocated (`alloc`) is held by its first handle,
        // from outside any set that takes it in.
        let mut stack: Vec<usize> = self
            .roots
            .iter()
            .chain(&self.res)
            .chain(&self.newborn)
            .copied()
            .collect();
        for (id, o) in self.objs.iter().enumerate() {
            if !o.dead && !set[id] {
                stack.extend(&o.edges);
            }
        }
        while let Some(id) = stack.pop() {
            if set[id] && !reached[id] {
                reached[id] = true;
                stack.extend(&self.objs[id].edges);
            }
        }
        reached
    }

    /// `gcptr::collect_generation`: a full one also starts the 25% rule
    /// afresh.
    fn collect_explicitly(&mut self, generation: usize) -> usize {
        if generation == 2 {
            self.long_lived_shift = 2;
        }
        self.collect(generation, true)
    }

    /// A collection of `generation` and the younger ones; returns how many
    /// objects it reclaimed. One that skips its analysis (`!analysed`,
    /// which gcptr may do when no garbage can exist) must find none, and
    /// traces nothing: it brings back no object set aside.
    fn collect(&mut self, generation: usize, analysed: bool) -> usize {
        if generation + 1 < 3 {
            self.counts[generation + 1] += 1;
        }
        if generation == 2 {
            self.grown_since_full = 0;
            self.quiet_survived = false;
            self.old_reports = false;
        } else {
            self.grown_since_full += self.counts[0];
        }
        for count in &mut self.counts[..=generation] {
            *count = 0;
        }
        let older = (generation + 1).min(2) as u8;
        let collected: Vec<bool> = self
            .objs
            .iter()
            .map(|o| !o.dead && usize::from(o.generation) <= generation)
            .collect();
        let full = generation == 2;
        let everything = self.analyse_everything || self.frozen() > 0;
        // An analysis takes in the objects set aside by `get_mut` that its
        // edges meet (an edge to one means its `&mut` is gone): what a look
        // at everything would analyse is `collected` and those it meets.
        let all = if analysed {
            self.with_set_aside_met(&collected)
        } else {
            collected.clone()
        };
        let in_set = if full && !everything {
            let mut with_aside = collected.clone();
            for (id, o) in self.objs.iter().enumerate() {
                with_aside[id] |= analysed && !o.dead && o.generation == SET_ASIDE;
            }
            self.reached_from_quiet(&with_aside)
        } else {
            all.clone()
        };
        // The objects set aside that the set took in move up with it.
        let collected: Vec<bool> = collected
            .iter()
            .zip(&in_set)
            .map(|(&c, &s)| c || s)
            .collect();
        if full && analysed {
            self.analyse_everything &= !everything;
            for (o, _) in self.objs.iter_mut().zip(&in_set).filter(|(_, &s)| s) {
                o.quiet = false;
            }
        }
        let reached = self.reachable_within(&in_set);
        // The set holds every object set aside that its edges meet (see
        // `all`): none is left to come back when the analysis ends.
        let mut garbage = Vec::new();
        let mut survivors = 0;
        let mut analysed_alive = 0;
        for id in 0..self.objs.len() {
            if in_set[id] && !reached[id] {
                garbage.push(id);
            } else if collected[id] {
                self.objs[id].generation = older;
                survivors += 1;
                if in_set[id] && analysed {
                    analysed_alive += 1;
                    if !full && self.objs[id].quiet {
                        self.quiet_survived = true;
                        self.old_reports |= older == 2;
                    }
                }
            }
        }
        if full && analysed {
            self.full_survivors = analysed_alive;
        }
        if in_set != all {
            // The claim that lets full collections start from the quiet
            // objects: it finds all that a look at everything would.
            let reached_in_all = self.reachable_within(&all);
            let all_garbage: Vec<usize> = (0..self.objs.len())
                .filter(|&id| all[id] && !reached_in_all[id])
                .collect();
            assert_eq!(
                garbage, all_garbage,
                "model: garbage that the quiet objects do not reach"
            );
        }
        match generation {
            1 => self.long_lived_pending += survivors,
            2 => {
                self.long_lived_pending = 0;
                self.long_lived_total = survivors;
            }
            _ => {}
        }
        assert!(
            analysed || garbage.is_empty(),
            "gcptr skipped the analysis of a collection of generation {generation}, \
             which would have found {garbage:?}"
        );
        for &id in &garbage {
            self.objs[id].weak_cleared = true;
        }
        let mut ran_any = false;
        for &id in &garbage {
            if let Kind::Fin(mode) = self.objs[id].kind {
                if !self.objs[id].finalized && !self.objs[id].dead {
                    self.objs[id].finalized = true;
                    ran_any = true;
                    self.finalize(id, mode);
                }
            }
        }
        let found = garbage.len();
        let mut resurrected_count = 0;
        if ran_any {
            let mut in_garbage = vec![false; self.objs.len()];
            for &id in &garbage {
                in_garbage[id] = !self.objs[id].dead;
            }
            let resurrected = self.reachable_within(&in_garbage);
            garbage.retain(|&id| {
                if resurrected[id] {
                    // Loud: every reference it had came from the garbage,
                    // so a later garbage set holding it needs a loss of a
                    // reference made from now on, reported then.
                    let o = &mut self.objs[id];
                    o.generation = older;
                    o.quiet = false;
                    if !o.epoch {
                        // The weak references made from now on upgrade.
                        o.epoch = true;
                        o.weak_cleared = false;
                    }
                    resurrected_count += 1;
                }
                // Objects a finalizer killed by count are dead already.
                !resurrected[id] && !self.objs[id].dead
            });
        }
        for &id in &garbage {
            self.objs[id].dead = true;
        }
        for &id in &garbage {
            self.note_death();
            self.drop_value(id);
        }
        found - resurrected_count
    }

    /// `collected` and the objects set aside by `get_mut` that its edges
    /// meet, through other such objects too: what an analysis of
    /// `collected` takes in.
    fn with_set_aside_met(&self, collected: &[bool]) -> Vec<bool> {
        let mut in_set = collected.to_vec();
        let mut stack: Vec<usize> = (0..self.objs.len())
            .filter(|&id| collected[id])
            .flat_map(|id| self.objs[id].edges.iter().copied())
            .collect();
        while let Some(id) = stack.pop() {
            let o = &self.objs[id];
            if !in_set[id] && !o.dead && o.generation == SET_ASIDE {
                in_set[id] = true;
                stack.extend(&o.edges);
            }
        }
        in_set
    }

    /// What a full collection analyses, out of the objects `collected`:
    /// all that the quiet ones reach.
    fn reached_from_quiet(&self, collected: &[bool]) -> Vec<bool> {
        let mut in_set = vec![false; self.objs.len()];
        let mut stack: Vec<usize> = (0..self.objs.len())
            .filter(|&id| collected[id] && self.objs[id].quiet)
            .collect();
        while let Some(id) = stack.pop() {
            if collected[id] && !in_set[id] {
                in_set[id] = true;
                stack.extend(&self.objs[id].edges);
            }
        }
        in_set
    }

    fn freeze(&mut self) {
        for o in &mut self.objs {
            if !o.dead && o.generation != SET_ASIDE {
                o.generation = FROZEN;
            }
        }
        self.counts[0] = 0;
    }

    fn unfreeze(&mut self) {
        self.analyse_everything = true;
        for o in &mut self.objs {
            if o.generation == FROZEN {
                o.generation = 2;
            }
        }
    }

    fn frozen(&self) -> usize {
        self.objs
            .iter()
            .filter(|o| !o.dead && o.generation == FROZEN)
            .count()
    }

    fn live(&self) -> usize {
        self.objs.iter().filter(|o| !o.dead).count()
    }

    /// The model's own invariants: strong counts are the references that
    /// exist, and nothing reachable is dead.
    fn check_self(&self) {
        let mut strong = vec![0; self.objs.len()];
        for &id in self.roots.iter().chain(&self.res) {
            strong[id] += 1;
        }
        for o in &self.objs {
            assert!(
                !o.dead || o.edges.is_empty(),
                "model: a dead object has edges"
            );
            for &e in &o.edges {
                strong[e] += 1;
            }
        }
        for (id, o) in self.objs.iter().enumerate() {
            assert_eq!(o.strong, strong[id], "model: strong count of #{id}");
        }
        let mut seen = vec![false; self.objs.len()];
        let mut stack = self.roots.clone();
        while let Some(id) = stack.pop() {
            if !std::mem::replace(&mut seen[id], true) {
                assert!(!self.objs[id].dead, "model: #{id} is reachable but dead");
                stack.extend(&self.objs[id].edges);
            }
        }
    }
}

// -------------------------------------------------------------- the harness

/// Runs a program against the real heap and the model side by side.
pub struct Harness {
    roots: Vec<Obj>,
    weaks: Vec<WObj>,
    plain_map: WeakValueMap<u8, PlainNode>,
    fin_map: WeakValueMap<u8, FinNode>,
    plain_set: WeakSet<PlainNode>,
    fin_set: WeakSet<FinNode>,
    model: Model,
    /// Operations run so far, for failure messages.
    step: usize,
}

fn index(i: u8, len: usize) -> Option<usize> {
    (len > 0).then(|| usize::from(i) % len)
}

impl Harness {
    /// Resets this thread's collector and logs, and configures it.
    pub fn new(config: Config) -> Harness {
        reset_thread();
        match config.automatic {
            None => {
                gcptr::disable();
                gcptr::set_threshold([700, 10, 10]);
            }
            Some(threshold) => {
                gcptr::set_threshold(threshold);
                gcptr::enable();
            }
        }
        assert_eq!(
            gcptr::count(),
            [0, 0, 0],
            "a reset collector counts nothing"
        );
        assert_eq!(gcptr::freeze_count(), 0);
        Harness {
            roots: Vec::new(),
            weaks: Vec::new(),
            plain_map: WeakValueMap::new(),
            fin_map: WeakValueMap::new(),
            plain_set: WeakSet::new(),
            fin_set: WeakSet::new(),
            model: Model {
                automatic: config.automatic,
                long_lived_shift: 2,
                ..Model::default()
            },
            step: 0,
        }
    }

    /// Runs `ops`, checking after each, then drops everything and checks
    /// that every object is reclaimed exactly once.
    pub fn run(config: Config, ops: &[Op]) {
        let mut harness = Harness::new(config);
        for op in ops {
            harness.apply(op);
        }
        harness.finish();
    }

    /// Runs one operation on both sides and checks that they agree.
    pub fn apply(&mut self, op: &Op) {
        self.step += 1;
        let n = self.roots.len();
        match *op {
            Op::Alloc(kind) => {
                if self.model.objs.len() < MAX_OBJECTS {
                    let id = self.model.objs.len() as u32;
                    let skipped = skipped_collections();
                    self.roots.push(Obj::new(id, kind));
                    let skipped = skipped_collections() != skipped;
                    let model_id = self.model.alloc(kind, skipped);
                    assert_eq!(model_id as u32, id);
                }
            }
            Op::AddEdge { from, to } => {
                let room = |f: &usize| self.model.has_room(self.model.roots[*f]);
                if let (Some(f), Some(t)) = (index(from, n).filter(room), index(to, n)) {
                    let target = self.roots[t].clone();
                    self.roots[f].edges().borrow_mut().push(target);
                    let (f, t) = (self.model.roots[f], self.model.roots[t]);
                    self.model.inc(t);
                    self.model.objs[f].edges.push(t);
                }
            }
            Op::RemoveEdge { from, edge } => {
                if let Some(f) = index(from, n) {
                    let mf = self.model.roots[f];
                    if let Some(e) = index(edge, self.model.objs[mf].edges.len()) {
                        let removed = self.roots[f].edges().borrow_mut().remove(e);
                        drop(removed); // the borrow has ended: deaths may run code
                        let t = self.model.objs[mf].edges.remove(e);
                        self.model.dec(t);
                    }
                }
            }
            Op::ClearEdges { from } => {
                if let Some(f) = index(from, n) {
                    let removed = std::mem::take(&mut *self.roots[f].edges().borrow_mut());
                    drop(removed);
                    let mf = self.model.roots[f];
                    for t in std::mem::take(&mut self.model.objs[mf].edges) {
                        self.model.dec(t);
                    }
                }
            }
            Op::Follow { from, edge } => {
                if let Some(f) = index(from, n) {
                    let mf = self.model.roots[f];
                    if let Some(e) = index(edge, self.model.objs[mf].edges.len()) {
                        let target = self.roots[f].edges().borrow().get(e).clone();
                        self.roots.push(target);
                        let t = self.model.objs[mf].edges[e];
                        self.model.inc(t);
                        self.model.roots.push(t);
                    }
                }
            }
            Op::CloneRoot(root) => {
                if let Some(r) = index(root, n) {
                    self.roots.push(self.roots[r].clone());
                    let id = self.model.roots[r];
                    self.model.inc(id);
                    self.model.roots.push(id);
                }
            }
            Op::DropRoot(root) => {
                if let Some(r) = index(root, n) {
                    drop(self.roots.swap_remove(r));
                    let id = self.model.roots.swap_remove(r);
                    self.model.dec(id);
                }
            }
            Op::MoveRoot { root, from } => {
                if let Some(r) = index(root, n).filter(|_| n > 1) {
                    let f = index(from, n - 1).expect("another root");
                    // `swap_remove(r)` brings the last root to `r`.
                    let receiver = self.model.roots[if f == r { n - 1 } else { f }];
                    if self.model.has_room(receiver) {
                        let moved = self.roots.swap_remove(r);
                        let id = self.model.roots.swap_remove(r);
                        self.roots[f].edges().borrow_mut().push(moved);
                        self.model.objs[receiver].edges.push(id);
                    }
                }
            }
            Op::GetMut(root) => {
                if let Some(r) = index(root, n) {
                    let lent = self.roots[r].get_mut_id().map(|id| {
                        // A write through the `&mut`, for Miri to check.
                        *id = std::hint::black_box(*id);
                    });
                    self.model.get_mut(self.model.roots[r], lent.is_some());
                }
            }
            Op::Downgrade(root) => {
                if let Some(r) = index(root, n) {
                    self.weaks.push(self.roots[r].downgrade());
                    self.model
                        .weaks
                        .push(self.model.weak_to(self.model.roots[r]));
                }
            }
            Op::Upgrade { weak, keep } => {
                if let Some(w) = index(weak, self.weaks.len()) {
                    let upgraded = self.weaks[w].upgrade();
                    self.check_upgrade(self.model.weaks[w], upgraded, keep);
                }
            }
            Op::DropWeak(weak) => {
                if let Some(w) = index(weak, self.weaks.len()) {
                    drop(self.weaks.swap_remove(w));
                    self.model.weaks.swap_remove(w);
                }
            }
            Op::StoreWeak { from, to } => {
                if let (Some(f), Some(t)) = (index(from, n), index(to, n)) {
                    if let Some(weaks) = self.roots[f].weaks() {
                        weaks.borrow_mut().push(self.roots[t].downgrade());
                        let (f, t) = (self.model.roots[f], self.model.roots[t]);
                        let weak = self.model.weak_to(t);
                        self.model.objs[f].weaks.push(weak);
                    }
                }
            }
            Op::UpgradeStored { from, idx, keep } => {
                if let Some(f) = index(from, n) {
                    let mf = self.model.roots[f];
                    if let Some(i) = index(idx, self.model.objs[mf].weaks.len()) {
                        let weaks = self.roots[f].weaks().expect("a node with weak edges");
                        let weak = weaks.borrow()[i].clone();
                        let upgraded = weak.upgrade();
                        drop(weak);
                        self.check_upgrade(self.model.objs[mf].weaks[i], upgraded, keep);
                    }
                }
            }
            Op::Collect(generation) => {
                let generation = usize::from(generation % 3);
                let reclaimed = gcptr::collect_generation(generation);
                let expected = self.model.collect_explicitly(generation);
                assert_eq!(
                    reclaimed, expected,
                    "step {}: collect_generation({generation}) reclaimed",
                    self.step
                );
            }
            Op::CollectAll => {
                let reclaimed = gcptr::collect();
                let expected = self.model.collect_explicitly(2);
                assert_eq!(
                    reclaimed, expected,
                    "step {}: collect() reclaimed",
                    self.step
                );
            }
            Op::Freeze => {
                gcptr::freeze();
                self.model.freeze();
            }
            Op::Unfreeze => {
                gcptr::unfreeze();
                self.model.unfreeze();
            }
            Op::DropResurrected => {
                let res = RES.with(|r| std::mem::take(&mut *r.borrow_mut()));
                drop(res);
                for id in std::mem::take(&mut self.model.res) {
                    self.model.dec(id);
                }
            }
            Op::AdoptResurrected => {
                // In `RES`'s order, which may differ from the model's.
                let res = RES.with(|r| std::mem::take(&mut *r.borrow_mut()));
                for obj in res {
                    let id = obj.id_by_address() as usize;
                    let at = self.model.res.iter().position(|&r| r == id);
                    let at = at.expect("`RES` holds what the model predicts");
                    self.model.res.swap_remove(at);
                    self.roots.push(obj);
                    self.model.roots.push(id);
                }
                assert!(self.model.res.is_empty(), "`RES` as the model predicts");
            }
            Op::MapInsert { key, root } => {
                if let Some(r) = index(root, n) {
                    let key = key % KEYS;
                    let old = match &self.roots[r] {
                        Obj::Plain(g) => self.plain_map.insert(key, g).map(Obj::Plain),
                        Obj::Fin(g) => self.fin_map.insert(key, g).map(Obj::Fin),
                        Obj::Bare(_) => return self.check(op),
                    };
                    let id = self.model.roots[r];
                    let weak = self.model.weak_to(id);
                    let map = &mut self.model.maps[usize::from(self.model.is_fin(id))];
                    let expected = map.insert(key, weak);
                    let expected = expected.filter(|&old| self.model.upgrades(old));
                    self.check_found("WeakValueMap::insert", old, expected.map(|w| w.id));
                }
            }
            Op::MapRemove { key, fin } => {
                let key = key % KEYS;
                let old = if fin {
                    self.fin_map.remove(&key).map(Obj::Fin)
                } else {
                    self.plain_map.remove(&key).map(Obj::Plain)
                };
                let expected = self.model.maps[usize::from(fin)].remove(&key);
                let expected = expected.filter(|&old| self.model.upgrades(old));
                self.check_found("WeakValueMap::remove", old, expected.map(|w| w.id));
            }
            Op::MapGet { key, fin, keep } => {
                let key = key % KEYS;
                let found = if fin {
                    self.fin_map.get(&key).map(Obj::Fin)
                } else {
                    self.plain_map.get(&key).map(Obj::Plain)
                };
                let expected = self.model.maps[usize::from(fin)].get(&key).copied();
                let expected = expected.filter(|&w| self.model.upgrades(w)).map(|w| w.id);
                if let (Some(obj), true) = (&found, keep) {
                    let id = obj.id_by_address() as usize;
                    self.roots.push(obj.clone());
                    self.model.inc(id);
                    self.model.roots.push(id);
                }
                self.check_found("WeakValueMap::get", found, expected);
            }
            Op::SetInsert(root) => {
                if let Some(r) = index(root, n) {
                    let inserted = match &self.roots[r] {
                        Obj::Plain(g) => self.plain_set.insert(g),
                        Obj::Fin(g) => self.fin_set.insert(g),
                        Obj::Bare(_) => return self.check(op),
                    };
                    let id = self.model.roots[r];
                    let was_member = self.model.is_member(id);
                    if !was_member {
                        // A new entry, in place of a dead one.
                        let weak = self.model.weak_to(id);
                        let set = &mut self.model.sets[usize::from(self.model.is_fin(id))];
                        set.retain(|m| m.id != id);
                        set.push(weak);
                    }
                    assert_eq!(
                        inserted, !was_member,
                        "step {}: WeakSet::insert of #{id}",
                        self.step
                    );
                }
            }
            Op::SetRemove(root) => {
                if let Some(r) = index(root, n) {
                    let removed = match &self.roots[r] {
                        Obj::Plain(g) => self.plain_set.remove(g),
                        Obj::Fin(g) => self.fin_set.remove(g),
                        Obj::Bare(_) => return self.check(op),
                    };
                    let id = self.model.roots[r];
                    let was_member = self.model.is_member(id);
                    let set = &mut self.model.sets[usize::from(self.model.is_fin(id))];
                    set.retain(|m| m.id != id);
                    assert_eq!(
                        removed, was_member,
                        "step {}: WeakSet::remove of #{id}",
                        self.step
                    );
                }
            }
        }
        self.check(op);
    }

    /// A container returned `found`; the model expected the object
    /// `expected`. A returned handle is a temporary: dropping it kills
    /// nothing, since the object it names is alive.
    fn check_found(&mut self, what: &str, found: Option<Obj>, expected: Option<usize>) {
        let found_id = found.as_ref().map(|o| o.id_by_address() as usize);
        assert_eq!(found_id, expected, "step {}: {what}", self.step);
        if let (Some(obj), Some(id)) = (found, expected) {
            assert_eq!(obj.strong_count(), self.model.objs[id].strong + 1);
            drop(obj);
            self.model.lost_reference(id);
        }
    }

    fn check_upgrade(&mut self, weak: MWeak, upgraded: Option<Obj>, keep: bool) {
        let step = self.step;
        let id = weak.id;
        assert_eq!(
            upgraded.is_some(),
            self.model.upgrades(weak),
            "step {step}: Weak::upgrade of #{id} (model: {:?})",
            self.model.objs[id]
        );
        if let Some(obj) = upgraded {
            assert_eq!(obj.id_by_address(), id as u32);
            assert_eq!(obj.id(), id as u32);
            assert_eq!(
                obj.strong_count(),
                self.model.objs[id].strong + 1,
                "step {step}: strong count of upgraded #{id}"
            );
            if keep {
                self.roots.push(obj);
                self.model.inc(id);
                self.model.roots.push(id);
            } else {
                drop(obj);
                self.model.lost_reference(id);
            }
        }
    }

    /// `obj`, the model's `id`, and what it reaches, unless `seen`.
    fn check_reachable(&self, obj: &Obj, id: usize, seen: &mut [bool]) {
        let step = self.step;
        assert_eq!(obj.id_by_address(), id as u32, "step {step}: identity");
        let m = &self.model.objs[id];
        assert!(!m.dead, "step {step}: #{id} is reachable, model says dead");
        if std::mem::replace(&mut seen[id], true) {
            return;
        }
        assert_eq!(obj.id(), id as u32, "step {step}: value of #{id}");
        assert_eq!(
            obj.strong_count(),
            m.strong,
            "step {step}: Gc::strong_count of #{id}"
        );
        let edges = obj.edges().borrow();
        let ids: Vec<usize> = edges.iter().map(|e| e.id() as usize).collect();
        assert_eq!(ids, m.edges, "step {step}: edges of #{id}");
        let weaks = obj.weaks().map_or(0, |w| w.borrow().len());
        assert_eq!(weaks, m.weaks.len(), "step {step}: weak edges of #{id}");
        for (e, &t) in edges.iter().zip(&m.edges) {
            self.check_reachable(e, t, seen);
        }
    }

    /// Everything the model predicts about the real heap, right now.
    fn check(&mut self, op: &Op) {
        let step = self.step;
        self.model.check_self();

        let mut expected = std::mem::take(&mut self.model.events);
        expected.sort();
        let actual = take_events();
        assert_eq!(
            actual, expected,
            "step {step} ({op:?}): finalizers and drops that ran (left) and that the model \
             predicts (right)"
        );

        assert_eq!(
            gcptr::count(),
            self.model.counts,
            "step {step} ({op:?}): gcptr::count()"
        );
        assert_eq!(
            gcptr::freeze_count(),
            self.model.frozen(),
            "step {step}: freeze_count()"
        );

        // Roots, and the whole graph reachable from them, walked through
        // references: a clone's drop would be a lost reference, which
        // brings back objects that `get_mut` set aside.
        assert_eq!(self.roots.len(), self.model.roots.len());
        let mut seen = vec![false; self.model.objs.len()];
        for (obj, &id) in self.roots.iter().zip(&self.model.roots) {
            self.check_reachable(obj, id, &mut seen);
        }

        // The weak pool.
        for (w, &weak) in self.weaks.iter().zip(&self.model.weaks) {
            let id = weak.id;
            let upgradable = self.model.upgrades(weak);
            let expected = if upgradable {
                self.model.objs[id].strong
            } else {
                0
            };
            assert_eq!(
                w.strong_count(),
                expected,
                "step {step}: Weak::strong_count of #{id}"
            );
            assert_eq!(
                w.upgrade().is_some(),
                upgradable,
                "step {step}: Weak::upgrade of #{id}"
            );
        }
        // Those upgrades' drops were lost references (a weak reference to
        // a condemned object upgrades to nothing, and loses none).
        for &weak in &self.model.weaks.clone() {
            if self.model.upgrades(weak) {
                self.model.lost_reference(weak.id);
            }
        }

        // The weak containers: `len()` is exact at once, `get` and
        // `contains` agree.
        assert_eq!(
            self.plain_map.len(),
            self.model.map_len(false),
            "step {step}: WeakValueMap::len (plain)"
        );
        assert_eq!(
            self.fin_map.len(),
            self.model.map_len(true),
            "step {step}: WeakValueMap::len (finalizers)"
        );
        assert_eq!(self.plain_map.is_empty(), self.model.map_len(false) == 0);
        for key in 0..KEYS {
            for fin in [false, true] {
                let found = if fin {
                    self.fin_map.get(&key).map(Obj::Fin)
                } else {
                    self.plain_map.get(&key).map(Obj::Plain)
                };
                let expected = self.model.maps[usize::from(fin)]
                    .get(&key)
                    .copied()
                    .filter(|&w| self.model.upgrades(w))
                    .map(|w| w.id);
                self.check_found("WeakValueMap::get", found, expected);
            }
        }
        assert_eq!(
            self.plain_set.len(),
            self.model.set_len(false),
            "step {step}: WeakSet::len (plain)"
        );
        assert_eq!(
            self.fin_set.len(),
            self.model.set_len(true),
            "step {step}: WeakSet::len (finalizers)"
        );
        for (obj, &id) in self.roots.iter().zip(&self.model.roots) {
            let contains = match obj {
                Obj::Plain(g) => self.plain_set.contains(g),
                Obj::Fin(g) => self.fin_set.contains(g),
                Obj::Bare(_) => continue,
            };
            let expected = self.model.is_member(id);
            assert_eq!(
                contains, expected,
                "step {step}: WeakSet::contains of #{id}"
            );
        }

        // What finalizers resurrected (the order may differ from the
        // model's: drop order within a collection is unspecified).
        RES.with(|r| {
            let r = r.borrow();
            let mut ids: Vec<usize> = r.iter().map(|o| o.id_by_address() as usize).collect();
            ids.sort_unstable();
            let mut expected = self.model.res.clone();
            expected.sort_unstable();
            assert_eq!(ids, expected, "step {step}: objects in RES");
            for o in r.iter() {
                let id = o.id_by_address() as usize;
                assert_eq!(
                    o.strong_count(),
                    self.model.objs[id].strong,
                    "step {step}: Gc::strong_count of resurrected #{id}"
                );
            }
        });
    }

    /// Drops every handle, then collects until the model has nothing left;
    /// every object must have been dropped exactly once.
    pub fn finish(mut self) {
        while let Some(root) = self.roots.pop() {
            self.step += 1;
            drop(root);
            let id = self.model.roots.pop().expect("as many roots as the heap");
            self.model.dec(id);
            self.check(&Op::DropRoot(u8::MAX));
        }
        while !self.weaks.is_empty() {
            self.apply(&Op::DropWeak(0));
        }
        // Each round runs at least one finalizer or reclaims everything.
        for _ in 0..=MAX_OBJECTS + 1 {
            if self.model.live() == 0 && self.model.res.is_empty() {
                break;
            }
            self.apply(&Op::Unfreeze);
            self.apply(&Op::DropResurrected);
            self.apply(&Op::CollectAll);
        }
        assert_eq!(self.model.live(), 0, "model: objects left after cleanup");
        assert!(self.model.res.is_empty());
        assert_eq!(gcptr::collect(), 0, "garbage left after cleanup");
        assert!(take_events().is_empty(), "events after cleanup");
        assert_eq!(gcptr::count(), [0, 0, 0]);
        gcptr::disable();
        gcptr::set_threshold([700, 10, 10]);
    }
}

/// Forgets what an earlier (maybe failed) program left in this thread.
pub fn reset_thread() {
    gcptr::disable();
    gcptr::unfreeze();
    for _ in 0..100 {
        let res = RES.with(|r| std::mem::take(&mut *r.borrow_mut()));
        let had_res = !res.is_empty();
        drop(res);
        if gcptr::collect() == 0 && !had_res {
            break;
        }
    }
    EVENTS.with(|e| e.borrow_mut().clear());
    IDS.with(|ids| ids.borrow_mut().clear());
    gcptr::collect();
}
