//! `gcptr::sync::ThreadBound`: a handle that crosses threads, opened only
//! at home, whose value is always dropped at home: at once when the last
//! handle goes there, or, sent home from another thread, by the home
//! thread's next collection, `ThreadBound::new`, `release_returned` or
//! exit. The inbox that carries values home is model-checked with loom
//! (`gcptr/src/sync/inbox.rs`); these tests run real threads.
//!
//! Every node reports its drop, with the thread it ran on, over a channel
//! of its test's own.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender};
use std::thread::{self, ThreadId};

use gcptr::sync::{release_returned, ThreadBound};
use gcptr::{Gc, Trace};

mod support;

use support::{drop_elsewhere, dropped_on};

#[derive(Trace)]
struct Node {
    #[gc(skip)]
    id: u32,
    #[gc(skip)]
    drops: Sender<(u32, ThreadId)>,
    #[gc(skip)]
    panic_on_drop: bool,
    next: RefCell<Option<Gc<Node>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.drops.send((self.id, thread::current().id()));
        if self.panic_on_drop {
            panic!("node {} panics in its drop", self.id);
        }
    }
}

fn node(id: u32, drops: &Sender<(u32, ThreadId)>) -> Gc<Node> {
    Gc::new(Node {
        id,
        drops: drops.clone(),
        panic_on_drop: false,
        next: RefCell::new(None),
    })
}

/// Two nodes that hold each other.
fn pair(drops: &Sender<(u32, ThreadId)>) -> Gc<Node> {
    let (a, b) = (node(1, drops), node(2, drops));
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    a
}

#[test]
fn a_cycle_whose_last_handle_is_dropped_elsewhere_is_collected_at_home() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let handle = ThreadBound::new(pair(&tx));
    drop_elsewhere(handle);
    assert_eq!(dropped_on(&rx, home), [] as [u32; 0]);
    // The collection first drops the handle's `Gc` at home, and then finds
    // the pair it let go.
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(dropped_on(&rx, home), [1, 2]);
}

#[test]
fn a_value_sent_home_waits_for_release_returned() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let handle = ThreadBound::new(node(7, &tx));
    let copy = handle.clone();
    drop_elsewhere(handle);
    // A clone is left at home: nothing was sent.
    assert_eq!(release_returned(), 0);
    drop_elsewhere(copy);
    assert_eq!(dropped_on(&rx, home), [] as [u32; 0]);
    assert_eq!(release_returned(), 1);
    assert_eq!(dropped_on(&rx, home), [7]);
    assert_eq!(release_returned(), 0);
}

#[test]
fn the_last_handle_dropped_at_home_drops_the_value_at_once() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let handle = ThreadBound::new(node(3, &tx));
    let copy = handle.clone();
    drop_elsewhere(copy);
    assert_eq!(dropped_on(&rx, home), [] as [u32; 0]);
    drop(handle);
    assert_eq!(dropped_on(&rx, home), [3]);
    assert_eq!(release_returned(), 0);
}

#[test]
fn clones_dropped_on_many_threads_send_the_value_home_once() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let handle = ThreadBound::new(node(4, &tx));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let copy = handle.clone();
            thread::spawn(move || {
                let again = copy.clone();
                assert!(again.try_get().is_none());
                drop((copy, again));
            })
        })
        .collect();
    drop_elsewhere(handle);
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(release_returned(), 1);
    assert_eq!(dropped_on(&rx, home), [4]);
}

#[test]
fn many_threads_send_values_home_while_home_releases() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let (rounds, batch_len) = if cfg!(miri) { (4, 5) } else { (20, 100) };
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (handles_tx, handles_rx) = channel::<Vec<ThreadBound<Gc<Node>>>>();
            let worker = thread::spawn(move || {
                for batch in handles_rx {
                    // Each handle is cloned here and both clones dropped.
                    for handle in batch {
                        drop((handle.clone(), handle));
                    }
                }
            });
            (handles_tx, worker)
        })
        .collect();
    let mut released = 0;
    for round in 0..rounds {
        for (w, (handles_tx, _)) in workers.iter().enumerate() {
            let batch = (0..batch_len)
                .map(|i| ThreadBound::new(node((round * 4 + w as u32) * batch_len + i, &tx)))
                .collect();
            handles_tx.send(batch).unwrap();
        }
        released += release_returned();
    }
    for (handles_tx, worker) in workers {
        drop(handles_tx);
        worker.join().unwrap();
    }
    released += release_returned();
    // `ThreadBound::new` released the rest, as it went: each node once.
    let dropped = dropped_on(&rx, home);
    assert_eq!(dropped, (0..rounds * 4 * batch_len).collect::<Vec<_>>());
    assert!(released <= dropped.len());
    assert_eq!(release_returned(), 0);
}

#[test]
fn only_the_home_thread_opens_the_value() {
    let handle = ThreadBound::new(Gc::new(String::from("home")));
    assert!(handle.is_home());
    assert_eq!(handle.get().as_str(), "home");
    assert_eq!(format!("{handle:?}"), "ThreadBound(\"home\")");
    thread::scope(|s| {
        s.spawn(|| {
            assert!(!handle.is_home());
            assert!(handle.try_get().is_none());
            assert_eq!(format!("{handle:?}"), "ThreadBound(<on another thread>)");
            let refused = panic::catch_unwind(AssertUnwindSafe(|| handle.get().len()));
            let message = support::panic_message(&refused.unwrap_err());
            assert!(
                message.contains("`ThreadBound::get` called off the value's home thread"),
                "{message}"
            );
        });
    });
}

