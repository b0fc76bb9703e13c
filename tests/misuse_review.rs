//! What a review of misuse checked: each way a program can misuse gcptr
//! that its own code can reach gets a panic (or a compile error) whose
//! message names the cause and the fix, and leaves the collector working.
//! Every test runs on a thread of its own, so each starts with a fresh
//! collector.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::catch_unwind;
use std::thread;

use gcptr::{Gc, Trace, Tracer};
use support::{panic_message, take_drops, DropLog};

fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    thread::spawn(f).join().unwrap();
}

/// What a [`Meddler`]'s trace does, once, during an analysis.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Meddle {
    None,
    GetMut,
    MakeMut,
    TryUnwrap,
    IntoInner,
}

thread_local! {
    static MEDDLE: Cell<Meddle> = const { Cell::new(Meddle::None) };
    static TARGET_DROPS: Cell<u32> = const { Cell::new(0) };
    /// A tracked object that the meddling trace reaches through a
    /// thread-local, as a trace may (no `RefCell` of the traced value).
    static SLOT: RefCell<Option<Gc<Target>>> = const { RefCell::new(None) };
}

/// What `SLOT` holds: tracked (a `RefCell` around `Gc`s), and counts its
/// drops in `TARGET_DROPS`.
#[derive(Trace, Clone)]
struct Target {
    edges: RefCell<Vec<Gc<u8>>>,
    #[gc(skip)]
    _witness: Witness,
}

#[derive(Clone)]
struct Witness;

impl Drop for Witness {
    fn drop(&mut self) {
        TARGET_DROPS.with(|d| d.set(d.get() + 1));
    }
}

struct Meddler {
    _log: DropLog,
    next: RefCell<Option<Gc<Meddler>>>,
}

// SAFETY: visits its one `Gc`; the code it runs first borrows no `RefCell`
// of a traced value (only `SLOT`, which no traced value owns).
unsafe impl Trace for Meddler {
    fn trace(&self, tracer: &mut Tracer) {
        {
            let meddle = MEDDLE.with(|m| m.replace(Meddle::None));
            SLOT.with(|slot| {
                let mut slot = slot.borrow_mut();
                match meddle {
                    Meddle::None => {}
                    Meddle::GetMut => {
                        let _ = Gc::get_mut(slot.as_mut().unwrap());
                    }
                    Meddle::MakeMut => {
                        let _ = Gc::make_mut(slot.as_mut().unwrap());
                    }
                    Meddle::TryUnwrap => {
                        let _ = Gc::try_unwrap(slot.take().unwrap());
                    }
                    Meddle::IntoInner => {
                        let _ = Gc::into_inner(slot.take().unwrap());
                    }
                }
            });
        }
        self.next.trace(tracer);
    }
}

fn meddler_pair(first: u32) {
    let a = Gc::new(Meddler {
        _log: DropLog(first),
        next: RefCell::new(None),
    });
    let b = Gc::new(Meddler {
        _log: DropLog(first + 1),
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b);
}

/// Runs a collection of a garbage pair whose trace misuses `meddle` on a
/// tracked object held by `SLOT`, and returns the panic's message, after
/// checking that the collector still works: the next collection frees the
/// pair, each once. The object in `SLOT` is untouched, unless the misuse
/// took it out (then the unwinding dropped it, as any handle a trace lets
/// go of).
fn meddle_in_collection(meddle: Meddle) -> String {
    let target = Gc::new(Target {
        edges: RefCell::new(vec![Gc::new(7)]),
        _witness: Witness,
    });
    SLOT.with(|slot| *slot.borrow_mut() = Some(target));
    meddler_pair(0);
    MEDDLE.with(|m| m.set(meddle));
    let payload = catch_unwind(gcptr::collect).expect_err("the misuse panics");
    assert_eq!(MEDDLE.with(Cell::get), Meddle::None, "the trace ran");
    let taken = matches!(meddle, Meddle::TryUnwrap | Meddle::IntoInner);
    assert_eq!(TARGET_DROPS.with(Cell::take), u32::from(taken));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [0, 1]);
    assert_eq!(gcptr::collect(), 0);
    let target = SLOT.with(|slot| slot.borrow_mut().take());
    if taken {
        assert!(target.is_none());
    } else {
        let target = target.expect("left in its slot");
        assert!(gcptr::is_tracked(&target));
        assert_eq!(Gc::strong_count(&target), 1);
        assert_eq!(*target.edges.borrow()[0], 7);
        drop(target);
        assert_eq!(TARGET_DROPS.with(Cell::take), 1);
    }
    panic_message(&payload)
}

