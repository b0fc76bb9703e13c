//! A tree whose children point back at their parent, both ways that Python
//! programmers know: with a weak parent link (`weakref.ref`), which frees
//! the tree by reference counting alone, and with a strong one, which makes
//! every parent-child pair a cycle that the collector frees.
//!
//! Run it with `cargo run --example tree`.

use std::cell::{Cell, RefCell};

use gcptr::{Gc, Trace, Weak};

thread_local!(static DROPPED: Cell<usize> = const { Cell::new(0) });

fn dropped() -> usize {
    DROPPED.with(|d| d.replace(0))
}

#[derive(Trace)]
struct WeakParentNode {
    name: String,
    parent: RefCell<Weak<WeakParentNode>>,
    children: RefCell<Vec<Gc<WeakParentNode>>>,
}

#[derive(Trace)]
struct StrongParentNode {
    name: String,
    parent: RefCell<Option<Gc<StrongParentNode>>>,
    children: RefCell<Vec<Gc<StrongParentNode>>>,
}

impl Drop for WeakParentNode {
    fn drop(&mut self) {
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

impl Drop for StrongParentNode {
    fn drop(&mut self) {
        DROPPED.with(|d| d.set(d.get() + 1));
    }
}

fn main() {
    gcptr::disable();

    println!("Weak parent links:");
    let root = Gc::new(WeakParentNode {
        name: "root".into(),
        parent: RefCell::default(),
        children: RefCell::default(),
    });
    for i in 0..3 {
        let child = Gc::new(WeakParentNode {
            name: format!("child{i}"),
            parent: RefCell::new(Gc::downgrade(&root)),
            children: RefCell::default(),
        });
        root.children.borrow_mut().push(child);
    }
    let child = root.children.borrow()[1].clone();
    let parent = child.parent.borrow().upgrade().expect("the root is alive");
    println!("  {}'s parent is {}", child.name, parent.name);
    assert_eq!(parent.name, "root");
    drop((parent, child));
    drop(root);
    let n = dropped();
    println!("  dropping the root freed {n} nodes at once, no collection needed");
    assert_eq!(n, 4);

    println!("Strong parent links:");
    let root = Gc::new(StrongParentNode {
        name: "root".into(),
        parent: RefCell::default(),
        children: RefCell::default(),
    });
    for i in 0..3 {
        let child = Gc::new(StrongParentNode {
            name: format!("child{i}"),
            parent: RefCell::new(Some(root.clone())),
            children: RefCell::default(),
        });
        root.children.borrow_mut().push(child);
    }
    let first = root.children.borrow()[0].clone();
    println!(
        "  {}'s parent is {}",
        first.name,
        first.parent.borrow().as_ref().unwrap().name
    );
    drop(first);
    drop(root);
    assert_eq!(dropped(), 0);
    println!("  dropping the root freed nothing: every child holds it");
    let freed = gcptr::collect();
    println!("  gcptr::collect() freed {freed}");
    assert_eq!(freed, 4);
    assert_eq!(dropped(), 4);
}
