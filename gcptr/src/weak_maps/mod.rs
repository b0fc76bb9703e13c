//! Weak containers ([`WeakValueMap`], [`WeakKeyMap`], [`WeakSet`]) and
//! death callbacks ([`Gc::on_death`], [`Gc::downgrade_with`]), with the
//! death notifications they share.
//!
//! An object that something watches carries the `WATCHED` flag, and its
//! watchers sit in a per-thread table keyed by its address. The moment the
//! object can no longer be upgraded (its count reached zero and its
//! finalizer did not resurrect it, or a collection condemned it, or its
//! value was moved out), the table entry is taken and every watcher is
//! told, at O(1) cost per watcher. Objects nobody watches pay one flag test.
//!
//! A container entry's watcher only flips the entry's `alive` bit and
//! decrements the container's live count, so `len()` is exact at once and
//! a death never mutates a container that is being iterated or borrowed.
//! The dead entries themselves are swept out by the container's next
//! mutating call once they outnumber the live ones, which keeps the sweep
//! amortized O(1) per death.

mod callback;
mod key_map;
mod set;
mod value_map;

use core::cell::Cell;
use core::ptr::NonNull;
use std::rc::Rc;

pub(crate) use callback::CallbackState;
pub use callback::{DeathCallback, WeakWithCallback};
pub use key_map::WeakKeyMap;
pub use set::WeakSet;
pub use value_map::WeakValueMap;

use crate::collector::state;
use crate::gc::Gc;
use crate::header::{flags, Header};
use crate::weak::Weak;

/// Someone to tell when an object dies.
pub(crate) trait Watcher {
    fn object_died(&self);
    /// Whether telling still matters; disarmed watchers are pruned.
    fn is_armed(&self) -> bool;
}

/// Registers `watcher` for the death of the object at `header`. Returns
/// `false` (and registers nothing) once the thread's collector is gone.
pub(crate) fn watch_death(header: NonNull<Header>, watcher: Rc<dyn Watcher>) -> bool {
    let Some(st) = state::current() else {
        return false;
    };
    let mut table = st.watchers.borrow_mut();
    let watchers = table.entry(header.as_ptr().addr()).or_default();
    // Entries removed from their containers leave disarmed watchers behind;
    // prune them here so an object that is inserted and removed again and
    // again does not grow its list.
    watchers.retain(|w| w.is_armed());
    watchers.push(watcher);
    // SAFETY: the caller holds a reference to the object.
    unsafe { header.as_ref() }.set(flags::WATCHED);
    true
}

/// Tells the watchers of a dying object, if any. Returns the first panic
/// of a watcher (a death callback), after telling all of them.
#[inline]
pub(crate) fn notify_death(header: NonNull<Header>) -> Option<Box<dyn std::any::Any + Send>> {
    // SAFETY: the caller keeps the object allocated.
    if unsafe { header.as_ref() }.has(flags::WATCHED) {
        notify_watchers(header)
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn notify_watchers(header: NonNull<Header>) -> Option<Box<dyn std::any::Any + Send>> {
    // SAFETY: the caller keeps the object allocated.
    unsafe { header.as_ref() }.clear(flags::WATCHED);
    let st = state::current()?;
    let watchers = st.watchers.borrow_mut().remove(&header.as_ptr().addr())?;
    let mut first_panic = None;
    for watcher in watchers {
        let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| watcher.object_died()));
        if let Err(payload) = told {
            first_panic.get_or_insert(payload);
        }
    }
    first_panic
}

/// A container entry's weak reference, and its link to the object's death.
pub(crate) struct WeakSlot<T: ?Sized> {
    weak: Weak<T>,
    watch: Rc<EntryWatch>,
}

impl<T: ?Sized> WeakSlot<T> {
    /// A live entry for `gc`, counted in `live`.
    pub(crate) fn new(gc: &Gc<T>, live: &Rc<Cell<usize>>) -> WeakSlot<T> {
        let watch = Rc::new(EntryWatch {
            alive: Cell::new(true),
            live: live.clone(),
        });
        live.set(live.get() + 1);
        // With no collector left (thread exit) nothing will tell the entry
        // of the death; `is_live` then still answers from the weak count.
        watch_death(gc.header(), watch.clone());
        WeakSlot {
            weak: Gc::downgrade(gc),
            watch,
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.watch.alive.get() && self.weak.strong_count() > 0
    }

    pub(crate) fn upgrade(&self) -> Option<Gc<T>> {
        if self.watch.alive.get() {
            self.weak.upgrade()
        } else {
            None
        }
    }

    /// The entry leaves its container (removed, replaced, or the container
    /// dropped): it no longer counts, whatever becomes of the object.
    pub(crate) fn disarm(&self) {
        self.watch.object_died();
    }
}

/// The watcher of one container entry.
struct EntryWatch {
    alive: Cell<bool>,
    live: Rc<Cell<usize>>,
}

impl Watcher for EntryWatch {
    fn object_died(&self) {
        if self.alive.replace(false) {
            self.live.set(self.live.get() - 1);
        }
    }

    fn is_armed(&self) -> bool {
        self.alive.get()
    }
}

/// Whether a container holding `entries` entries, of which `live` are
/// alive, should sweep out its dead ones now.
pub(crate) fn should_sweep(entries: usize, live: usize) -> bool {
    entries.saturating_sub(live) > live.max(8)
}
