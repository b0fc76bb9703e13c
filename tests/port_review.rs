//! Four small programs ported from Python object graphs the way a newcomer
//! would write them after reading only the README and the rustdoc: a
//! document tree whose event listeners capture their own nodes, an
//! interning cache on a `WeakValueMap` with a logging finalizer, subjects
//! and `Gc<dyn Observer>`s that unsubscribe from inside a notification, and
//! a small interpreter's environment chain with closures run for many
//! iterations under the automatic collector. Each asserts what died, how
//! many drops ran and what upgrades returned. The friction met while
//! writing them is in the report of the session that wrote this file; what
//! it fixed is pinned at the end.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use gcptr::{
    gc_closure, gc_coerce, Finalize, Gc, GcFn, Trace, Weak, WeakKeyMap, WeakSet, WeakValueMap,
};

thread_local! {
    /// What died (or was finalized), in order, on this thread.
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(entry: String) {
    // At thread exit the log may be gone before the objects are.
    let _ = LOG.try_with(|l| l.borrow_mut().push(entry));
}

/// The log since the last call, in order.
fn take_log() -> Vec<String> {
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// The log since the last call, sorted (for deaths in one collection,
/// whose order is not promised).
fn take_log_sorted() -> Vec<String> {
    let mut entries = take_log();
    entries.sort();
    entries
}

// ---------------------------------------------------------------------
// 1. A document tree with event listeners that capture their nodes.
// ---------------------------------------------------------------------

/// A listener: gets the event's name.
type Listener = Gc<dyn GcFn<(&'static str,)>>;

#[derive(Trace)]
struct Element {
    tag: String,
    parent: RefCell<Weak<Element>>,
    children: RefCell<Vec<Gc<Element>>>,
    listeners: RefCell<Vec<Listener>>,
    clicks: Cell<u32>,
}

impl Drop for Element {
    fn drop(&mut self) {
        log(format!("drop {}", self.tag));
    }
}

impl Element {
    fn new(tag: &str) -> Gc<Element> {
        Gc::new(Element {
            tag: tag.into(),
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
            listeners: RefCell::new(Vec::new()),
            clicks: Cell::new(0),
        })
    }

    fn append(parent: &Gc<Element>, child: &Gc<Element>) {
        *child.parent.borrow_mut() = Gc::downgrade(parent);
        parent.children.borrow_mut().push(child.clone());
    }

    /// `node.remove()`: out of its parent's children, if it has a parent.
    fn remove(&self) {
        let parent = std::mem::take(&mut *self.parent.borrow_mut());
        if let Some(parent) = parent.upgrade() {
            parent
                .children
                .borrow_mut()
                .retain(|c| !std::ptr::eq(Gc::as_ptr(c), self));
        }
    }

    fn add_listener(&self, listener: Listener) {
        self.listeners.borrow_mut().push(listener);
    }

    /// Calls each listener registered when the event fires, then bubbles
    /// to the parent. The list is copied first, so a listener may add or
    /// remove listeners, or remove its node.
    fn dispatch(&self, event: &'static str) {
        let listeners = self.listeners.borrow().clone();
        for listener in &listeners {
            listener.call((event,));
        }
        if let Some(parent) = self.parent.borrow().upgrade() {
            parent.dispatch(event);
        }
    }

    /// `node.addEventListener("click", lambda e: node.clicks += 1)`, in a
    /// helper that has only a reference to the node.
    fn count_clicks(node: &Gc<Element>) {
        let listener = gc_closure!([node] move |_event| node.clicks.set(node.clicks.get() + 1));
        node.add_listener(gc_coerce!(Gc::new(listener) => dyn GcFn<(&'static str,)>));
    }

    fn tags(&self) -> Vec<String> {
        self.children
            .borrow()
            .iter()
            .map(|c| c.tag.clone())
            .collect()
    }
}

/// A DOM-like tree: a button whose click handler captures the button
/// (the cycle `Rc` leaks), a node whose handler removes it from the tree
/// mid-dispatch, events that bubble to the parent through the `Weak`
/// parent link. Nodes removed from the tree with listeners still
/// registered die at the next `collect()`, and only they; the rest of the
/// tree dies by count when the document goes, but for the nodes whose
/// listeners capture them, which the next `collect()` frees.
#[test]
fn document_tree_with_listeners_that_capture_their_nodes() {
    let _ = take_log();
    let document = Element::new("document");
    let body = Element::new("body");
    let button = Element::new("button");
    let banner = Element::new("banner");
    let text = Element::new("text");
    Element::append(&document, &body);
    Element::append(&body, &button);
    Element::append(&body, &banner);
    Element::append(&banner, &text);
    Element::count_clicks(&text);

    // button.onclick = lambda e: button.clicks += 1
    let on_click = gc_closure!([button] move |event| {
        assert_eq!(event, "click");
        button.clicks.set(button.clicks.get() + 1);
    });
    button.add_listener(gc_coerce!(Gc::new(on_click) => dyn GcFn<(&'static str,)>));
    // body counts every click that bubbles up to it.
    let bubbled = gc_closure!([body] move |_event| body.clicks.set(body.clicks.get() + 1));
    body.add_listener(gc_coerce!(Gc::new(bubbled) => dyn GcFn<(&'static str,)>));
    // banner.onclick = lambda e: banner.remove()  (a close button)
    let close = gc_closure!([banner] move |_event| banner.remove());
    banner.add_listener(gc_coerce!(Gc::new(close) => dyn GcFn<(&'static str,)>));

    button.dispatch("click");
    button.dispatch("click");
    assert_eq!(button.clicks.get(), 2);
    assert_eq!(body.clicks.get(), 2, "the clicks bubbled up to body");

    // Clicking the banner removes it from the tree; the event still
    // bubbles nowhere, since the banner has no parent any more.
    text.dispatch("click");
    assert_eq!(text.clicks.get(), 1);
    assert_eq!(body.tags(), ["button"]);
    assert_eq!(
        body.clicks.get(),
        2,
        "the banner left the tree before bubbling"
    );
    assert!(
        text.parent.borrow().upgrade().is_some(),
        "text is still the banner's child"
    );
    drop((banner, text));
    // The banner's handler captures the banner, and the text's the text:
    // only a collection frees them.
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!(
        gcptr::collect(),
        4,
        "the banner, the text and their handlers"
    );
    assert_eq!(take_log_sorted(), ["drop banner", "drop text"]);

    // The button is removed while its listener is registered. A side
    // table keyed by node (a `WeakKeyDictionary` of computed styles) and a
    // `weakref.finalize` watch it.
    let mut styles: WeakKeyMap<Element, String> = WeakKeyMap::new();
    styles.insert(&button, "bold".into());
    styles.insert(&body, "plain".into());
    let gone = Gc::on_death(&button, || log("button gone".into()));
    button.remove();
    assert_eq!(body.tags(), Vec::<String>::new());
    let weak_button = Gc::downgrade(&button);
    drop(button);
    assert!(weak_button.upgrade().is_some(), "its handler keeps it");
    assert!(gone.is_pending());
    assert_eq!(styles.len(), 2);
    assert_eq!(gcptr::collect(), 2, "the button and its handler");
    assert_eq!(take_log(), ["button gone", "drop button"]);
    assert!(weak_button.upgrade().is_none());
    assert!(!gone.is_pending());
    assert_eq!(styles.len(), 1, "the button's style left with it");
    assert_eq!(styles.get(&body).map(String::as_str), Some("plain"));

    // The document goes by count; body, held by its own handler, waits
    // for the collector.
    let weak_body = Gc::downgrade(&body);
    drop(body);
    drop(document);
    assert_eq!(take_log(), ["drop document"]);
    assert!(weak_body.upgrade().is_some());
    assert!(
        weak_body
            .upgrade()
            .unwrap()
            .parent
            .borrow()
            .upgrade()
            .is_none(),
        "its parent link is dead"
    );
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_log(), ["drop body"]);
    assert!(weak_body.upgrade().is_none());
    assert_eq!(gcptr::collect(), 0);
}

/// A listener that adds another listener and unregisters itself while
/// the event is dispatched (`once=True`): the copy taken before dispatch
/// keeps the loop sound, the new listener first runs on the next event,
/// and the removed one (with its captures) dies by count, as soon as the
/// dispatch lets go of its copy.
#[test]
fn a_once_listener_unregisters_itself_mid_dispatch() {
    let _ = take_log();
    let node = Element::new("node");
    let calls = Gc::new(Cell::new(0u32));
    let once = gc_closure!([node, calls] move |_event| {
        calls.set(calls.get() + 1);
        // Unregister every listener whose captures include this node's
        // counter: this one.
        node.listeners.borrow_mut().clear();
        let later = gcptr::gc_closure!([calls] move |_event| calls.set(calls.get() + 100));
        node.add_listener(gc_coerce!(Gc::new(later) => dyn GcFn<(&'static str,)>));
    });
    node.add_listener(gc_coerce!(Gc::new(once) => dyn GcFn<(&'static str,)>));
    assert_eq!(
        Gc::strong_count(&node),
        2,
        "the handle and the listener's capture"
    );
    node.dispatch("load");
    assert_eq!(calls.get(), 1, "the new listener waited for the next event");
    assert_eq!(
        Gc::strong_count(&node),
        1,
        "the removed listener died by count, and its capture of the node with it"
    );
    node.dispatch("load");
    assert_eq!(calls.get(), 101);
    drop(node);
    assert_eq!(take_log(), ["drop node"], "no cycle left: it died by count");
    assert_eq!(
        Gc::strong_count(&calls),
        1,
        "the remaining listener died with the node"
    );
}

/// A node made with `Gc::new_cyclic` whose listener captures the `&Weak`
/// that `new_cyclic` lends (Python's `weakref.WeakMethod` idiom): the
/// listener reaches its node while it lives, and since it holds the node
/// weakly the node dies by count, with no collection. (Before the
/// `gc_closure!` fix, capturing `me`, a reference, did not compile.)
#[test]
fn a_listener_that_holds_its_node_weakly_dies_by_count() {
    let _ = take_log();
    let node = Gc::new_cyclic(|me: &Weak<Element>| {
        let listener = gc_closure!([me] move |_event| {
            let node = me.upgrade().expect("the node is alive while it dispatches");
            node.clicks.set(node.clicks.get() + 1);
        });
        Element {
            tag: "weakly-held".into(),
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
            listeners: RefCell::new(vec![
                gc_coerce!(Gc::new(listener) => dyn GcFn<(&'static str,)>),
            ]),
            clicks: Cell::new(0),
        }
    });
    node.dispatch("click");
    node.dispatch("click");
    assert_eq!(node.clicks.get(), 2);
    assert_eq!(Gc::strong_count(&node), 1);
    assert_eq!(Gc::weak_count(&node), 1, "the listener's capture");
    drop(node);
    assert_eq!(take_log(), ["drop weakly-held"], "by count");
    assert_eq!(gcptr::collect(), 0);
}

// ---------------------------------------------------------------------
// 2. An interning cache on a weak-value map, with a logging finalizer.
// ---------------------------------------------------------------------

#[derive(Trace)]
#[gc(finalize)]
struct Symbol {
    name: String,
    /// `sym.alias = other`: may point back at itself.
    alias: RefCell<Option<Gc<Symbol>>>,
}

impl Finalize for Symbol {
    fn finalize(&self) {
        FINALIZE_CALLS.with(|n| n.set(n.get() + 1));
        // __del__: log, and look itself up in the cache. As in CPython, a
        // death by count leaves the weak references for after the
        // finalizer (the lookup finds the dying symbol, and the handle it
        // returns, dropped at once, does not run the finalizer again); a
        // collection clears them before.
        let cached = INTERNED.with(|c| c.borrow().get(&self.name).is_some());
        log(format!("del {} (cached: {cached})", self.name));
    }
}

impl Drop for Symbol {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
    }
}

thread_local! {
    /// `Symbol::finalize` calls, counted before anything else it does.
    static FINALIZE_CALLS: Cell<u32> = const { Cell::new(0) };
    static INTERNED: RefCell<WeakValueMap<String, Symbol>> = RefCell::new(WeakValueMap::new());
}

/// `sys.intern`: the live symbol of that name, or a new one, cached
/// weakly.
fn intern(name: &str) -> Gc<Symbol> {
    if let Some(symbol) = INTERNED.with(|c| c.borrow().get(name)) {
        return symbol;
    }
    // Made outside the cache's borrow: an automatic collection that
    // `Gc::new` starts may run a finalizer that reads the cache.
    let symbol = Gc::new(Symbol {
        name: name.into(),
        alias: RefCell::new(None),
    });
    INTERNED.with(|c| c.borrow_mut().insert(name.into(), &symbol));
    symbol
}

/// An interning cache: the same name gives the same object while anyone
/// holds it; the cache never keeps a symbol alive; entries whose symbol
/// dies while the cache is iterated are skipped and `len()` follows at
/// once; the finalizer runs once per symbol, before the drop, by count
/// (where, as in CPython, its own entry still answers) and by collection
/// (where the entry is gone before it runs).
#[test]
fn interning_cache_on_a_weak_value_map() {
    let _ = take_log();
    let a = intern("a");
    let a2 = intern("a");
    assert!(Gc::ptr_eq(&a, &a2), "interned: the same object");
    drop(a2);
    let mut held: Vec<Gc<Symbol>> = ["b", "c", "d", "e"].iter().map(|n| intern(n)).collect();
    assert_eq!(INTERNED.with(|c| c.borrow().len()), 5);

    // for name, sym in cache.items(): ... while entries die: the first
    // step lets go of every held symbol but b.
    let mut seen = Vec::new();
    INTERNED.with(|c| {
        let cache = c.borrow();
        for (name, symbol) in cache.iter() {
            assert_eq!(&symbol.name, name);
            if seen.is_empty() {
                held.retain(|s| s.name == "b");
            }
            seen.push(name.clone());
            drop(symbol);
            assert_eq!(cache.len(), 2, "a and b; the others died during the loop");
        }
    });
    // After the first step, only the live entries were visited.
    assert!(seen[1..].iter().all(|n| n == "a" || n == "b"), "{seen:?}");
    assert!(seen.contains(&"a".to_string()) && seen.contains(&"b".to_string()));
    assert_eq!(held.len(), 1);
    assert_eq!(
        take_log_sorted(),
        [
            "del c (cached: true)",
            "del d (cached: true)",
            "del e (cached: true)",
            "drop c",
            "drop d",
            "drop e",
        ]
    );
    // `a` is still held outside the loop.
    assert_eq!(INTERNED.with(|c| c.borrow().len()), 2);
    let live: Vec<String> = INTERNED.with(|c| {
        let mut names: Vec<_> = c.borrow().keys().cloned().collect();
        names.sort();
        names
    });
    assert_eq!(live, ["a", "b"]);
    drop(a);
    assert_eq!(take_log(), ["del a (cached: true)", "drop a"]);

    // A symbol that is its own alias: a cycle, finalized by the collector
    // once, with the entry already gone.
    let selfish = intern("self");
    *selfish.alias.borrow_mut() = Some(selfish.clone());
    let weak = Gc::downgrade(&selfish);
    drop(selfish);
    assert!(weak.upgrade().is_some());
    assert!(INTERNED.with(|c| c.borrow().contains_key("self")));
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_log(), ["del self (cached: false)", "drop self"]);
    assert!(weak.upgrade().is_none());
    assert!(!INTERNED.with(|c| c.borrow().contains_key("self")));
    // A new symbol of the same name is a new object.
    let again = intern("self");
    assert!(again.alias.borrow().is_none());
    drop((again, held));
    assert_eq!(
        take_log_sorted(),
        [
            "del b (cached: true)",
            "del self (cached: true)",
            "drop b",
            "drop self"
        ]
    );
    assert!(INTERNED.with(|c| c.borrow().is_empty()));
}

// ---------------------------------------------------------------------
// 3. Subjects and observers behind `dyn Observer`.
// ---------------------------------------------------------------------

trait Observer: Trace {
    fn notify(&self, subject: &Subject, event: u32);
}

#[derive(Trace)]
struct Subject {
    name: &'static str,
    /// Observers are held strongly, as in a Python list.
    observers: RefCell<Vec<Gc<dyn Observer>>>,
}

impl Drop for Subject {
    fn drop(&mut self) {
        log(format!("drop subject {}", self.name));
    }
}

impl Subject {
    fn new(name: &'static str) -> Gc<Subject> {
        Gc::new(Subject {
            name,
            observers: RefCell::new(Vec::new()),
        })
    }

    fn subscribe(&self, observer: Gc<dyn Observer>) {
        self.observers.borrow_mut().push(observer);
    }

    /// Removes `observer` (by identity); true if it was subscribed.
    fn unsubscribe(&self, observer: &dyn Observer) -> bool {
        let mut observers = self.observers.borrow_mut();
        let before = observers.len();
        // `Gc::as_ptr` of a `Gc<dyn Observer>` is a wide pointer: compare
        // the addresses alone.
        observers.retain(|o| !std::ptr::addr_eq(Gc::as_ptr(o), observer));
        observers.len() != before
    }

    fn notify_all(&self, event: u32) {
        let observers = self.observers.borrow().clone();
        for observer in observers {
            observer.notify(self, event);
        }
    }
}

/// Logs what it hears; unsubscribes itself when it hears `stop_at`.
#[derive(Trace)]
struct Logger {
    name: &'static str,
    stop_at: u32,
    heard: RefCell<Vec<u32>>,
    /// The subject it watches: weakly, so that it never keeps it alive.
    watching: RefCell<Weak<Subject>>,
}

impl Drop for Logger {
    fn drop(&mut self) {
        log(format!("drop observer {}", self.name));
    }
}

impl Observer for Logger {
    fn notify(&self, subject: &Subject, event: u32) {
        self.heard.borrow_mut().push(event);
        if event == self.stop_at {
            assert!(subject.unsubscribe(self), "{} was subscribed", self.name);
        }
    }
}

/// An observer that holds its subject strongly: the subject and it form a
/// cycle through the subject's list.
#[derive(Trace)]
struct Mirror {
    subject: Gc<Subject>,
    last: Cell<u32>,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        log("drop observer mirror".into());
    }
}

impl Observer for Mirror {
    fn notify(&self, subject: &Subject, event: u32) {
        assert!(std::ptr::eq(subject, &*self.subject));
        self.last.set(event);
    }
}

fn logger(name: &'static str, stop_at: u32, subject: &Gc<Subject>) -> Gc<Logger> {
    Gc::new(Logger {
        name,
        stop_at,
        heard: RefCell::new(Vec::new()),
        watching: RefCell::new(Gc::downgrade(subject)),
    })
}

/// Observers behind `Gc<dyn Observer>`: one that unsubscribes itself from
/// inside a notification stops hearing from the next event on, and the
/// others in the same round still hear it; an observer whose only holder
/// was the subject dies by count once it unsubscribes; a subject that dies
/// first (by count, with observers that hold it weakly) leaves their
/// `Weak`s dead; a subject in a cycle with an observer that holds it
/// strongly dies at the next collection, with that observer.
#[test]
fn observers_unsubscribe_mid_notification_and_subjects_die_first() {
    let _ = take_log();
    let prices = Subject::new("prices");
    let early = logger("early", 2, &prices);
    let late = logger("late", 99, &prices);
    prices.subscribe(gc_coerce!(early.clone() => dyn Observer));
    prices.subscribe(gc_coerce!(late.clone() => dyn Observer));
    // One held only by the subject.
    prices.subscribe(gc_coerce!(logger("orphan", 1, &prices) => dyn Observer));

    prices.notify_all(1);
    assert_eq!(
        take_log(),
        ["drop observer orphan"],
        "it unsubscribed, and nothing held it"
    );
    prices.notify_all(2);
    prices.notify_all(3);
    assert_eq!(*early.heard.borrow(), [1, 2]);
    assert_eq!(*late.heard.borrow(), [1, 2, 3]);
    assert_eq!(prices.observers.borrow().len(), 1);

    // The subject dies first, by count: the observers' weak links die.
    drop(prices);
    assert_eq!(take_log(), ["drop subject prices"]);
    assert!(early.watching.borrow().upgrade().is_none());
    assert!(late.watching.borrow().upgrade().is_none());
    assert_eq!(
        Gc::strong_count(&late),
        1,
        "the subject's list let go of it"
    );
    drop((early, late));
    assert_eq!(
        take_log_sorted(),
        ["drop observer early", "drop observer late"]
    );

    // A subject whose observer holds it: a cycle through `dyn Observer`.
    let clock = Subject::new("clock");
    let mirror = Gc::new(Mirror {
        subject: clock.clone(),
        last: Cell::new(0),
    });
    clock.subscribe(gc_coerce!(mirror.clone() => dyn Observer));
    clock.notify_all(7);
    assert_eq!(mirror.last.get(), 7);
    let weak_clock = Gc::downgrade(&clock);
    drop((clock, mirror));
    assert!(weak_clock.upgrade().is_some(), "the cycle keeps it");
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(
        take_log_sorted(),
        ["drop observer mirror", "drop subject clock"]
    );
    assert!(weak_clock.upgrade().is_none());
}

/// Observers held weakly in a `WeakSet<dyn Observer>` (the subject never
/// keeps them alive): one dropped by its owner disappears from the set at
/// once, one that unsubscribes itself mid-notification is removed, and
/// the members that remain are exactly those still held.
#[test]
fn weakly_held_observers_in_a_weak_set() {
    let _ = take_log();
    let subject = Subject::new("weak");
    let mut audience: WeakSet<dyn Observer> = WeakSet::new();
    let keep = logger("keep", 99, &subject);
    let quitter = logger("quitter", 1, &subject);
    let gone = logger("gone", 99, &subject);
    for observer in [&keep, &quitter, &gone] {
        assert!(audience.insert(&gc_coerce!(observer.clone() => dyn Observer)));
    }
    assert_eq!(audience.len(), 3);
    drop(gone);
    assert_eq!(take_log(), ["drop observer gone"]);
    assert_eq!(
        audience.len(),
        2,
        "an entry is gone as soon as its observer dies"
    );

    // Notify: the subject's own list is the set's live members, for one
    // round; the quitter asks the subject to drop it, and we drop it from
    // the set.
    for observer in audience.iter() {
        subject.subscribe(observer);
    }
    subject.notify_all(1);
    audience.retain(|o| subject.observers.borrow().iter().any(|s| Gc::ptr_eq(s, o)));
    subject.observers.borrow_mut().clear();
    assert_eq!(audience.len(), 1);
    assert!(audience.contains(&gc_coerce!(keep.clone() => dyn Observer)));
    assert!(!audience.contains(&gc_coerce!(quitter.clone() => dyn Observer)));
    assert_eq!(*quitter.heard.borrow(), [1]);
    drop((keep, quitter, subject));
    assert_eq!(
        take_log_sorted(),
        [
            "drop observer keep",
            "drop observer quitter",
            "drop subject weak"
        ]
    );
    assert!(audience.is_empty());
}

// ---------------------------------------------------------------------
// 4. An interpreter's environment chain with closures.
// ---------------------------------------------------------------------

thread_local! {
    /// Live `Env`s and `Function`s, counted by their constructors and drops.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn live() -> isize {
    LIVE.with(Cell::get)
}

#[derive(Trace, Clone)]
enum Value {
    Int(i64),
    Function(Gc<Function>),
}

/// A scope: its own variables, and the scope it was made in.
#[derive(Trace)]
struct Env {
    vars: RefCell<HashMap<String, Value>>,
    parent: Option<Gc<Env>>,
}

/// A closure value: its parameter, what it computes, and the scope it
/// closes over (Python's `__closure__`).
#[derive(Trace)]
struct Function {
    param: String,
    body: Expr,
    env: Gc<Env>,
}

#[derive(Trace)]
enum Expr {
    Int(i64),
    Var(String),
    Add(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Box<Expr>),
}

impl Env {
    fn new(parent: Option<Gc<Env>>) -> Gc<Env> {
        LIVE.with(|l| l.set(l.get() + 1));
        Gc::new(Env {
            vars: RefCell::new(HashMap::new()),
            parent,
        })
    }

    fn lookup(&self, name: &str) -> Value {
        if let Some(value) = self.vars.borrow().get(name) {
            return value.clone();
        }
        match &self.parent {
            Some(parent) => parent.lookup(name),
            None => panic!("unbound {name}"),
        }
    }

    fn define(&self, name: &str, value: Value) {
        self.vars.borrow_mut().insert(name.into(), value);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

impl Function {
    fn value(param: &str, body: Expr, env: &Gc<Env>) -> Value {
        LIVE.with(|l| l.set(l.get() + 1));
        Value::Function(Gc::new(Function {
            param: param.into(),
            body,
            env: env.clone(),
        }))
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

fn eval(expr: &Expr, env: &Gc<Env>) -> Value {
    match expr {
        Expr::Int(n) => Value::Int(*n),
        Expr::Var(name) => env.lookup(name),
        Expr::Add(a, b) => match (eval(a, env), eval(b, env)) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a + b),
            _ => panic!("added a function"),
        },
        Expr::Call(f, arg) => {
            let Value::Function(f) = eval(f, env) else {
                panic!("called an int")
            };
            let arg = eval(arg, env);
            let frame = Env::new(Some(f.env.clone()));
            frame.define(&f.param, arg);
            eval(&f.body, &frame)
        }
    }
}

fn var(name: &str) -> Box<Expr> {
    Box::new(Expr::Var(name.into()))
}

/// Turns the automatic collector on (with a lower threshold under Miri,
/// whose runs are shorter, so that it is reached) and makes the global
/// scope, with `one` defined: the iterations to run, the live objects
/// before the scope, and the scope.
fn interpreter_session() -> (i64, isize, Gc<Env>) {
    gcptr::enable();
    let iterations = if cfg!(miri) { 300 } else { 20_000 };
    if cfg!(miri) {
        // Fewer iterations: a lower threshold, so that it is reached.
        gcptr::set_threshold([60, 10, 10]);
    }
    let base = live();
    let global = Env::new(None);
    global.define("one", Value::Int(1));
    (iterations, base, global)
}

/// A small interpreter run for many iterations with the automatic
/// collector on: each iteration opens a scope, defines in it a recursive
/// helper (a function whose environment holds the function: a cycle),
/// calls it, and leaves the scope. Only the collector can free those
/// scopes; the live `Env`s and `Function`s stay bounded by what the
/// thresholds allow, without a single explicit `collect()`, and a final
/// `collect()` leaves only the global scope.
#[test]
fn interpreter_environments_stay_bounded_under_automatic_collection() {
    let (iterations, base, global) = interpreter_session();
    let mut peak = 0;
    let mut total = 0;
    for i in 0..iterations {
        // def step(): x = i; inc = lambda n: n + one + x; return inc(inc(0))
        let scope = Env::new(Some(global.clone()));
        scope.define("x", Value::Int(i % 7));
        let inc = Function::value(
            "n",
            Expr::Add(var("n"), Box::new(Expr::Add(var("one"), var("x")))),
            &scope,
        );
        scope.define("inc", inc);
        let call = Expr::Call(
            var("inc"),
            Box::new(Expr::Call(var("inc"), Box::new(Expr::Int(0)))),
        );
        let Value::Int(result) = eval(&call, &scope) else {
            panic!("not an int")
        };
        assert_eq!(result, 2 * (1 + i % 7));
        total += result;
        drop(scope);
        peak = peak.max(live() - base);
    }
    assert!(total > 0);
    // Each iteration leaves 2 garbage objects (the scope and `inc`; the
    // call frames die by count); generation 0 holds at most its threshold.
    let bound = 2 * gcptr::threshold()[0] as isize + 16;
    assert!(peak <= bound, "peak of {peak} live objects, over {bound}");
    assert!(
        gcptr::stats()[0].collections > 0,
        "the automatic collector ran"
    );
    gcptr::collect();
    assert_eq!(live() - base, 1, "only the global scope is left");
    drop(global);
    assert_eq!(live(), base);
}

/// The same interpreter with a graph that loses nodes: closures stored in
/// a long-lived global table are replaced (the old closure and its scope
/// become garbage) and deleted; the count of live objects stays bounded
/// by the thresholds, and `gcptr::count()` agrees that generation 0 never
/// outgrows its threshold between collections.
#[test]
fn replaced_closures_in_a_global_table_are_reclaimed() {
    let (iterations, base, global) = interpreter_session();
    let mut peak = 0;
    for i in 0..iterations {
        let name = format!("f{}", i % 5);
        let scope = Env::new(Some(global.clone()));
        let f = Function::value("n", Expr::Add(var("n"), var("one")), &scope);
        // The scope remembers its function too: scope -> f -> scope.
        scope.define("self", f.clone());
        global.define(&name, f);
        if i % 11 == 0 {
            global
                .vars
                .borrow_mut()
                .remove(&format!("f{}", (i + 2) % 5));
        }
        let Value::Int(two) = eval(&Expr::Call(var(&name), Box::new(Expr::Int(1))), &global) else {
            panic!("not an int")
        };
        assert_eq!(two, 2);
        peak = peak.max(live() - base);
        assert!(gcptr::count()[0] <= gcptr::threshold()[0]);
    }
    let bound = 2 * gcptr::threshold()[0] as isize + 16;
    assert!(peak <= bound, "peak of {peak} live objects, over {bound}");
    gcptr::collect();
    let left = global.vars.borrow().len() as isize - 1; // each f* and its scope
    assert_eq!(live() - base, 1 + 2 * left);
    drop(global);
    gcptr::collect();
    assert_eq!(live(), base);
}

/// The natural way to write `intern`, with the allocation inside the
/// cache's `borrow_mut`: a garbage symbol's finalizer, run by the
/// automatic collection that this `Gc::new` starts, reads the cache and
/// panics on the borrow. The panic comes out of `intern`; the collection
/// still completed (the garbage symbol is dropped, once); the new symbol,
/// never returned, dies as by count: finalized (its finalizer panics the
/// same way, a second panic, dropped) and dropped; the cache stays usable
/// and holds neither. (The `Finalize` docs now say when a finalizer runs
/// and what this asks of it.)
#[test]
fn a_finalizer_run_inside_the_callers_borrow_panics_out_of_gc_new() {
    let _ = take_log();
    let old = gcptr::threshold();
    gcptr::collect();
    let looped = intern("loop");
    *looped.alias.borrow_mut() = Some(looped.clone());
    drop(looped);
    let calls = FINALIZE_CALLS.with(Cell::get);
    gcptr::set_threshold([1, old[1], old[2]]);
    let natural = std::panic::catch_unwind(|| {
        INTERNED.with(|c| {
            c.borrow_mut().get_or_insert_with("new".into(), || {
                Gc::new(Symbol {
                    name: "new".into(),
                    alias: RefCell::new(None),
                })
            })
        })
    });
    gcptr::set_threshold(old);
    let payload = natural.err().expect("the finalizer's borrow panicked");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains("already mutably borrowed"), "{message}");
    assert_eq!(
        FINALIZE_CALLS.with(Cell::get) - calls,
        2,
        "both finalizers ran, once each"
    );
    assert_eq!(take_log_sorted(), ["drop loop", "drop new"]);
    assert!(INTERNED.with(|c| c.borrow().is_empty()));
    // Written the other way (`intern` allocates outside the borrow), the
    // same collection is harmless.
    let looped = intern("loop");
    *looped.alias.borrow_mut() = Some(looped.clone());
    drop(looped);
    gcptr::set_threshold([1, old[1], old[2]]);
    let fresh = intern("new");
    gcptr::set_threshold(old);
    assert_eq!(take_log(), ["del loop (cached: false)", "drop loop"]);
    assert_eq!(INTERNED.with(|c| c.borrow().len()), 1);
    drop(fresh);
    assert_eq!(take_log(), ["del new (cached: true)", "drop new"]);
}

// ---------------------------------------------------------------------
// Forty-second session: the new closures and weak-set operations, ported
// ---------------------------------------------------------------------
//
// 5. A widget tree whose handlers take `&Event` and return whether the
//    event stops, bubbled from a leaf to the root, with hover and focus
//    sets compared and combined as widgets die.
// 6. A publish/subscribe registry: `WeakKeyMap<Topic, WeakSet<Subscriber>>`
//    beside a `WeakValueMap` of subscribers by name.

/// What a handler gets: borrowed for one dispatch.
struct UiEvent {
    kind: &'static str,
    seen: RefCell<Vec<String>>,
}

/// A handler: `true` stops the event from bubbling further.
type UiHandler = Gc<dyn for<'a> GcFn<(&'a UiEvent,), bool>>;

#[derive(Trace)]
struct Widget {
    name: String,
    parent: RefCell<Weak<Widget>>,
    children: RefCell<Vec<Gc<Widget>>>,
    handlers: RefCell<Vec<UiHandler>>,
}

impl Drop for Widget {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
    }
}

impl Widget {
    fn new(name: &str, parent: Option<&Gc<Widget>>) -> Gc<Widget> {
        let widget = Gc::new(Widget {
            name: name.into(),
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
            handlers: RefCell::new(Vec::new()),
        });
        if let Some(parent) = parent {
            *widget.parent.borrow_mut() = Gc::downgrade(parent);
            parent.children.borrow_mut().push(widget.clone());
        }
        widget
    }

    fn on(&self, handler: UiHandler) {
        self.handlers.borrow_mut().push(handler);
    }

    /// `widget.destroy()` in the Python: out of its parent's children.
    fn detach(&self) {
        let parent = std::mem::take(&mut *self.parent.borrow_mut());
        if let Some(parent) = parent.upgrade() {
            parent
                .children
                .borrow_mut()
                .retain(|c| !std::ptr::eq(Gc::as_ptr(c), self));
        }
    }

    /// Bubbles `event` from this widget up to the root, along the path as
    /// it was when the dispatch began (as the DOM does); each widget's
    /// handlers are a snapshot too, so a handler may change them.
    /// (`self: &Gc<Self>` is not a receiver on stable Rust, as
    /// `self: &Rc<Self>` is: an associated function instead.)
    fn dispatch(leaf: &Gc<Widget>, event: &UiEvent) {
        let mut path = vec![leaf.clone()];
        loop {
            let up = path.last().unwrap().parent.borrow().upgrade();
            match up {
                Some(up) => path.push(up),
                None => break,
            }
        }
        for widget in &path {
            let handlers = widget.handlers.borrow().clone();
            for handler in handlers {
                if handler.call((event,)) {
                    return;
                }
            }
        }
    }
}

/// A handler that writes `name:kind` into the event and returns `stop`.
fn recorder(widget: &Gc<Widget>, stop: bool) -> UiHandler {
    let handler = gc_closure!([widget] move |UiEvent { kind, seen }: &UiEvent| -> bool {
        seen.borrow_mut().push(format!("{}:{kind}", widget.name));
        stop
    });
    gc_coerce!(Gc::new(handler) => dyn for<'a> GcFn<(&'a UiEvent,), bool>)
}

fn ui_event(kind: &'static str) -> UiEvent {
    UiEvent {
        kind,
        seen: RefCell::new(Vec::new()),
    }
}

/// The members of a set, by name, sorted.
fn names(set: &WeakSet<Widget>) -> Vec<String> {
    let mut names: Vec<String> = set.iter().map(|w| w.name.clone()).collect();
    names.sort();
    names
}

/// Handlers written with a pattern for the event and a `bool` return: an
/// event bubbles from the leaf to the root through every widget's
/// handlers, in order, and the first handler that returns `true` stops it
/// (the handlers after it, on its widget and above, do not run). Each
/// handler captures its own widget, so each widget is a cycle: dropping
/// the window frees nothing by count, and one `collect()` frees all four
/// widgets, each dropped once.
#[test]
fn widget_events_bubble_to_the_root_and_a_handler_stops_them() {
    let _ = take_log();
    gcptr::collect();
    let window = Widget::new("window", None);
    let panel = Widget::new("panel", Some(&window));
    let button = Widget::new("button", Some(&panel));
    let label = Widget::new("label", Some(&panel));
    window.on(recorder(&window, false));
    panel.on(recorder(&panel, false));
    button.on(recorder(&button, false));
    label.on(recorder(&label, false));

    let click = ui_event("click");
    Widget::dispatch(&button, &click);
    assert_eq!(
        *click.seen.borrow(),
        ["button:click", "panel:click", "window:click"]
    );

    // The panel swallows keys: a second handler on it, returning `true`.
    panel.on(recorder(&panel, true));
    window.on(recorder(&window, false));
    let key = ui_event("key");
    Widget::dispatch(&label, &key);
    assert_eq!(
        *key.seen.borrow(),
        ["label:key", "panel:key", "panel:key"],
        "stopped at the panel's second handler; the window saw nothing"
    );

    drop((panel, button, label));
    drop(window);
    assert!(
        take_log().is_empty(),
        "each widget is a cycle with its handlers"
    );
    assert_eq!(gcptr::collect(), 4 + 6, "four widgets and six handlers");
    assert_eq!(
        take_log_sorted(),
        ["drop button", "drop label", "drop panel", "drop window"]
    );
}

/// A "close" handler that detaches its own widget in the middle of a
/// dispatch: the rest of the path (fixed when the dispatch began) still
/// sees the event, the widget is gone from its parent's children at once,
/// and its parent link upgrades no more. It stays alive only through its
/// own handler's capture, a cycle: after the dispatch nothing of it dies
/// by count, and `collect()` frees it. A widget that captured itself only
/// weakly (`Gc::downgrade` in the capture list) dies by count when it is
/// detached.
#[test]
fn a_handler_detaches_its_own_widget_mid_dispatch() {
    let _ = take_log();
    gcptr::collect();
    let window = Widget::new("window", None);
    let dialog = Widget::new("dialog", Some(&window));
    let ok = Widget::new("ok", Some(&dialog));
    window.on(recorder(&window, false));
    let closer = gc_closure!([dialog] move |event: &UiEvent| -> bool {
        if event.kind == "close" {
            dialog.detach();
        }
        event.seen.borrow_mut().push(format!("{}:{}", dialog.name, event.kind));
        false
    });
    dialog.on(gc_coerce!(Gc::new(closer) => dyn for<'a> GcFn<(&'a UiEvent,), bool>));

    let close = ui_event("close");
    Widget::dispatch(&ok, &close);
    assert_eq!(*close.seen.borrow(), ["dialog:close", "window:close"]);
    assert!(window.children.borrow().is_empty());
    assert!(dialog.parent.borrow().upgrade().is_none());

    let weak_dialog = Gc::downgrade(&dialog);
    drop((dialog, ok));
    assert!(take_log().is_empty(), "the dialog's handler holds it");
    assert!(weak_dialog.upgrade().is_some());
    assert_eq!(gcptr::collect(), 3, "dialog, its handler, and ok");
    assert_eq!(take_log_sorted(), ["drop dialog", "drop ok"]);
    assert!(weak_dialog.upgrade().is_none());

    // The same with a weak capture: no cycle, death by count.
    let popup = Widget::new("popup", Some(&window));
    let me = Gc::downgrade(&popup);
    let closer = gc_closure!([me] move |event: &UiEvent| -> bool {
        if let Some(popup) = me.upgrade() {
            popup.detach();
        }
        event.kind == "close"
    });
    popup.on(gc_coerce!(Gc::new(closer) => dyn for<'a> GcFn<(&'a UiEvent,), bool>));
    drop(popup);
    let close = ui_event("close");
    Widget::dispatch(&me.upgrade().unwrap(), &close);
    assert_eq!(take_log(), ["drop popup"], "died when the dispatch let go");
    assert!(
        close.seen.borrow().is_empty(),
        "stopped: the window saw nothing"
    );
    assert!(me.upgrade().is_none());
    assert!(window.children.borrow().is_empty());
    drop(window);
    assert_eq!(gcptr::collect(), 2, "the window and its handler");
    assert_eq!(take_log(), ["drop window"]);
}

/// Hover and focus as `WeakSet`s of widgets (Python's
/// `hovered <= window_widgets`, `hovered & focused`, `|`, `-`, `^`): the
/// comparisons and the new sets follow the deaths. The window's close
/// frees by count what no handler holds (the label and the window itself,
/// whose only self-capturing handler sits on the button), and the sets
/// lose those members at once; the button, a cycle with its handler, stays
/// a member until `collect()`, then every set is empty and equal to an
/// empty set.
#[test]
fn hover_and_focus_sets_follow_the_widgets_as_they_die() {
    let _ = take_log();
    gcptr::collect();
    let window = Widget::new("window", None);
    let button = Widget::new("button", Some(&window));
    let label = Widget::new("label", Some(&window));
    let field = Widget::new("field", Some(&window));
    button.on(recorder(&button, true));

    let all: WeakSet<Widget> = [&window, &button, &label, &field]
        .into_iter()
        .cloned()
        .collect();
    let hovered: WeakSet<Widget> = [window.clone(), button.clone(), label.clone()]
        .into_iter()
        .collect();
    let focused: WeakSet<Widget> = [window.clone(), field.clone()].into_iter().collect();

    assert!(hovered.is_subset(&all) && all.is_superset(&focused));
    assert!(!hovered.is_subset(&focused) && !hovered.is_disjoint(&focused));
    assert_eq!(names(&(&hovered & &focused)), ["window"]);
    assert_eq!(
        names(&(&hovered | &focused)),
        ["button", "field", "label", "window"]
    );
    assert_eq!(names(&(&hovered - &focused)), ["button", "label"]);
    assert_eq!(names(&(&hovered ^ &focused)), ["button", "field", "label"]);
    assert!(&hovered | &focused == all);
    let union_count = hovered.union(&focused).count();
    assert_eq!(union_count, 4, "each member once");

    // The field is destroyed: gone from focus, and focus is now inside
    // hover.
    field.detach();
    drop(field);
    assert_eq!(take_log(), ["drop field"]);
    assert_eq!(names(&focused), ["window"]);
    assert!(focused.is_subset(&hovered));
    assert!(&hovered | &focused == hovered);
    assert_eq!(names(&(&hovered ^ &focused)), ["button", "label"]);

    // The window closes. A set made before keeps no member alive.
    let before_close = &hovered | &focused;
    drop((window, label));
    assert_eq!(take_log(), ["drop window", "drop label"]);
    assert_eq!(names(&hovered), ["button"], "the button is a cycle");
    assert!(focused.is_empty() && focused.is_disjoint(&hovered));
    assert!(hovered == before_close && before_close == all);
    drop(button);
    assert_eq!(names(&hovered), ["button"], "until a collection");
    assert_eq!(gcptr::collect(), 2, "the button and its handler");
    assert_eq!(take_log(), ["drop button"]);
    for set in [&all, &hovered, &focused, &before_close] {
        assert!(set.is_empty());
        assert!(*set == WeakSet::new());
    }
}

// 6. Publish and subscribe.

/// A message, borrowed by each subscriber's callback.
struct Message {
    text: String,
}

#[derive(Trace)]
struct Topic {
    name: String,
}

impl Drop for Topic {
    fn drop(&mut self) {
        log(format!("drop topic {}", self.name));
    }
}

/// A subscriber's callback: gets the topic and the message, both borrowed.
type Delivery = Box<dyn for<'a, 'b> GcFn<(&'a Topic, &'b Message)>>;

#[derive(Trace)]
struct Subscriber {
    name: String,
    inbox: RefCell<Vec<String>>,
    /// Set to a `gc_closure!` that captures the subscriber (its bound
    /// method, in the Python), or left empty.
    callback: RefCell<Option<Delivery>>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
    }
}

#[derive(Default)]
struct Registry {
    topics: WeakKeyMap<Topic, WeakSet<Subscriber>>,
    by_name: WeakValueMap<String, Subscriber>,
}

impl Registry {
    fn subscribe(&mut self, topic: &Gc<Topic>, subscriber: &Gc<Subscriber>) {
        self.by_name.insert(subscriber.name.clone(), subscriber);
        self.topics
            .get_or_insert_with(topic, WeakSet::new)
            .insert(subscriber);
    }

    /// Unsubscribes `name` from every topic; returns the name the
    /// registry held and the subscriber, if it was alive.
    fn unsubscribe(&mut self, name: &str) -> Option<(String, Gc<Subscriber>)> {
        let (held, subscriber) = self.by_name.remove_entry(name)?;
        self.topics.retain(|_, set| {
            set.remove(&subscriber);
            !set.is_empty()
        });
        Some((held, subscriber))
    }

    /// Delivers `text` to the topic's live subscribers; returns how many.
    fn publish(&self, topic: &Gc<Topic>, text: &str) -> usize {
        let message = Message { text: text.into() };
        let Some(set) = self.topics.get(topic) else {
            return 0;
        };
        let mut delivered = 0;
        for subscriber in set.iter() {
            match &*subscriber.callback.borrow() {
                Some(callback) => callback.call((topic, &message)),
                None => subscriber
                    .inbox
                    .borrow_mut()
                    .push(format!("{}: {}", topic.name, message.text)),
            }
            delivered += 1;
        }
        delivered
    }
}

fn subscriber(name: &str, with_callback: bool) -> Gc<Subscriber> {
    let subscriber = Gc::new(Subscriber {
        name: name.into(),
        inbox: RefCell::new(Vec::new()),
        callback: RefCell::new(None),
    });
    if with_callback {
        let me = subscriber.clone();
        let callback = gc_closure!([me] move |Topic { name, .. }: &Topic, message: &Message| {
            me.inbox
                .borrow_mut()
                .push(format!("{name} (callback): {}", message.text))
        });
        *subscriber.callback.borrow_mut() = Some(Box::new(callback));
    }
    subscriber
}

/// The registry as Python writes it: subscribers that die leave every
/// topic's set at once (a plain one by count; one whose callback captures
/// it only at `collect()`, and it still gets messages until then, as in
/// CPython); a topic that dies takes its entry, and its `WeakSet`, with
/// it; `remove_entry` unsubscribes by name and hands back the registry's
/// own `String` and the subscriber; unsubscribing a dead one answers
/// `None`.
#[test]
fn pubsub_registry_follows_subscribers_and_topics_as_they_die() {
    let _ = take_log();
    gcptr::collect();
    let mut registry = Registry::default();
    let news = Gc::new(Topic {
        name: "news".into(),
    });
    let sport = Gc::new(Topic {
        name: "sport".into(),
    });
    let ann = subscriber("ann", false);
    let bob = subscriber("bob", true);
    let cy = subscriber("cy", false);
    registry.subscribe(&news, &ann);
    registry.subscribe(&news, &bob);
    registry.subscribe(&sport, &bob);
    registry.subscribe(&sport, &cy);

    assert_eq!(registry.publish(&news, "rain"), 2);
    assert_eq!(*ann.inbox.borrow(), ["news: rain"]);
    assert_eq!(*bob.inbox.borrow(), ["news (callback): rain"]);

    // `cy` dies by count: gone from `sport` and from the names at once.
    drop(cy);
    assert_eq!(take_log(), ["drop cy"]);
    assert_eq!(registry.topics.get(&sport).unwrap().len(), 1);
    assert!(registry.by_name.get("cy").is_none());
    assert!(registry.unsubscribe("cy").is_none());

    // `bob` is a cycle with its callback: still subscribed until collected.
    drop(bob);
    assert!(take_log().is_empty());
    assert_eq!(registry.publish(&sport, "goal"), 1);
    let bob = registry.by_name.get("bob").expect("not collected yet");
    assert_eq!(bob.inbox.borrow().last().unwrap(), "sport (callback): goal");
    drop(bob);
    assert_eq!(gcptr::collect(), 1, "bob; his callback is a Box inside him");
    assert_eq!(take_log(), ["drop bob"]);
    assert_eq!(registry.publish(&sport, "final"), 0);
    assert_eq!(registry.by_name.len(), 1);

    // `ann` unsubscribes by name: the registry's key and `ann` come back,
    // and the topic whose set emptied is dropped from the map.
    let (key, unsubscribed) = registry.unsubscribe("ann").unwrap();
    assert_eq!(key, "ann");
    assert!(Gc::ptr_eq(&unsubscribed, &ann));
    assert!(registry.by_name.is_empty());
    assert!(!registry.topics.contains_key(&news) && !registry.topics.contains_key(&sport));
    assert_eq!(registry.publish(&news, "ignored"), 0);
    assert_eq!(ann.inbox.borrow().len(), 1);

    // A topic dies: its entry goes with it, the subscriber stays.
    registry.subscribe(&news, &ann);
    assert_eq!(registry.topics.len(), 1);
    drop(news);
    assert_eq!(take_log(), ["drop topic news"]);
    assert!(registry.topics.is_empty());
    assert!(registry.by_name.get("ann").is_some());
    drop((ann, unsubscribed, sport));
    assert_eq!(take_log_sorted(), ["drop ann", "drop topic sport"]);
    assert!(registry.by_name.is_empty());
}

/// `weak_keys()` and `weak_values()` walked while the walk itself lets
/// objects go: whichever topic (or subscriber) comes first, the loop drops
/// every other one, and the walk yields no more (each dead key is
/// skipped, never upgraded). The `Weak`s collected keep nothing alive,
/// and the map's `len()` follows.
#[test]
fn weak_keys_and_weak_values_walked_while_their_objects_die() {
    let _ = take_log();
    let mut registry = Registry::default();
    let mut topics: Vec<Gc<Topic>> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|name| Gc::new(Topic { name: name.into() }))
        .collect();
    let mut subscribers: Vec<Gc<Subscriber>> = ["s1", "s2", "s3"]
        .into_iter()
        .map(|name| subscriber(name, false))
        .collect();
    for topic in &topics {
        for s in &subscribers {
            registry.subscribe(topic, s);
        }
    }

    let mut walked = Vec::new();
    for weak in registry.topics.weak_keys() {
        let topic = weak.upgrade().expect("a yielded key is alive");
        walked.push(topic.name.clone());
        topics.retain(|t| Gc::ptr_eq(t, &topic));
    }
    assert_eq!(walked.len(), 1, "the others died before their turn");
    assert_eq!(topics.len(), 1);
    assert_eq!(take_log().len(), 3);
    assert_eq!(registry.topics.len(), 1);
    assert_eq!(topics[0].name, walked[0]);

    let mut kept = Vec::new();
    for weak in registry.by_name.weak_values() {
        let s = weak.upgrade().expect("a yielded value is alive");
        subscribers.retain(|other| Gc::ptr_eq(other, &s));
        kept.push(weak);
    }
    assert_eq!(kept.len(), 1);
    assert_eq!(take_log().len(), 2, "two subscribers dropped by count");
    assert_eq!(registry.by_name.len(), 1);
    assert_eq!(registry.topics.get(&topics[0]).unwrap().len(), 1);
    assert_eq!(registry.publish(&topics[0], "hi"), 1);

    drop(subscribers);
    assert!(kept[0].upgrade().is_none(), "the walk's Weak kept nothing");
    assert!(registry.by_name.is_empty());
    assert!(registry.topics.get(&topics[0]).unwrap().is_empty());
    let last = topics.pop().unwrap();
    let weak_last = Gc::downgrade(&last);
    drop(last);
    assert!(weak_last.upgrade().is_none());
    assert!(registry.topics.is_empty());
    assert_eq!(take_log().len(), 2);
}

/// Python's in-place set updates on hover and selection sets, written as
/// a newcomer first writes them (`selected |= &hovered`, `&=`, `-=`,
/// `^=`), which did not compile before this session added the operators
/// ("binary assignment operation `|=` cannot be applied to type
/// `WeakSet<Widget>`", E0368). Each updates the left set by the live
/// members of the right one, by identity; the updated set keeps no member
/// alive, and a member that dies afterwards leaves it at once.
#[test]
fn in_place_set_updates_on_selection() {
    let _ = take_log();
    let window = Widget::new("window", None);
    let a = Widget::new("a", Some(&window));
    let b = Widget::new("b", Some(&window));
    let c = Widget::new("c", Some(&window));
    let mut selected: WeakSet<Widget> = [a.clone()].into_iter().collect();
    let hovered: WeakSet<Widget> = [b.clone(), c.clone()].into_iter().collect();

    selected |= &hovered; // shift-click: add what the pointer covers
    assert_eq!(names(&selected), ["a", "b", "c"]);
    selected -= &[c.clone()].into_iter().collect(); // ctrl-click c off
    assert_eq!(names(&selected), ["a", "b"]);
    selected ^= &hovered; // toggle the hovered ones: b off, c on
    assert_eq!(names(&selected), ["a", "c"]);
    selected &= &hovered; // keep only what is still hovered
    assert_eq!(names(&selected), ["c"]);
    assert!(selected.is_subset(&hovered));

    // The window closes: everything dies by count (no handler holds a
    // widget), and both sets are empty; nothing was kept by the updates.
    drop((a, b, c, window));
    assert_eq!(
        take_log_sorted(),
        ["drop a", "drop b", "drop c", "drop window"]
    );
    assert!(selected.is_empty() && hovered.is_empty());
    selected |= &hovered;
    selected ^= &hovered;
    assert!(selected == WeakSet::new());
}
