use gcptr::Gc;

fn main() {
    let gc = Gc::new(1u32);
    *gc = 5;
}
