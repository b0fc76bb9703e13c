//! Death callbacks: [`Gc::on_death`] (Python's `weakref.finalize`) and
//! [`Gc::downgrade_with`] (`weakref.ref(obj, callback)`).

use core::cell::{Cell, RefCell};
use core::ptr::{self, NonNull};
use std::rc::Rc;

use super::WatchNode;
use crate::collector::state;
use crate::gc::Gc;
use crate::header::Header;
use crate::trace::{Trace, Tracer};
use crate::weak::Weak;

/// A callback registered with [`Gc::on_death`]: Python's
/// `weakref.finalize`.
///
/// Dropping the handle does not cancel the callback (as with Python's
/// `weakref.finalize`, the registry keeps it); call
/// [`cancel`](DeathCallback::cancel) for that.
///
/// One difference from Python's: the callback runs when its object dies
/// or when [`run_now`](DeathCallback::run_now) runs it (Python's `f()`),
/// never at exit for an object still alive (Python calls the pending ones
/// of `atexit` finalizers at shutdown), so one registered on an object
/// that is leaked never runs unless `run_now` runs it.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use gcptr::Gc;
///
/// let runs = Rc::new(Cell::new(0));
/// let object = Gc::new(String::from("watched"));
/// let seen = runs.clone();
/// let callback = Gc::on_death(&object, move || seen.set(seen.get() + 1));
/// assert!(callback.is_pending());
/// drop(callback); // the registry keeps it
/// drop(object);
/// assert_eq!(runs.get(), 1);
/// ```
pub struct DeathCallback {
    state: Rc<CallbackState>,
}

/// A registered callback, and its node in the object's watchers. While
/// linked, the object's list owns one reference to it.
#[repr(C)]
pub(crate) struct CallbackState {
    node: WatchNode,
    /// The watched object while the node is linked; null after.
    object: Cell<*const Header>,
    callback: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl CallbackState {
    /// Registers `callback` for the death of `object`; with no collector
    /// left (thread exit), or an object that no longer upgrades, drops it
    /// instead.
    fn watch(object: &Gc<impl ?Sized>, callback: Box<dyn FnOnce()>) -> Rc<CallbackState> {
        let state = Rc::new(CallbackState {
            node: WatchNode::new(0),
            object: Cell::new(ptr::null()),
            callback: RefCell::new(None),
        });
        // An object that no longer upgrades (condemned by a collection, or
        // dead, and reached from a finalizer or a `Drop`) will never tell
        // its watchers: the callback cannot run, so it is dropped.
        if state::current().is_some() && object.header_ref().is_upgradable() {
            *state.callback.borrow_mut() = Some(callback);
            state.object.set(object.header().as_ptr());
            let owned_by_list = Rc::into_raw(state.clone());
            // SAFETY: `object` is alive; the list's reference keeps the
            // node at its address until it is unlinked. The pointer has the
            // provenance of the whole `Rc` allocation, for `died`.
            unsafe {
                WatchNode::link(
                    NonNull::new_unchecked(owned_by_list.cast_mut()).cast(),
                    object.header(),
                )
            };
        }
        state
    }

    /// Takes the node out of the object's watchers, with the list's
    /// reference.
    fn unwatch(this: &Rc<CallbackState>) {
        let object = this.object.replace(ptr::null());
        if object.is_null() {
            return;
        }
        // SAFETY: linked (`object` was set), so the object is allocated.
        unsafe { WatchNode::unlink(NonNull::from(&this.node), &*object) };
        // The list owned one reference, from `Rc::into_raw` in `watch` (the
        // same pointer `Rc::as_ptr` gives); `this` is another one.
        // SAFETY: so this releases the list's and cannot free the state.
        unsafe { Rc::decrement_strong_count(Rc::as_ptr(this)) };
    }

    /// Cancels the callback: its handle dies with the garbage.
    pub(crate) fn cancel(&self) {
        drop(self.take_callback());
    }

    /// Takes the callback out, if it is still armed. Its drop, which runs
    /// the captures' `Drop`s, is the caller's, after the borrow has ended:
    /// they may ask whether it is pending.
    fn take_callback(&self) -> Option<Box<dyn FnOnce()>> {
        self.callback.borrow_mut().take()
    }

    fn is_armed(&self) -> bool {
        self.callback.borrow().is_some()
    }
}

/// Runs the callback of a `CallbackState` whose object died.
///
/// # Safety
/// `node` is the node of a `CallbackState` (its first field), linked by
/// `watch` with the pointer `Rc::into_raw` gave, and unlinked now; the
/// list's reference passes to this call.
pub(super) unsafe fn died(node: NonNull<WatchNode>) {
    // SAFETY: per the contract (`#[repr(C)]`, node first).
    let state = unsafe { Rc::from_raw(node.as_ptr().cast::<CallbackState>()) };
    state.object.set(ptr::null());
    let callback = state.take_callback();
    drop(state);
    if let Some(callback) = callback {
        callback();
    }
}

impl DeathCallback {
    /// Cancels the callback if it has not run yet (Python's
    /// `finalize.detach()`). Returns whether it was still pending.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let x = Gc::new(1);
    /// let callback = Gc::on_death(&x, || panic!("never runs"));
    /// assert!(callback.cancel());
    /// drop(x);
    /// ```
    pub fn cancel(&self) -> bool {
        CallbackState::unwatch(&self.state);
        self.state.take_callback().is_some()
    }

