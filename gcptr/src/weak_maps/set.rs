//! [`WeakSet`]: Python's `WeakSet`.

use core::fmt;
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, BitXor, BitXorAssign, Sub, SubAssign};

use super::WeakKeyMap;
use crate::gc::Gc;
use crate::trace::{Trace, Tracer};

/// A set of objects held weakly, by identity: Python's `WeakSet`. A
/// member leaves the set the moment it dies.
///
/// By identity even where `T` has value equality, as [`WeakKeyMap`]:
/// Python's set compares members with `==` and `hash()`, which agree with
/// identity for objects that keep the default equality.
///
/// Sets compare ([`is_subset`](WeakSet::is_subset), `==`, ...), combine
/// ([`union`](WeakSet::union), `&a | &b`, ...) and update in place
/// (`a |= &b`, `&=`, `-=`, `^=`) as Python's do, by the identity of their
/// live members; what they combine into holds its members weakly too.
///
/// As in a [`WeakKeyMap`], a dead member's memory stays allocated until
/// the set's next `&mut self` call (`retain(|_| true)` lets it go); its
/// value is dropped at its death.
///
/// # Examples
///
/// ```
/// use gcptr::{Gc, WeakSet};
///
/// let (a, b) = (Gc::new("a"), Gc::new("b"));
/// let mut observers = WeakSet::new();
/// observers.insert(&a);
/// observers.insert(&b);
/// drop(a);
/// assert_eq!(observers.len(), 1);
/// assert_eq!(*observers.iter().next().unwrap(), "b");
/// ```
pub struct WeakSet<T: ?Sized + Trace> {
    members: WeakKeyMap<T, ()>,
}

