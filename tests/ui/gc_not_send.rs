use gcptr::Gc;

fn main() {
    let gc = Gc::new(1u32);
    std::thread::spawn(move || {
        println!("{}", *gc);
    });
}
