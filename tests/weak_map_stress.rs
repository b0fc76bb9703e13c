//! Weak containers under hostile keys: random programs whose keys' `Eq`,
//! `Hash` and `Drop` kill the very objects the maps watch, in the middle
//! of every map method, and whose `Eq` sometimes panics. After every step,
//! each map's `len()` must equal what its iteration yields, and at the end
//! every object must be dropped exactly once.

use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{Gc, Trace, WeakKeyMap, WeakSet, WeakValueMap};

thread_local! {
    /// The objects the program keeps alive; keys kill them at random.
    static POOL: RefCell<Vec<Gc<Counted>>> = const { RefCell::new(Vec::new()) };
    /// How many `Eq` calls until one panics (0: none).
    static EQ_PANICS_IN: Cell<u32> = const { Cell::new(0) };
    static ALIVE: Cell<i64> = const { Cell::new(0) };
}

/// An object that counts how many of its kind are alive.
#[derive(Trace)]
struct Counted(u64);

impl Counted {
    fn new(n: u64) -> Gc<Counted> {
        ALIVE.set(ALIVE.get() + 1);
        Gc::new(Counted(n))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        ALIVE.set(ALIVE.get() - 1);
    }
}

fn kill_pooled(how_many: usize) {
    // Taken out of the pool first, dropped after: the drops may reenter.
    let killed: Vec<_> = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let keep = pool.len().saturating_sub(how_many);
        pool.split_off(keep)
    });
    drop(killed);
}

/// A key whose comparisons and drop kill pooled objects, and which holds
/// some objects itself.
struct Hostile {
    id: u32,
    holds: Vec<Gc<Counted>>,
}

impl PartialEq for Hostile {
    fn eq(&self, other: &Self) -> bool {
        if self.id.is_multiple_of(3) {
            kill_pooled(1);
        }
        let countdown = EQ_PANICS_IN.get();
        if countdown > 0 {
            EQ_PANICS_IN.set(countdown - 1);
            assert_ne!(countdown, 1, "a hostile Eq panics");
        }
        self.id == other.id
    }
}

impl Eq for Hostile {}

impl Hash for Hostile {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Few distinct hashes: long probe sequences, many `Eq` calls.
        (self.id % 7).hash(state);
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.holds.clear();
        kill_pooled(2);
    }
}

/// xorshift64: the programs are reproducible from their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hostile(rng: &mut Rng) -> Hostile {
    let id = rng.below(40) as u32;
    let take = rng.below(3) as usize;
    let holds = POOL.with(|pool| pool.borrow().iter().take(take).cloned().collect());
    Hostile { id, holds }
}

fn pooled(rng: &mut Rng) -> Option<Gc<Counted>> {
    POOL.with(|pool| {
        let pool = pool.borrow();
        (!pool.is_empty()).then(|| pool[rng.below(pool.len() as u64) as usize].clone())
    })
}

/// Runs one program; returns how many hostile panics it caught and the
/// most live entries its value map held, so the test can tell that the
/// programs reach what they are meant to.
fn run(seed: u64, steps: usize) -> (usize, usize) {
    let (mut panics, mut peak) = (0, 0);
    let mut rng = Rng(seed);
    let mut values: WeakValueMap<Hostile, Counted> = WeakValueMap::new();
    let mut keys: WeakKeyMap<Counted, Hostile> = WeakKeyMap::new();
    let mut set: WeakSet<Counted> = WeakSet::new();
    for step in 0..steps {
        if rng.below(12) == 0 {
            EQ_PANICS_IN.set(1 + rng.below(3) as u32);
        }
        let op = rng.below(11);
        let outcome = catch_unwind(AssertUnwindSafe(|| match op {
            0 | 1 => {
                let object = Counted::new(step as u64);
                POOL.with(|pool| pool.borrow_mut().push(object.clone()));
                values.insert(hostile(&mut rng), &object);
                keys.insert(&object, hostile(&mut rng));
                set.insert(&object);
            }
            2 => drop(values.remove(&hostile(&mut rng))),
            3 => {
                let odd = rng.below(2);
                values.retain(|key, _| u64::from(key.id) % 2 == odd);
                keys.retain(|_, value| u64::from(value.id) % 2 != odd);
                set.retain(|member| member.0 % 2 == odd);
            }
            4 if rng.below(5) == 0 => {
                values.clear();
                keys.clear();
                set.clear();
            }
            5 => kill_pooled(1 + rng.below(3) as usize),
            6 => {
                let fresh = Counted::new(step as u64);
                let got = values.get_or_insert_with(hostile(&mut rng), || fresh.clone());
                POOL.with(|pool| pool.borrow_mut().push(got));
            }
            7 => {
                if let Some(object) = pooled(&mut rng) {
                    drop(keys.remove(&object));
                    let value = hostile(&mut rng);
                    keys.get_or_insert_with(&object, || value);
                    set.remove(&object);
                }
            }
            8 => {
                // Objects die while each map is iterated.
                for (_, value) in values.iter() {
                    kill_pooled(1);
                    assert!(value.0 <= step as u64);
                }
                for (key, _) in keys.iter() {
                    kill_pooled(1);
                    assert!(key.0 <= step as u64);
                }
                for member in set.iter() {
                    kill_pooled(1);
                    assert!(member.0 <= step as u64);
                }
            }
            9 => drop(gcptr::collect()),
            _ => {
                if let Some(object) = pooled(&mut rng) {
                    assert!(set.contains(&object) || !set.iter().any(|m| Gc::ptr_eq(&m, &object)));
                    let _ = keys.get(&object);
                }
                let _ = values.get(&hostile(&mut rng));
            }
        }));
        EQ_PANICS_IN.set(0);
        if let Err(payload) = outcome {
            let message = payload.downcast_ref::<String>().map_or("", String::as_str);
            assert!(message.contains("a hostile Eq panics"), "{message}");
            panics += 1;
        }
        peak = peak.max(values.len());
        assert_eq!(
            values.len(),
            values.iter().count(),
            "seed {seed}, step {step}"
        );
        assert_eq!(keys.len(), keys.iter().count(), "seed {seed}, step {step}");
        assert_eq!(set.len(), set.iter().count(), "seed {seed}, step {step}");
    }
    drop((values, keys, set));
    kill_pooled(usize::MAX);
    assert_eq!(ALIVE.get(), 0, "seed {seed}: every object dropped once");
    (panics, peak)
}

#[test]
fn hostile_keys_never_break_a_map() {
    // The hostile panics are expected (and checked): keep them off the
    // output, and every other panic on it. This file's only test, so the
    // process-wide hook is ours.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("a hostile Eq panics") {
            report(info);
        }
    }));
    let (seeds, steps): (u64, usize) = if cfg!(miri) { (2, 500) } else { (200, 2_000) };
    let (mut panics, mut peak) = (0, 0);
    for seed in 1..=seeds {
        let (p, most) = run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), steps);
        panics += p;
        peak = peak.max(most);
    }
    assert!(panics > 0, "some Eq panicked mid-method");
    assert!(peak >= 5, "the maps held several live entries at once");
    drop(std::panic::take_hook());
}