impl<T: ?Sized + Trace> WeakSet<T> {
    /// An empty set.
    ///
    /// ```
    /// let set: gcptr::WeakSet<u32> = gcptr::WeakSet::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakSet {
            members: WeakKeyMap::new(),
        }
    }

    /// Adds the object; returns whether it was not a member yet. (An object
    /// that no longer upgrades, as a finalizer may see one, is never a
    /// member: this returns `true` and the set stays as it was.)
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// assert!(set.insert(&x));
    /// assert!(!set.insert(&x));
    /// ```
    pub fn insert(&mut self, member: &Gc<T>) -> bool {
        // `WeakKeyMap::insert` returns the old value only for a live entry.
        self.members.insert(member, ()).is_none()
    }

    /// Removes the object; returns whether it was a member.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// assert!(set.remove(&x));
    /// assert!(!set.remove(&x));
    /// ```
    pub fn remove(&mut self, member: &Gc<T>) -> bool {
        self.members.remove(member).is_some()
    }

    /// Whether the object is a member (by identity).
    ///
    /// ```
    /// let (x, y) = (gcptr::Gc::new(1), gcptr::Gc::new(1));
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// assert!(set.contains(&x) && !set.contains(&y));
    /// ```
    pub fn contains(&self, member: &Gc<T>) -> bool {
        self.members.contains_key(member)
    }

    /// The number of live members. Exact at all times, with one exception:
    /// a member whose death the trashcan queued (deep in a chain of drops)
    /// counts until the queue runs it.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// drop(x);
    /// assert_eq!(set.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no member is alive.
    ///
    /// ```
    /// let set: gcptr::WeakSet<u8> = gcptr::WeakSet::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The live members, in no particular order.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// assert_eq!(set.iter().map(|m| *m).sum::<i32>(), 1);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Gc<T>> + '_ {
        self.members.keys()
    }

    /// Whether every live member of this set is a live member of `other`
    /// (Python's `issubset`, `<=`), by identity. Runs no user code and
    /// makes no strong reference.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let small: WeakSet<i32> = [a.clone()].into_iter().collect();
    /// let large: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// assert!(small.is_subset(&large) && !large.is_subset(&small));
    /// drop(b); // the member `small` lacked is gone
    /// assert!(large.is_subset(&small));
    /// ```
    pub fn is_subset(&self, other: &WeakSet<T>) -> bool {
        self.members
            .live_objects()
            .all(|member| other.members.has_live(member))
    }

    /// Whether every live member of `other` is a live member of this set
    /// (Python's `issuperset`, `>=`): `other.is_subset(self)`.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let large: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let small: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// assert!(large.is_superset(&small));
    /// assert!(large.is_superset(&WeakSet::new()));
    /// ```
    pub fn is_superset(&self, other: &WeakSet<T>) -> bool {
        other.is_subset(self)
    }

    /// Whether no object is a live member of both sets (Python's
    /// `isdisjoint`). Runs no user code and makes no strong reference.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b, shared) = (Gc::new(1), Gc::new(2), Gc::new(3));
    /// let left: WeakSet<i32> = [a.clone(), shared.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone(), shared.clone()].into_iter().collect();
    /// assert!(!left.is_disjoint(&right));
    /// drop(shared);
    /// assert!(left.is_disjoint(&right));
    /// ```
    pub fn is_disjoint(&self, other: &WeakSet<T>) -> bool {
        // Either way round gives the answer: walk the smaller.
        let (walked, probed) = if self.len() <= other.len() {
            (self, other)
        } else {
            (other, self)
        };
        !walked
            .members
            .live_objects()
            .any(|member| probed.members.has_live(member))
    }

    /// The live members of this set that are not live members of `other`
    /// (Python's `difference`, `-`), as [`iter`](WeakSet::iter) gives
    /// them: each tested as it is reached, so a member that dies before
    /// its turn is skipped. `&a - &b` collects them into a new set.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// let only_left: Vec<_> = left.difference(&right).collect();
    /// assert!(only_left.len() == 1 && Gc::ptr_eq(&only_left[0], &a));
    /// ```
    pub fn difference<'a>(&'a self, other: &'a WeakSet<T>) -> impl Iterator<Item = Gc<T>> + 'a {
        self.iter().filter(move |member| !other.contains(member))
    }

    /// The live members of both sets (Python's `intersection`, `&`), as
    /// [`difference`](WeakSet::difference) tests them. `&a & &b` collects
    /// them into a new set.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// let both: Vec<_> = left.intersection(&right).collect();
    /// assert!(both.len() == 1 && Gc::ptr_eq(&both[0], &b));
    /// ```
    pub fn intersection<'a>(&'a self, other: &'a WeakSet<T>) -> impl Iterator<Item = Gc<T>> + 'a {
        self.iter().filter(move |member| other.contains(member))
    }

    /// The live members of either set, each once (Python's `union`, `|`):
    /// this set's, then those of `other` that are not this set's live
    /// members when reached. `&a | &b` collects them into a new set.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// assert_eq!(left.union(&right).map(|m| *m).sum::<i32>(), 3);
    /// ```
    pub fn union<'a>(&'a self, other: &'a WeakSet<T>) -> impl Iterator<Item = Gc<T>> + 'a {
        self.iter().chain(other.difference(self))
    }

    /// The live members of exactly one of the sets (Python's
    /// `symmetric_difference`, `^`): `self.difference(other)`, then
    /// `other.difference(self)`. `&a ^ &b` collects them into a new set.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b, c) = (Gc::new(1), Gc::new(2), Gc::new(4));
    /// let left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone(), c.clone()].into_iter().collect();
    /// assert_eq!(left.symmetric_difference(&right).map(|m| *m).sum::<i32>(), 5);
    /// ```
    pub fn symmetric_difference<'a>(
        &'a self,
        other: &'a WeakSet<T>,
    ) -> impl Iterator<Item = Gc<T>> + 'a {
        self.difference(other).chain(other.difference(self))
    }

    /// Keeps the live members for which `keep` returns `true`.
    ///
    /// ```
    /// let xs: Vec<_> = (0..4).map(gcptr::Gc::new).collect();
    /// let mut set: gcptr::WeakSet<i32> = xs.iter().cloned().collect();
    /// set.retain(|x| **x > 1);
    /// assert_eq!(set.len(), 2);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&Gc<T>) -> bool) {
        self.members.retain(|member, _| keep(member));
    }

    /// Removes every member.
    ///
    /// ```
    /// let x = gcptr::Gc::new(1);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&x);
    /// set.clear();
    /// assert!(set.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.members.clear();
    }
}

