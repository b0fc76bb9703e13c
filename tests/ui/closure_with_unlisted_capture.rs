use gcptr::{gc_closure, Gc};

fn main() {
    let listed = Gc::new(1);
    let hidden = Gc::new(2);
    let _sum = gc_closure!([listed] move || **listed + *hidden);
}
