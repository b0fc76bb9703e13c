use gcptr::Gc;

fn main() {
    let gc = Gc::new(1u32);
    let shared = &gc;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            println!("{}", **shared);
        });
    });
}
