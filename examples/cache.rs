//! A cache of users that never keeps them alive: Python's
//! `WeakValueDictionary`. A user stays cached while someone uses it, and
//! leaves the cache the moment the last user of it lets go.
//!
//! Run it with `cargo run --example cache`.

use std::cell::Cell;

use gcptr::{Gc, Trace, WeakValueMap};

thread_local!(static LOADS: Cell<u32> = const { Cell::new(0) });

#[derive(Trace, Debug)]
struct User {
    id: u32,
    name: String,
}

fn load_user(id: u32) -> Gc<User> {
    LOADS.with(|l| l.set(l.get() + 1));
    println!("  (loading user {id} from the database)");
    Gc::new(User {
        id,
        name: format!("user{id}"),
    })
}

fn main() {
    let mut cache: WeakValueMap<u32, User> = WeakValueMap::new();

    let a = cache.get_or_insert_with(1, || load_user(1));
    let b = cache.get_or_insert_with(1, || load_user(1));
    println!(
        "two lookups of user 1 while it is in use: loaded {} time(s)",
        LOADS.with(Cell::get)
    );
    assert!(Gc::ptr_eq(&a, &b));
    assert_eq!(LOADS.with(Cell::get), 1);

    let c = cache.get_or_insert_with(2, || load_user(2));
    println!("cache: {cache:?} (len {})", cache.len());
    assert_eq!(cache.len(), 2);

    drop((a, b));
    println!("user 1 no longer used: cache len {}", cache.len());
    assert_eq!(cache.len(), 1);
    assert!(cache.get(&1).is_none());

    let again = cache.get_or_insert_with(1, || load_user(1));
    assert_eq!(LOADS.with(Cell::get), 3);
    assert_eq!((again.id, c.name.as_str()), (1, "user2"));
}
