//! Model-based test: random programs over a heap of `Gc` nodes run against
//! a plain reference model of the graph (`model/machine.rs` describes both,
//! and the checks made after every step).
//!
//! `cargo test --test model` runs a few thousand programs; under Miri a
//! handful of short ones. `GCPTR_MODEL_CASES=100000 cargo test --release
//! --test model` runs more (the fuzz target in `fuzz/` drives the same
//! language from fuzzer bytes).

#[path = "model/machine.rs"]
mod machine;

use machine::{Config, FinMode, Harness, Kind, Op};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRunner};

/// Programs per test: `GCPTR_MODEL_CASES` if set.
fn cases(default: u32) -> u32 {
    let default = if cfg!(miri) { 10 } else { default };
    std::env::var("GCPTR_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn max_len() -> usize {
    if cfg!(miri) {
        30
    } else {
        120
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Plain),
        2 => Just(Kind::Bare { tagged: false }),
        1 => Just(Kind::Bare { tagged: true }),
        1 => Just(Kind::Fin(FinMode::Observe)),
        1 => Just(Kind::Fin(FinMode::ResurrectEdges)),
        1 => Just(Kind::Fin(FinMode::ResurrectSelf)),
        1 => Just(Kind::Fin(FinMode::AdoptNewborn)),
    ]
}

/// Root and edge indices: small, so that they mostly hit (they are taken
/// modulo the list length).
fn ix() -> impl Strategy<Value = u8> {
    0u8..16
}

fn op(finalizers: bool) -> impl Strategy<Value = Op> {
    let kind = if finalizers {
        kind().boxed()
    } else {
        prop_oneof![
            2 => Just(Kind::Plain),
            1 => Just(Kind::Bare { tagged: false }),
            1 => Just(Kind::Bare { tagged: true }),
        ]
        .boxed()
    };
    prop_oneof![
        12 => kind.prop_map(Op::Alloc),
        16 => (ix(), ix()).prop_map(|(from, to)| Op::AddEdge { from, to }),
        5 => (ix(), ix()).prop_map(|(from, edge)| Op::RemoveEdge { from, edge }),
        1 => ix().prop_map(|from| Op::ClearEdges { from }),
        4 => (ix(), ix()).prop_map(|(from, edge)| Op::Follow { from, edge }),
        3 => ix().prop_map(Op::CloneRoot),
        12 => ix().prop_map(Op::DropRoot),
        4 => ix().prop_map(Op::Downgrade),
        3 => (ix(), any::<bool>()).prop_map(|(weak, keep)| Op::Upgrade { weak, keep }),
        1 => ix().prop_map(Op::DropWeak),
        3 => (ix(), ix()).prop_map(|(from, to)| Op::StoreWeak { from, to }),
        2 => (ix(), ix(), any::<bool>())
            .prop_map(|(from, idx, keep)| Op::UpgradeStored { from, idx, keep }),
        5 => (0u8..3).prop_map(Op::Collect),
        2 => Just(Op::CollectAll),
        1 => Just(Op::Freeze),
        1 => Just(Op::Unfreeze),
        2 => Just(Op::DropResurrected),
        2 => Just(Op::AdoptResurrected),
        2 => (0..machine::KEYS, ix()).prop_map(|(key, root)| Op::MapInsert { key, root }),
        1 => (0..machine::KEYS, any::<bool>()).prop_map(|(key, fin)| Op::MapRemove { key, fin }),
        1 => (0..machine::KEYS, any::<bool>(), any::<bool>())
            .prop_map(|(key, fin, keep)| Op::MapGet { key, fin, keep }),
        2 => ix().prop_map(Op::SetInsert),
        1 => ix().prop_map(Op::SetRemove),
        3 => ix().prop_map(Op::GetMut),
        3 => (ix(), ix()).prop_map(|(root, from)| Op::MoveRoot { root, from }),
    ]
}

fn program(finalizers: bool) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(finalizers), 1..max_len())
}

