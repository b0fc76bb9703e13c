//! A review of `gc_closure!` as a porter writes closures: arguments that
//! are patterns (`|(a, b): (i32, i32)|`, `|_: Event|`, `|&x: &i32|`), a
//! return type (`|x: i32| -> i32 { .. }`), and handlers of borrowed events
//! stored as `Box<dyn for<'a> GcFn<(&'a Event,)>>` (a GUI port's
//! `button.on_click(lambda event: ...)`). Each test asserts what the calls
//! returned, which objects died and how many drops ran. What the macro
//! still cannot do is pinned too: an argument written without a type takes
//! one type (not a reference of any lifetime), and a capture may not share
//! its name with an argument (`ui/closure_capture_named_as_argument.rs`).

mod support;

use std::cell::{Cell, RefCell};

use gcptr::{gc_closure, gc_coerce, Gc, GcFn, Trace, Weak};
use support::{take_drops, DropLog};

/// An event that a click handler borrows: each lives for one dispatch.
struct Event {
    name: String,
    x: i32,
}

impl Event {
    fn new(name: &str, x: i32) -> Event {
        Event {
            name: name.into(),
            x,
        }
    }
}

/// A handler of borrowed events, as a GUI port stores them.
type Handler = Box<dyn for<'a> GcFn<(&'a Event,)>>;

#[derive(Trace)]
struct Button {
    #[gc(skip)]
    log: DropLog,
    clicks: Cell<i32>,
    handlers: RefCell<Vec<Handler>>,
}

impl Button {
    fn new(id: u32) -> Gc<Button> {
        Gc::new(Button {
            log: DropLog(id),
            clicks: Cell::new(0),
            handlers: RefCell::new(Vec::new()),
        })
    }

    fn on_click(&self, handler: Handler) {
        self.handlers.borrow_mut().push(handler);
    }

    /// Calls every handler with an event that lives only for this call.
    fn click(&self, name: &str, x: i32) {
        let event = Event::new(name, x);
        for handler in self.handlers.borrow().iter() {
            handler.call((&event,));
        }
    }
}

/// A `Gc<Button>` whose `Vec<Box<dyn for<'a> GcFn<(&'a Event,)>>>`
/// handlers capture the button (and a shared log), called with events
/// that each live for one click: both handlers see every event; dropped,
/// the button lives on in its handlers' cycle, and one `collect()` frees
/// it (one object: the handlers are boxed inside it), dropping it once and
/// the handlers' clone of the log.
#[test]
fn button_handlers_take_events_of_any_lifetime_and_die_with_their_button() {
    take_drops();
    let seen = Gc::new(RefCell::new(Vec::<String>::new()));
    let button = Button::new(1);
    let weak: Weak<Button> = Gc::downgrade(&button);
    button.on_click(Box::new(gc_closure!([button] move |event: &Event| {
        button.clicks.set(button.clicks.get() + event.x)
    })));
    button.on_click(Box::new(gc_closure!([seen, button] move |event: &Event| {
        seen.borrow_mut().push(format!("{}@{}", event.name, button.clicks.get()));
    })));
    assert_eq!(button.log.0, 1);
    assert_eq!(
        Gc::strong_count(&button),
        3,
        "each handler holds the button"
    );
    assert_eq!(Gc::strong_count(&seen), 2);
    button.click("press", 2);
    for x in [3, 4] {
        button.click(&format!("drag{x}"), x);
    }
    assert_eq!(button.clicks.get(), 9);
    assert_eq!(*seen.borrow(), ["press@2", "drag3@5", "drag4@9"]);
    drop(button);
    assert!(take_drops().is_empty(), "the handlers keep the button");
    assert!(weak.upgrade().is_some());
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [1]);
    assert!(weak.upgrade().is_none());
    assert_eq!(Gc::strong_count(&seen), 1, "the handler's clone is dropped");
    assert_eq!(gcptr::collect(), 0);
}