// SAFETY: members are weak edges: nothing to visit.
unsafe impl<T: ?Sized + Trace> Trace for WeakSet<T> {
    fn trace(&self, _: &mut Tracer) {}

    fn __may_own_gc(_depth: u32) -> bool {
        false
    }
}

impl<T: ?Sized + Trace> Clone for WeakSet<T> {
    /// A new set of the same live members, held weakly as well: Python's
    /// `s.copy()`. A member that died is not copied.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let set: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// drop(b);
    /// let copy = set.clone();
    /// assert!(copy == set && copy.len() == 1 && copy.contains(&a));
    /// drop(a);
    /// assert!(copy.is_empty()); // the copy kept nothing alive
    /// ```
    fn clone(&self) -> Self {
        self.iter().collect()
    }
}

impl<T: ?Sized + Trace> Default for WeakSet<T> {
    /// An empty set, as [`WeakSet::new`].
    ///
    /// ```
    /// let set: gcptr::WeakSet<u8> = Default::default();
    /// assert!(set.is_empty());
    /// ```
    fn default() -> Self {
        WeakSet::new()
    }
}

impl<T: ?Sized + Trace> Extend<Gc<T>> for WeakSet<T> {
    /// Inserts each member, then drops its `Gc`: a member that only the
    /// iterator held dies at once, and leaves the set with it.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let kept = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.extend([kept.clone(), Gc::new(2)]);
    /// assert_eq!(set.len(), 1);
    /// assert!(set.contains(&kept));
    /// ```
    fn extend<I: IntoIterator<Item = Gc<T>>>(&mut self, members: I) {
        for member in members {
            self.insert(&member);
        }
    }
}

impl<T: ?Sized + Trace> FromIterator<Gc<T>> for WeakSet<T> {
    /// A set of the members, as [`Extend`] inserts them.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let members = vec![Gc::new(1), Gc::new(2)];
    /// let set: WeakSet<i32> = members.iter().cloned().collect();
    /// assert_eq!(set.len(), 2);
    /// drop(members);
    /// assert!(set.is_empty());
    /// ```
    fn from_iter<I: IntoIterator<Item = Gc<T>>>(members: I) -> Self {
        let mut set = WeakSet::new();
        set.extend(members);
        set
    }
}

impl<T: ?Sized + Trace> PartialEq for WeakSet<T> {
    /// Whether the two sets have the same live members, by identity
    /// (Python's `==` between `WeakSet`s): each is a subset of the other.
    /// Runs no user code and makes no strong reference.
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let one: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let two: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// assert!(one != two);
    /// drop(a);
    /// assert!(one == two);
    /// let equal_value = Gc::new(2); // another object
    /// let three: WeakSet<i32> = [equal_value.clone()].into_iter().collect();
    /// assert!(two != three);
    /// ```
    fn eq(&self, other: &WeakSet<T>) -> bool {
        self.is_subset(other) && other.is_subset(self)
    }
}

/// `==` between sets is an equivalence: identity of live members.
impl<T: ?Sized + Trace> Eq for WeakSet<T> {}

impl<T: ?Sized + Trace> BitOr<&WeakSet<T>> for &WeakSet<T> {
    type Output = WeakSet<T>;

    /// A new set of the members of either ([`WeakSet::union`]).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let left: WeakSet<i32> = [a.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// let both = &left | &right;
    /// assert!(both.len() == 2 && both.contains(&a) && both.contains(&b));
    /// ```
    fn bitor(self, other: &WeakSet<T>) -> WeakSet<T> {
        self.union(other).collect()
    }
}

impl<T: ?Sized + Trace> BitAnd<&WeakSet<T>> for &WeakSet<T> {
    type Output = WeakSet<T>;