fn run(cases: u32, config: impl Strategy<Value = Config>, finalizers: bool) {
    let mut runner = TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        // ChaCha, the default, dominates the run time in debug builds.
        rng_algorithm: RngAlgorithm::XorShift,
        ..RunnerConfig::default()
    });
    let result = runner.run(&(config, program(finalizers)), |(config, ops)| {
        Harness::run(config, &ops);
        Ok(())
    });
    machine::reset_thread();
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Automatic collection off: every death is predicted exactly, with
/// finalizers that observe and resurrect.
#[test]
fn model_agrees_with_automatic_collection_off() {
    run(cases(1500), Just(Config { automatic: None }), true);
}

/// The same without finalizers: plain reference counting and cycles, half
/// of the objects bare (garbage that a collection may free undropped).
#[test]
fn model_agrees_without_finalizers() {
    run(cases(500), Just(Config { automatic: None }), false);
}

/// Automatic collection on with small thresholds: the model follows
/// CPython's rules for when a collection runs, so it is still exact
/// (and in particular nothing reachable is ever dropped, and all garbage
/// is gone after a final `collect()`).
#[test]
fn model_agrees_with_small_automatic_thresholds() {
    let thresholds = prop_oneof![
        Just([5, 2, 2]),
        (1usize..8, 0usize..4, 0usize..4).prop_map(|(a, b, c)| [a, b, c]),
    ];
    run(
        cases(1000),
        thresholds.prop_map(|t| Config { automatic: Some(t) }),
        true,
    );
}

// ------------------------------------------------ hand-written programs ---

fn alloc() -> Op {
    Op::Alloc(Kind::Plain)
}

#[test]
fn two_cycle_survives_young_collection_after_promotion() {
    // a <-> b, promoted to generation 1 by a young collection while held;
    // once dropped, collecting generation 0 must not free them, 1 must.
    let ops = [
        alloc(),
        alloc(),
        Op::AddEdge { from: 0, to: 1 },
        Op::AddEdge { from: 1, to: 0 },
        Op::Collect(0),
        Op::DropRoot(0),
        Op::DropRoot(0),
        Op::Collect(0),
        Op::Collect(1),
    ];
    Harness::run(Config { automatic: None }, &ops);
}

#[test]
fn finalizer_resurrects_a_cycle_then_it_dies_once() {
    let ops = [
        Op::Alloc(Kind::Fin(FinMode::ResurrectEdges)),
        alloc(),
        Op::AddEdge { from: 0, to: 1 },
        Op::AddEdge { from: 1, to: 0 },
        Op::Downgrade(0),
        Op::DropRoot(0),
        Op::DropRoot(0),
        Op::CollectAll, // finalizer stores b: both resurrected
        Op::Upgrade {
            weak: 0,
            keep: false,
        }, // cleared for good
        Op::DropResurrected,
        Op::CollectAll, // now both die, without a second finalize
    ];
    Harness::run(Config { automatic: None }, &ops);
}

#[test]
fn self_resurrection_by_count_then_collection() {
    let ops = [
        Op::Alloc(Kind::Fin(FinMode::ResurrectSelf)),
        Op::Downgrade(0),
        Op::DropRoot(0), // resurrects itself into RES
        Op::Upgrade {
            weak: 0,
            keep: true,
        },
        Op::DropResurrected,
        Op::DropRoot(0), // dies: the finalizer does not run again
    ];
    Harness::run(Config { automatic: None }, &ops);
}

#[test]
fn frozen_cycle_is_never_collected_until_unfrozen() {
    let ops = [
        alloc(),
        Op::AddEdge { from: 0, to: 0 },
        Op::Freeze,
        Op::DropRoot(0),
        Op::CollectAll,
        Op::Unfreeze,
        Op::Collect(1),
        Op::CollectAll,
    ];
    Harness::run(Config { automatic: None }, &ops);
}

