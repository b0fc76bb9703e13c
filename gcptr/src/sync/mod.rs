//! What crosses threads: [`ThreadBound`], a handle to a thread's value
//! that any thread may hold, clone and drop, and only that thread may open.
//!
//! `Gc` and `Weak` never leave their thread: their counts are plain
//! integers, and each thread's collector owns its objects. A program that
//! must hand a thread's object to another (a worker that reports back to
//! the thread that owns a window, an `async` task that must be `Send`)
//! wraps it in a `ThreadBound`, which is `Send` and `Sync` whatever it
//! holds. The thread that made it is its *home*:
//!
//! * at home, [`ThreadBound::get`] lends the value; elsewhere it panics
//!   (and [`ThreadBound::try_get`] returns `None`);
//! * the handle is reference counted across threads, as an `Arc`: when
//!   the last clone goes at home, the value is dropped at once; when it
//!   goes on another thread, the value is sent home, and dropped there
//!   by the home thread's next collection (automatic or [`collect`]), its
//!   next `ThreadBound::new`, a call to [`release_returned`], or its exit,
//!   whichever comes first. A value is never touched off its thread, so
//!   `T` need not be `Send`.
//!
//! The collector treats a `ThreadBound` as a root: it never looks inside,
//! and the objects it holds stay alive while any clone of it does, on any
//! thread. A cycle that passes through one is never collected (hold a
//! [`Weak`](crate::Weak) in it to let the cycle go). A value whose last
//! handle is dropped after its home thread ended is leaked: its drop
//! could run on no thread.
//!
//! ```
//! use std::cell::RefCell;
//! use gcptr::sync::ThreadBound;
//! use gcptr::{Gc, Trace};
//!
//! #[derive(Trace)]
//! struct Window {
//!     title: RefCell<String>,
//!     me: RefCell<Option<Gc<Window>>>, // a cycle, for the collector
//! }
//!
//! let window = Gc::new(Window { title: RefCell::new("draft".into()), me: RefCell::new(None) });
//! *window.me.borrow_mut() = Some(window.clone());
//!
//! let handle = ThreadBound::new(window.clone());
//! let worker = std::thread::spawn(move || {
//!     assert!(handle.try_get().is_none()); // not this thread's to open
//!     handle // sent back
//! });
//! let handle = worker.join().unwrap();
//! handle.get().title.replace("done".into());
//! assert_eq!(*window.title.borrow(), "done");
//!
//! drop((window, handle));
//! assert_eq!(gcptr::collect(), 1);
//! ```
//!
//! [`collect`]: crate::collect

mod inbox;

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::collector::panics::{self as panics, Panic};
use crate::{Trace, Tracer};
use inbox::Inbox;

/// A handle to a value of one thread, its *home*, that may be sent to,
/// shared with, cloned and dropped on any thread, and opened only at
/// home. See the [module documentation](self).
///
/// Cloning it is an atomic increment, as for an `Arc`; the clones share
/// one value, dropped at home once the last clone is gone.
///
/// # Examples
///
/// ```
/// use gcptr::sync::ThreadBound;
/// use gcptr::Gc;
///
/// let handle = ThreadBound::new(Gc::new(vec![1, 2, 3]));
/// let copy = handle.clone();
/// std::thread::spawn(move || {
///     assert!(!copy.is_home());
///     drop(copy); // sent home: the `Vec` is not dropped here
/// })
/// .join()
/// .unwrap();
/// assert_eq!(handle.get().len(), 3);
/// ```
pub struct ThreadBound<T: 'static> {
    slot: Arc<Slot<T>>,
}

/// The value of a [`ThreadBound`] and its clones, and the way home.
struct Slot<T: 'static> {
    /// The home thread's number ([`thread_number`]).
    home: u64,
    /// Where the value goes if the last clone is dropped elsewhere.
    inbox: Arc<HomeInbox>,
    /// The value, boxed, so that only its address travels.
    value: NonNull<T>,
    _owns: PhantomData<T>,
}

