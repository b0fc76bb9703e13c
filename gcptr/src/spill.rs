//! [`SpillStack`]: where a [`Tracer`](crate::Tracer) keeps what it cannot
//! keep in its own buffers while a trace runs.
//!
//! A trace reads its value's `RefCell`s without borrowing them (see the
//! `Trace` impl of `RefCell`), so nothing may mutably borrow them until it
//! returns. The global allocator is code of the program, which may use
//! thread-locals, and so could reach such a `RefCell` through a `Gc` it
//! keeps there: the tracer must not call it mid-trace. What a tracer
//! gathers goes into buffers with room to spare, and past that into a
//! `SpillStack`, whose memory comes from [`System`]: the platform's
//! allocator, which runs no code of the program. The tracer moves what
//! spilled into its own buffers once the trace has returned.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::alloc::{GlobalAlloc, System};

/// A stack of `Copy` items whose memory comes from [`System`].
pub(crate) struct SpillStack<T: Copy> {
    /// `cap` items' worth of memory from `System`, the first `len`
    /// initialised; dangling while `cap` is zero.
    items: NonNull<T>,
    len: usize,
    cap: usize,
}

impl<T: Copy> SpillStack<T> {
    const ITEM_SIZE_NOT_ZERO: () = assert!(size_of::<T>() != 0);

    pub(crate) const fn new() -> Self {
        let () = Self::ITEM_SIZE_NOT_ZERO;
        SpillStack {
            items: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.len == self.cap {
            self.grow();
        }
        // SAFETY: `len < cap` now, so the slot is inside the memory.
        unsafe { self.items.as_ptr().add(self.len).write(item) };
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        self.len = self.len.checked_sub(1)?;
        // SAFETY: the item at the old `len - 1` is initialised.
        Some(unsafe { self.items.as_ptr().add(self.len).read() })
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` items are initialised (dangling and
        // well aligned for `len == 0`).
        unsafe { core::slice::from_raw_parts(self.items.as_ptr(), self.len) }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Takes the items out, in the order they were pushed. Not during a
    /// trace: the `Vec` comes from the global allocator.
    pub(crate) fn take(&mut self) -> Vec<T> {
        let items = self.as_slice().to_vec();
        self.clear();
        items
    }

    fn layout(cap: usize) -> Layout {
        Layout::array::<T>(cap).unwrap_or_else(|_| out_of_memory())
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let cap = (self.cap * 2).max(16);
        let layout = Self::layout(cap);
        let memory = if self.cap == 0 {
            // SAFETY: `layout` has a non-zero size (`T` is not zero-sized).
            unsafe { System.alloc(layout) }
        } else {
            // SAFETY: `items` came from `System` with `layout(self.cap)`,
            // and the new size is non-zero and fits `isize` (`layout`
            // checked it).
            unsafe {
                System.realloc(
                    self.items.as_ptr().cast(),
                    Self::layout(self.cap),
                    layout.size(),
                )
            }
        };
        let Some(memory) = NonNull::new(memory) else {
            out_of_memory()
        };
        self.items = memory.cast();
        self.cap = cap;
    }
}

/// Aborts, where a `Vec` would call `handle_alloc_error` or panic: the
/// allocation error hook and the panic hook are code of the program, and
/// this runs in the middle of a trace.
#[cold]
fn out_of_memory() -> ! {
    eprintln!("gcptr: out of memory for the tracer's spill stack");
    std::process::abort()
}

impl<T: Copy> Drop for SpillStack<T> {
    #[inline]
    fn drop(&mut self) {
        // Most tracers never spill: a test the optimizer can fold.
        if self.cap != 0 {
            self.free();
        }
    }
}

impl<T: Copy> SpillStack<T> {
    #[cold]
    #[inline(never)]
    fn free(&mut self) {
        // SAFETY: `items` came from `System` with `layout(self.cap)`.
        unsafe { System.dealloc(self.items.as_ptr().cast(), Self::layout(self.cap)) };
    }
}

#[cfg(test)]
mod tests {
    use super::SpillStack;

    #[test]
    fn items_come_back_in_push_order_across_growth() {
        let mut stack = SpillStack::new();
        assert!(stack.is_empty());
        for i in 0..100u32 {
            stack.push(i);
        }
        assert_eq!(stack.as_slice(), (0..100).collect::<Vec<_>>());
        assert_eq!(stack.take(), (0..100).collect::<Vec<_>>());
        assert!(stack.is_empty());
        stack.push(7);
        assert_eq!(stack.as_slice(), [7]);
        assert_eq!(stack.pop(), Some(7));
        assert_eq!(stack.pop(), None);
    }
}
