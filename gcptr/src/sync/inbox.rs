//! The queue through which other threads hand values back to the thread
//! they belong to: many senders, one receiver (the home thread), and a
//! close that the home thread makes once, at its exit, after which sends
//! fail.
//!
//! A mutex guards the items and the closed mark; a flag outside it lets
//! the home thread's frequent look ("anything for me?") skip the lock. The
//! flag is set, under the lock, after each item goes in, and cleared,
//! under the lock, as the items are taken: so an item sent is either taken
//! by a `take` that locked after it, or still flagged for the next one.
//! Under `--cfg loom` the primitives are loom's, and the tests below check
//! that no interleaving loses or duplicates an item.

use core::mem;

#[cfg(loom)]
use loom::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex, MutexGuard,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex, MutexGuard,
};

/// A home thread's queue of items sent back to it.
pub(crate) struct Inbox<T> {
    queue: Mutex<Queue<T>>,
    /// Whether `queue.items` may hold something: set after an item goes in,
    /// cleared when they are taken, both under the lock.
    waiting: AtomicBool,
}

struct Queue<T> {
    items: Vec<T>,
    closed: bool,
}

impl<T> Inbox<T> {
    /// An open inbox, for a thread that is running.
    pub(crate) fn new() -> Self {
        Self::with_closed(false)
    }

    /// An inbox that refuses every item: for a handle made after its home
    /// thread's inbox closed (from a late thread-local destructor).
    pub(crate) fn closed() -> Self {
        Self::with_closed(true)
    }

    fn with_closed(closed: bool) -> Self {
        Inbox {
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closed,
            }),
            waiting: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        // No code of the program runs under the lock: items are moved in
        // and out, never dropped there. Only `Vec::push` can panic under it
        // (a capacity overflow), and leaves the queue as it was.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `item` for the home thread; gives it back if the inbox is
    /// closed (its home thread has ended).
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let mut queue = self.lock();
        if queue.closed {
            return Err(item);
        }
        queue.items.push(item);
        self.waiting.store(true, Ordering::Release);
        Ok(())
    }

    /// Takes every item queued so far (on the home thread). Without the
    /// lock when nothing is flagged.
    pub(crate) fn take(&self) -> Vec<T> {
        if !self.waiting.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut queue = self.lock();
        self.waiting.store(false, Ordering::Relaxed);
        mem::take(&mut queue.items)
    }

    /// Refuses every later item, and takes those queued (on the home
    /// thread, as it exits).
    pub(crate) fn close(&self) -> Vec<T> {
        let mut queue = self.lock();
        queue.closed = true;
        self.waiting.store(false, Ordering::Relaxed);
        mem::take(&mut queue.items)
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        // Closing takes every item on the home thread, and nothing comes
        // in after: an inbox is empty when its last handle goes, on
        // whichever thread. Should one be left, it is leaked rather than
        // dropped off its thread.
        let items = mem::take(&mut self.lock().items);
        debug_assert!(items.is_empty(), "an inbox dropped with items in it");
        mem::forget(items);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    use super::Inbox;

    /// Each item counts its drops, so that a lost or doubled item shows.
    struct Item(Arc<AtomicUsize>);

    impl Drop for Item {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn items_sent_while_the_home_thread_takes_arrive_once() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::new());
            let dropped = Arc::new(AtomicUsize::new(0));
            let senders: Vec<_> = (0..2)
                .map(|_| {
                    let (inbox, dropped) = (inbox.clone(), dropped.clone());
                    thread::spawn(move || {
                        assert!(inbox.send(Item(dropped)).is_ok(), "an open inbox refused");
                    })
                })
                .collect();
            let mut received = inbox.take().len();
            for sender in senders {
                sender.join().unwrap();
            }
            received += inbox.take().len();
            assert_eq!(received, 2);
            assert!(inbox.close().is_empty());
            assert_eq!(dropped.load(Ordering::Relaxed), 2);
        });
    }

    #[test]
    fn a_send_that_races_the_close_is_either_taken_or_refused() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::new());
            let dropped = Arc::new(AtomicUsize::new(0));
            let sender = {
                let (inbox, dropped) = (inbox.clone(), dropped.clone());
                // A refused item comes back to its sender, which drops it
                // here (`ThreadBound` leaks it instead).
                thread::spawn(move || usize::from(inbox.send(Item(dropped)).is_err()))
            };
            let taken = inbox.take().len();
            let closed_with = inbox.close().len();
            let refused = sender.join().unwrap();
            assert_eq!(taken + closed_with + refused, 1);
            assert_eq!(dropped.load(Ordering::Relaxed), 1);
            assert!(inbox.take().is_empty());
            assert!(
                inbox.send(Item(dropped.clone())).is_err(),
                "a closed inbox took an item"
            );
        });
    }

    #[test]
    fn the_flag_never_hides_an_item_from_a_later_take() {
        loom::model(|| {
            let inbox = Arc::new(Inbox::new());
            let dropped = Arc::new(AtomicUsize::new(0));
            let sender = {
                let (inbox, dropped) = (inbox.clone(), dropped.clone());
                thread::spawn(move || {
                    inbox.send(Item(dropped.clone())).ok().unwrap();
                    inbox.send(Item(dropped)).ok().unwrap();
                })
            };
            let first = inbox.take().len();
            sender.join().unwrap();
            // Both are sent: what the first take missed, this one finds,
            // through the flag alone (no close).
            let second = inbox.take().len();
            assert_eq!(first + second, 2);
            assert_eq!(dropped.load(Ordering::Relaxed), 2);
        });
    }
}
