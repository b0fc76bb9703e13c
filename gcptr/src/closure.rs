//! Closures whose captured `Gc`s the collector can see: [`GcClosure`],
//! the [`GcFn`] trait for storing them, and [`gc_closure!`](crate::gc_closure).
//!
//! A plain Rust closure that captures a `Gc` hides it from the collector:
//! a button whose click handler captures the button would be a cycle that
//! no collection can see. A `GcClosure` keeps its captures in a traced
//! tuple instead, and the function itself must be `Copy`, which a closure
//! is only when it captures no `Gc` (nor any other owned value) of its own:
//! forgetting to list a capture is a compile error, not a leak.

use core::fmt;
use core::marker::PhantomData;

use crate::trace::{Trace, Tracer};

/// A function together with the values it captures, which the collector
/// traces. Made by [`gc_closure!`](crate::gc_closure); called with
/// [`call`](GcClosure::call) or through [`GcFn`].
///
/// # Examples
///
/// ```
/// use gcptr::{Gc, GcClosure};
///
/// let counter = Gc::new(std::cell::Cell::new(0));
/// let bump = GcClosure::new((counter.clone(),), |(counter,): &(Gc<std::cell::Cell<i32>>,), by: i32| {
///     counter.set(counter.get() + by)
/// });
/// bump.call(2);
/// bump.call(3);
/// assert_eq!(counter.get(), 5);
/// ```
pub struct GcClosure<C, F> {
    captures: C,
    function: F,
}

impl<C: Trace, F: Copy + 'static> GcClosure<C, F> {
    /// A closure of `function` over `captures`. `function` receives the
    /// captures by reference, then the call's argument.
    ///
    /// ```
    /// let twice = gcptr::GcClosure::new((2,), |(k,): &(i32,), x: i32| k * x);
    /// assert_eq!(twice.call(21), 42);
    /// ```
    pub fn new<A, R>(captures: C, function: F) -> Self
    where
        F: Fn(&C, A) -> R,
    {
        GcClosure { captures, function }
    }

    /// Calls the function with the captures and `argument` (use a tuple
    /// for several, `()` for none).
    ///
    /// ```
    /// let add = gcptr::gc_closure!([] move |a: i32, b: i32| a + b);
    /// assert_eq!(add.call((2, 3)), 5);
    /// ```
    pub fn call<A, R>(&self, argument: A) -> R
    where
        F: Fn(&C, A) -> R,
    {
        (self.function)(&self.captures, argument)
    }

    /// The captured values.
    ///
    /// ```
    /// let name = gcptr::Gc::new(String::from("x"));
    /// let f = gcptr::gc_closure!([name] move || name.len());
    /// assert_eq!(*f.captures().0, "x");
    /// ```
    pub fn captures(&self) -> &C {
        &self.captures
    }
}

// SAFETY: visits the captures; the function is `Copy`, so it owns no `Gc`.
unsafe impl<C: Trace, F: Copy + 'static> Trace for GcClosure<C, F> {
    fn trace(&self, tracer: &mut Tracer) {
        self.captures.trace(tracer);
    }

    fn __may_own_gc(depth: u32) -> bool {
        C::__may_own_gc(depth)
    }

    fn __edges_fixed(depth: u32) -> bool {
        C::__edges_fixed(depth)
    }

    // Dropping it drops the captures and nothing else (`F` is `Copy`).
    fn __drop_only_releases_gcs() -> bool {
        C::__drop_only_releases_gcs()
    }
}

/// What `gc_closure!` demands of its function: `Copy`, which a closure is
/// only when it owns nothing of its own, so that every owned capture was
/// listed (and is traced). Its own trait so that the error names the fix.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "this `gc_closure!` uses a variable that is not in its capture list",
    label = "a variable used in here is moved into the closure unlisted",
    note = "list each variable the body uses in the brackets, as `gc_closure!([a, b] move || ...)`: \
            listed captures are cloned into a tuple that the collector traces; the function \
            itself must own nothing (be `Copy`), so that no `Gc` hides from the collector"
)]
pub trait CapturesListed<C, A>: Copy {}

// Not recommended, so that an error names `CapturesListed` and its fix
// rather than `Copy` (Rust 1.85; older compilers ignore the attribute).
// Generic over the captures and arguments, and so bound by `Fn` too, so
// that a closure's result never implements it: for a `Copy` result, the
// compiler would suggest calling the closure.
#[diagnostic::do_not_recommend]
impl<C, A, R, F: Copy + Fn(&C, A) -> R> CapturesListed<C, A> for F {}

