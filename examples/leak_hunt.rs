//! Finding what keeps an object alive: Python's `gc.get_referrers` and
//! `gc.get_referents`. A document should have been freed, but something
//! still holds it; `gcptr::referrers` finds the culprit.
//!
//! Run it with `cargo run --example leak_hunt`.

use std::cell::RefCell;

use gcptr::{Gc, Trace};

#[derive(Trace)]
struct Document {
    title: String,
}

#[derive(Trace)]
struct RecentFiles {
    entries: RefCell<Vec<Gc<Document>>>,
}

#[derive(Trace)]
struct Editor {
    open: RefCell<Option<Gc<Document>>>,
}

fn main() {
    let recent = Gc::new(RecentFiles {
        entries: RefCell::new(Vec::new()),
    });
    let editor = Gc::new(Editor {
        open: RefCell::new(None),
    });

    let doc = Gc::new(Document {
        title: "report.txt".into(),
    });
    *editor.open.borrow_mut() = Some(doc.clone());
    recent.entries.borrow_mut().push(doc.clone()); // the forgotten reference

    // The editor closes the document...
    editor.open.borrow_mut().take();
    let watch = Gc::downgrade(&doc);
    drop(doc);
    // ...but it is still alive. Who holds it?
    let doc = watch.upgrade().expect("leaked: still alive");
    println!(
        "{:?} is alive with {} strong reference(s) besides ours",
        doc.title,
        Gc::strong_count(&doc) - 1
    );

    let holders = gcptr::referrers(&doc);
    for holder in &holders {
        println!(
            "  held by a {} at {:p}",
            holder.type_name(),
            holder.address()
        );
    }
    assert_eq!(holders.len(), 1);
    assert!(holders[0].type_name().ends_with("RecentFiles"));
    let culprit = holders[0].downcast::<RecentFiles>().unwrap();
    assert!(Gc::ptr_eq(&culprit, &recent));
    println!(
        "  and it refers to {} document(s)",
        gcptr::referents(&*culprit).len()
    );

    // Fix the leak.
    culprit.entries.borrow_mut().clear();
    drop((culprit, holders, doc));
    assert!(watch.upgrade().is_none());
    println!("after clearing the recent-files list, the document is gone");
}
