//! Issue 4's weak containers: `WeakValueMap` `get` and `insert` against a
//! `HashMap<K, rc::Weak<V>>` and the `weak-table` crate's
//! `WeakValueHashMap`, and the cost of a value's death with its entry
//! removed, against a plain drop.

use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gcptr::{Gc, Trace, WeakValueMap};

const N: u32 = 10_000;

#[derive(Trace)]
struct User {
    id: u32,
}

fn config<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g
}

fn get(c: &mut Criterion) {
    let mut g = config(c, "w10_weak_map_get");
    let rcs: Vec<Rc<User>> = (0..N).map(|id| Rc::new(User { id })).collect();
    let plain: HashMap<u32, std::rc::Weak<User>> =
        rcs.iter().map(|u| (u.id, Rc::downgrade(u))).collect();
    g.bench_function("Rc", |b| {
        b.iter(|| {
            (0..N)
                .map(|k| {
                    plain
                        .get(&black_box(k))
                        .and_then(|w| w.upgrade())
                        .map_or(0, |u| u.id)
                })
                .sum::<u32>()
        })
    });
    let mut table = weak_table::WeakValueHashMap::<u32, std::rc::Weak<User>>::new();
    for u in &rcs {
        table.insert(u.id, u.clone());
    }
    g.bench_function("weak-table", |b| {
        b.iter(|| {
            (0..N)
                .map(|k| table.get(&black_box(k)).map_or(0, |u| u.id))
                .sum::<u32>()
        })
    });
    let gcs: Vec<Gc<User>> = (0..N).map(|id| Gc::new(User { id })).collect();
    let mut map = WeakValueMap::new();
    for u in &gcs {
        map.insert(u.id, u);
    }
    g.bench_function("gcptr", |b| {
        b.iter(|| {
            (0..N)
                .map(|k| map.get(&black_box(k)).map_or(0, |u| u.id))
                .sum::<u32>()
        })
    });
    g.finish();
}

fn insert(c: &mut Criterion) {
    let mut g = config(c, "w10_weak_map_insert");
    let rcs: Vec<Rc<User>> = (0..N).map(|id| Rc::new(User { id })).collect();
    g.bench_function("Rc", |b| {
        b.iter(|| {
            let mut m = HashMap::new();
            for u in &rcs {
                m.insert(u.id, Rc::downgrade(u));
            }
            m
        })
    });
    g.bench_function("weak-table", |b| {
        b.iter(|| {
            let mut m = weak_table::WeakValueHashMap::<u32, std::rc::Weak<User>>::new();
            for u in &rcs {
                m.insert(u.id, u.clone());
            }
            m
        })
    });
    let gcs: Vec<Gc<User>> = (0..N).map(|id| Gc::new(User { id })).collect();
    g.bench_function("gcptr", |b| {
        b.iter(|| {
            let mut m = WeakValueMap::new();
            for u in &gcs {
                m.insert(u.id, u);
            }
            m
        })
    });
    g.finish();
}

fn death(c: &mut Criterion) {
    let mut g = config(c, "w10_death_with_entry");
    // Both keep the memory with a `Weak` (the map's, or a plain one), so
    // that both time the deaths and neither the frees.
    g.bench_function("gcptr (plain drop)", |b| {
        b.iter_batched(
            || {
                let gcs: Vec<_> = (0..N).map(|id| Gc::new(User { id })).collect();
                let weaks: Vec<_> = gcs.iter().map(Gc::downgrade).collect();
                (gcs, weaks)
            },
            |(gcs, weaks)| {
                drop(gcs);
                weaks
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("gcptr (entry removed)", |b| {
        b.iter_batched(
            || {
                let gcs: Vec<_> = (0..N).map(|id| Gc::new(User { id })).collect();
                let weaks: Vec<_> = gcs.iter().map(Gc::downgrade).collect();
                let mut map = WeakValueMap::new();
                for u in &gcs {
                    map.insert(u.id, u);
                }
                (gcs, weaks, map)
            },
            |(gcs, weaks, mut map)| {
                drop(gcs);
                assert!(map.is_empty());
                // The map's next mutating call takes the dead entries out of
                // its table: part of the cost of the deaths.
                assert!(map.remove(&N).is_none());
                (weaks, map)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, get, insert, death);
criterion_main!(benches);
