use gcptr::Gc;

fn main() {
    let gc = Gc::new(String::from("owned"));
    let s: String = *gc;
    drop(s);
}
