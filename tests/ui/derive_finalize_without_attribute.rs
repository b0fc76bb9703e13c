// A type that implements `Finalize` but whose derive has no
// `#[gc(finalize)]`: its `finalize` would never run. The error names the
// type and the fix, at the type's name.
use gcptr::{Finalize, Trace};

#[derive(Trace)]
struct Forgot {
    id: u32,
}

impl Finalize for Forgot {
    fn finalize(&self) {
        println!("closing {}", self.id);
    }
}

#[derive(Trace)]
enum Generic<T> {
    Empty,
    Full(T),
}

impl<T: Trace> Finalize for Generic<T> {
    fn finalize(&self) {}
}

// Opted in: no error.
#[derive(Trace)]
#[gc(finalize)]
struct Remembered(u32);

impl Finalize for Remembered {
    fn finalize(&self) {}
}

// A `Finalize` impl for some arguments only is not seen (a limit).
#[derive(Trace)]
struct Only<T>(T);

impl Finalize for Only<u32> {
    fn finalize(&self) {}
}

fn main() {
    let _ = (Forgot { id: 1 }.id, Remembered(2).0, Only(3u32).0);
    let _ = Generic::<u8>::Empty;
    let _ = Generic::Full(4u8);
}
