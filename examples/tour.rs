//! A tour of gcptr for Python programmers: each step prints what happens
//! and asserts it, so a wrong outcome stops the tour with a panic.
//!
//! Run it with `cargo run --release --example tour`.

use std::cell::{Cell, RefCell};

use gcptr::{Finalize, Gc, Trace, Weak, WeakValueMap};

thread_local!(static DROPPED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) });

fn dropped() -> Vec<String> {
    DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

/// A person who can have friends: the friends form cycles.
#[derive(Trace)]
struct Person {
    name: String,
    friends: RefCell<Vec<Gc<Person>>>,
}

impl Drop for Person {
    fn drop(&mut self) {
        DROPPED.with(|d| d.borrow_mut().push(self.name.clone()));
    }
}

fn person(name: &str) -> Gc<Person> {
    Gc::new(Person {
        name: name.into(),
        friends: RefCell::new(Vec::new()),
    })
}

/// A node with a finalizer (`__del__`) that reads its partner.
#[derive(Trace)]
#[gc(finalize)]
struct Partner {
    name: &'static str,
    partner: RefCell<Option<Gc<Partner>>>,
}

impl Finalize for Partner {
    fn finalize(&self) {
        let other = self.partner.borrow().as_ref().map_or("nobody", |p| p.name);
        println!(
            "    __del__ of {}: my partner {} is still intact",
            self.name, other
        );
        FINALIZED.with(|n| n.set(n.get() + 1));
    }
}

thread_local!(static FINALIZED: Cell<u32> = const { Cell::new(0) });

/// An immutable expression tree: no node can come to point at a newer one,
/// so no cycle can pass through it and the collector never looks at it.
#[derive(Trace)]
enum Expr {
    Num(i64),
    Add(Gc<Expr>, Gc<Expr>),
}

impl Expr {
    fn eval(&self) -> i64 {
        match self {
            Expr::Num(n) => *n,
            Expr::Add(a, b) => a.eval() + b.eval(),
        }
    }
}

fn main() {
    gcptr::disable(); // the tour decides when to collect
    step("1. Names are labels, objects are boxes: `is` is Gc::ptr_eq");
    let a = person("Ada");
    let b = a.clone();
    let c = person("Ada");
    println!("    b = a.clone(): ptr_eq(a, b) = {}", Gc::ptr_eq(&a, &b));
    println!(
        "    c is another Ada: ptr_eq(a, c) = {}",
        Gc::ptr_eq(&a, &c)
    );
    assert!(Gc::ptr_eq(&a, &b) && !Gc::ptr_eq(&a, &c));
    assert_eq!(a.name, c.name);

    step("2. Reference counts: sys.getrefcount(a) - 1 is Gc::strong_count");
    println!("    strong_count(a) = {}", Gc::strong_count(&a));
    assert_eq!(Gc::strong_count(&a), 2);
    drop(b);
    println!("    after drop(b): {}", Gc::strong_count(&a));
    assert_eq!(Gc::strong_count(&a), 1);

    step("3. The last reference frees the object at once, as in CPython");
    drop(c);
    let gone = dropped();
    println!("    dropped: {gone:?}");
    assert_eq!(gone, ["Ada"]);

    step("4. A cycle survives its names: only the collector frees it");
    let bob = person("Bob");
    a.friends.borrow_mut().push(bob.clone());
    bob.friends.borrow_mut().push(a.clone());
    let watch = Gc::downgrade(&a);
    drop((a, bob));
    println!("    after dropping both names: dropped {:?}", dropped());
    assert!(watch.upgrade().is_some(), "the cycle keeps itself alive");
    let freed = gcptr::collect();
    let mut gone = dropped();
    gone.sort();
    println!("    gc.collect() -> {freed}, dropped {gone:?}");
    assert_eq!(freed, 2);
    assert_eq!(gone, ["Ada", "Bob"]);
    assert!(watch.upgrade().is_none());

    step("5. Finalizers (__del__) see the whole cycle intact");
    let x = Gc::new(Partner {
        name: "x",
        partner: RefCell::new(None),
    });
    let y = Gc::new(Partner {
        name: "y",
        partner: RefCell::new(Some(x.clone())),
    });
    *x.partner.borrow_mut() = Some(y.clone());
    drop((x, y));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(FINALIZED.with(Cell::get), 2);

    step("6. Generations: gc.get_count() and young collections");
    gcptr::collect();
    let keep: Vec<_> = (0..5).map(|i| person(&format!("p{i}"))).collect();
    println!("    5 tracked allocations: count() = {:?}", gcptr::count());
    assert_eq!(gcptr::count(), [5, 0, 0]);
    let plain = Gc::new(42u64); // plain data is never tracked
    assert_eq!(gcptr::count(), [5, 0, 0]);
    gcptr::collect_generation(0);
    println!(
        "    after collect(0), survivors moved up: count() = {:?}",
        gcptr::count()
    );
    assert_eq!(gcptr::count(), [0, 1, 0]);
    println!(
        "    thresholds (gc.get_threshold()): {:?}",
        gcptr::threshold()
    );
    assert_eq!(gcptr::threshold(), [700, 10, 10]);
    drop((keep, plain));
    dropped();

    step("7. A weak cache (WeakValueDictionary) never keeps its values alive");
    let mut cache: WeakValueMap<u32, Person> = WeakValueMap::new();
    let user = cache.get_or_insert_with(1, || person("Grace"));
    let again = cache.get_or_insert_with(1, || unreachable!("cached"));
    println!("    cached: {} (len {})", again.name, cache.len());
    assert!(Gc::ptr_eq(&user, &again));
    drop((user, again));
    println!("    after the last handle: len {}", cache.len());
    assert_eq!(cache.len(), 0);
    assert_eq!(dropped(), ["Grace"]);

    step("8. Weak references (weakref.ref) upgrade while the object lives");
    let z = person("Zed");
    let w: Weak<Person> = Gc::downgrade(&z);
    assert_eq!(w.upgrade().map(|p| p.name.clone()).as_deref(), Some("Zed"));
    drop(z);
    assert!(w.upgrade().is_none());
    println!("    upgrade after death: None");
    dropped();

    step("9. gc.is_tracked: immutable data cannot form a cycle, so it is not tracked");
    let leaf = Gc::new(Expr::Num(2));
    let sum = Gc::new(Expr::Add(leaf.clone(), Gc::new(Expr::Num(3))));
    let ada = person("Ada");
    println!(
        "    is_tracked(2 + 3) = {}, is_tracked(Ada) = {}",
        gcptr::is_tracked(&sum),
        gcptr::is_tracked(&ada)
    );
    assert!(!gcptr::is_tracked(&sum) && !gcptr::is_tracked(&leaf));
    assert!(
        gcptr::is_tracked(&ada),
        "Ada's friends can change: a RefCell"
    );
    assert_eq!(sum.eval(), 5);
    drop((leaf, sum, ada));
    dropped();

    step("10. Threads: a Gc stays home; a ThreadBound handle travels, and is opened at home");
    let (ann, bob) = (person("Ann"), person("Bob"));
    ann.friends.borrow_mut().push(bob.clone());
    bob.friends.borrow_mut().push(ann.clone());
    let handle = gcptr::sync::ThreadBound::new(ann.clone());
    drop((ann, bob));
    std::thread::spawn(move || {
        assert!(handle.try_get().is_none(), "only the home thread opens it");
        drop(handle); // sent home: Ann is not dropped on this thread
    })
    .join()
    .unwrap();
    assert!(dropped().is_empty());
    let reclaimed = gcptr::collect(); // takes the handle back, then finds the cycle
    println!("    handle dropped on a worker; collect() at home reclaims {reclaimed}");
    assert_eq!(reclaimed, 2);
    let mut gone = dropped();
    gone.sort();
    assert_eq!(gone, ["Ann", "Bob"]);

    gcptr::enable();
    println!("\nTour complete: every step behaved as described.");
}

fn step(title: &str) {
    println!("\n{title}");
}
