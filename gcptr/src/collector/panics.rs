//! Panics of user code that the collector runs (finalizers, `Drop`s, death
//! callbacks, traces), caught so that the work under way can finish.
//!
//! The first panic of a piece of work is kept and resumed once the work is
//! done. Every later one is dropped, and dropping a payload runs user code
//! too (its `Drop`), which may itself panic: that must not unwind into the
//! collector half-way through its work, so it is caught as well.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// A caught panic's payload.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// Keeps `payload` if it is the first panic; otherwise drops it.
pub(crate) fn keep_first(first_panic: &mut Option<Panic>, payload: Panic) {
    if first_panic.is_none() {
        *first_panic = Some(payload);
    } else {
        drop_payload(payload);
    }
}

/// Drops a panic payload. A panic in its `Drop` is caught, and that
/// panic's payload dropped in turn; after a few such, the last payload is
/// forgotten (a leak) rather than risk a chain without end.
pub(crate) fn drop_payload(mut payload: Panic) {
    for _ in 0..4 {
        match panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    core::mem::forget(payload);
}

/// Resumes a panic that was caught so that an object could die first,
/// unless the thread is already unwinding: the death came from a `Gc`
/// dropped during unwinding (a local of a finalizer that panicked, say),
/// where a second panic would abort the process. The payload is dropped
/// then, as CPython ignores an exception raised in `__del__`; the panic
/// hook has already reported it. `std::thread::panicking` is also true
/// inside a `catch_unwind` that a `Drop` runs during unwinding, where a
/// resumed panic would be safe: it is dropped there too, as no cheap test
/// tells the two apart.
pub(crate) fn resume_unless_unwinding(payload: Panic) {
    if std::thread::panicking() {
        drop_payload(payload);
    } else {
        panic::resume_unwind(payload);
    }
}
