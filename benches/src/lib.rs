//! Shared workloads for the benchmarks of issue 6.
//!
//! Every library gets a module with the same functions (`new_drop`,
//! `ring_build`, `ring_drop_collect`, ...) over the same data shapes, so
//! that each criterion group in `benches/benches/*.rs` runs every library on
//! the same workload. The modules of the cycle-collecting libraries
//! (`gcptr`, `gc`, `dumpster`, `rust-cc`, `gcmodule`, `bacon_rajan_cc`) are
//! written once, by the `gc_lib!` macro; `rc` (std `Rc` with `Weak`
//! back-edges and manual teardown where a cycle is needed) is written by
//! hand.
//!
//! This crate is a workspace member only so that `cargo bench` at the root
//! runs the suite; its lib and bench targets have `test = false`, so
//! `cargo test` never builds it or the peer crates.

#![allow(clippy::new_without_default, clippy::type_complexity)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Nodes in workload 1's loops.
pub const W1_NEW: u64 = 1_000_000;
/// Clones and derefs in workload 1.
pub const W1_CLONE: u64 = 10_000_000;
/// Two-object cycles in workload 2.
pub const W2_PAIRS: usize = 100_000;
/// Ring nodes in workloads 3 and 6.
pub const W3_RING: usize = 1_000_000;
/// Rings, and nodes in each, of the `counts` workload
/// `rings_drop_collect` (workload 3's million nodes in many structures).
pub const RINGS: (usize, usize) = (1_000, 1_000);
/// Depth of workload 4's tree (2^20 - 1 nodes).
pub const W4_DEPTH: u32 = 20;
/// Nodes of workload 5's list.
pub const W5_LIST: usize = 1_000_000;
/// Objects appended in workload 8.
pub const W8_APPEND: usize = 2_000_000;

/// A thread stack big enough for every peer's recursion (only touched
/// pages are committed).
pub const BIG_STACK: usize = 4 << 30;
/// The default stack of a Rust thread: the "normal stack" of the issue.
pub const NORMAL_STACK: usize = 2 << 20;
/// The small stack of workload 5's target.
pub const SMALL_STACK: usize = 256 << 10;

/// Writes one byte in every page of the next `bytes` of the calling
/// thread's stack (below the caller's frame), so that the kernel maps
/// those pages now. A fresh thread's stack is mapped page by page on first
/// touch (several µs a page on this VM), and a recursion a million levels
/// deep touches tens of MB of it: without this, a timed region would count
/// those page faults as the work of whatever recursed first on the thread.
/// Once mapped, pages stay mapped, so a second call costs one write a page.
#[inline(never)]
pub fn prefault_stack(bytes: usize) {
    const FRAME: usize = 16 << 10;
    if bytes == 0 {
        return;
    }
    let mut frame = [std::mem::MaybeUninit::<u8>::uninit(); FRAME];
    for i in (0..FRAME).step_by(4096) {
        frame[i] = std::mem::MaybeUninit::new(1);
    }
    black_box(&mut frame);
    if bytes > FRAME {
        prefault_stack(bytes - FRAME);
    }
    // Keeps the frame alive across the call: no tail call reuses it.
    black_box(&frame);
}

/// Bytes of a [`BIG_STACK`] thread's stack that [`prefault_this_stack`]
/// maps: more than the deepest recursion measured (on 2026-12-06, page
/// faults in the `counts` binary: `dumpster`'s drop of workload 5's list
/// takes 76 MB of stack, `bacon_rajan_cc`'s collection of workload 3's
/// ring 108 MB, `rust-cc`'s list drop 46 MB, `Rc`'s 31 MB).
pub const PREFAULT: usize = 128 << 20;

std::thread_local! {
    /// The stack size [`on_stack`] gave the current thread (0: not known).
    static STACK_SIZE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// [`prefault_stack`] for the current thread: [`PREFAULT`] bytes on a
/// [`BIG_STACK`] thread, half the stack on a smaller one, nothing on a
/// thread that [`on_stack`] did not start. For the setup of workloads
/// whose measured part recurses a million levels deep in some library
/// (workload 3's drop + collect, workload 5's drop), so that their timed
/// region holds the recursion's work and not the kernel's first mapping of
/// the stack, which a thread pays once, on whichever iteration first goes
/// that deep.
pub fn prefault_this_stack() {
    let stack = STACK_SIZE.with(|s| s.get());
    prefault_stack(if stack >= BIG_STACK {
        PREFAULT
    } else {
        stack / 2
    });
}

/// Runs `f` on a new thread with a `stack`-byte stack, and returns its
/// result. Each thread has its own collector in every library benchmarked
/// here, so whatever `f` builds is also collected there.
pub fn on_stack<R: Send + 'static>(stack: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            STACK_SIZE.with(|s| s.set(stack));
            f()
        })
        .expect("spawn benchmark thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Criterion's `iter_custom` body for a workload with untimed setup and
/// teardown: on a fresh thread with `stack` bytes of stack, `iters` times
/// runs `setup`, times `routine` on its output, then runs `teardown`
/// (untimed) on the routine's output.
pub fn timed<S: 'static, O: 'static>(
    iters: u64,
    stack: usize,
    setup: fn() -> S,
    routine: fn(S) -> O,
    teardown: fn(O),
) -> Duration {
    on_stack(stack, move || {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let input = setup();
            let start = Instant::now();
            let output = black_box(routine(input));
            total += start.elapsed();
            teardown(output);
        }
        total
    })
}