    /// Runs the callback now, if it is still pending, and unregisters it,
    /// so that the object's death does not run it again (calling a
    /// Python `weakref.finalize`). Returns whether it ran: `false` if it
    /// had run or been cancelled before. A panic in the callback
    /// propagates from this call, with the callback spent.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use gcptr::Gc;
    ///
    /// let runs = Rc::new(Cell::new(0));
    /// let x = Gc::new(1);
    /// let counter = runs.clone();
    /// let callback = Gc::on_death(&x, move || counter.set(counter.get() + 1));
    /// assert!(callback.run_now());
    /// assert!(!callback.run_now());
    /// drop(x);
    /// assert_eq!(runs.get(), 1);
    /// ```
    pub fn run_now(&self) -> bool {
        CallbackState::unwatch(&self.state);
        // Taken out before it runs: it may ask whether it is pending, or
        // call `run_now` again.
        let Some(callback) = self.state.take_callback() else {
            return false;
        };
        callback();
        true
    }

    /// Whether the callback has neither run nor been cancelled (Python's
    /// `finalize.alive`).
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let x = Gc::new(1);
    /// let callback = Gc::on_death(&x, || ());
    /// assert!(callback.is_pending());
    /// drop(x);
    /// assert!(!callback.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.state.is_armed()
    }
}

impl core::fmt::Debug for DeathCallback {
    /// Whether the callback is pending.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let callback = gcptr::Gc::on_death(&x, || ());
    /// assert_eq!(format!("{callback:?}"), "DeathCallback { pending: true }");
    /// ```
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeathCallback")
            .field("pending", &self.is_pending())
            .finish()
    }
}

/// A weak reference with a callback: Python's `weakref.ref(obj, callback)`.
///
/// The callback runs once when the object dies, as with
/// [`Gc::on_death`], but only while this handle lives: dropping the handle
/// cancels it. And, as in CPython, if the handle itself belongs to garbage
/// that the same collection reclaims (it is a field of an object in the
/// dead cycle, or of an object only that cycle holds), the callback does
/// not run. So an object that holds a handle is tracked by the collector
/// even if it owns no `Gc`, as CPython tracks its weak reference objects.
/// That holder must be one the collection examines: as in CPython, a
/// young collection leaves an older holder out; such a holder dies by
/// count once the garbage is dropped, and its callback runs first.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use gcptr::Gc;
///
/// let fired = Rc::new(Cell::new(false));
/// let x = Gc::new(5);
/// let flag = fired.clone();
/// let weak = Gc::downgrade_with(&x, move || flag.set(true));
/// assert_eq!(*weak.upgrade().unwrap(), 5);
/// drop(x);
/// assert!(fired.get());
/// assert!(weak.upgrade().is_none());
/// ```
pub struct WeakWithCallback<T: ?Sized> {
    weak: Weak<T>,
    state: Rc<CallbackState>,
}

impl<T: ?Sized> WeakWithCallback<T> {
    /// A strong reference, if the object is alive (as [`Weak::upgrade`]).
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let weak = gcptr::Gc::downgrade_with(&x, || ());
    /// assert_eq!(weak.upgrade().as_deref(), Some(&1));
    /// ```
    pub fn upgrade(&self) -> Option<Gc<T>> {
        self.weak.upgrade()
    }

    /// The plain weak reference.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let weak = gcptr::Gc::downgrade_with(&x, || ());
    /// assert_eq!(weak.weak().strong_count(), 1);
    /// ```
    pub fn weak(&self) -> &Weak<T> {
        &self.weak
    }

    /// Whether the callback has neither run nor been cancelled.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let weak = gcptr::Gc::downgrade_with(&x, || ());
    /// assert!(weak.is_pending());
    /// drop(x);
    /// assert!(!weak.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.state.is_armed()
    }
}

impl<T: ?Sized> Drop for WeakWithCallback<T> {
    /// Cancels the callback if it has not run: a weak reference with a
    /// callback that is gone when its object dies runs nothing, as in
    /// Python.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// drop(gcptr::Gc::downgrade_with(&x, || panic!("cancelled")));
    /// drop(x); // no panic
    /// ```
    fn drop(&mut self) {
        CallbackState::unwatch(&self.state);
        // Before the callback's drop, which runs user code that may panic:
        // a count left too high would keep every collection on the path
        // that looks for callbacks to cancel.
        if let Some(st) = state::current() {
            st.callback_weaks
                .set(st.callback_weaks.get().saturating_sub(1));
        }
        drop(self.state.take_callback());
    }
}

impl<T: ?Sized> core::fmt::Debug for WeakWithCallback<T> {
    /// Whether the callback is pending; the object may be gone.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let weak = gcptr::Gc::downgrade_with(&x, || ());
    /// drop(x);
    /// assert_eq!(format!("{weak:?}"), "WeakWithCallback { pending: false }");
    /// ```
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WeakWithCallback")
            .field("pending", &self.is_pending())
            .finish()
    }
}

