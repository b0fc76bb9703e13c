//! `Gc<[T]>` and `Gc<str>`: allocated in one block, dropped and collected
//! like sized values.

mod support;

use std::cell::RefCell;

use gcptr::{Gc, Trace};
use support::{take_drops, DropLog, Node};

/// An object that a slice of its kind can close a cycle through.
#[derive(Trace)]
struct Holder {
    #[gc(skip)]
    log: DropLog,
    slice: RefCell<Option<Gc<[Gc<Holder>]>>>,
}

fn holder(id: u32) -> Gc<Holder> {
    Gc::new(Holder {
        log: DropLog(id),
        slice: RefCell::new(None),
    })
}

#[test]
fn slice_of_plain_data_is_untracked_and_drops_its_elements_once() {
    take_drops();
    gcptr::collect();
    let logs: Gc<[DropLog]> = Gc::from(vec![DropLog(1), DropLog(2), DropLog(3)]);
    assert_eq!(gcptr::count()[0], 0, "plain data is not tracked");
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[1].0, 2);
    let weak = Gc::downgrade(&logs);
    let other = logs.clone();
    drop(logs);
    assert!(take_drops().is_empty());
    drop(other);
    assert_eq!(take_drops(), [1, 2, 3]);
    assert!(weak.upgrade().is_none());
}

#[test]
fn slices_of_every_alignment_round_trip() {
    let bytes: Gc<[u8]> = Gc::from(&b"hello"[..]);
    assert_eq!(&*bytes, b"hello");
    let wide: Gc<[u128]> = (0..5u128).map(|n| n << 100).collect();
    assert_eq!(wide[4], 4 << 100);
    let empty: Gc<[u64]> = Gc::from(Vec::new());
    assert!(empty.is_empty());
    let units: Gc<[()]> = Gc::from(vec![(), ()]);
    assert_eq!(units.len(), 2);
    #[derive(Trace, Clone, Copy, PartialEq, Debug)]
    #[repr(align(64))]
    struct Wide(u8);
    let aligned: Gc<[Wide]> = Gc::from(vec![Wide(1), Wide(2)]);
    assert_eq!(Gc::as_ptr(&aligned).cast::<u8>() as usize % 64, 0);
    assert_eq!(aligned[1], Wide(2));
}

#[test]
fn slice_of_gcs_is_tracked_and_collected_in_a_cycle() {
    take_drops();
    let a = holder(1);
    let b = holder(2);
    let shared: Gc<[Gc<Holder>]> = Gc::from(vec![a.clone(), b.clone()]);
    assert_eq!(gcptr::referents(&*shared).len(), 2);
    *a.slice.borrow_mut() = Some(shared.clone());
    *b.slice.borrow_mut() = Some(shared);
    assert_eq!(a.log.0 + b.log.0, 3);
    drop((a, b));
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 3, "two holders and the slice");
    assert_eq!(take_drops(), [1, 2]);
}

#[test]
fn slice_holding_nodes_releases_them_by_count() {
    take_drops();
    let nodes: Gc<[Gc<Node>]> = (1..=3).map(Node::new).collect();
    assert_eq!(nodes[2].id(), 3);
    drop(nodes);
    assert_eq!(take_drops(), [1, 2, 3]);
}

#[test]
fn gc_str_from_str_and_string() {
    let a: Gc<str> = Gc::from("héllo");
    let b: Gc<str> = Gc::from(String::from("héllo"));
    assert_eq!(a, b);
    assert!(!Gc::ptr_eq(&a, &b));
    assert_eq!(a.len(), 6);
    assert_eq!(format!("{a}"), "héllo");
    let empty: Gc<str> = Gc::from("");
    assert!(empty.is_empty());
    let weak = Gc::downgrade(&a);
    drop(a);
    assert!(weak.upgrade().is_none());
}

#[test]
fn from_box_moves_the_value() {
    take_drops();
    let boxed = Box::new(DropLog(9));
    let gc: Gc<DropLog> = Gc::from(boxed);
    assert!(take_drops().is_empty());
    assert_eq!(gc.0, 9);
    drop(gc);
    assert_eq!(take_drops(), [9]);
}

/// `Gc<[T]>` from an array moves its elements (each dropped once, with the
/// slice), and a slice made so is traced: a cycle through it is collected.
/// `Default` gives empty slices and strings, as `Rc`'s does.
#[test]
fn from_array_and_default() {
    take_drops();
    gcptr::collect();
    let logs: Gc<[DropLog]> = Gc::from([DropLog(4), DropLog(5)]);
    assert_eq!(logs.iter().map(|l| l.0).collect::<Vec<_>>(), [4, 5]);
    assert!(take_drops().is_empty(), "moved, not copied and dropped");
    drop(logs);
    assert_eq!(take_drops(), [4, 5]);

    let a = holder(6);
    let slice: Gc<[Gc<Holder>]> = Gc::from([a.clone()]);
    assert_eq!(gcptr::referents(&*slice), [Gc::as_ptr(&a).cast::<()>()]);
    assert!(gcptr::is_tracked(&slice), "it reaches a tracked object");
    *a.slice.borrow_mut() = Some(slice);
    assert_eq!(a.log.0, 6);
    drop(a);
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 2, "the holder and the slice");
    assert_eq!(take_drops(), [6]);

    let empty: Gc<[String]> = Default::default();
    let text: Gc<str> = Gc::default();
    assert!(empty.is_empty() && text.is_empty());
    assert!(!gcptr::is_tracked(&empty) && !gcptr::is_tracked(&text));
}