#[test]
fn resurrected_object_is_loud_and_brings_back_nothing_set_aside() {
    // A finalizer resurrects its object `a`, which had reported a loss: `a`
    // is loud again, and a weak reference to it, cleared by the
    // collection, upgrades to nothing, so it loses no reference either. So
    // the next full collection starts from no object and meets no edge to
    // `c`, set aside by `get_mut`: `c` stays out of the lists, and
    // `freeze` counts `a` and `b` only.
    let ops = [
        Op::Alloc(Kind::Fin(FinMode::ResurrectEdges)), // a
        Op::AddEdge { from: 0, to: 0 },
        Op::Downgrade(0),
        alloc(), // b
        Op::AddEdge { from: 0, to: 1 },
        Op::DropRoot(0), // a, quiet, is held by its own edge only
        Op::Collect(0),  // a's finalizer resurrects a and b
        alloc(),         // c
        Op::GetMut(1),
        Op::AddEdge { from: 0, to: 1 }, // b -> c
        Op::CollectAll,
        Op::Freeze,
    ];
    Harness::run(Config { automatic: None }, &ops);
}

#[test]
fn bare_garbage_is_freed_and_its_weak_references_fail() {
    // A ring of three bare nodes, one of them weakly held, is all garbage:
    // the collection may free it without a drop. Then a bare pair holding
    // a plain node, which joins their set: a member with a `Drop` of its
    // own, so the set is dropped, and the plain node's drop runs once.
    let bare = || Op::Alloc(Kind::Bare { tagged: false });
    let ops = [
        bare(),
        bare(),
        bare(),
        Op::AddEdge { from: 0, to: 1 },
        Op::AddEdge { from: 1, to: 2 },
        Op::AddEdge { from: 2, to: 0 },
        Op::Downgrade(1),
        Op::DropRoot(0),
        Op::DropRoot(0),
        Op::DropRoot(0),
        Op::CollectAll,
        Op::Upgrade {
            weak: 0,
            keep: false,
        },
        bare(),
        bare(),
        alloc(),
        Op::AddEdge { from: 0, to: 1 },
        Op::AddEdge { from: 1, to: 0 },
        Op::MoveRoot { root: 2, from: 0 },
        Op::DropRoot(0),
        Op::DropRoot(0),
        Op::CollectAll,
    ];
    Harness::run(Config { automatic: None }, &ops);
}

#[test]
fn a_finalizer_adopts_the_object_whose_allocation_collects() {
    // `a`, garbage in a cycle, is finalized by the automatic collection
    // that allocating `b` starts (with `Gc::new_cyclic`, before `b` is
    // linked). `a`'s finalizer upgrades `b`'s `Weak`, keeps a clone in
    // `RES` and drops the other: a lost reference to an object no list
    // holds yet, which must end up linked once.
    let ops = [
        Op::Alloc(Kind::Fin(FinMode::AdoptNewborn)), // a
        Op::AddEdge { from: 0, to: 0 },
        Op::DropRoot(0),
        Op::Alloc(Kind::Fin(FinMode::Observe)), // b: collects, a adopts b
        Op::CollectAll,
        Op::DropRoot(0),
        Op::DropResurrected, // b dies by count, finalized once
        Op::CollectAll,
    ];
    Harness::run(
        Config {
            automatic: Some([1, 0, 0]),
        },
        &ops,
    );
}

#[test]
fn fuzz_decoder_programs_run() {
    // The fuzz target's decoder, on a few fixed inputs.
    let (seeds, len): (u32, u32) = if cfg!(miri) { (2, 40) } else { (64, 200) };
    for seed in 0u32..seeds {
        let bytes: Vec<u8> = (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97) >> 13) as u8)
            .collect();
        let mut input = &bytes[..];
        let config = Config::decode(&mut input);
        let mut ops = Vec::new();
        while let Some(op) = Op::decode(&mut input) {
            ops.push(op);
        }
        Harness::run(config, &ops);
    }
}
