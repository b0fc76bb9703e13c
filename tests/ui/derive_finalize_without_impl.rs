// `#[gc(finalize)]` promises an `impl Finalize`; without one, the error
// points at the attribute.
use gcptr::Trace;

#[derive(Trace)]
#[gc(finalize)]
struct Forgetful {
    id: u32,
}

fn main() {
    let _ = Forgetful { id: 1 }.id;
}