#[test]
fn try_unwrap_needs_the_home_thread_and_the_last_handle() {
    let handle = ThreadBound::new(String::from("mine"));
    let copy = handle.clone();
    let handle = ThreadBound::try_unwrap(handle).unwrap_err();
    drop(copy);
    let handle = thread::spawn(move || ThreadBound::try_unwrap(handle).unwrap_err())
        .join()
        .unwrap();
    assert_eq!(ThreadBound::try_unwrap(handle).unwrap(), "mine");
}

#[test]
fn an_automatic_collection_releases_what_was_sent_home() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    gcptr::set_threshold([10, 10, 10]);
    let handle = ThreadBound::new(pair(&tx));
    drop_elsewhere(handle);
    // Generation 0 holds 10 objects, at its threshold.
    let young: Vec<_> = (100..108).map(|id| node(id, &tx)).collect();
    assert_eq!(dropped_on(&rx, home), [] as [u32; 0]);
    // The first automatic collection releases the handle, then finds the
    // pair that it let go.
    let over = node(108, &tx);
    gcptr::set_threshold([700, 10, 10]);
    assert_eq!(dropped_on(&rx, home), [1, 2]);
    assert_eq!(release_returned(), 0);
    drop((young, over));
}

/// A thread that made a cycle, handed it out, and exits once the handle
/// was dropped elsewhere, without a collection of its own. The inbox's
/// closer and the collector's exit guard are thread-locals, destroyed in
/// the reverse order of their first use. `closer_first` makes the closer
/// go after the guard, and after sixteen thread-locals whose destructors
/// use up the collector's later exit guards: then the first exit
/// collection must release the handle itself, as nothing collects what
/// the closer releases.
fn exit_after_the_handle_came_back(closer_first: bool) {
    let (tx, rx) = channel();
    let (handles_tx, handles_rx) = channel();
    let (dropped_tx, dropped_rx) = channel::<()>();
    let home = thread::spawn(move || {
        if closer_first {
            drop(ThreadBound::new(()));
            support::touch_exit_guard_fillers();
            support::fill_exit_guard_fillers(100);
        }
        handles_tx.send(ThreadBound::new(pair(&tx))).unwrap();
        dropped_rx.recv().unwrap();
        thread::current().id()
    });
    drop(handles_rx.recv().unwrap());
    dropped_tx.send(()).unwrap();
    let home = home.join().unwrap();
    assert_eq!(dropped_on(&rx, home), [1, 2]);
}

#[test]
fn a_thread_that_exits_collects_what_was_sent_home() {
    exit_after_the_handle_came_back(false);
}

#[test]
fn a_thread_that_exits_collects_what_was_sent_home_before_its_late_destructors() {
    exit_after_the_handle_came_back(true);
}

// A leak, on purpose, which Miri's leak check would report, and
// LeakSanitizer's (scripts/sanitizers.sh) or valgrind's.
#[cfg_attr(miri, ignore)]
#[test]
fn a_value_sent_home_after_its_home_ended_is_leaked_not_dropped() {
    if support::leak_checker_watches() {
        return;
    }
    let (tx, rx) = channel();
    let handle = thread::spawn(move || ThreadBound::new(node(5, &tx)))
        .join()
        .unwrap();
    drop(handle);
    // Its `Sender` is leaked with it: not disconnected, and nothing sent.
    assert!(matches!(
        rx.try_recv(),
        Err(std::sync::mpsc::TryRecvError::Empty)
    ));
}

#[test]
fn a_thread_bound_inside_a_traced_value_is_a_root() {
    #[derive(Trace)]
    struct Holder {
        held: ThreadBound<Gc<Node>>,
    }
    let (tx, rx) = channel();
    let home = thread::current().id();
    let holder = Gc::new(Holder {
        held: ThreadBound::new(pair(&tx)),
    });
    assert!(!gcptr::is_tracked(&holder), "a `ThreadBound` owns no edge");
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(holder.held.get().id, 1);
    drop(holder);
    // Dropped at home, the handle let go of the pair at once.
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(dropped_on(&rx, home), [1, 2]);
}

#[test]
fn a_drop_sent_home_that_panics_comes_out_after_the_rest() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let panicking = Gc::new(Node {
        id: 8,
        drops: tx.clone(),
        panic_on_drop: true,
        next: RefCell::new(None),
    });
    // Made before either goes: `ThreadBound::new` releases too.
    let handles = (ThreadBound::new(panicking), ThreadBound::new(node(9, &tx)));
    drop_elsewhere(handles);
    let payload = panic::catch_unwind(release_returned).unwrap_err();
    assert_eq!(
        support::panic_message(&payload),
        "node 8 panics in its drop"
    );
    assert_eq!(dropped_on(&rx, home), [8, 9]);

    // From a collection: it completes first.
    let panicking = Gc::new(Node {
        id: 10,
        drops: tx.clone(),
        panic_on_drop: true,
        next: RefCell::new(None),
    });
    let handles = (ThreadBound::new(panicking), ThreadBound::new(pair(&tx)));
    drop_elsewhere(handles);
    let payload = panic::catch_unwind(gcptr::collect).unwrap_err();
    assert_eq!(
        support::panic_message(&payload),
        "node 10 panics in its drop"
    );
    assert_eq!(dropped_on(&rx, home), [1, 2, 10]);
}

#[test]
fn a_thread_bound_is_send_and_sync_whatever_it_holds() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<ThreadBound<Gc<Node>>>();
    send_and_sync::<ThreadBound<std::rc::Rc<RefCell<u8>>>>();
}
