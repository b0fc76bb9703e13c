// Parameters that `unsafe_trace_leaf!` and `unsafe_trace_fields!` do not
// take are refused with a message that names what went wrong: a bound on
// a lifetime, a default, a missing comma.
mod foreign {
    pub struct Pair<'a, 'b>(pub &'a u8, pub &'b u8);
    pub struct Wrap<T = u8>(pub T);
    pub struct Two<T, U>(pub T, pub U);
}

gcptr::unsafe_trace_leaf!(impl<'a, 'b: 'a> foreign::Pair<'a, 'b>);
gcptr::unsafe_trace_fields!(impl<T = u8> foreign::Wrap<T> { 0 });
gcptr::unsafe_trace_fields!(impl<T U> foreign::Two<T, U> { 0, 1 });

fn main() {}
