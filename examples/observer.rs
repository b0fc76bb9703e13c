//! A subject that notifies observers it holds weakly, behind `dyn
//! Observer`: observers come and go without unsubscribing, and the subject
//! never keeps them alive. Observers hold the subject strongly.
//!
//! Run it with `cargo run --example observer`.

use std::cell::{Cell, RefCell};

use gcptr::{gc_coerce, Gc, Trace, WeakSet};

trait Observer: Trace {
    fn notify(&self, event: &str);
}

#[derive(Trace)]
struct Subject {
    name: String,
    observers: RefCell<WeakSet<dyn Observer>>,
}

impl Subject {
    fn subscribe(&self, observer: &Gc<dyn Observer>) {
        self.observers.borrow_mut().insert(observer);
    }

    fn publish(&self, event: &str) -> usize {
        let observers: Vec<_> = self.observers.borrow().iter().collect();
        for observer in &observers {
            observer.notify(event);
        }
        observers.len()
    }
}

#[derive(Trace)]
struct Logger {
    label: String,
    subject: Gc<Subject>,
    heard: Cell<u32>,
}

impl Observer for Logger {
    fn notify(&self, event: &str) {
        println!(
            "  {} heard {event:?} from {}",
            self.label, self.subject.name
        );
        self.heard.set(self.heard.get() + 1);
    }
}

fn main() {
    let subject = Gc::new(Subject {
        name: "weather".into(),
        observers: RefCell::new(WeakSet::new()),
    });
    let first = Gc::new(Logger {
        label: "first".into(),
        subject: subject.clone(),
        heard: Cell::new(0),
    });
    let second = Gc::new(Logger {
        label: "second".into(),
        subject: subject.clone(),
        heard: Cell::new(0),
    });
    subject.subscribe(&gc_coerce!(first.clone() => dyn Observer));
    subject.subscribe(&gc_coerce!(second.clone() => dyn Observer));

    println!("publish \"rain\":");
    assert_eq!(subject.publish("rain"), 2);
    drop(second);
    println!("the second observer is gone, without unsubscribing; publish \"sun\":");
    assert_eq!(subject.publish("sun"), 1);
    assert_eq!(first.heard.get(), 2);
    assert_eq!(subject.observers.borrow().len(), 1);
    assert_eq!(
        Gc::strong_count(&subject),
        2,
        "ours, and the first observer's"
    );
    drop(first);
    assert_eq!(subject.observers.borrow().len(), 0);
    assert_eq!(
        Gc::strong_count(&subject),
        1,
        "the observers let go of it as they died"
    );
    println!("all observers gone: the subject's set is empty");
}
