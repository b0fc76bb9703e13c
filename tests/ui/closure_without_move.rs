use gcptr::{gc_closure, Gc};

fn main() {
    let button = Gc::new(1);
    // Without `move`, and with a field in the list: each gets the form.
    let _f = gc_closure!([button] |x: i32| **button + x);
    let pair = (Gc::new(2), 3);
    let _g = gc_closure!([pair.0] move || **pair.0);
}
