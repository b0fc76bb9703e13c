//! std `Rc`, the baseline: `Weak` back-edges where a cycle is needed, and
//! a manual teardown (take every link, then drop) where the workload's
//! shape is a strong cycle. Same items as the `gc_lib!` modules.

#![allow(dead_code)]

use std::cell::RefCell as Cell;
use std::hint::black_box;
use std::rc::{Rc as Ptr, Weak};

/// The name in the tables.
pub const NAME: &str = "Rc";

/// `Rc` has no collector.
pub fn collect() {}

pub struct Link {
    pub value: u64,
    pub next: Cell<Option<Ptr<Link>>>,
}

pub struct DNode {
    pub value: u64,
    pub next: Cell<Option<Ptr<DNode>>>,
    pub prev: Cell<Option<Weak<DNode>>>,
}

pub struct Tree {
    pub value: u64,
    pub left: Option<Ptr<Tree>>,
    pub right: Option<Ptr<Tree>>,
}

pub struct SNode {
    pub value: u64,
    pub next: Option<Ptr<SNode>>,
}

// ---- workload 1 ----
pub fn new_drop(n: u64) {
    for i in 0..n {
        drop(black_box(Ptr::new(black_box(i))));
    }
}
pub fn new_drop_tracked(n: u64) {
    for i in 0..n {
        drop(black_box(Ptr::new(Link {
            value: black_box(i),
            next: Cell::new(None),
        })));
    }
}
pub fn clone_drop(n: u64) {
    let p = Ptr::new(7u64);
    for _ in 0..n {
        drop(black_box(black_box(&p).clone()));
    }
}
pub fn clone_drop_tracked(n: u64) {
    let p = Ptr::new(Link {
        value: 7,
        next: Cell::new(None),
    });
    for _ in 0..n {
        drop(black_box(black_box(&p).clone()));
    }
}
pub fn deref(n: u64) -> u64 {
    let p = Ptr::new(7u64);
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(**black_box(&p));
    }
    sum
}
pub fn deref_tracked(n: u64) -> u64 {
    let p = Ptr::new(Link {
        value: 7,
        next: Cell::new(None),
    });
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(black_box(&p).value);
    }
    sum
}

// ---- workload 2: strong two-object cycles, torn down by hand ----
pub fn pairs_build(n: usize) -> Vec<Ptr<Link>> {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let a = Ptr::new(Link {
            value: i,
            next: Cell::new(None),
        });
        let b = Ptr::new(Link {
            value: i,
            next: Cell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b);
        handles.push(a);
    }
    handles
}
/// The manual teardown: take every link, then drop the handles.
pub fn pairs_drop_collect(handles: Vec<Ptr<Link>>) {
    for a in &handles {
        if let Some(b) = a.next.borrow_mut().take() {
            b.next.borrow_mut().take();
        }
    }
    drop(handles);
}

// ---- workload 3: strong `next`, `Weak` `prev` ----
pub fn ring_build(n: usize) -> Ptr<DNode> {
    let node = |value| DNode {
        value,
        next: Cell::new(None),
        prev: Cell::new(None),
    };
    let head = Ptr::new(node(0));
    let mut last = head.clone();
    for i in 1..n as u64 {
        let next = Ptr::new(node(i));
        *next.prev.borrow_mut() = Some(Ptr::downgrade(&last));
        *last.next.borrow_mut() = Some(next.clone());
        last = next;
    }
    *last.next.borrow_mut() = Some(head.clone());
    *head.prev.borrow_mut() = Some(Ptr::downgrade(&last));
    head
}
/// The manual teardown: the `next` edges form a strong cycle; take them
/// one by one (iteratively, so no recursion).
pub fn ring_drop_collect(head: Ptr<DNode>) {
    let mut cur = head.next.borrow_mut().take();
    drop(head);
    while let Some(node) = cur {
        cur = node.next.borrow_mut().take();
    }
}
/// Each ring's manual teardown in turn.
pub fn rings_drop_collect(heads: Vec<Ptr<DNode>>) {
    heads.into_iter().for_each(ring_drop_collect);
}

// ---- workload 4: the baseline is one plain traversal ----
pub fn tree_build(depth: u32) -> Ptr<Tree> {
    let sub = |d: u32| if d > 1 { Some(tree_build(d - 1)) } else { None };
    Ptr::new(Tree {
        value: depth as u64,
        left: sub(depth),
        right: sub(depth),
    })
}
pub fn tree_touch(node: &Ptr<Tree>) {
    drop(black_box(node.clone()));
    if let Some(l) = &node.left {
        tree_touch(l);
    }
    if let Some(r) = &node.right {
        tree_touch(r);
    }
}
/// One plain traversal of the tree: what a full collection is compared to.
pub fn tree_traverse(node: &Ptr<Tree>) -> u64 {
    let mut sum = black_box(node).value;
    if let Some(l) = &node.left {
        sum += tree_traverse(l);
    }
    if let Some(r) = &node.right {
        sum += tree_traverse(r);
    }
    sum
}
pub fn tree_collect(live: &Ptr<Tree>) {
    black_box(tree_traverse(live));
}

