use gcptr::{gc_closure, Gc};

fn main() {
    let x = Gc::new(1);
    // A capture and an argument of one name: which would the body see?
    let _f = gc_closure!([x] move |x: i32| x + 1);
}
