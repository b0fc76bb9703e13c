// A bound other than `?Sized` in `unsafe_trace_fields!`'s parameters is
// refused with a message that names the forms it takes.
use gcptr::Gc;

mod foreign {
    pub struct Pair<T> {
        pub left: T,
        pub right: T,
    }
}

gcptr::unsafe_trace_fields!(impl<T: Clone> foreign::Pair<T> { left, right });

fn main() {
    let _ = Gc::new(1u8);
}