/// Like [`timed`] for a live structure built once per call (untimed):
/// each iteration runs `prepare(&live)` untimed, then times `routine(&live)`.
pub fn timed_live<T: 'static>(
    iters: u64,
    stack: usize,
    build: fn() -> T,
    prepare: fn(&T),
    routine: fn(&T),
    teardown: fn(T),
) -> Duration {
    on_stack(stack, move || {
        let live = build();
        routine(&live); // settle: the first collection promotes the young objects
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            prepare(&live);
            let start = Instant::now();
            routine(&live);
            total += start.elapsed();
        }
        teardown(live);
        total
    })
}

/// A xorshift64* generator: the workloads' random choices, the same for
/// every library (the original suites use `rand` and `fastrand`).
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A uniform index below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Where the non-criterion results go: `<target>/gcptr-bench/`.
pub fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // <target>/release/deps/<bench>-<hash>
            let exe = std::env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("gcptr-bench");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The environment variable that turns a bench binary into a probe child.
pub const PROBE_ENV: &str = "GCPTR_BENCH_PROBE";

/// The probes: workload 3 (ring drop + collect) and workload 5 (list drop)
/// per library, each run on a stack of a given size in a child process, so
/// that an overflow (which aborts) is observed rather than suffered.
pub fn probe(name: &str) -> bool {
    fn ring<B, D>(build: fn(usize) -> B, drop_collect: D)
    where
        D: FnOnce(B),
    {
        drop_collect(build(W3_RING));
    }
    fn list<B, D>(build: fn(usize) -> B, drop_collect: D)
    where
        D: FnOnce(B),
    {
        drop_collect(build(W5_LIST));
    }
    /// Workload 6 in a probe child (the probes binary, whose global
    /// allocator is [`counting::Counting`]): prints `live <bytes per node>`
    /// once the ring is built, then `peak <..>` and `leftover <..>` after
    /// its drop + collect, so a crash in the latter still reports the former.
    fn bytes<B>(build: fn(usize) -> B, drop_collect: fn(B)) {
        use std::io::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let (live, peak) = (&counting::LIVE, &counting::PEAK);
        let before = live.load(Relaxed);
        peak.store(before, Relaxed);
        let per = |b: isize| (b - before) as f64 / W3_RING as f64;
        let ring = build(W3_RING);
        println!("live {:.2}", per(live.load(Relaxed)));
        let _ = std::io::stdout().flush();
        drop_collect(ring);
        println!("peak {:.2}", per(peak.load(Relaxed)));
        println!("leftover {:.2}", per(live.load(Relaxed)));
        let _ = std::io::stdout().flush();
    }
    macro_rules! dispatch {
        ($($m:ident),*) => {
            match name {
                $(
                    concat!("w2:", stringify!($m)) => libs::$m::pairs_drop_collect(libs::$m::pairs_build(W2_PAIRS)),
                    concat!("w4:", stringify!($m)) => {
                        let t = libs::$m::tree_build(W4_DEPTH);
                        libs::$m::tree_touch(&t);
                        libs::$m::tree_collect(&t);
                        drop(t);
                        libs::$m::collect();
                    }
                    concat!("w1t:", stringify!($m)) => {
                        libs::$m::new_drop_tracked(W1_NEW);
                        libs::$m::clone_drop_tracked(W1_NEW);
                        libs::$m::deref_tracked(W1_NEW);
                    }
                    concat!("w7:", stringify!($m)) => {
                        libs::$m::binary_trees(11);
                        libs::$m::binary_trees_parent(11);
                        libs::$m::large_linked_list(4096);
                        libs::$m::stress_test(0x5eed);
                        libs::$m::dumpster_mix(1_000_000, 12345);
                    }
                    concat!("w8:", stringify!($m)) => libs::$m::append_teardown(libs::$m::append_tracked(W8_APPEND)),
                    concat!("w6:", stringify!($m)) => bytes(libs::$m::ring_build, libs::$m::ring_drop_collect),
                    concat!("w3:", stringify!($m)) => ring(libs::$m::ring_build, libs::$m::ring_drop_collect),
                    concat!("w5:", stringify!($m)) => list(libs::$m::list_build, libs::$m::list_drop_collect),
                )*
                _ => return false,
            }
        };
    }
    dispatch!(rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    true
}

/// Call first in a bench binary's `main`: if this process was started as a
/// probe child, runs the probe (`GCPTR_BENCH_PROBE=name:stack`) and exits.
pub fn run_probe_if_requested() {
    let Ok(spec) = std::env::var(PROBE_ENV) else {
        return;
    };
    let (name, stack) = spec.rsplit_once(':').expect("probe spec name:stack");
    let stack: usize = stack.parse().expect("probe stack size");
    let name = name.to_owned();
    let known = on_stack(stack, move || probe(&name));
    std::process::exit(if known { 0 } else { 2 });
}

/// A global allocator that counts requested bytes (live and peak), for
/// workload 6. Only the `probes` bench registers it.
pub mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

    /// Bytes currently allocated.
    pub static LIVE: AtomicIsize = AtomicIsize::new(0);
    /// The most bytes allocated at once since it was last reset.
    pub static PEAK: AtomicIsize = AtomicIsize::new(0);

    /// Forwards to `System`, counting.
    pub struct Counting;

    fn add(delta: isize) {
        let live = LIVE.fetch_add(delta, Relaxed) + delta;
        PEAK.fetch_max(live, Relaxed);
    }

    // SAFETY: forwards to `System`, only counting.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            // SAFETY: the caller's contract.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
            // SAFETY: the caller's contract.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            add(new_size as isize - layout.size() as isize);
            // SAFETY: the caller's contract.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

/// Runs probe `name` on a `stack`-byte stack in a child process of the
/// current executable: (whether it completed, what it printed).
pub fn probe_child(name: &str, stack: usize) -> (bool, String) {
    let exe = std::env::current_exe().expect("current exe");
    match std::process::Command::new(exe)
        .env(PROBE_ENV, format!("{name}:{stack}"))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        Err(_) => (false, String::new()),
    }
}

