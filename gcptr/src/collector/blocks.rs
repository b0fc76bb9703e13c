//! [`Blocks`]: the memory of freed objects, kept per thread for the next
//! objects of the same layout (as CPython's `pymalloc` keeps its pools).
//!
//! A program that makes and drops objects in a loop frees and allocates the
//! same sizes in turn, and a collection frees its garbage in a batch that
//! the program's next allocations can reuse. Through the global allocator,
//! each such pair costs a `free` and a `malloc` (about 126 instructions in
//! glibc's fastest path); here, a push and a pop on a list threaded through
//! the free blocks. The blocks kept are bounded ([`MAX_KEPT_BYTES`]), and
//! all go back to the global allocator when the thread's collector goes.
//!
//! Under Miri, and in builds with `--cfg gcptr_no_block_reuse` (the
//! sanitizer and valgrind runs of `scripts/sanitizers.sh`), nothing is
//! kept: a memory checker then sees every object freed, and would report
//! a use after free that reuse would hide (as `PYTHONMALLOC=malloc` turns
//! `pymalloc` off for them). `--cfg gcptr_miri_block_reuse` keeps reuse on
//! under Miri, so that CI also runs the reuse paths there (provenance,
//! layouts) on the suites that exercise them.
//!
//! A block is reused only for a request of exactly the layout it was
//! allocated with, so that each block is eventually deallocated with its
//! own layout, as `GlobalAlloc` requires.

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::NonNull;

/// The alignment of the layouts kept: that of every object with a `Links`
/// word pair and no over-aligned field.
const ALIGN: usize = 8;

/// The largest size kept. Its class is the last.
const MAX_SIZE: usize = 256;

const CLASSES: usize = MAX_SIZE / ALIGN + 1;

/// How many bytes of free blocks a thread keeps, all sizes together: enough
/// for a few thousand small objects (a 4,096-node list of 80-byte nodes is
/// 320 KiB), little next to a heap that makes that many.
pub(crate) const MAX_KEPT_BYTES: usize = if cfg!(all(
    any(miri, gcptr_no_block_reuse),
    not(gcptr_miri_block_reuse)
)) {
    0
} else {
    512 * 1024
};

/// A free block's first word: the next free block of its size.
struct FreeBlock {
    next: Option<NonNull<FreeBlock>>,
}

/// The free blocks of one thread, a list per size.
pub(crate) struct Blocks {
    free: [Cell<Option<NonNull<FreeBlock>>>; CLASSES],
    kept_bytes: Cell<usize>,
    max_kept_bytes: usize,
}

impl Blocks {
    pub(crate) fn new() -> Blocks {
        Blocks::with_limit(MAX_KEPT_BYTES)
    }

    /// Blocks that keep at most `max_kept_bytes` bytes.
    fn with_limit(max_kept_bytes: usize) -> Blocks {
        Blocks {
            free: [const { Cell::new(None) }; CLASSES],
            kept_bytes: Cell::new(0),
            max_kept_bytes,
        }
    }

    /// The list for blocks of `layout`, if such blocks are kept.
    #[inline(always)]
    fn class(layout: Layout) -> Option<usize> {
        let size = layout.size();
        (layout.align() == ALIGN && size <= MAX_SIZE && size % ALIGN == 0 && size != 0)
            .then_some(size / ALIGN)
    }

    /// A free block of exactly `layout`, if one is kept.
    #[inline(always)]
    pub(crate) fn take(&self, layout: Layout) -> Option<NonNull<u8>> {
        let list = &self.free[Self::class(layout)?];
        let block = list.get()?;
        // SAFETY: a kept block is allocated, with its first word written by
        // `keep` (the layout's size is at least a word: `ALIGN`).
        list.set(unsafe { block.as_ref() }.next);
        self.kept_bytes.set(self.kept_bytes.get() - layout.size());
        Some(block.cast())
    }

    /// Keeps `block`, allocated with `layout` and no longer used, for a
    /// later [`Blocks::take`]. Returns `false` if it is not kept (too
    /// large, an alignment not kept, or the bound reached): then the
    /// caller deallocates it.
    ///
    /// # Safety
    /// `block` was allocated by the global allocator with `layout`, and
    /// nothing refers to its contents any more.
    #[inline(always)]
    pub(crate) unsafe fn keep(&self, block: NonNull<u8>, layout: Layout) -> bool {
        // The bound first: a collection that frees more than it holds
        // fails here on each object past the first few thousand.
        let kept = self.kept_bytes.get() + layout.size();
        if kept > self.max_kept_bytes {
            return false;
        }
        let Some(class) = Self::class(layout) else {
            return false;
        };
        self.kept_bytes.set(kept);
        let list = &self.free[class];
        let block = block.cast::<FreeBlock>();
        // SAFETY: the block is allocated, unused, at least a word long and
        // aligned for a pointer (`class` checked the layout).
        unsafe { block.write(FreeBlock { next: list.get() }) };
        list.set(Some(block));
        true
    }

