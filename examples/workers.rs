//! Worker threads and one thread's objects: a document's paragraphs, each
//! linked to the document and back (cycles), are spell-checked on worker
//! threads. `Gc` never leaves its thread, so each job carries a copy of
//! the text and a `ThreadBound` handle to its paragraph. A worker sends
//! the handle back with its result, and only the home thread opens it; a
//! job that is cancelled drops its handle on the worker, which sends the
//! paragraph home to be dropped there.
//!
//! Run it with `cargo run --example workers`.

use std::cell::{Cell, RefCell};
use std::sync::mpsc;
use std::thread;

use gcptr::sync::ThreadBound;
use gcptr::{Gc, Trace};

thread_local!(static DROPPED: Cell<usize> = const { Cell::new(0) });

#[derive(Trace)]
struct Document {
    paragraphs: RefCell<Vec<Gc<Paragraph>>>,
}

#[derive(Trace)]
struct Paragraph {
    text: String,
    typos: Cell<usize>,
    document: Gc<Document>, // and the document holds the paragraph: a cycle
}

impl Drop for Paragraph {
    fn drop(&mut self) {
        DROPPED.with(|n| n.set(n.get() + 1));
    }
}

/// What a worker gets: plain data to read, and the handle to give back.
struct Job {
    text: String,
    paragraph: ThreadBound<Gc<Paragraph>>,
}

fn main() {
    let document = Gc::new(Document {
        paragraphs: RefCell::new(Vec::new()),
    });
    for text in [
        "teh cat sat",
        "on the mat",
        "wiht a hat",
        "and taht was all",
    ] {
        let paragraph = Gc::new(Paragraph {
            text: text.into(),
            typos: Cell::new(0),
            document: document.clone(),
        });
        document.paragraphs.borrow_mut().push(paragraph);
    }

    let (results_tx, results) = mpsc::channel();
    let workers: Vec<_> = document
        .paragraphs
        .borrow()
        .iter()
        .enumerate()
        .map(|(i, paragraph)| {
            let job = Job {
                text: paragraph.text.clone(),
                paragraph: ThreadBound::new(paragraph.clone()),
            };
            let results_tx = results_tx.clone();
            thread::spawn(move || {
                // The worker can hold the handle, not open it.
                assert!(job.paragraph.try_get().is_none());
                if i == 3 {
                    return; // cancelled: the handle is dropped here, sent home
                }
                let typos = ["teh", "wiht", "taht"];
                let found = job.text.split(' ').filter(|w| typos.contains(w)).count();
                results_tx.send((job.paragraph, found)).unwrap();
            })
        })
        .collect();
    drop(results_tx);
    for worker in workers {
        worker.join().unwrap();
    }

    // Back home: open each handle and apply the result.
    for (paragraph, typos) in results {
        paragraph.get().typos.set(typos);
    }
    for paragraph in document.paragraphs.borrow().iter() {
        println!("{:>18}: {} typo(s)", paragraph.text, paragraph.typos.get());
    }
    let total: usize = document
        .paragraphs
        .borrow()
        .iter()
        .map(|p| p.typos.get())
        .sum();
    assert_eq!(total, 2, "the cancelled job's paragraph was not checked");

    // The cancelled job's handle waits at home; the collection drops it
    // first, then finds the document and its paragraphs unreachable.
    drop(document);
    let reclaimed = gcptr::collect();
    println!("collect() reclaimed {reclaimed} objects (the document and 4 paragraphs)");
    assert_eq!(reclaimed, 5);
    assert_eq!(DROPPED.with(Cell::get), 4);
}
