//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};

use gcptr::{Gc, Trace, Tracer};

thread_local! {
    static DROPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Calls of `trace_countdown` left before the one that panics (0: none).
    static TRACE_PANIC_IN: Cell<u32> = const { Cell::new(0) };
}

/// Makes the `n`-th call of [`trace_countdown`] from now panic (0: none).
pub fn panic_in_nth_trace(n: u32) {
    TRACE_PANIC_IN.with(|c| c.set(n));
}

/// Called first by the traces of fault-injecting test types: panics if
/// this is the call [`panic_in_nth_trace`] named.
pub fn trace_countdown() {
    let n = TRACE_PANIC_IN.with(Cell::get);
    if n > 0 {
        TRACE_PANIC_IN.with(|c| c.set(n - 1));
        if n == 1 {
            panic!("trace failed");
        }
    }
}

/// Records its id when dropped, so tests can say which objects died, and
/// how many times.
pub struct DropLog(pub u32);

impl Drop for DropLog {
    fn drop(&mut self) {
        // At thread exit the log may be gone before the objects are.
        let _ = DROPS.try_with(|d| d.borrow_mut().push(self.0));
    }
}

// SAFETY: owns no Gc.
unsafe impl Trace for DropLog {
    fn trace(&self, _: &mut Tracer) {}
    fn __may_own_gc(_depth: u32) -> bool {
        false
    }
}

/// The message of a panic raised with a string (`panic!`), or "" for any
/// other payload.
pub fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        String::new()
    }
}

/// The ids dropped since the last call, sorted.
pub fn take_drops() -> Vec<u32> {
    let mut drops = DROPS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    drops.sort_unstable();
    drops
}

/// A graph node: an id that logs its drop, and edges.
pub struct Node {
    pub log: DropLog,
    pub edges: RefCell<Vec<Gc<Node>>>,
}

// SAFETY: visits exactly the Gcs in `edges`.
unsafe impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer) {
        self.edges.trace(tracer);
    }
}

impl Node {
    pub fn new(id: u32) -> Gc<Node> {
        Gc::new(Node {
            log: DropLog(id),
            edges: RefCell::new(Vec::new()),
        })
    }

    pub fn id(&self) -> u32 {
        self.log.0
    }

    pub fn link(&self, to: &Gc<Node>) {
        self.edges.borrow_mut().push(to.clone());
    }
}

/// Sends its id when dropped, from any thread-exit order: for tests of
/// what a thread leaves behind.
pub struct Reporter(
    pub u32,
    pub std::sync::mpsc::Sender<u32>,
    pub RefCell<Option<Gc<Reporter>>>,
);

// SAFETY: visits the one Gc it owns.
unsafe impl Trace for Reporter {
    fn trace(&self, tracer: &mut Tracer) {
        self.2.trace(tracer);
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

/// A counter of events, per thread.
pub struct Counter(Cell<usize>);

impl Counter {
    pub const fn new() -> Self {
        Counter(Cell::new(0))
    }
    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }
    pub fn get(&self) -> usize {
        self.0.get()
    }
}

/// Sizes that Miri can afford.
pub fn scaled(n: usize) -> usize {
    if cfg!(miri) {
        (n / 1000).max(10)
    } else {
        n
    }
}

/// Declares the thread-locals of [`touch_exit_guard_fillers`].
macro_rules! exit_guard_fillers {
    ($($key:ident)*) => {
        thread_local! {
            $(static $key: RefCell<Option<Gc<Node>>> = const { RefCell::new(None) };)*
        }
        const EXIT_GUARD_FILLERS: &[&std::thread::LocalKey<RefCell<Option<Gc<Node>>>>] =
            &[$(&$key),*];
    };
}

exit_guard_fillers!(F0 F1 F2 F3 F4 F5 F6 F7 F8 F9 F10 F11 F12 F13 F14 F15);

/// For a test of what a thread-local destructor finds once the thread's
/// collector is gone for good. Touches sixteen thread-locals (call it
/// before the thread's first `Gc`, after the thread-local whose destructor
/// is under test): they are destroyed after the collector's first exit
/// guard and before that one. [`fill_exit_guard_fillers`] then gives each a
/// node of one chain, so that each destructor but the last uses the
/// collector's state and one of its exit guards, all that are left: the
/// destructor under test runs with the collector gone.
pub fn touch_exit_guard_fillers() {
    for key in EXIT_GUARD_FILLERS {
        key.with(|held| assert!(held.borrow().is_none()));
    }
}

/// See [`touch_exit_guard_fillers`]. The nodes' ids are `first..first + 16`.
pub fn fill_exit_guard_fillers(first: u32) {
    let nodes: Vec<_> = (first..)
        .take(EXIT_GUARD_FILLERS.len())
        .map(Node::new)
        .collect();
    for pair in nodes.windows(2) {
        pair[0].link(&pair[1]);
    }
    for (key, node) in EXIT_GUARD_FILLERS.iter().zip(nodes) {
        key.with(|held| *held.borrow_mut() = Some(node));
    }
}

/// Drops `value` on a thread of its own (`gcptr::sync` tests).
pub fn drop_elsewhere<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value)).join().unwrap();
}

/// The ids that values reported dropped so far, sorted, each checked to
/// have been dropped on `home` (`gcptr::sync` tests: a value is dropped
/// on its home thread only).
pub fn dropped_on(
    drops: &std::sync::mpsc::Receiver<(u32, std::thread::ThreadId)>,
    home: std::thread::ThreadId,
) -> Vec<u32> {
    let mut ids: Vec<u32> = drops
        .try_iter()
        .map(|(id, on)| {
            assert_eq!(on, home, "value {id} was dropped off its home thread");
            id
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Whether a leak checker watches this process (LeakSanitizer or valgrind,
/// `scripts/sanitizers.sh`): a test that leaks on purpose skips itself
/// then. (Miri's leak check is skipped with `#[cfg_attr(miri, ignore)]`.)
pub fn leak_checker_watches() -> bool {
    let valgrind = std::env::var("LD_PRELOAD").is_ok_and(|preload| preload.contains("vgpreload"));
    valgrind || std::env::var_os("LSAN_OPTIONS").is_some()
}

/// For a test whose failure aborts the process (a stack overflow, a panic
/// during unwinding): whether this process runs the test's body. It does in
/// a child process of this test binary, and under Miri, which cannot spawn
/// one. The test's own process runs the test named `name` in a child,
/// asserts that the child passed, and is done (`false`).
pub fn runs_here(name: &str) -> bool {
    const CHILD: &str = "GCPTR_TEST_CHILD";
    if cfg!(miri) || std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    // The messages, without the backtraces' indented frames.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let messages: Vec<_> = stderr.lines().filter(|l| !l.starts_with("  ")).collect();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child did not pass: {:?}\n{}",
        out.status,
        messages.join("\n")
    );
    false
}

/// The stack that tests of deep structures run on: 256 KiB.
pub const SMALL_STACK: usize = 256 * 1024;

/// Runs `f` on a new thread with a [`SMALL_STACK`], and returns its result.
pub fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// `T`'s answer to whether it may own a `Gc` (untracked if not).
pub fn may_own<T: Trace>() -> bool {
    T::__may_own_gc(0)
}

/// `T`'s answer to whether its edges are fixed once shared (acyclic if it
/// owns only untracked or acyclic objects).
pub fn fixed<T: Trace>() -> bool {
    T::__edges_fixed(0)
}

/// `T`'s answer to whether its drop only releases the `Gc`s it owns
/// (garbage of such types is freed without its drops).
pub fn releases<T: Trace>() -> bool {
    T::__drop_only_releases_gcs()
}