/// Whether probe `name` (e.g. `"w5:gcptr"`) completes on a `stack`-byte
/// stack, run in a child process of the current executable.
pub fn survives(name: &str, stack: usize) -> bool {
    let exe = std::env::current_exe().expect("current exe");
    std::process::Command::new(exe)
        .env(PROBE_ENV, format!("{name}:{stack}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// rust-cc's binary trees loop (benchmarks-game style): for each depth
/// from 4 up to `max_size` in steps of 2, `2^(max_size - depth + 4)` trees
/// of that depth, each built, checked and dropped by `tree_check(depth)`;
/// returns the sum of the checks at each depth.
pub fn binary_trees_checks(
    max_size: usize,
    mut tree_check: impl FnMut(usize) -> usize,
) -> Vec<usize> {
    let min_size = 4;
    (min_size..max_size)
        .step_by(2)
        .map(|depth| {
            let iterations = 1 << (max_size - depth + min_size);
            (0..iterations).map(|_| tree_check(depth)).sum()
        })
        .collect()
}

/// dumpster's single-threaded mix, in the module that expands it (its
/// `Ptr`, `Cell` and `Multi`): `$n_ops` random operations (create, link,
/// drop a root, drop a link) over a pool that starts with 50 nodes.
/// Evaluates to the pool.
macro_rules! dumpster_mix_pool {
    ($n_ops:expr, $seed:expr) => {{
        let mut rng = $crate::Rng::new($seed);
        let new = || {
            Ptr::new(Multi {
                refs: Cell::new(Vec::new()),
            })
        };
        let mut gcs: Vec<Ptr<Multi>> = (0..50).map(|_| new()).collect();
        for _ in 0..$n_ops {
            if gcs.is_empty() {
                gcs.push(new());
                continue;
            }
            match rng.below(4) {
                0 => gcs.push(new()),
                1 => {
                    if gcs.len() > 1 {
                        let from = rng.below(gcs.len());
                        let to = rng.below(gcs.len());
                        let edge = gcs[to].clone();
                        gcs[from].refs.borrow_mut().push(edge);
                    }
                }
                2 => {
                    let i = rng.below(gcs.len());
                    gcs.swap_remove(i);
                }
                _ => {
                    let from = rng.below(gcs.len());
                    let mut refs = gcs[from].refs.borrow_mut();
                    if !refs.is_empty() {
                        let i = rng.below(refs.len());
                        let edge = refs.swap_remove(i);
                        drop(refs);
                        drop(edge);
                    }
                }
            }
        }
        gcs
    }};
}

/// The libraries, one module each, with the same items.
pub mod libs {
    /// The cycle-collecting libraries' modules, from one template.
    ///
    /// `prelude` must define `Ptr` (the strong pointer), `Cell` (the
    /// interior-mutability cell the library can trace), `collect()`,
    /// `NAME` and `mark_next_alive` (the large linked list's hint, below);
    /// `derive` is put on every struct, `derive_enum` on every enum;
    /// `extra` holds hand-written `Trace` impls where no derive applies.
    macro_rules! gc_lib {
        (
            $(#[$doc:meta])*
            mod $m:ident;
            prelude { $($prelude:item)* }
            derive [$(#[$attr:meta])*]
            derive_enum [$(#[$eattr:meta])*]
            extra { $($extra:item)* }
        ) => {
            $(#[$doc])*
            pub mod $m {
                #![allow(unused_imports, dead_code, non_local_definitions)]
                use std::hint::black_box;
                use crate::Rng;
                $($prelude)*

                /// A node with one link: workload 1 (tracked), 2 and 8.
                $(#[$attr])*
                pub struct Link {
                    pub value: u64,
                    pub next: Cell<Option<Ptr<Link>>>,
                }

                /// A node of the doubly linked ring (workloads 3 and 6).
                $(#[$attr])*
                pub struct DNode {
                    pub value: u64,
                    pub next: Cell<Option<Ptr<DNode>>>,
                    pub prev: Cell<Option<Ptr<DNode>>>,
                }

                /// A node of workload 4's complete binary tree.
                $(#[$attr])*
                pub struct Tree {
                    pub value: u64,
                    pub left: Option<Ptr<Tree>>,
                    pub right: Option<Ptr<Tree>>,
                }

                /// A node of workload 5's singly linked list.
                $(#[$attr])*
                pub struct SNode {
                    pub value: u64,
                    pub next: Option<Ptr<SNode>>,
                }

                /// rust-cc-benchmarks' binary trees.
                $(#[$eattr])*
                pub enum BTree {
                    Nested { left: Ptr<BTree>, right: Ptr<BTree> },
                    End,
                }

                /// rust-cc-benchmarks' binary trees with parent pointers.
                $(#[$eattr])*
                pub enum PTree {
                    Root { left: Ptr<PTree>, right: Ptr<PTree> },
                    Nested { parent: Cell<Option<Ptr<PTree>>>, left: Ptr<PTree>, right: Ptr<PTree> },
                    End,
                }

                /// rust-cc-benchmarks' large doubly linked list.
                $(#[$eattr])*
                pub enum LNode {
                    Cons { next: Ptr<LNode>, previous: Cell<Option<Ptr<LNode>>> },
                    Nil,
                }

                /// rust-cc-benchmarks' stress test graph node.
                $(#[$attr])*
                pub struct GNode {
                    pub label: String,
                    pub edges: Vec<Ptr<Cell<GNode>>>,
                }

                /// dumpster's "multiref" node.
                $(#[$attr])*
                pub struct Multi {
                    pub refs: Cell<Vec<Ptr<Multi>>>,
                }

                $($extra)*

                // ---- workload 1 ----
                pub fn new_drop(n: u64) {
                    for i in 0..n {
                        drop(black_box(Ptr::new(black_box(i))));
                    }
                }
                pub fn new_drop_tracked(n: u64) {
                    for i in 0..n {
                        drop(black_box(Ptr::new(Link { value: black_box(i), next: Cell::new(None) })));
                    }
                }
                pub fn clone_drop(n: u64) {
                    let p = Ptr::new(7u64);
                    for _ in 0..n {
                        drop(black_box(black_box(&p).clone()));
                    }
                }
                pub fn clone_drop_tracked(n: u64) {
                    let p = Ptr::new(Link { value: 7, next: Cell::new(None) });
                    for _ in 0..n {
                        drop(black_box(black_box(&p).clone()));
                    }
                }
                pub fn deref(n: u64) -> u64 {
                    let p = Ptr::new(7u64);
                    let mut sum = 0u64;
                    for _ in 0..n {
                        sum = sum.wrapping_add(**black_box(&p));
                    }
                    sum
                }
                pub fn deref_tracked(n: u64) -> u64 {
                    let p = Ptr::new(Link { value: 7, next: Cell::new(None) });
                    let mut sum = 0u64;
                    for _ in 0..n {
                        sum = sum.wrapping_add(black_box(&p).value);
                    }
                    sum
                }

                // ---- workload 2 ----
                pub fn pairs_build(n: usize) -> Vec<Ptr<Link>> {
                    let mut handles = Vec::with_capacity(n);
                    for i in 0..n as u64 {
                        let a = Ptr::new(Link { value: i, next: Cell::new(None) });
                        let b = Ptr::new(Link { value: i, next: Cell::new(Some(a.clone())) });
                        *a.next.borrow_mut() = Some(b);
                        handles.push(a);
                    }
                    handles
                }
                pub fn pairs_drop_collect(handles: Vec<Ptr<Link>>) {
                    drop(handles);
                    collect();
                }

                // ---- workload 3 ----
                pub fn ring_build(n: usize) -> Ptr<DNode> {
                    let node = |value| DNode { value, next: Cell::new(None), prev: Cell::new(None) };
                    let head = Ptr::new(node(0));
                    let mut last = head.clone();
                    for i in 1..n as u64 {
                        let next = Ptr::new(node(i));
                        *next.prev.borrow_mut() = Some(last.clone());
                        *last.next.borrow_mut() = Some(next.clone());
                        last = next;
                    }
                    *last.next.borrow_mut() = Some(head.clone());
                    *head.prev.borrow_mut() = Some(last);
                    head
                }
                pub fn ring_drop_collect(head: Ptr<DNode>) {
                    drop(head);
                    collect();
                }
                pub fn rings_drop_collect(heads: Vec<Ptr<DNode>>) {
                    drop(heads);
                    collect();
                }

                // ---- workload 4 ----
                pub fn tree_build(depth: u32) -> Ptr<Tree> {
                    let sub = |d: u32| if d > 1 { Some(tree_build(d - 1)) } else { None };
                    Ptr::new(Tree { value: depth as u64, left: sub(depth), right: sub(depth) })
                }
                pub fn tree_touch(node: &Ptr<Tree>) {
                    drop(black_box(node.clone()));
                    if let Some(l) = &node.left {
                        tree_touch(l);
                    }
                    if let Some(r) = &node.right {
                        tree_touch(r);
                    }
                }
                pub fn tree_collect(_live: &Ptr<Tree>) {
                    collect();
                }

                // ---- workload 5 ----
                pub fn list_build(n: usize) -> Ptr<SNode> {
                    let mut head = Ptr::new(SNode { value: 0, next: None });
                    for i in 1..n as u64 {
                        head = Ptr::new(SNode { value: i, next: Some(head) });
                    }
                    head
                }
                pub fn list_drop_collect(head: Ptr<SNode>) {
                    drop(head);
                    collect();
                }

                // ---- workload 7: rust-cc-benchmarks ----
                impl BTree {
                    fn new(depth: usize) -> BTree {
                        if depth == 0 {
                            return BTree::End;
                        }
                        BTree::Nested {
                            left: Ptr::new(BTree::new(depth - 1)),
                            right: Ptr::new(BTree::new(depth - 1)),
                        }
                    }
                    fn check(&self) -> usize {
                        match self {
                            BTree::End => 1,
                            BTree::Nested { left, right } => left.check() + right.check() + 1,
                        }
                    }
                }
                pub fn binary_trees(max_size: usize) -> Vec<usize> {
                    let checks = crate::binary_trees_checks(max_size, |depth| {
                        Ptr::new(BTree::new(depth)).check()
                    });
                    collect();
                    checks
                }

                impl PTree {
                    fn new(depth: usize) -> Ptr<PTree> {
                        if depth == 0 {
                            return Ptr::new(PTree::End);
                        }
                        let root = Ptr::new(PTree::Root {
                            left: PTree::new_nested(depth - 1),
                            right: PTree::new_nested(depth - 1),
                        });
                        if let PTree::Root { left, right } = &*root {
                            for child in [left, right] {
                                if let PTree::Nested { parent, .. } = &**child {
                                    *parent.borrow_mut() = Some(root.clone());
                                }
                            }
                        }
                        root
                    }
                    fn new_nested(depth: usize) -> Ptr<PTree> {
                        if depth == 0 {
                            return Ptr::new(PTree::End);
                        }
                        let node = Ptr::new(PTree::Nested {
                            left: PTree::new_nested(depth - 1),
                            right: PTree::new_nested(depth - 1),
                            parent: Cell::new(None),
                        });
                        if let PTree::Nested { left, right, .. } = &*node {
                            for child in [left, right] {
                                if let PTree::Nested { parent, .. } = &**child {
                                    *parent.borrow_mut() = Some(node.clone());
                                }
                            }
                        }
                        node
                    }
                    fn check(&self) -> usize {
                        match self {
                            PTree::Root { left, right } | PTree::Nested { left, right, .. } => {
                                left.check() + right.check() + 1
                            }
                            PTree::End => 1,
                        }
                    }
                }
                pub fn binary_trees_parent(max_size: usize) -> Vec<usize> {
                    let checks = crate::binary_trees_checks(max_size, |depth| PTree::new(depth).check());
                    collect();
                    checks
                }

                pub fn large_linked_list(size: usize) -> Vec<usize> {
                    fn len(mut node: &Ptr<LNode>) -> usize {
                        let mut n = 0;
                        while let LNode::Cons { next, .. } = &**node {
                            n += 1;
                            node = next;
                        }
                        n
                    }
                    let mut res = Vec::new();
                    for _ in 0..30 {
                        let mut head = Ptr::new(LNode::Nil);
                        for _ in 0..size {
                            let cons = Ptr::new(LNode::Cons { next: head.clone(), previous: Cell::new(None) });
                            if let LNode::Cons { previous, .. } = &*head {
                                *previous.borrow_mut() = Some(cons.clone());
                            }
                            head = cons;
                            // rust-cc-benchmarks calls rust-cc's
                            // `mark_alive` here (its default feature
                            // `rust-cc-mark-alive`): the old head, just
                            // dropped to a count of 1, is alive, so it
                            // leaves rust-cc's buffer of possible cycles.
                            // No other library has such a hint: a no-op.
                            mark_next_alive(&head);
                        }
                        res.push(len(&head));
                    }
                    collect();
                    res
                }

                pub fn stress_test(seed: u64) -> Vec<usize> {
                    const NODE_COUNT: usize = 1 << 15;
                    const EDGE_COUNT: usize = 1 << 15;
                    const SHRINK_DIV: usize = 1 << 10;
                    let mut rng = Rng::new(seed);
                    let mut res = Vec::new();
                    {
                        let mut nodes = Vec::new();
                        for i in 0..=NODE_COUNT {
                            nodes.push(Ptr::new(Cell::new(GNode { label: format!("Node {i}"), edges: Vec::new() })));
                        }
                        for _ in 0..=EDGE_COUNT {
                            let a = &nodes[rng.below(nodes.len())];
                            let b = &nodes[rng.below(nodes.len())];
                            a.borrow_mut().edges.push(b.clone());
                        }
                        for i in 0..NODE_COUNT {
                            if i % SHRINK_DIV == 0 {
                                nodes.truncate(NODE_COUNT - i);
                                collect();
                                res.push(nodes.len());
                            }
                        }
                    }
                    collect();
                    res
                }

                // ---- workload 7: dumpster's single-threaded mix ----
                pub fn dumpster_mix(n_ops: usize, seed: u64) -> usize {
                    let pool = dumpster_mix_pool!(n_ops, seed);
                    let left = pool.len();
                    drop(pool);
                    collect();
                    left
                }

                // ---- workload 8 ----
                pub fn append_tracked(n: usize) -> Vec<Ptr<Link>> {
                    let mut v = Vec::with_capacity(n);
                    for i in 0..n as u64 {
                        v.push(Ptr::new(Link { value: i, next: Cell::new(None) }));
                    }
                    v
                }
                pub fn append_teardown(v: Vec<Ptr<Link>>) {
                    drop(v);
                    collect();
                }
            }
        };
    }

    /// Hand-written `Trace` for every node type, in a module whose `Trace`
    /// has the method `trace(&self, &mut Tracer)` (gcmodule's and
    /// bacon_rajan_cc's). `acyclic` goes into the impls of the three
    /// immutable node types (`Tree`, `SNode`, `BTree`), which no cycle can
    /// go through: gcmodule's `is_type_tracked`.
    macro_rules! hand_traces {
        (acyclic { $($acyclic:tt)* }) => {
            impl Trace for Link {
                fn trace(&self, t: &mut Tracer) {
                    self.next.trace(t);
                }
            }
            impl Trace for DNode {
                fn trace(&self, t: &mut Tracer) {
                    self.next.trace(t);
                    self.prev.trace(t);
                }
            }
            impl Trace for Tree {
                fn trace(&self, t: &mut Tracer) {
                    self.left.trace(t);
                    self.right.trace(t);
                }
                $($acyclic)*
            }
            impl Trace for SNode {
                fn trace(&self, t: &mut Tracer) {
                    self.next.trace(t);
                }
                $($acyclic)*
            }
            impl Trace for GNode {
                fn trace(&self, t: &mut Tracer) {
                    self.edges.trace(t);
                }
            }
            impl Trace for Multi {
                fn trace(&self, t: &mut Tracer) {
                    self.refs.trace(t);
                }
            }
            impl Trace for BTree {
                fn trace(&self, t: &mut Tracer) {
                    if let BTree::Nested { left, right } = self {
                        left.trace(t);
                        right.trace(t);
                    }
                }
                $($acyclic)*
            }
            impl Trace for PTree {
                fn trace(&self, t: &mut Tracer) {
                    match self {
                        PTree::Root { left, right } => {
                            left.trace(t);
                            right.trace(t);
                        }
                        PTree::Nested {
                            parent,
                            left,
                            right,
                        } => {
                            parent.trace(t);
                            left.trace(t);
                            right.trace(t);
                        }
                        PTree::End => {}
                    }
                }
            }
            impl Trace for LNode {
                fn trace(&self, t: &mut Tracer) {
                    if let LNode::Cons { next, previous } = self {
                        next.trace(t);
                        previous.trace(t);
                    }
                }
            }
        };
    }

    gc_lib! {
        /// gcptr, the crate under test.
        mod gcptr;
        prelude {
            pub use ::gcptr::Gc as Ptr;
            pub use std::cell::RefCell as Cell;
            pub const NAME: &str = "gcptr";
            pub fn collect() { ::gcptr::collect(); }
            /// No such hint: nothing (not even a deref of the head).
            pub fn mark_next_alive(_: &Ptr<LNode>) {}
            /// Workload 8 with the automatic collector disabled.
            pub fn append_tracked_disabled(n: usize) -> Vec<Ptr<Link>> {
                ::gcptr::disable();
                let v = append_tracked(n);
                ::gcptr::enable();
                v
            }
            /// Workload 4's tree with a slot in each node that could come
            /// to hold a `Gc`, so that gcptr tracks and scans it: the plain
            /// `Tree` is immutable, hence acyclic, and never scanned.
            #[derive(::gcptr::Trace)]
            pub struct TrackedTree {
                pub value: u64,
                pub left: Option<Ptr<TrackedTree>>,
                pub right: Option<Ptr<TrackedTree>>,
                pub slot: Cell<Option<Ptr<TrackedTree>>>,
            }
            pub fn tracked_tree_build(depth: u32) -> Ptr<TrackedTree> {
                let sub = |d: u32| if d > 1 { Some(tracked_tree_build(d - 1)) } else { None };
                Ptr::new(TrackedTree {
                    value: depth as u64,
                    left: sub(depth),
                    right: sub(depth),
                    slot: Cell::new(None),
                })
            }
            pub fn tracked_tree_touch(node: &Ptr<TrackedTree>) {
                drop(::std::hint::black_box(node.clone()));
                if let Some(l) = &node.left {
                    tracked_tree_touch(l);
                }
                if let Some(r) = &node.right {
                    tracked_tree_touch(r);
                }
            }
            pub fn tracked_tree_collect(_live: &Ptr<TrackedTree>) {
                collect();
            }
        }
        derive [#[derive(::gcptr::Trace)]]
        derive_enum [#[derive(::gcptr::Trace)]]
        extra {}
    }

    gc_lib! {
        /// `gc` 0.5 (mark and sweep; `GcCell` for mutation).
        mod gc;
        prelude {
            pub use ::gc::Gc as Ptr;
            pub use ::gc::GcCell as Cell;
            pub const NAME: &str = "gc";
            pub fn collect() { ::gc::force_collect(); }
            /// No such hint: nothing (not even a deref of the head).
            pub fn mark_next_alive(_: &Ptr<LNode>) {}
        }
        derive [#[derive(::gc::Trace, ::gc::Finalize)]]
        derive_enum [#[derive(::gc::Trace, ::gc::Finalize)]]
        extra {}
    }

    gc_lib! {
        /// `dumpster` 2, `unsync` flavour.
        mod dumpster;
        prelude {
            pub use ::dumpster::unsync::Gc as Ptr;
            pub use std::cell::RefCell as Cell;
            pub const NAME: &str = "dumpster";
            pub fn collect() { ::dumpster::unsync::collect(); }
            /// No such hint: nothing (not even a deref of the head).
            pub fn mark_next_alive(_: &Ptr<LNode>) {}
        }
        // dumpster's derive puts the fields' spans on `self` and `visitor`,
        // which breaks under `macro_rules!` hygiene: hand-written impls.
        derive []
        derive_enum []
        extra {
            use ::dumpster::{TraceWith, Visitor};
            unsafe impl<V: Visitor> TraceWith<V> for Link {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> { self.next.accept(visitor) }
            }
            unsafe impl<V: Visitor> TraceWith<V> for DNode {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> {
                    self.next.accept(visitor)?;
                    self.prev.accept(visitor)
                }
            }
            unsafe impl<V: Visitor> TraceWith<V> for Tree {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> {
                    self.left.accept(visitor)?;
                    self.right.accept(visitor)
                }
            }
            unsafe impl<V: Visitor> TraceWith<V> for SNode {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> { self.next.accept(visitor) }
            }
            unsafe impl<V: Visitor> TraceWith<V> for BTree {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> {
                    match self {
                        BTree::Nested { left, right } => {
                            left.accept(visitor)?;
                            right.accept(visitor)
                        }
                        BTree::End => Ok(()),
                    }
                }
            }
            unsafe impl<V: Visitor> TraceWith<V> for PTree {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> {
                    match self {
                        PTree::Root { left, right } => {
                            left.accept(visitor)?;
                            right.accept(visitor)
                        }
                        PTree::Nested { parent, left, right } => {
                            parent.accept(visitor)?;
                            left.accept(visitor)?;
                            right.accept(visitor)
                        }
                        PTree::End => Ok(()),
                    }
                }
            }
            unsafe impl<V: Visitor> TraceWith<V> for LNode {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> {
                    match self {
                        LNode::Cons { next, previous } => {
                            next.accept(visitor)?;
                            previous.accept(visitor)
                        }
                        LNode::Nil => Ok(()),
                    }
                }
            }
            unsafe impl<V: Visitor> TraceWith<V> for GNode {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> { self.edges.accept(visitor) }
            }
            unsafe impl<V: Visitor> TraceWith<V> for Multi {
                fn accept(&self, visitor: &mut V) -> Result<(), ()> { self.refs.accept(visitor) }
            }
        }
    }

    gc_lib! {
        /// `rust-cc` 0.6 with its default features (automatic collection).
        mod rust_cc;
        prelude {
            pub use ::rust_cc::Cc as Ptr;
            pub use std::cell::RefCell as Cell;
            pub const NAME: &str = "rust-cc";
            pub fn collect() { ::rust_cc::collect_cycles(); }
            /// `Cc::mark_alive` on the node after `head`: takes it out of
            /// the buffer of possible cycles, as rust-cc-benchmarks' large
            /// linked list does.
            pub fn mark_next_alive(head: &Ptr<LNode>) {
                if let LNode::Cons { next, .. } = &**head {
                    next.mark_alive();
                }
            }
        }
        derive [#[derive(::rust_cc::Trace, ::rust_cc::Finalize)]]
        derive_enum [#[derive(::rust_cc::Trace, ::rust_cc::Finalize)]]
        extra {}
    }

    gc_lib! {
        /// `gcmodule` 0.3, with hand-written `Trace` impls. Its derive
        /// answers `is_type_tracked` from the fields' types, which for a
        /// recursive type asks itself again, forever: a stack overflow at
        /// the first `Cc::new` of any of these nodes, on any stack (its
        /// maintainer calls recursive types a known issue, gcmodule pull
        /// request 14). Its docs ask for a manual `Trace` there, with
        /// `is_type_tracked` true; the immutable nodes, which no cycle can
        /// go through, answer false, as its derive does for an acyclic type
        /// (gcptr finds the same nodes acyclic at `Gc::new`).
        mod gcmodule;
        prelude {
            pub use ::gcmodule::Cc as Ptr;
            pub use std::cell::RefCell as Cell;
            pub const NAME: &str = "gcmodule";
            pub fn collect() { ::gcmodule::collect_thread_cycles(); }
            /// No such hint: nothing (not even a deref of the head).
            pub fn mark_next_alive(_: &Ptr<LNode>) {}
        }
        derive []
        derive_enum []
        extra {
            use ::gcmodule::{Trace, Tracer};
            hand_traces!(acyclic {
                fn is_type_tracked() -> bool { false }
            });
        }
    }

    gc_lib! {
        /// `bacon_rajan_cc` 0.4 (no derive: hand-written `Trace`).
        mod bacon_rajan_cc;
        prelude {
            pub use ::bacon_rajan_cc::Cc as Ptr;
            pub use std::cell::RefCell as Cell;
            pub const NAME: &str = "bacon_rajan_cc";
            pub fn collect() { ::bacon_rajan_cc::collect_cycles(); }
            /// No such hint: nothing (not even a deref of the head).
            pub fn mark_next_alive(_: &Ptr<LNode>) {}
        }
        derive []
        derive_enum []
        extra {
            use ::bacon_rajan_cc::{Trace, Tracer};
            hand_traces!(acyclic {});
        }
    }

    pub mod rc;
}