    /// A new set of the members of both ([`WeakSet::intersection`]).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// let both = &left & &right;
    /// assert!(both.len() == 1 && both.contains(&b));
    /// ```
    fn bitand(self, other: &WeakSet<T>) -> WeakSet<T> {
        self.intersection(other).collect()
    }
}

impl<T: ?Sized + Trace> Sub<&WeakSet<T>> for &WeakSet<T> {
    type Output = WeakSet<T>;

    /// A new set of the members of `self` not in `other`
    /// ([`WeakSet::difference`]).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// let rest = &left - &right;
    /// assert!(rest.len() == 1 && rest.contains(&a));
    /// ```
    fn sub(self, other: &WeakSet<T>) -> WeakSet<T> {
        self.difference(other).collect()
    }
}

impl<T: ?Sized + Trace> BitXor<&WeakSet<T>> for &WeakSet<T> {
    type Output = WeakSet<T>;

    /// A new set of the members of exactly one
    /// ([`WeakSet::symmetric_difference`]).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b, c) = (Gc::new(1), Gc::new(2), Gc::new(3));
    /// let left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone(), c.clone()].into_iter().collect();
    /// let either = &left ^ &right;
    /// assert!(either.len() == 2 && either.contains(&a) && either.contains(&c));
    /// ```
    fn bitxor(self, other: &WeakSet<T>) -> WeakSet<T> {
        self.symmetric_difference(other).collect()
    }
}

impl<T: ?Sized + Trace> BitOrAssign<&WeakSet<T>> for WeakSet<T> {
    /// Adds the live members of `other` (Python's `update`, `|=`).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut left: WeakSet<i32> = [a.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// left |= &right;
    /// assert!(left.len() == 2 && left.contains(&b));
    /// ```
    fn bitor_assign(&mut self, other: &WeakSet<T>) {
        self.extend(other.iter());
    }
}

impl<T: ?Sized + Trace> BitAndAssign<&WeakSet<T>> for WeakSet<T> {
    /// Keeps only the members that are live members of `other` (Python's
    /// `intersection_update`, `&=`).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// left &= &right;
    /// assert!(left.len() == 1 && left.contains(&b));
    /// ```
    fn bitand_assign(&mut self, other: &WeakSet<T>) {
        self.retain(|member| other.contains(member));
    }
}

impl<T: ?Sized + Trace> SubAssign<&WeakSet<T>> for WeakSet<T> {
    /// Removes the live members of `other` (Python's
    /// `difference_update`, `-=`).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone()].into_iter().collect();
    /// left -= &right;
    /// assert!(left.len() == 1 && left.contains(&a));
    /// ```
    fn sub_assign(&mut self, other: &WeakSet<T>) {
        self.retain(|member| !other.contains(member));
    }
}

impl<T: ?Sized + Trace> BitXorAssign<&WeakSet<T>> for WeakSet<T> {
    /// Removes the live members of `other` that are members, and adds
    /// those that are not (Python's `symmetric_difference_update`, `^=`).
    ///
    /// ```
    /// use gcptr::{Gc, WeakSet};
    ///
    /// let (a, b, c) = (Gc::new(1), Gc::new(2), Gc::new(3));
    /// let mut left: WeakSet<i32> = [a.clone(), b.clone()].into_iter().collect();
    /// let right: WeakSet<i32> = [b.clone(), c.clone()].into_iter().collect();
    /// left ^= &right;
    /// assert!(left.len() == 2 && left.contains(&a) && left.contains(&c));
    /// ```
    fn bitxor_assign(&mut self, other: &WeakSet<T>) {
        for member in other.iter() {
            if !self.remove(&member) {
                self.insert(&member);
            }
        }
    }
}

impl<T: ?Sized + Trace + fmt::Debug> fmt::Debug for WeakSet<T> {
    /// The live members, as a set.
    ///
    /// ```
    /// let member = gcptr::Gc::new(3);
    /// let mut set = gcptr::WeakSet::new();
    /// set.insert(&member);
    /// assert_eq!(format!("{set:?}"), "{3}");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
