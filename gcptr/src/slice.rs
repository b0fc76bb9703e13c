//! `Gc<[T]>` and `Gc<str>`: unsized values, allocated in one block with
//! their header, as `Rc<[T]>` and `Rc<str>` are.
//!
//! The collector sees only headers, so a slice allocation keeps its length
//! in the word in front of its links (or header): see
//! `header::SliceVTables`.

use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use std::alloc::{alloc, handle_alloc_error};

use crate::gc::Gc;
use crate::header::{flags, slice_layout, GcBox, Header, Links, SliceVTables, VTable};
use crate::trace::Trace;

/// Allocates a slice object of `len` elements of `T`, copying them from
/// `source`, which the caller must then forget (its elements now belong to
/// the object). Returns the object's thin header, whose one strong
/// reference the caller owns.
///
/// # Safety
/// `source` is valid for reads of `len` initialised, properly aligned
/// elements of `T`, and `vtable` is a slice vtable of elements laid out as
/// `T` (`SliceVTables::<T>`, or `SliceVTables::<u8>::str()` for bytes), of
/// the given `tracked`-ness.
unsafe fn allocate_slice<T>(
    vtable: &'static VTable,
    tracked: bool,
    source: *const T,
    len: usize,
) -> NonNull<Header> {
    let element = vtable.element.expect("a slice vtable");
    let layout = slice_layout(vtable, element, len);
    // SAFETY: the layout has a non-zero size (it holds the header).
    let Some(memory) = NonNull::new(unsafe { alloc(layout) }) else {
        handle_alloc_error(layout)
    };
    let flag_bits = flags::FINALIZED | if tracked { flags::TRACKED } else { 0 };
    // SAFETY: `header_offset` lies within the allocation (`SliceVTables`).
    let header = unsafe { memory.add(vtable.header_offset) }.cast::<Header>();
    // SAFETY: the header's own slot, properly aligned; written first, as
    // `slice_len_slot` and `links` read its flags and vtable.
    unsafe { header.as_ptr().write(Header::new(vtable, flag_bits, false)) };
    let slot = Header::slice_len_slot(header).expect("a slice header");
    // SAFETY: the length's own slot in the allocation, properly aligned.
    unsafe { slot.as_ptr().write(len) };
    if let Some(links) = Header::links(header) {
        // SAFETY: the links' own slot (a TRACKED layout), properly aligned.
        unsafe { links.as_ptr().write(Links::new()) };
        Links::link_to_self(links);
    }
    // SAFETY: `value_offset` lies within the allocation, and the data slot
    // there has room for `len` elements (`slice_layout`), properly aligned;
    // `source` holds `len` elements (the caller's promise).
    unsafe {
        let data = header.byte_add(vtable.value_offset).cast::<T>();
        ptr::copy_nonoverlapping(source, data.as_ptr(), len);
    }
    header
}

/// The fat `GcBox<[T]>` pointer of a slice object.
fn slice_box<T>(header: NonNull<Header>, len: usize) -> NonNull<GcBox<[T]>> {
    let fat = ptr::slice_from_raw_parts_mut(header.as_ptr().cast::<T>(), len) as *mut GcBox<[T]>;
    // SAFETY: derived from the non-null header pointer.
    unsafe { NonNull::new_unchecked(fat) }
}

impl<T: Trace + 'static> From<Vec<T>> for Gc<[T]> {
    /// Moves the elements of a `Vec` into a new `Gc<[T]>`.
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let numbers: Gc<[u32]> = Gc::from(vec![1, 2, 3]);
    /// assert_eq!(&*numbers, [1, 2, 3]);
    /// ```
    fn from(elements: Vec<T>) -> Gc<[T]> {
        let tracked = T::__may_own_gc(0);
        let elements = ManuallyDrop::new(elements);
        let len = elements.len();
        // SAFETY: the vector's `len` elements, laid out as `T`; forgotten
        // (`ManuallyDrop`), as their buffer is freed without them below.
        let header = unsafe {
            allocate_slice(
                SliceVTables::<T>::get(tracked),
                tracked,
                elements.as_ptr(),
                len,
            )
        };
        // Free the vector's buffer; its elements moved into the object.
        // SAFETY: rebuilt from the `ManuallyDrop`'s own parts, length 0.
        drop(unsafe { Vec::from_raw_parts(elements.as_ptr().cast_mut(), 0, elements.capacity()) });
        // SAFETY: the header's one strong reference becomes this `Gc`,
        // made before tracking: the automatic collection that tracking
        // may run can panic, and the object then dies with it.
        let this = unsafe { Gc::from_inner(slice_box(header, len)) };
        // A slice of fixed edges to untracked or acyclic objects is
        // acyclic, as such a `Gc<Vec<T>>` is.
        this.track_with_edges(T::__edges_fixed(0), false);
        this
    }
}

