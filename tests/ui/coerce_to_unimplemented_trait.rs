use gcptr::{gc_coerce, Gc, Trace};

trait Shape: Trace {
    fn area(&self) -> f64;
}

fn main() {
    let number = Gc::new(5u32);
    let _shape: Gc<dyn Shape> = gc_coerce!(number => dyn Shape);
}
