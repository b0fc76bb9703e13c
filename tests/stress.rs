//! Long stress runs, ignored by default: `scripts/stress.sh` runs them in
//! release mode. 10,000,000 objects in random graphs, automatic collection
//! on; memory must not grow across rounds, and every object must be
//! dropped exactly once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

use gcptr::{Gc, Trace};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: as the caller promised.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as the caller promised.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

thread_local! {
    static CREATED: Cell<u64> = const { Cell::new(0) };
    static DROPPED: Cell<u64> = const { Cell::new(0) };
}

#[derive(Trace)]
struct Node {
    edges: RefCell<Vec<Gc<Node>>>,
    #[gc(skip)]
    _payload: [u64; 2],
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

fn node() -> Gc<Node> {
    CREATED.with(|c| c.set(c.get() + 1));
    Gc::new(Node {
        edges: RefCell::new(Vec::new()),
        _payload: [0; 2],
    })
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

fn round(rng: &mut Rng, objects: usize) {
    let mut roots: Vec<Gc<Node>> = Vec::new();
    for _ in 0..objects {
        let n = node();
        // Link to a few random roots, and sometimes back from them.
        for _ in 0..2 {
            if !roots.is_empty() {
                let other = &roots[rng.below(roots.len())];
                n.edges.borrow_mut().push(other.clone());
                if rng.below(3) == 0 {
                    other.edges.borrow_mut().push(n.clone());
                }
            }
        }
        if roots.len() < 1000 {
            roots.push(n);
        } else {
            let i = rng.below(roots.len());
            roots[i] = n; // drops a root: its graph becomes garbage, often cyclic
        }
    }
}

#[test]
#[ignore = "long: run with scripts/stress.sh"]
fn ten_million_objects_in_random_graphs_with_bounded_memory() {
    let rounds = 100;
    let per_round = 100_000;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    gcptr::collect();
    let baseline = LIVE.load(Ordering::Relaxed);
    let mut after_first = 0;
    for r in 0..rounds {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        round(&mut rng, per_round);
        gcptr::collect();
        let live = LIVE.load(Ordering::Relaxed);
        let peak = PEAK.load(Ordering::Relaxed);
        if r == 0 {
            after_first = peak;
        }
        assert_eq!(
            CREATED.with(Cell::get),
            DROPPED.with(Cell::get),
            "round {r}: every object accounted for"
        );
        // The collector's own tables may keep some capacity; the objects must not.
        assert!(
            live - baseline < 1 << 20,
            "round {r}: {} bytes left",
            live - baseline
        );
        assert!(
            peak <= after_first * 2,
            "round {r}: peak {peak} grew from {after_first}"
        );
    }
    println!(
        "{} objects, peak {} MiB per round, {} collections",
        CREATED.with(Cell::get),
        after_first >> 20,
        gcptr::stats().iter().map(|s| s.collections).sum::<usize>()
    );
}
