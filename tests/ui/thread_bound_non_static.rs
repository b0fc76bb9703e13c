use gcptr::sync::ThreadBound;

// A value sent home is dropped later, on its home thread: it must not
// borrow anything that could be gone by then.
fn main() {
    let text = String::from("borrowed");
    let handle = ThreadBound::new(text.as_str());
    std::thread::spawn(move || drop(handle));
}