/// `GcClosure::new` for `gc_closure!`, whose check names the fix.
#[doc(hidden)]
pub fn __listed<C: Trace, A, R, F>(captures: C, function: F) -> GcClosure<C, F>
where
    F: CapturesListed<C, A> + Fn(&C, A) -> R + 'static,
{
    GcClosure { captures, function }
}

/// The type of `gc_closure!`'s captures, for the closure that it makes
/// before any bound can tell their type (see the macro's "Expansion"): a
/// `Copy` marker that owns nothing, so the closure stays `Copy`.
#[doc(hidden)]
pub struct CapturesOf<C>(PhantomData<fn() -> C>);

impl<C> Clone for CapturesOf<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for CapturesOf<C> {}

impl<C> CapturesOf<C> {
    /// The marker of `captures`' type.
    #[inline(always)]
    pub fn of(_captures: &C) -> Self {
        CapturesOf(PhantomData)
    }

    /// Calls `body` with the captures and arguments: the closure that
    /// `body` is gets the captures' type from this signature.
    #[inline(always)]
    pub fn call<A, R>(self, captures: &C, arguments: A, body: impl FnOnce(&C, A) -> R) -> R {
        body(captures, arguments)
    }
}

impl<C, F> fmt::Debug for GcClosure<C, F> {
    /// `GcClosure`: neither a function nor its captures can be shown.
    ///
    /// ```
    /// let f = gcptr::gc_closure!([] move || 1);
    /// assert_eq!(format!("{f:?}"), "GcClosure");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GcClosure")
    }
}

/// A callable that the collector can trace: store a [`GcClosure`] as
/// `Box<dyn GcFn<A, R>>` in a field, or as `Gc<dyn GcFn<A, R>>` (with
/// [`gc_coerce!`](crate::gc_coerce)).
///
/// # Examples
///
/// ```
/// use std::cell::{Cell, RefCell};
/// use gcptr::{gc_closure, Gc, GcFn, Trace};
///
/// #[derive(Trace)]
/// struct Button {
///     clicks: Cell<u32>,
///     on_click: RefCell<Option<Box<dyn GcFn>>>,
/// }
///
/// let button = Gc::new(Button { clicks: Cell::new(0), on_click: RefCell::new(None) });
/// // The handler captures the button: a cycle the collector can see.
/// let handler = gc_closure!([button] move || button.clicks.set(button.clicks.get() + 1));
/// *button.on_click.borrow_mut() = Some(Box::new(handler));
/// button.on_click.borrow().as_ref().unwrap().call(());
/// assert_eq!(button.clicks.get(), 1);
/// drop(button);
/// assert_eq!(gcptr::collect(), 1);
/// ```
pub trait GcFn<A = (), R = ()>: Trace {
    /// Calls the function.
    ///
    /// ```
    /// use gcptr::GcFn;
    ///
    /// let f: Box<dyn GcFn<(u8,), u8>> = Box::new(gcptr::gc_closure!([] move |x: u8| x + 1));
    /// assert_eq!(f.call((1,)), 2);
    /// ```
    fn call(&self, argument: A) -> R;
}

impl<C: Trace, F: Fn(&C, A) -> R + Copy + 'static, A, R> GcFn<A, R> for GcClosure<C, F> {
    fn call(&self, argument: A) -> R {
        GcClosure::call(self, argument)
    }
}

