//! No recursion follows the data: million-node structures are dropped and
//! collected on a 256 KiB stack (CPython's "trashcan").

mod support;

use std::cell::RefCell;

use gcptr::{Gc, Trace, Weak};
use support::{on_small_stack, scaled};

thread_local!(static DROPPED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) });

fn dropped() -> usize {
    DROPPED.with(|d| d.replace(0))
}

#[derive(Trace)]
struct Link {
    next: RefCell<Option<Gc<Link>>>,
    prev: RefCell<Weak<Link>>,
    back: RefCell<Option<Gc<Link>>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = DROPPED.try_with(|d| d.set(d.get() + 1));
    }
}

fn link() -> Gc<Link> {
    Gc::new(Link {
        next: RefCell::new(None),
        prev: RefCell::new(Weak::new()),
        back: RefCell::new(None),
    })
}

/// A singly linked chain of `n` nodes; returns the head.
fn chain(n: usize) -> Gc<Link> {
    let head = link();
    let mut tail = head.clone();
    for _ in 1..n {
        let next = link();
        *tail.next.borrow_mut() = Some(next.clone());
        tail = next;
    }
    head
}

#[test]
fn million_node_chain_drops_from_its_head_on_a_small_stack() {
    let n = scaled(1_000_000);
    let dropped_count = on_small_stack(move || {
        gcptr::disable();
        let head = chain(n);
        drop(head);
        dropped()
    });
    assert_eq!(dropped_count, n);
}

#[test]
fn million_node_cycle_is_collected_on_a_small_stack() {
    let n = scaled(1_000_000);
    let (collected, dropped_count) = on_small_stack(move || {
        gcptr::disable();
        let head = chain(n);
        // Close the chain into one big cycle.
        let mut tail = head.clone();
        loop {
            let next = tail.next.borrow().clone();
            match next {
                Some(next) => tail = next,
                None => break,
            }
        }
        *tail.next.borrow_mut() = Some(head.clone());
        drop((head, tail));
        assert_eq!(dropped(), 0);
        (gcptr::collect(), dropped())
    });
    assert_eq!(collected, n);
    assert_eq!(dropped_count, n);
}

#[test]
fn million_node_doubly_linked_ring_is_reclaimed() {
    let n = scaled(1_000_000);
    let (collected, dropped_count) = on_small_stack(move || {
        gcptr::disable();
        let first = link();
        let mut last = first.clone();
        for _ in 1..n {
            let node = link();
            *node.back.borrow_mut() = Some(last.clone());
            *node.prev.borrow_mut() = Gc::downgrade(&last);
            *last.next.borrow_mut() = Some(node.clone());
            last = node;
        }
        *last.next.borrow_mut() = Some(first.clone());
        *first.back.borrow_mut() = Some(last.clone());
        let weak = Gc::downgrade(&first);
        drop((first, last));
        let collected = gcptr::collect();
        assert!(weak.upgrade().is_none());
        (collected, dropped())
    });
    assert_eq!(collected, n);
    assert_eq!(dropped_count, n);
}

#[test]
fn deep_chain_hanging_off_a_garbage_cycle_is_dropped_on_a_small_stack() {
    let n = scaled(1_000_000);
    let dropped_count = on_small_stack(move || {
        gcptr::disable();
        let head = chain(n);
        let cycle = link();
        *cycle.back.borrow_mut() = Some(cycle.clone());
        *cycle.next.borrow_mut() = Some(head);
        drop(cycle);
        assert_eq!(gcptr::collect(), n + 1);
        dropped()
    });
    assert_eq!(dropped_count, n + 1);
}
