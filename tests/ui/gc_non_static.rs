use gcptr::Gc;

fn main() {
    let text = String::from("borrowed");
    let _gc = Gc::new(text.as_str());
}