/// Makes a [`GcClosure`]: a closure whose captures are listed, so that the
/// collector traces them.
///
/// `gc_closure!([a, b] move |x, y| body)` clones `a` and `b` into the
/// closure (the outer variables stay usable, as names do in Python); inside
/// `body` they are references to the clones. The arguments arrive as one
/// tuple: call it with `closure.call((x, y))`, or `call(())` for none.
///
/// Each capture is cloned by `Clone` in a method call (never an inherent
/// or another trait's `clone`), so a name bound to a reference to a `Gc`
/// captures the `Gc` itself: a function's `&Gc<T>` parameter, or the
/// capture of an enclosing `gc_closure!`, which its body sees as one.
///
/// ```
/// use std::cell::Cell;
/// use gcptr::{gc_closure, Gc};
///
/// // `counter` is a reference here, but the closure keeps a `Gc`.
/// fn bumper(counter: &Gc<Cell<u32>>) -> impl Fn() {
///     let bump = gc_closure!([counter] move || counter.set(counter.get() + 1));
///     move || bump.call(())
/// }
/// let counter = Gc::new(Cell::new(0));
/// let bump = bumper(&counter);
/// bump();
/// assert_eq!(counter.get(), 1);
/// assert_eq!(Gc::strong_count(&counter), 2, "the closure holds a clone");
/// ```
///
/// The arguments are written as a closure's are: a pattern each, with or
/// without its type, and a return type before a block body:
///
/// ```
/// let scaled = gcptr::gc_closure!([] move |(a, b): (i32, i32), &k: &i32, _: &str| -> i32 {
///     (a + b) * k
/// });
/// assert_eq!(scaled.call(((2, 3), &4, "unused")), 20);
/// ```
///
/// A capture that is not listed makes the closure non-`Copy`, which is a
/// compile error: a `Gc` hidden from the collector cannot slip in. (The
/// error names the fix, not the variable: look for a name in the body
/// that the brackets do not list.) The list holds variable names only;
/// for `self` or a field, bind a variable first (`let this = ...;`).
///
/// # Examples
///
/// ```
/// use gcptr::{gc_closure, Gc};
///
/// let greeting = Gc::new(String::from("hello"));
/// let greet = gc_closure!([greeting] move |name: &str| format!("{greeting}, {name}"));
/// assert_eq!(greet.call(("world",)), "hello, world");
/// ```
///
/// # Arguments that borrow
///
/// As with any Rust closure, an argument whose type is written as a
/// reference (`|event: &Event|`) takes a reference of any lifetime: the
/// closure implements `for<'a> GcFn<(&'a Event,)>`, so that handlers of
/// borrowed events can be stored together as
/// `Box<dyn for<'a> GcFn<(&'a Event,)>>` (or `Gc<dyn ...>`, with
/// [`gc_coerce!`](crate::gc_coerce)). An argument written without a type
/// takes the one type that its uses infer (`GcFn<(&'static str,)>`, say).
/// So a body that keeps a borrowed argument somewhere that outlives the
/// call writes its lifetime, or no type: `|s: &str|` that pushes `s` into
/// a `Vec<&'static str>` is rejected ("borrowed data escapes outside of
/// closure", naming the expansion's `captures` and `arguments`), as it is
/// for a plain closure made in a `let` (earlier versions of the macro,
/// whose borrowed arguments were not higher-ranked, accepted it).
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{gc_closure, Gc};
///
/// let log: Gc<RefCell<Vec<&'static str>>> = Gc::new(RefCell::new(Vec::new()));
/// let typed = gc_closure!([log] move |s: &'static str| log.borrow_mut().push(s));
/// let untyped = gc_closure!([log] move |s| log.borrow_mut().push(s));
/// typed.call(("a",));
/// untyped.call(("b",));
/// assert_eq!(*log.borrow(), ["a", "b"]);
/// ```
///
/// ```compile_fail,E0521
/// use std::cell::RefCell;
/// use gcptr::{gc_closure, Gc};
///
/// let log: Gc<RefCell<Vec<&'static str>>> = Gc::new(RefCell::new(Vec::new()));
/// let kept = gc_closure!([log] move |s: &str| log.borrow_mut().push(s));
/// ```
///
/// ```
/// use std::cell::{Cell, RefCell};
/// use gcptr::{gc_closure, Gc, GcFn, Trace};
///
/// struct Event {
///     x: i32,
/// }
///
/// type Handler = Box<dyn for<'a> GcFn<(&'a Event,)>>;
///
/// #[derive(Trace)]
/// struct Button {
///     clicks: Cell<i32>,
///     handlers: RefCell<Vec<Handler>>,
/// }
///
/// let button = Gc::new(Button { clicks: Cell::new(0), handlers: RefCell::new(Vec::new()) });
/// let count: Handler = Box::new(gc_closure!([button] move |event: &Event| {
///     button.clicks.set(button.clicks.get() + event.x)
/// }));
/// button.handlers.borrow_mut().push(count);
/// for x in [1, 2] {
///     let event = Event { x }; // each event lives for one click
///     for handler in button.handlers.borrow().iter() {
///         handler.call((&event,));
///     }
/// }
/// assert_eq!(button.clicks.get(), 3);
/// drop(button); // the handler still holds it: a cycle
/// assert_eq!(gcptr::collect(), 1);
/// ```
///
/// A closure cannot return a borrow of such an argument (Rust does not
/// tie a closure's result to its arguments' lifetimes). A function that
/// does is an `fn` item, which is general over its lifetimes, given to
/// [`GcClosure::new`] with the captures:
///
/// ```
/// use std::cell::Cell;
/// use gcptr::{gc_coerce, Gc, GcClosure, GcFn};
///
/// struct Event {
///     name: String,
/// }
///
/// fn name_of<'a>((seen,): &(Gc<Cell<usize>>,), event: &'a Event) -> &'a str {
///     seen.set(seen.get() + 1);
///     &event.name
/// }
///
/// let seen = Gc::new(Cell::new(0));
/// let handler: Gc<dyn for<'a> GcFn<&'a Event, &'a str>> =
///     gc_coerce!(Gc::new(GcClosure::new((seen.clone(),), name_of)) => dyn for<'a> GcFn<&'a Event, &'a str>);
/// let click = Event { name: "click".into() };
/// assert_eq!(handler.call(&click), "click");
/// assert_eq!(seen.get(), 1);
/// ```
///
/// An unlisted capture is rejected:
///
/// ```compile_fail
/// use gcptr::{gc_closure, Gc};
/// let hidden = Gc::new(1);
/// let f = gc_closure!([] move || *hidden + 1);
/// ```
///
/// # Expansion
///
/// `gc_closure!([a] move |(x, y): (i32, i32), z| body)` becomes, in
/// outline (`__gc_closure_arguments!` splits the arguments into patterns
/// and types, `__gc_closure_build!` writes this):
///
/// ```text
/// let captures = (a.clone(),);
/// let captures_of = CapturesOf::of(&captures);    // names the tuple's type
/// let function = move |captures: &_, arguments: ((i32, i32), _)| {
///     captures_of.call(captures, arguments, |(a,), ((x, y), z)| body)
/// };
/// __listed(captures, function)                    // checks `function: Copy`
/// ```
///
/// `function` is made in a `let`, before any bound on it is known, so that
/// its signature is the one written: a reference in an argument's type
/// then stands for any lifetime (a closure passed straight to a function
/// takes its signature from that function's bound, where the argument's
/// type is one unknown type). The inner closure gets the patterns, with
/// the types known, and the body; it borrows the body's other variables
/// from `function`, which (being `move`) owns them: an unlisted one makes
/// `function` non-`Copy`, and `__listed` rejects it.
#[macro_export]
macro_rules! gc_closure {
    // No arguments (`||` is one token).
    ([$($capture:ident),* $(,)?] move || $($body:tt)*) => {
        $crate::__gc_closure_build!([$($capture),*] [] $($body)*)
    };
    ([$($capture:ident),* $(,)?] move | $($arguments_and_body:tt)*) => {
        $crate::__gc_closure_arguments!([$($capture),*] [] [] $($arguments_and_body)*)
    };
    // Anything else: say what the macro takes (rather than "no rules
    // expected this token").
    ($($other:tt)*) => {
        ::core::compile_error!(
            "`gc_closure!` takes variable names in brackets, then a `move` closure: \
             `gc_closure!([a, b] move |x: i32, (y, z): (u8, u8)| body)`; bind `self` or a \
             field to a variable first"
        )
    };
}

