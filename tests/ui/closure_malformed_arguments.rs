use gcptr::gc_closure;

fn main() {
    // A colon with no type after it.
    let _a = gc_closure!([] move |x: | 1);
    // A missing comma between two arguments.
    let _b = gc_closure!([] move |x: u8 y: u8| x + y);
    // No body.
    let _c = gc_closure!([] move |x: u8|);
    // No closing `|`.
    let _d = gc_closure!([] move |x: u8);
}