// ---- workload 5: recursive drop (needs a big stack) ----
pub fn list_build(n: usize) -> Ptr<SNode> {
    let mut head = Ptr::new(SNode {
        value: 0,
        next: None,
    });
    for i in 1..n as u64 {
        head = Ptr::new(SNode {
            value: i,
            next: Some(head),
        });
    }
    head
}
pub fn list_drop_collect(head: Ptr<SNode>) {
    drop(head);
}

// ---- workload 7: rust-cc-benchmarks' Rc versions ----
pub enum BTree {
    Nested { left: Ptr<BTree>, right: Ptr<BTree> },
    End,
}
impl BTree {
    fn new(depth: usize) -> BTree {
        if depth == 0 {
            return BTree::End;
        }
        BTree::Nested {
            left: Ptr::new(BTree::new(depth - 1)),
            right: Ptr::new(BTree::new(depth - 1)),
        }
    }
    fn check(&self) -> usize {
        match self {
            BTree::End => 1,
            BTree::Nested { left, right } => left.check() + right.check() + 1,
        }
    }
}
pub fn binary_trees(max_size: usize) -> Vec<usize> {
    crate::binary_trees_checks(max_size, |depth| Ptr::new(BTree::new(depth)).check())
}

pub enum PTree {
    Root {
        left: Ptr<PTree>,
        right: Ptr<PTree>,
    },
    Nested {
        parent: Weak<PTree>,
        left: Ptr<PTree>,
        right: Ptr<PTree>,
    },
    End,
}
impl PTree {
    fn new(depth: usize) -> Ptr<PTree> {
        if depth == 0 {
            return Ptr::new(PTree::End);
        }
        Ptr::new_cyclic(|me| PTree::Root {
            left: PTree::new_nested(depth - 1, me),
            right: PTree::new_nested(depth - 1, me),
        })
    }
    fn new_nested(depth: usize, parent: &Weak<PTree>) -> Ptr<PTree> {
        if depth == 0 {
            return Ptr::new(PTree::End);
        }
        Ptr::new_cyclic(|me| PTree::Nested {
            parent: parent.clone(),
            left: PTree::new_nested(depth - 1, me),
            right: PTree::new_nested(depth - 1, me),
        })
    }
    fn check(&self) -> usize {
        match self {
            PTree::Root { left, right } => left.check() + right.check() + 1,
            PTree::Nested {
                left,
                right,
                parent,
            } => {
                black_box(parent);
                left.check() + right.check() + 1
            }
            PTree::End => 1,
        }
    }
}
pub fn binary_trees_parent(max_size: usize) -> Vec<usize> {
    crate::binary_trees_checks(max_size, |depth| PTree::new(depth).check())
}

pub enum LNode {
    Cons {
        next: Ptr<LNode>,
        previous: Cell<Option<Weak<LNode>>>,
    },
    Nil,
}
pub fn large_linked_list(size: usize) -> Vec<usize> {
    fn len(mut node: &Ptr<LNode>) -> usize {
        let mut n = 0;
        while let LNode::Cons { next, .. } = &**node {
            n += 1;
            node = next;
        }
        n
    }
    let mut res = Vec::new();
    for _ in 0..30 {
        let mut head = Ptr::new(LNode::Nil);
        for _ in 0..size {
            let cons = Ptr::new(LNode::Cons {
                next: head.clone(),
                previous: Cell::new(None),
            });
            if let LNode::Cons { previous, .. } = &*head {
                *previous.borrow_mut() = Some(Ptr::downgrade(&cons));
            }
            head = cons;
        }
        res.push(len(&head));
    }
    res
}

/// The stress test's random graph has no `Rc` version (it needs a
/// collector): a no-op, so that the probes can call it.
pub fn stress_test(_seed: u64) -> Vec<usize> {
    Vec::new()
}

/// dumpster's mix with `Rc`: leaks every cycle it makes, as in dumpster's
/// own benchmark.
pub struct Multi {
    pub refs: Cell<Vec<Ptr<Multi>>>,
}
pub fn dumpster_mix(n_ops: usize, seed: u64) -> usize {
    dumpster_mix_pool!(n_ops, seed).len()
}

// ---- workload 8 ----
pub fn append_tracked(n: usize) -> Vec<Ptr<Link>> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n as u64 {
        v.push(Ptr::new(Link {
            value: i,
            next: Cell::new(None),
        }));
    }
    v
}
pub fn append_teardown(v: Vec<Ptr<Link>>) {
    drop(v);
}