/// Splits `gc_closure!`'s arguments into patterns and types, one token of
/// a pattern at a time: `[captures] [{pattern} type, ...] [pattern so far]
/// rest`. A pattern ends at a `:` (a type follows), a `,` or the closing
/// `|` (its type is inferred); `::` is one token, and commas, colons and
/// `|`s inside a pattern are inside its brackets.
#[doc(hidden)]
#[macro_export]
macro_rules! __gc_closure_arguments {
    // `pattern: Type,` and `pattern: Type|`
    ([$($capture:ident),*] [$($done:tt)*] [$($pattern:tt)+] : $type:ty, $($rest:tt)*) => {
        $crate::__gc_closure_arguments!([$($capture),*] [$($done)* {$($pattern)+} $type,] [] $($rest)*)
    };
    ([$($capture:ident),*] [$($done:tt)*] [$($pattern:tt)+] : $type:ty | $($body:tt)*) => {
        $crate::__gc_closure_build!([$($capture),*] [$($done)* {$($pattern)+} $type,] $($body)*)
    };
    // `pattern,` and `pattern|`: the type is inferred.
    ([$($capture:ident),*] [$($done:tt)*] [$($pattern:tt)+] , $($rest:tt)*) => {
        $crate::__gc_closure_arguments!([$($capture),*] [$($done)* {$($pattern)+} _,] [] $($rest)*)
    };
    ([$($capture:ident),*] [$($done:tt)*] [$($pattern:tt)+] | $($body:tt)*) => {
        $crate::__gc_closure_build!([$($capture),*] [$($done)* {$($pattern)+} _,] $($body)*)
    };
    // `|` after a trailing comma, or `| |`.
    ([$($capture:ident),*] [$($done:tt)*] [] | $($body:tt)*) => {
        $crate::__gc_closure_build!([$($capture),*] [$($done)*] $($body)*)
    };
    // A `:` that none of the rules above took: no type after it, or a type
    // followed by neither `,` nor `|` (a missing comma). A pattern's own
    // colons are inside its brackets, so this one began a type.
    ([$($capture:ident),*] [$($done:tt)*] [$($pattern:tt)+] : $($rest:tt)*) => {
        ::core::compile_error!(
            "`gc_closure!`: each argument is a pattern with or without `: Type`, the \
             arguments are separated by commas, and a `|` ends them: \
             `move |x: i32, (y, z): (u8, u8), w| body`"
        )
    };
    // One more token of the pattern.
    ([$($capture:ident),*] [$($done:tt)*] [$($pattern:tt)*] $next:tt $($rest:tt)*) => {
        $crate::__gc_closure_arguments!([$($capture),*] [$($done)*] [$($pattern)* $next] $($rest)*)
    };
    // The input ended inside the arguments.
    ([$($capture:ident),*] [$($done:tt)*] [$($pattern:tt)*]) => {
        ::core::compile_error!("`gc_closure!`: the closure's arguments have no closing `|`, and it has no body")
    };
}

