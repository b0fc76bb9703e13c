// `gc_coerce!` trusts the pointer it takes apart to rebuild what it gave
// up, so only `Gc` and `Weak` may implement its hidden trait.
use gcptr::__private::{CoercePointer, GcBox};

struct Fake;

impl CoercePointer for Fake {
    type Pointee = u32;
    type With<U: ?Sized> = Fake;

    fn into_raw_box(self) -> *mut GcBox<u32> {
        core::ptr::null_mut()
    }

    unsafe fn from_raw_box<U: ?Sized>(_: *mut GcBox<U>) -> Fake {
        Fake
    }
}

fn main() {}