/// A handler of borrowed events behind `Gc<dyn for<'a> GcFn<(&'a Event,)>>`
/// (through `gc_coerce!`), kept by the button it captures: a two-object
/// cycle that `collect()` frees (2 objects), the button dropped once. A
/// handler with two borrowed arguments, `for<'a, 'b>`, returns a value.
#[test]
fn gc_dyn_handlers_of_borrowed_arguments_form_collectable_cycles() {
    type Shared = Gc<dyn for<'a> GcFn<(&'a Event,)>>;
    #[derive(Trace)]
    struct Widget {
        #[gc(skip)]
        log: DropLog,
        total: Cell<i32>,
        handler: RefCell<Option<Shared>>,
    }
    take_drops();
    let widget = Gc::new(Widget {
        log: DropLog(2),
        total: Cell::new(0),
        handler: RefCell::new(None),
    });
    let add =
        gc_closure!([widget] move |event: &Event| widget.total.set(widget.total.get() + event.x));
    let add: Shared = gc_coerce!(Gc::new(add) => dyn for<'a> GcFn<(&'a Event,)>);
    *widget.handler.borrow_mut() = Some(add.clone());
    for x in 1..=3 {
        let event = Event::new("tick", x);
        widget.handler.borrow().as_ref().unwrap().call((&event,));
    }
    assert_eq!(widget.total.get(), 6);
    assert_eq!(widget.log.0, 2);

    let width = Gc::new(10usize);
    let fits = gc_closure!([width] move |text: &str, bytes: &[u8]| -> bool {
        text.len() + bytes.len() <= **width
    });
    type Fits = Box<dyn for<'a, 'b> GcFn<(&'a str, &'b [u8]), bool>>;
    let fits: Fits = Box::new(fits);
    let text = String::from("hello");
    assert!(fits.call((&text, &b"abc"[..])));
    assert!(!fits.call((&text, &[0; 6][..])));

    drop((widget, add));
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 2, "the widget and its handler");
    assert_eq!(take_drops(), [2]);
    drop(fits);
    assert_eq!(Gc::strong_count(&width), 1);
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Point {
    x: i32,
    y: i32,
}

/// Arguments as patterns, each with or without a type: tuples, `_`, `&x`,
/// `mut x`, a struct, an array, `ref`, nested ones, a trailing comma; a
/// return type before a block body, with arguments and without; `| |`.
#[test]
fn arguments_are_patterns_and_a_return_type_may_be_written() {
    let base = Gc::new(Cell::new(100));
    let sum = gc_closure!([base] move |(a, b): (i32, i32), _: &str, &k: &i32| -> i32 {
        base.get() + (a + b) * k
    });
    assert_eq!(sum.call(((2, 3), "ignored", &4)), 120);

    let moved = gc_closure!([] move |Point { x, y }: Point, [first, .., last]: [u8; 4], mut n: u32| {
        n += u32::from(first) + u32::from(last);
        (x * y, n)
    });
    assert_eq!(
        moved.call((Point { x: 2, y: 5 }, [1, 9, 9, 2], 10)),
        (10, 13)
    );

    // Untyped patterns take their types from the call.
    let swap = gc_closure!([] move |(a, b), c,| (b, a, c));
    assert_eq!(swap.call(((1u8, "b"), 'c')), ("b", 1u8, 'c'));

    let nested = gc_closure!([base] move |((a, _), ref label): ((i32, i32), String), opt: Option<i32>| -> String {
        base.set(base.get() + a + opt.unwrap_or(0));
        format!("{label}={}", base.get())
    });
    assert_eq!(nested.call((((1, 99), "x".into()), Some(2))), "x=103");
    assert_eq!(nested.call((((1, 99), "y".into()), None)), "y=104");

    let seven = gc_closure!([] move || -> u8 { 7 });
    assert_eq!(seven.call(()), 7);
    let spaced = gc_closure!([base] move | | base.get());
    assert_eq!(spaced.call(()), 104);
}

