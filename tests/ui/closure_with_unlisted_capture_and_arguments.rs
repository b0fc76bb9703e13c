use gcptr::{gc_closure, Gc};

struct Event {
    x: i32,
}

fn main() {
    let listed = Gc::new(1);
    let hidden = Gc::new(2);
    let _sum = gc_closure!([listed] move |(a, b): (i32, i32), event: &Event| -> i32 {
        **listed + *hidden + a + b + event.x
    });
}