/// Writes `gc_closure!`'s expansion (see its "Expansion" section) from the
/// captures, the arguments' patterns and types, and the body, with or
/// without a return type.
#[doc(hidden)]
#[macro_export]
macro_rules! __gc_closure_build {
    ([$($capture:ident),*] [$($arguments:tt)*]) => {
        ::core::compile_error!("`gc_closure!`: the closure has no body after its arguments")
    };
    (@ [$($capture:ident),*] [$({$($pattern:tt)+} $type:ty,)*] [$ret:ty] $body:expr) => {{
        let captures = ($($crate::__gc_closure_capture!($capture),)*);
        let captures_of = $crate::__private::CapturesOf::of(&captures);
        let function = move |captures: &_, arguments: ($($type,)*)| {
            captures_of.call(captures, arguments, |($($capture,)*), ($($($pattern)+,)*)| -> $ret {
                $body
            })
        };
        $crate::__private::gc_closure_listed(captures, function)
    }};
    ([$($capture:ident),*] [$($arguments:tt)*] -> $ret:ty $body:block) => {
        $crate::__gc_closure_build!(@ [$($capture),*] [$($arguments)*] [$ret] $body)
    };
    ([$($capture:ident),*] [$($arguments:tt)*] $body:expr) => {
        $crate::__gc_closure_build!(@ [$($capture),*] [$($arguments)*] [_] $body)
    };
}

/// One capture of `gc_closure!`, cloned by [`CaptureClone`]: a method
/// call, so that a reference to a `Gc` is cloned as the `Gc` (autoderef),
/// under a name that no inherent method and no other trait in scope
/// shares (`a.clone()` would call an inherent `clone`, and is ambiguous
/// with a trait in scope that has one).
#[doc(hidden)]
#[macro_export]
macro_rules! __gc_closure_capture {
    ($capture:ident) => {{
        use $crate::__private::CaptureClone as _;
        $capture.__gcptr_capture_clone()
    }};
}

/// `Clone::clone` under a name of its own, for [`__gc_closure_capture!`].
#[doc(hidden)]
pub trait CaptureClone: Clone {
    /// `Clone::clone(self)`.
    #[inline(always)]
    fn __gcptr_capture_clone(&self) -> Self {
        Clone::clone(self)
    }
}

impl<T: Clone> CaptureClone for T {}