// SAFETY: the value is reached only on its home thread: `try_get` and
// `try_unwrap` check the calling thread first, and the last clone's drop
// (`Slot::drop`) drops the value only at home and sends its address home
// from elsewhere. What else a handle holds (the home's number, an inbox
// behind a mutex, an `Arc`) is `Send` and `Sync`.
unsafe impl<T: 'static> Send for ThreadBound<T> {}
// SAFETY: as for `Send`: through `&ThreadBound`, other threads reach the
// number and the `Arc` only, never the value.
unsafe impl<T: 'static> Sync for ThreadBound<T> {}

impl<T: 'static> ThreadBound<T> {
    /// Makes the calling thread `value`'s home, and returns the first
    /// handle to it.
    ///
    /// First drops the values that other threads sent home meanwhile, as
    /// [`release_returned`] does.
    ///
    /// # Panics
    ///
    /// If the drop of a value sent home panics: after the others are
    /// dropped, and with `value` dropped too.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gcptr::sync::ThreadBound::new(gcptr::Gc::new(7));
    /// assert!(handle.is_home());
    /// assert_eq!(**handle.get(), 7);
    /// ```
    pub fn new(value: T) -> Self {
        let mut first_panic = None;
        release_returned_catching(&mut first_panic);
        if let Some(payload) = first_panic {
            if std::thread::panicking() {
                panics::drop_payload(payload);
            } else {
                // `value` goes here, not in the unwinding: a panic of its
                // own drop would abort there.
                if let Err(again) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
                    panics::drop_payload(again);
                }
                panic::resume_unwind(payload);
            }
        }
        let slot = Slot {
            home: thread_number(),
            inbox: home_inbox(),
            value: NonNull::from(Box::leak(Box::new(value))),
            _owns: PhantomData,
        };
        ThreadBound {
            slot: Arc::new(slot),
        }
    }

    /// Whether the calling thread is the value's home.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gcptr::sync::ThreadBound::new(());
    /// assert!(handle.is_home());
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(!handle.is_home()));
    /// });
    /// ```
    pub fn is_home(&self) -> bool {
        self.slot.home == thread_number()
    }

    /// The value, if the calling thread is its home; `None` elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = gcptr::sync::ThreadBound::new(String::from("home"));
    /// assert_eq!(handle.try_get().map(String::as_str), Some("home"));
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(handle.try_get().is_none()));
    /// });
    /// ```
    pub fn try_get(&self) -> Option<&T> {
        // SAFETY: at home, where the value may be used (see `Send`), and
        // alive as long as the slot, which `self` keeps.
        self.is_home().then(|| unsafe { self.slot.value.as_ref() })
    }

    /// The value; the calling thread must be its home.
    ///
    /// # Panics
    ///
    /// On any other thread: send the handle home first (over a channel,
    /// say), or ask with [`try_get`](Self::try_get).
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::{sync::ThreadBound, Gc};
    ///
    /// let handle = ThreadBound::new(Gc::new(5));
    /// let five: Gc<i32> = handle.get().clone();
    /// assert_eq!(*five, 5);
    /// ```
    #[track_caller]
    pub fn get(&self) -> &T {
        match self.try_get() {
            Some(value) => value,
            None => panic!(
                "gcptr: `ThreadBound::get` called off the value's home thread; \
                 send the handle back to the thread that made it, or use `try_get`"
            ),
        }
    }

    /// The value, if the calling thread is its home and `this` is its
    /// last handle; otherwise `this` back.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::sync::ThreadBound;
    ///
    /// let handle = ThreadBound::new(String::from("mine"));
    /// let copy = handle.clone();
    /// let handle = ThreadBound::try_unwrap(handle).unwrap_err(); // `copy` shares it
    /// drop(copy);
    /// assert_eq!(ThreadBound::try_unwrap(handle).ok().unwrap(), "mine");
    /// ```
    pub fn try_unwrap(this: Self) -> Result<T, Self> {
        if !this.is_home() {
            return Err(this);
        }
        // No other thread can clone the handle meanwhile: it would need a
        // handle, and `this` is the last.
        match Arc::try_unwrap(this.slot) {
            Ok(slot) => {
                let slot = ManuallyDrop::new(slot);
                // SAFETY: `slot` is never dropped: its inbox is read out
                // once, and its value, which it owned, is boxed from
                // `Box::leak` and taken back once, at home.
                unsafe {
                    drop(ptr::read(&slot.inbox));
                    Ok(*Box::from_raw(slot.value.as_ptr()))
                }
            }
            Err(slot) => Err(ThreadBound { slot }),
        }
    }
}