/// The message of a misuse from a trace names the function the program
/// called, and what to do instead.
fn assert_names(message: &str, caller: &str) {
    assert!(
        message.contains(&format!("`{caller}` called from a `Trace` impl")),
        "{message}"
    );
    assert!(
        message.contains(&format!("call `{caller}` outside `trace`")),
        "{message}"
    );
}

/// `Gc::get_mut` from a trace during a collection panics with a message
/// that names `get_mut` and the fix; the collector goes on working.
#[test]
fn get_mut_from_a_trace_names_get_mut_and_the_fix() {
    on_fresh_thread(|| {
        let message = meddle_in_collection(Meddle::GetMut);
        assert_names(&message, "Gc::get_mut");
        assert!(message.contains("lend a `&mut`"), "{message}");
    });
}

/// `Gc::make_mut` of a unique object from a trace names `make_mut`, not
/// the `get_mut` it calls inside (the old message did).
#[test]
fn make_mut_from_a_trace_names_make_mut() {
    on_fresh_thread(|| {
        let message = meddle_in_collection(Meddle::MakeMut);
        assert_names(&message, "Gc::make_mut");
    });
}

/// `Gc::try_unwrap` and `Gc::into_inner` from a trace each name the
/// function called.
#[test]
fn try_unwrap_and_into_inner_from_a_trace_name_themselves() {
    on_fresh_thread(|| {
        let message = meddle_in_collection(Meddle::TryUnwrap);
        assert_names(&message, "Gc::try_unwrap");
        assert!(message.contains("move a value out"), "{message}");
        let message = meddle_in_collection(Meddle::IntoInner);
        assert_names(&message, "Gc::into_inner");
    });
}

/// The panic of a misuse from a trace, and of `collect_generation` with a
/// generation that does not exist, points at the program's line (the
/// trace's call, the test's), not at gcptr's own source. Runs in a child
/// process: the panic hook that reads the location is the process's.
#[test]
fn misuse_panics_point_at_the_programs_line() {
    if !support::runs_here("misuse_panics_point_at_the_programs_line") {
        return;
    }
    static LOCATIONS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let old_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload_as_str().unwrap_or_default();
        if message.contains("from a `Trace` impl") || message.contains("does not exist") {
            let location = info.location().map(|l| l.file().to_string());
            LOCATIONS.lock().unwrap().push(location.unwrap_or_default());
        }
    }));
    for meddle in [
        Meddle::GetMut,
        Meddle::MakeMut,
        Meddle::TryUnwrap,
        Meddle::IntoInner,
    ] {
        on_fresh_thread(move || {
            meddle_in_collection(meddle);
        });
    }
    on_fresh_thread(|| {
        let payload = catch_unwind(|| gcptr::collect_generation(3)).unwrap_err();
        assert!(panic_message(&payload).contains("use 0, 1 or 2"));
    });
    std::panic::set_hook(old_hook);
    let locations = LOCATIONS.lock().unwrap().clone();
    assert_eq!(locations.len(), 5, "{locations:?}");
    assert!(
        locations
            .iter()
            .all(|file| file.ends_with("misuse_review.rs")),
        "{locations:?}"
    );
}