/// An argument written without a type takes the one type its uses infer,
/// as before: such a closure may return a borrow of it (what a closure
/// whose argument type is written as a reference cannot), and is stored
/// as `GcFn<(&'static str,), &'static str>`.
#[test]
fn an_untyped_argument_keeps_its_one_inferred_type() {
    let calls = Gc::new(Cell::new(0));
    let echo = gc_closure!([calls] move |s| {
        calls.set(calls.get() + 1);
        s
    });
    let echo: Box<dyn GcFn<(&'static str,), &'static str>> = Box::new(echo);
    assert_eq!(echo.call(("same",)), "same");
    assert_eq!(calls.get(), 1);
}

/// The macro's own locals (`captures`, `captures_of`, `function`,
/// `arguments`) are hygienic: captures and arguments of those names are
/// the user's, and each capture is cloned once into the closure.
#[test]
fn captures_and_arguments_named_as_the_macros_locals_are_the_users() {
    let captures = Gc::new(1);
    let captures_of = Gc::new(2);
    let function = Gc::new(4);
    let f = gc_closure!([captures, captures_of, function] move |arguments: i32, body: i32| {
        **captures + **captures_of + **function + arguments * body
    });
    assert_eq!(f.call((8, 2)), 23);
    assert_eq!(Gc::strong_count(&captures), 2);
    assert_eq!(Gc::strong_count(&captures_of), 2);
    assert_eq!(Gc::strong_count(&function), 2);
    assert_eq!(
        gcptr::referents(f.captures()),
        [
            Gc::as_ptr(&captures).cast::<()>(),
            Gc::as_ptr(&captures_of).cast::<()>(),
            Gc::as_ptr(&function).cast::<()>(),
        ]
    );
}

/// A `gc_closure!` inside another's body, with borrowed arguments in both:
/// the inner one captures the outer's capture (a reference to a `Gc`,
/// cloned as the `Gc`) and is returned from the call as a
/// `Gc<dyn for<'a> GcFn<(&'a Event,), i32>>`.
#[test]
fn nested_closures_with_borrowed_arguments() {
    type Measure = Gc<dyn for<'a> GcFn<(&'a Event,), i32>>;
    let scale = Gc::new(Cell::new(3));
    let make = gc_closure!([scale] move |prefix: &str| -> Measure {
        let len = prefix.len() as i32;
        let inner = gc_closure!([scale] move |event: &Event| event.x * scale.get() + len);
        gc_coerce!(Gc::new(inner) => dyn for<'a> GcFn<(&'a Event,), i32>)
    });
    let measure = make.call(("ab",));
    assert_eq!(Gc::strong_count(&scale), 3);
    scale.set(5);
    assert_eq!(measure.call((&Event::new("e", 2),)), 12);
    drop(make);
    drop(measure);
    assert_eq!(Gc::strong_count(&scale), 1);
}

/// A closure over captures that own no `Gc` stays untracked, with
/// arguments and patterns as without: the marker of the captures' type in
/// the function adds no edge and no drop.
#[test]
fn closures_with_arguments_keep_their_captures_type_facts() {
    let leaf = Gc::new(5u64);
    let plain = Gc::new(
        gc_closure!([leaf] move |(a, b): (u64, u64), e: &Event| **leaf + a * b + e.x as u64),
    );
    assert!(!gcptr::is_tracked(&plain));
    assert_eq!(plain.call(((2, 3), &Event::new("e", 1))), 12);
    let cell = Gc::new(RefCell::new(None::<Gc<u64>>));
    let tracked = Gc::new(gc_closure!([cell] move |_: &Event| cell.borrow().is_some()));
    assert!(gcptr::is_tracked(&tracked));
    assert_eq!(
        gcptr::referents(&*tracked),
        [Gc::as_ptr(&cell).cast::<()>()]
    );
}

/// A body with a return type may return early and use `?`; a borrowed
/// argument with a written type and an untyped one together: the closure
/// is higher-ranked over the first, and the second takes the type of the
/// calls (`for<'a> GcFn<(&'a Event, i32), Result<i32, String>>`).
#[test]
fn bodies_return_early_and_mix_borrowed_and_inferred_arguments() {
    type Parse = Box<dyn for<'a> GcFn<(&'a Event, i32), Result<i32, String>>>;
    let limit = Gc::new(10);
    let parse = gc_closure!([limit] move |event: &Event, bonus| -> Result<i32, String> {
        if event.name.is_empty() {
            return Err("no name".into());
        }
        let n: i32 = event.name.parse().map_err(|_| format!("{} is no number", event.name))?;
        Ok((n + event.x).min(**limit) + bonus)
    });
    let parse: Parse = Box::new(parse);
    assert_eq!(parse.call((&Event::new("3", 1), 2)), Ok(6));
    assert_eq!(parse.call((&Event::new("30", 1), 1)), Ok(11));
    assert_eq!(parse.call((&Event::new("", 1), 0)), Err("no name".into()));
    assert_eq!(
        parse.call((&Event::new("x", 1), 0)),
        Err("x is no number".into())
    );
}
