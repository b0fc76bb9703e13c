// A field listed twice would be traced twice: the collector would count
// each of its `Gc`s as two edges and could free a live object.
mod foreign {
    pub struct Pair {
        pub left: gcptr::Gc<u32>,
        pub right: gcptr::Gc<u32>,
    }
}

// SAFETY: every field is listed (one of them twice, which must not compile).
gcptr::unsafe_trace_fields!(foreign::Pair { left, right, left });

fn main() {}
