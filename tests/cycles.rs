//! Cycles of every shape are reclaimed by `collect()`, and only when
//! nothing outside holds them.

mod support;

use std::cell::RefCell;
use std::collections::HashMap;

use gcptr::{Gc, Trace, Tracer};
use support::{take_drops, DropLog, Node};

#[test]
fn partner_cycle_survives_its_handles_and_dies_at_collect() {
    take_drops();
    let a = Node::new(1);
    let b = Node::new(2);
    a.link(&b);
    b.link(&a);
    let weak = Gc::downgrade(&a);
    drop((a, b));
    assert!(take_drops().is_empty(), "a cycle must not die by count");
    assert!(weak.upgrade().is_some());
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2], "each Drop exactly once");
    assert!(weak.upgrade().is_none());
    assert_eq!(gcptr::collect(), 0);
    assert!(take_drops().is_empty());
}

#[test]
fn self_cycle_dies_at_collect() {
    take_drops();
    let a = Node::new(7);
    a.link(&a);
    assert_eq!(Gc::strong_count(&a), 2);
    drop(a);
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [7]);
}

#[test]
fn cycle_held_by_one_outside_handle_survives_then_dies_when_it_goes() {
    take_drops();
    let ring: Vec<_> = (0..5).map(Node::new).collect();
    for i in 0..5 {
        ring[i].link(&ring[(i + 1) % 5]);
    }
    let hanger = Node::new(99);
    ring[2].link(&hanger);
    let handle = ring[3].clone();
    drop(ring);
    drop(hanger);
    assert_eq!(gcptr::collect(), 0);
    assert!(take_drops().is_empty());
    assert_eq!(handle.edges.borrow()[0].id(), 4);
    drop(handle);
    assert_eq!(gcptr::collect(), 6);
    assert_eq!(take_drops(), [0, 1, 2, 3, 4, 99]);
}

#[test]
fn parent_with_children_that_point_back_dies_at_collect() {
    take_drops();
    let parent = Node::new(0);
    for id in 1..=3 {
        let child = Node::new(id);
        child.link(&parent);
        parent.link(&child);
    }
    let child = parent.edges.borrow()[1].clone();
    drop(parent);
    assert_eq!(gcptr::collect(), 0, "a child handle keeps the whole family");
    drop(child);
    assert_eq!(gcptr::collect(), 4);
    assert_eq!(take_drops(), [0, 1, 2, 3]);
}

macro_rules! container_cycle {
    ($name:ident, $ty:ty, $empty:expr, |$slot:ident, $gc:ident| $store:expr) => {
        #[test]
        fn $name() {
            struct Holder {
                log: DropLog,
                slot: RefCell<$ty>,
            }
            // SAFETY: visits the Gcs the container owns.
            unsafe impl Trace for Holder {
                fn trace(&self, tracer: &mut Tracer) {
                    self.slot.trace(tracer);
                }
            }
            take_drops();
            let a = Gc::new(Holder {
                log: DropLog(1),
                slot: RefCell::new($empty),
            });
            let b = Gc::new(Holder {
                log: DropLog(2),
                slot: RefCell::new($empty),
            });
            {
                let $slot = &mut *a.slot.borrow_mut();
                let $gc = b.clone();
                $store;
            }
            {
                let $slot = &mut *b.slot.borrow_mut();
                let $gc = a.clone();
                $store;
            }
            let _ = (&a.log, &b.log);
            drop((a, b));
            assert!(take_drops().is_empty());
            assert_eq!(gcptr::collect(), 2);
            assert_eq!(take_drops(), [1, 2]);
        }
    };
}

container_cycle!(
    cycle_through_vec_dies,
    Vec<Gc<Holder>>,
    Vec::new(),
    |s, g| s.push(g)
);
container_cycle!(
    cycle_through_option_dies,
    Option<Gc<Holder>>,
    None,
    |s, g| *s = Some(g)
);
container_cycle!(
    cycle_through_hash_map_dies,
    HashMap<u32, Gc<Holder>>,
    HashMap::new(),
    |s, g| {
        s.insert(1, g);
    }
);
container_cycle!(
    cycle_through_box_dies,
    Option<Box<Gc<Holder>>>,
    None,
    |s, g| *s = Some(Box::new(g))
);
container_cycle!(
    cycle_through_nested_refcell_dies,
    Vec<RefCell<(u8, Gc<Holder>)>>,
    Vec::new(),
    |s, g| s.push(RefCell::new((0, g)))
);

#[test]
fn acyclic_objects_die_by_count_without_the_collector() {
    take_drops();
    let a = Node::new(1);
    let b = Node::new(2);
    a.link(&b);
    drop(b);
    assert!(take_drops().is_empty());
    drop(a);
    assert_eq!(take_drops(), [1, 2]);
}

#[test]
fn mutably_borrowed_object_is_never_collected_while_borrowed() {
    take_drops();
    let a = Node::new(1);
    a.link(&a);
    let weak = Gc::downgrade(&a);
    let keep = a.clone();
    drop(a);
    {
        let _borrow = keep.edges.borrow_mut();
        assert_eq!(gcptr::collect(), 0);
    }
    drop(keep);
    assert_eq!(gcptr::collect(), 1);
    assert!(weak.upgrade().is_none());
    assert_eq!(take_drops(), [1]);
}