    /// Gives every kept block back to the global allocator, and keeps none
    /// from now on (thread exit: a parked state may never be freed).
    pub(crate) fn stop_keeping(&self) {
        self.release_all();
        // Past any bound, and far from overflow in `keep`'s sum.
        self.kept_bytes.set(usize::MAX / 2);
    }

    /// Gives every kept block back to the global allocator.
    pub(crate) fn release_all(&self) {
        for (class, list) in self.free.iter().enumerate() {
            let mut next = list.take();
            while let Some(block) = next {
                // SAFETY: a kept block, with its first word written by
                // `keep`.
                next = unsafe { block.as_ref() }.next;
                // SAFETY: kept blocks of this list were allocated by the
                // global allocator with this layout (`keep`'s contract).
                unsafe {
                    std::alloc::dealloc(
                        block.as_ptr().cast(),
                        Layout::from_size_align_unchecked(class * ALIGN, ALIGN),
                    )
                };
            }
        }
        self.kept_bytes.set(0);
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests {
    use core::alloc::Layout;
    use core::ptr::NonNull;

    use super::Blocks;

    fn allocate(layout: Layout) -> NonNull<u8> {
        // SAFETY: non-zero sizes only, below.
        NonNull::new(unsafe { std::alloc::alloc(layout) }).unwrap()
    }

    /// Runs under Miri too (with its own limit): its leak check sees that
    /// dropping the blocks deallocates every kept block.
    #[test]
    fn blocks_come_back_for_their_own_layout_only_and_within_the_limit() {
        let small = Layout::from_size_align(48, 8).unwrap();
        let other = Layout::from_size_align(56, 8).unwrap();
        let blocks = Blocks::with_limit(3 * 48);
        let (a, b, c, d) = (
            allocate(small),
            allocate(small),
            allocate(small),
            allocate(small),
        );
        // SAFETY: each was allocated with `small` and is unused.
        unsafe {
            assert!(blocks.keep(a, small));
            assert!(blocks.keep(b, small));
            assert!(blocks.keep(c, small));
            // The limit is reached: the caller deallocates.
            assert!(!blocks.keep(d, small));
            std::alloc::dealloc(d.as_ptr(), small);
        }
        assert_eq!(blocks.take(other), None);
        // Last kept, first taken.
        assert_eq!(blocks.take(small), Some(c));
        assert_eq!(blocks.take(small), Some(b));
        // Room again for one.
        let e = allocate(small);
        // SAFETY: allocated with `small`, unused.
        assert!(unsafe { blocks.keep(e, small) });
        assert_eq!(blocks.take(small), Some(e));
        // SAFETY: taken back, so ours to deallocate.
        unsafe {
            std::alloc::dealloc(b.as_ptr(), small);
            std::alloc::dealloc(c.as_ptr(), small);
            std::alloc::dealloc(e.as_ptr(), small);
        }
        // `a` stays kept: the drop deallocates it.
    }

    #[test]
    #[cfg_attr(any(miri, gcptr_no_block_reuse), ignore = "this build keeps no blocks")]
    fn a_freed_object_s_memory_goes_to_the_next_object_of_its_layout() {
        std::thread::spawn(|| {
            use std::cell::RefCell;

            use crate::header::Header;
            use crate::Gc;

            let new = || Gc::new(RefCell::new(None::<Gc<u32>>));
            let start = |gc: &Gc<RefCell<Option<Gc<u32>>>>| Header::allocation(gc.header());
            let first = new();
            let freed = start(&first);
            let layout = Header::allocation_layout(first.header());
            drop(first);
            // The global allocator's next block of that size is another:
            // the freed one stayed with the thread.
            let other = allocate(layout);
            assert_ne!(other, freed);
            assert_eq!(start(&new()), freed);
            // SAFETY: allocated with `layout` above.
            unsafe { std::alloc::dealloc(other.as_ptr(), layout) };
        })
        .join()
        .unwrap();
    }

    #[test]
    fn unusual_layouts_are_not_kept() {
        let blocks = Blocks::with_limit(1 << 20);
        for layout in [
            Layout::from_size_align(64, 16).unwrap(),
            Layout::from_size_align(264, 8).unwrap(),
            Layout::from_size_align(20, 4).unwrap(),
        ] {
            let block = allocate(layout);
            // SAFETY: allocated with `layout`, unused.
            unsafe {
                assert!(!blocks.keep(block, layout), "{layout:?}");
                std::alloc::dealloc(block.as_ptr(), layout);
            }
        }
    }
}