impl<T: Trace + Clone + 'static> From<&[T]> for Gc<[T]> {
    /// Clones the elements of a slice into a new `Gc<[T]>`.
    ///
    /// ```
    /// let letters: gcptr::Gc<[char]> = gcptr::Gc::from(&['a', 'b'][..]);
    /// assert_eq!(letters.len(), 2);
    /// ```
    fn from(elements: &[T]) -> Gc<[T]> {
        Gc::from(elements.to_vec())
    }
}

impl<T: Trace + 'static> FromIterator<T> for Gc<[T]> {
    /// Collects an iterator into a new `Gc<[T]>`.
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let squares: Gc<[u64]> = (1..=4).map(|n| n * n).collect();
    /// assert_eq!(&*squares, [1, 4, 9, 16]);
    /// let same = Gc::from_iter(squares.iter().copied());
    /// assert_eq!(same, squares);
    /// ```
    fn from_iter<I: IntoIterator<Item = T>>(elements: I) -> Gc<[T]> {
        Gc::from(elements.into_iter().collect::<Vec<T>>())
    }
}

impl<T: Trace + 'static, const N: usize> From<[T; N]> for Gc<[T]> {
    /// Moves the elements of an array into a new `Gc<[T]>`.
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let primes: Gc<[u8]> = Gc::from([2, 3, 5]);
    /// assert_eq!(&*primes, [2, 3, 5]);
    /// ```
    fn from(elements: [T; N]) -> Gc<[T]> {
        Gc::from(Vec::from(elements))
    }
}

impl<T: Trace + 'static> Default for Gc<[T]> {
    /// An empty `Gc<[T]>`, as `Rc<[T]>`'s default.
    ///
    /// ```
    /// let empty: gcptr::Gc<[String]> = Default::default();
    /// assert!(empty.is_empty());
    /// ```
    fn default() -> Gc<[T]> {
        Gc::from(Vec::new())
    }
}

impl Default for Gc<str> {
    /// An empty `Gc<str>`, as `Rc<str>`'s default.
    ///
    /// ```
    /// let empty: gcptr::Gc<str> = Default::default();
    /// assert_eq!(&*empty, "");
    /// ```
    fn default() -> Gc<str> {
        Gc::from("")
    }
}

impl From<&str> for Gc<str> {
    /// Copies a string into a new `Gc<str>`.
    ///
    /// ```
    /// let name: gcptr::Gc<str> = gcptr::Gc::from("Ada");
    /// assert_eq!(&*name, "Ada");
    /// ```
    fn from(text: &str) -> Gc<str> {
        let len = text.len();
        // SAFETY: the string's `len` bytes; `u8` is `Copy`, so nothing is
        // to be forgotten.
        let header =
            unsafe { allocate_slice(SliceVTables::<u8>::str(), false, text.as_ptr(), len) };
        let bytes = slice_box::<u8>(header, len);
        // SAFETY: the bytes are a copy of a `str`, so valid UTF-8; `GcBox<str>`
        // and `GcBox<[u8]>` have the same layout and metadata.
        unsafe { Gc::from_inner(NonNull::new_unchecked(bytes.as_ptr() as *mut GcBox<str>)) }
    }
}

impl From<String> for Gc<str> {
    /// Copies a `String` into a new `Gc<str>`.
    ///
    /// ```
    /// let name: gcptr::Gc<str> = gcptr::Gc::from(String::from("Grace"));
    /// assert_eq!(name.len(), 5);
    /// ```
    fn from(text: String) -> Gc<str> {
        Gc::from(text.as_str())
    }
}

impl<T: Trace + 'static> From<Box<T>> for Gc<T> {
    /// Moves a boxed value into a new `Gc`.
    ///
    /// ```
    /// let x: gcptr::Gc<u8> = gcptr::Gc::from(Box::new(7));
    /// assert_eq!(*x, 7);
    /// ```
    fn from(boxed: Box<T>) -> Gc<T> {
        Gc::new(*boxed)
    }
}