impl<T: 'static> Clone for ThreadBound<T> {
    /// Another handle to the same value, on any thread.
    ///
    /// ```
    /// use gcptr::sync::ThreadBound;
    ///
    /// let handle = ThreadBound::new(String::from("shared"));
    /// let clone = handle.clone();
    /// assert!(std::ptr::eq(handle.get(), clone.get())); // one value
    /// ```
    fn clone(&self) -> Self {
        ThreadBound {
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<T: fmt::Debug + 'static> fmt::Debug for ThreadBound<T> {
    /// The value at home; elsewhere, only that it lives on another thread.
    ///
    /// ```
    /// use gcptr::sync::ThreadBound;
    ///
    /// let handle = ThreadBound::new(5);
    /// assert_eq!(format!("{handle:?}"), "ThreadBound(5)");
    /// let (elsewhere, handle) =
    ///     std::thread::spawn(move || (format!("{handle:?}"), handle)).join().unwrap();
    /// assert_eq!(elsewhere, "ThreadBound(<on another thread>)");
    /// # drop(handle);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tuple = f.debug_tuple("ThreadBound");
        match self.try_get() {
            Some(value) => tuple.field(value),
            None => tuple.field(&format_args!("<on another thread>")),
        };
        tuple.finish()
    }
}

// SAFETY: a root, to the collector: `trace` shows none of the `Gc`s the
// value may own, which only keeps them alive (their counts include the
// value's references, which no traced object accounts for), as
// `#[gc(skip)]` does. The handle is shared across threads, so no one
// holder of it could claim them as its edges.
unsafe impl<T: 'static> Trace for ThreadBound<T> {
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}

    /// `true`: the value may own `Gc`s, and a chain of objects linked
    /// through handles must die under the trashcan (tracked objects), not
    /// recursively as `Rc`s do. The edges (none) never change, so a holder
    /// that owns nothing else traced is acyclic and never analysed.
    #[inline(always)]
    fn __may_own_gc(_depth: u32) -> bool {
        true
    }

    #[inline(always)]
    fn __edges_fixed(_depth: u32) -> bool {
        true
    }
}

impl<T: 'static> Drop for Slot<T> {
    fn drop(&mut self) {
        let value = self.value.cast::<()>();
        if self.home == thread_number() {
            // SAFETY: at home, once: the slot owned the value.
            unsafe { drop_boxed::<T>(value) };
        } else {
            let returned = Returned {
                value,
                drop: drop_boxed::<T>,
            };
            // Refused once the home thread has ended: then the value's drop
            // can run nowhere, and it is leaked.
            let _ = self.inbox.send(returned);
        }
    }
}

/// Drops the boxed `T` at `value`.
///
/// # Safety
/// `value` is a `Box<T>`'s, on `T`'s home thread, and is dropped once.
unsafe fn drop_boxed<T>(value: NonNull<()>) {
    // SAFETY: per the contract.
    drop(unsafe { Box::from_raw(value.cast::<T>().as_ptr()) });
}

/// A value whose last handle was dropped away from home: its box, and the
/// function that drops it. It has no drop of its own: one that is never
/// released is leaked.
struct Returned {
    value: NonNull<()>,
    drop: unsafe fn(NonNull<()>),
}

// SAFETY: a `Returned` goes to its home thread's inbox only, and only that
// thread takes it out and calls `drop` (`release`).
unsafe impl Send for Returned {}

type HomeInbox = Inbox<Returned>;

/// The next thread number to give out: numbers are never reused, so a
/// handle whose home has ended never takes a later thread for its home
/// (as a thread-local's address could).
static NEXT_THREAD_NUMBER: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's number, given on first use; 0 before. Const and
    /// without a destructor: usable from every thread-local destructor.
    static THREAD_NUMBER: Cell<u64> = const { Cell::new(0) };
    /// This thread's inbox once a handle was made here (a reference from
    /// `Arc::into_raw`), and null before, and after `INBOX_CLOSER` ran.
    static INBOX: Cell<*const HomeInbox> = const { Cell::new(ptr::null()) };
    /// Closes `INBOX` at thread exit; registered as the inbox is made.
    static INBOX_CLOSER: InboxCloser = const { InboxCloser };
}

