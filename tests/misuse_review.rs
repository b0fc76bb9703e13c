//! What a review of misuse checked: each way a program can misuse gcptr
//! that its own code can reach gets a panic (or a compile error) whose
//! message names the cause and the fix, and leaves the collector working.
//! Every test runs on a thread of its own, so each starts with a fresh
//! collector.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
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

/// `Gc::make_mut` of a shared object from a trace: it clones the value
/// into a new object (an allocation, which a trace may make), then panics
/// as for a unique one, with `this` holding the clone. Both objects live
/// on, each once, and the collector goes on working.
#[test]
fn make_mut_of_a_shared_object_from_a_trace_panics_holding_the_clone() {
    on_fresh_thread(|| {
        let shared = Gc::new(Target {
            edges: RefCell::new(vec![Gc::new(7)]),
            _witness: Witness,
        });
        SLOT.with(|slot| *slot.borrow_mut() = Some(shared.clone()));
        meddler_pair(0);
        MEDDLE.with(|m| m.set(Meddle::MakeMut));
        let payload = catch_unwind(gcptr::collect).expect_err("the misuse panics");
        assert_names(&panic_message(&payload), "Gc::make_mut");
        let clone = SLOT
            .with(|slot| slot.borrow_mut().take())
            .expect("the clone");
        assert!(!Gc::ptr_eq(&clone, &shared));
        assert_eq!(
            (Gc::strong_count(&clone), Gc::strong_count(&shared)),
            (1, 1)
        );
        assert!(gcptr::is_tracked(&clone));
        assert_eq!(TARGET_DROPS.with(Cell::get), 0);
        assert_eq!(gcptr::collect(), 2);
        assert_eq!(take_drops(), [0, 1]);
        // Each value is dropped once, with its last handle.
        clone.edges.borrow_mut().clear();
        drop(shared);
        assert_eq!(TARGET_DROPS.with(Cell::take), 1);
        drop(clone);
        assert_eq!(TARGET_DROPS.with(Cell::take), 1);
        assert_eq!(gcptr::collect(), 0);
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
/// process: the panic hook that reads the location is the process's (not
/// under Miri, which runs it among the others: their panics would show).
#[test]
#[cfg_attr(miri, ignore)]
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

thread_local! {
    /// Whether a [`Fickle`]'s trace panics (each time, until cleared).
    static TRACE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// A node whose trace panics while `TRACE_PANICS` is set.
struct Fickle {
    _log: DropLog,
    next: RefCell<Option<Gc<Fickle>>>,
}

// SAFETY: visits its one `Gc`, or panics before visiting anything.
unsafe impl Trace for Fickle {
    fn trace(&self, tracer: &mut Tracer) {
        if TRACE_PANICS.with(Cell::get) {
            panic!("fickle trace");
        }
        self.next.trace(tracer);
    }
}

fn fickle(id: u32, next: Option<Gc<Fickle>>) -> Gc<Fickle> {
    Gc::new(Fickle {
        _log: DropLog(id),
        next: RefCell::new(next),
    })
}

/// A trace that panics inside `referrers` or `referents`: the panic comes
/// out of the call with its own payload, and leaves no trace behind. The
/// handles `referrers` held are given back (weak counts as before, so
/// `get_mut` works), nothing died, and the collector still reclaims a
/// cycle and counts as before.
#[test]
fn a_trace_that_panics_in_referrers_or_referents_leaves_nothing_behind() {
    on_fresh_thread(|| {
        let mut leaf = fickle(0, None);
        let holder = fickle(1, Some(leaf.clone()));
        let ring = fickle(2, None);
        *ring.next.borrow_mut() = Some(fickle(3, Some(ring.clone())));
        let weak_ring = Gc::downgrade(&ring);
        let counts = |node: &Gc<Fickle>| (Gc::strong_count(node), Gc::weak_count(node));
        let before = [counts(&leaf), counts(&holder), counts(&ring)];
        let count = gcptr::count();
        let stats = gcptr::stats();
        TRACE_PANICS.with(|p| p.set(true));
        let payload = catch_unwind(AssertUnwindSafe(|| gcptr::referrers(&leaf)))
            .expect_err("the trace panicked");
        assert_eq!(panic_message(&payload), "fickle trace");
        let payload =
            catch_unwind(AssertUnwindSafe(|| gcptr::referents(&*holder))).expect_err("it panicked");
        assert_eq!(panic_message(&payload), "fickle trace");
        TRACE_PANICS.with(|p| p.set(false));
        assert!(take_drops().is_empty());
        assert_eq!((gcptr::count(), gcptr::stats()), (count, stats));
        assert_eq!([counts(&leaf), counts(&holder), counts(&ring)], before);
        assert_eq!(gcptr::referrers(&leaf).len(), 1);
        drop(holder);
        assert!(
            Gc::get_mut(&mut leaf).is_some(),
            "no handle of referrers left"
        );
        drop(ring);
        assert_eq!(gcptr::collect(), 2);
        assert!(weak_ring.upgrade().is_none());
        assert_eq!(take_drops(), [1, 2, 3]);
    });
}

/// A `WeakValueMap` key whose `Hash` and `Eq` read a `Cell`.
struct ShiftyKey(Cell<u32>);

impl std::hash::Hash for ShiftyKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.get().hash(state);
    }
}

impl PartialEq for ShiftyKey {
    fn eq(&self, other: &ShiftyKey) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for ShiftyKey {}

/// Keys whose `Hash` changes while in a `WeakValueMap` (a logic error, as
/// in a `HashMap`) make lookups miss, as `HashMap`'s do, but nothing else:
/// no panic, `len()` stays exact as the values die, and the dead entries
/// leave the table (by the hash each entry kept), also through growth and
/// a `retain`, and with every key made equal to every other.
#[test]
fn weak_value_map_keys_whose_hash_changes_only_miss_lookups() {
    on_fresh_thread(|| {
        let n = support::scaled(100) as u32;
        let mut map = gcptr::WeakValueMap::new();
        let mut values: Vec<Gc<u32>> = (0..n).map(Gc::new).collect();
        for (i, value) in (0..n).zip(&values) {
            map.insert(ShiftyKey(Cell::new(i)), value);
        }
        for (key, _) in map.iter() {
            key.0.set(key.0.get() + 1000);
        }
        assert!(
            map.get(&ShiftyKey(Cell::new(0))).is_none(),
            "a miss, as HashMap's"
        );
        assert_eq!(map.len(), n as usize);
        values.truncate(10);
        assert_eq!(map.len(), 10);
        for i in 0..2 * n {
            map.insert(ShiftyKey(Cell::new(5000 + i)), &Gc::new(i)); // dies at once
        }
        assert_eq!(map.len(), 10);
        for (key, _) in map.iter() {
            key.0.set(7); // every key equal to every other
        }
        let extra = Gc::new(99);
        assert!(
            map.insert(ShiftyKey(Cell::new(7)), &extra).is_some(),
            "replaced one"
        );
        assert_eq!(map.len(), 10);
        drop(values);
        assert_eq!(map.len(), 1);
        map.retain(|_, _| true);
        assert_eq!(map.iter().count(), 1);
        drop(extra);
        assert_eq!(map.len(), 0);
        map.insert(ShiftyKey(Cell::new(1)), &Gc::new(0));
        assert_eq!((map.len(), map.iter().count()), (0, 0));
    });
}