// SAFETY: a weak edge: no `Gc` to visit. The tracer is shown the callback
// so that a collection can cancel the callbacks of handles that die with
// the garbage (CPython's rule).
//
// `__may_own_gc` keeps its default, `true`, though the handle owns no
// `Gc`: an object that holds a handle is tracked (as CPython tracks its
// weak reference objects), so that when only garbage owns it, it is in the
// garbage's set, and its trace, run to cancel callbacks, shows the handle.
// An untracked one would be left out of the set, and its callback would
// run.
unsafe impl<T: ?Sized> Trace for WeakWithCallback<T> {
    fn trace(&self, tracer: &mut Tracer) {
        tracer.weak_callback(&self.state);
    }
}

impl<T: ?Sized> Gc<T> {
    /// Registers `callback` to run once when the object dies: Python's
    /// `weakref.finalize(obj, callback)`.
    ///
    /// The callback runs when the object can no longer be upgraded: when
    /// its strong count reaches zero (after its finalizer, if that did not
    /// resurrect it), or when a collection finds it to be garbage (before
    /// any finalizer of that collection runs, as CPython calls weak
    /// reference callbacks first). It never receives the object, so it
    /// cannot bring it back. A panic in the callback propagates from the
    /// drop or collection that ran it, once that is complete.
    ///
    /// A callback registered once the thread's collector is gone (late in
    /// thread exit, from another thread-local's destructor) is dropped
    /// without running; one registered before runs when its object dies,
    /// even if that happens during thread exit. A callback registered on an
    /// object that no longer upgrades is dropped without running too: one
    /// that the running collection condemned (from a finalizer or a death
    /// callback), or one that finalizers resurrected a second time, whose
    /// weak references are cleared for good (see
    /// [`Finalize`](crate::Finalize)); `is_pending` is `false` at once.
    ///
    /// The collector never looks inside a callback, so a callback that
    /// captures a `Gc` of its own object (or of anything that leads to it)
    /// keeps the object alive until it is cancelled
    /// ([`DeathCallback::cancel`]), as with Python's `weakref.finalize`:
    /// capture what the callback needs, not the object.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use gcptr::Gc;
    ///
    /// let fired = Rc::new(Cell::new(false));
    /// let x = Gc::new(String::from("temporary"));
    /// let flag = fired.clone();
    /// Gc::on_death(&x, move || flag.set(true));
    /// assert!(!fired.get());
    /// drop(x);
    /// assert!(fired.get());
    /// ```
    pub fn on_death(this: &Gc<T>, callback: impl FnOnce() + 'static) -> DeathCallback {
        DeathCallback {
            state: CallbackState::watch(this, Box::new(callback)),
        }
    }

    /// A weak reference whose callback runs when the object dies, unless
    /// the reference is gone by then: Python's `weakref.ref(obj, callback)`.
    /// See [`WeakWithCallback`].
    ///
    /// Unlike Python's, the callback does not receive the weak reference:
    /// capture what it needs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use gcptr::Gc;
    ///
    /// let runs = Rc::new(Cell::new(0));
    /// let kept = Gc::new(1);
    /// let seen = runs.clone();
    /// let weak = Gc::downgrade_with(&kept, move || seen.set(seen.get() + 1));
    /// drop(kept);
    /// assert_eq!(runs.get(), 1); // ran: the weak reference was alive
    /// assert!(weak.upgrade().is_none());
    ///
    /// let dropped_first = Gc::new(2);
    /// let seen = runs.clone();
    /// drop(Gc::downgrade_with(&dropped_first, move || seen.set(seen.get() + 1)));
    /// drop(dropped_first);
    /// assert_eq!(runs.get(), 1); // cancelled with its weak reference
    /// ```
    pub fn downgrade_with(this: &Gc<T>, callback: impl FnOnce() + 'static) -> WeakWithCallback<T> {
        let state = CallbackState::watch(this, Box::new(callback));
        if let Some(st) = state::current() {
            st.callback_weaks.set(st.callback_weaks.get() + 1);
        }
        WeakWithCallback {
            weak: Gc::downgrade(this),
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use crate::collector::state;
    use crate::Gc;

    struct PanicsOnDrop;

    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("a captured value's drop panicked");
        }
    }

    /// A `WeakWithCallback` dropped while its callback's captures panic
    /// still gives up its place in `callback_weaks`: left counted, it would
    /// keep every later collection on the path that looks for callbacks to
    /// cancel (no early drops of garbage).
    #[test]
    fn a_panicking_capture_still_uncounts_its_handle() {
        std::thread::spawn(|| {
            let x = Gc::new(7u32);
            let captured = PanicsOnDrop;
            let weak = Gc::downgrade_with(&x, move || drop(captured));
            let counted = || state::current().expect("a collector").callback_weaks.get();
            assert_eq!(counted(), 1);
            assert!(catch_unwind(AssertUnwindSafe(|| drop(weak))).is_err());
            assert_eq!(counted(), 0);
            assert_eq!(*x, 7);
        })
        .join()
        .unwrap();
    }
}