fn thread_number() -> u64 {
    THREAD_NUMBER.with(|number| {
        if number.get() == 0 {
            number.set(NEXT_THREAD_NUMBER.fetch_add(1, Ordering::Relaxed));
        }
        number.get()
    })
}

/// This thread's inbox, made (and its closer registered) on first use.
fn home_inbox() -> Arc<HomeInbox> {
    match inbox_if_made() {
        Some(inbox) => inbox,
        None => make_inbox(),
    }
}

/// This thread's inbox, if a handle was made here and the thread has not
/// closed it.
fn inbox_if_made() -> Option<Arc<HomeInbox>> {
    let raw = INBOX.with(Cell::get);
    // SAFETY: a non-null `INBOX` holds a reference of its own, which only
    // `InboxCloser` gives up, nulling it first: this one is another.
    (!raw.is_null()).then(|| unsafe {
        Arc::increment_strong_count(raw);
        Arc::from_raw(raw)
    })
}

#[cold]
#[inline(never)]
fn make_inbox() -> Arc<HomeInbox> {
    // Fails once the closer's destructor has run (thread exit): nothing
    // would close an inbox made now, so it starts closed, and values sent
    // home to it are leaked.
    if INBOX_CLOSER.try_with(|_| ()).is_err() {
        return Arc::new(Inbox::closed());
    }
    let inbox = Arc::new(Inbox::new());
    INBOX.with(|cell| cell.set(Arc::into_raw(Arc::clone(&inbox))));
    inbox
}

/// At thread exit, closes the thread's inbox and drops what it held.
struct InboxCloser;

impl Drop for InboxCloser {
    fn drop(&mut self) {
        let raw = INBOX.with(|cell| cell.replace(ptr::null()));
        if raw.is_null() {
            return;
        }
        // SAFETY: `INBOX`'s own reference (see `inbox_if_made`), taken
        // back once: `INBOX` is null now.
        let inbox = unsafe { Arc::from_raw(raw) };
        let mut first_panic = None;
        release(inbox.close(), &mut first_panic);
        // A panic leaving a thread-local's destructor aborts the process.
        if let Some(payload) = first_panic {
            panics::drop_payload(payload);
        }
    }
}

/// Drops the values that other threads sent home to the calling thread:
/// those whose last [`ThreadBound`] was dropped there. Returns how many.
///
/// Collections call it first, automatic ones too, and so does
/// [`ThreadBound::new`]; a thread that does neither for long, and that
/// other threads send values back to, calls it to free them sooner.
///
/// # Panics
///
/// If a value's drop panics: after the others are dropped, with the first
/// panic.
///
/// # Examples
///
/// ```
/// use gcptr::sync::{release_returned, ThreadBound};
///
/// let handle = ThreadBound::new(String::from("sent back"));
/// std::thread::spawn(move || drop(handle)).join().unwrap();
/// assert_eq!(release_returned(), 1);
/// assert_eq!(release_returned(), 0);
/// ```
pub fn release_returned() -> usize {
    let mut first_panic = None;
    let released = release_returned_catching(&mut first_panic);
    if let Some(payload) = first_panic {
        panics::resume_unless_unwinding(payload);
    }
    released
}

/// [`release_returned`], keeping the first panic in `first_panic`.
pub(crate) fn release_returned_catching(first_panic: &mut Option<Panic>) -> usize {
    match inbox_if_made() {
        Some(inbox) => release(inbox.take(), first_panic),
        None => 0,
    }
}

/// Drops `returned`, which the calling thread took from its own inbox.
fn release(returned: Vec<Returned>, first_panic: &mut Option<Panic>) -> usize {
    let count = returned.len();
    for item in returned {
        // SAFETY: on its home thread (only it takes from its inbox), once.
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| unsafe { (item.drop)(item.value) }));
        if let Err(payload) = dropped {
            panics::keep_first(first_panic, payload);
        }
    }
    count
}
