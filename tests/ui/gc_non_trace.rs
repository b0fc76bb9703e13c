use gcptr::Gc;

struct Socket(u32);

fn main() {
    let _gc = Gc::new(Socket(3));
}
