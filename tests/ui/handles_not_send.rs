// The weak containers, death callbacks and `referrers`' handles point at
// objects of one thread's collector: none of them may cross threads, as
// no `Gc` or `Weak` may.
use gcptr::{DeathCallback, ObjectRef, WeakKeyMap, WeakSet, WeakValueMap, WeakWithCallback};

fn send<T: Send>() {}

fn main() {
    send::<WeakValueMap<u32, u32>>();
    send::<WeakKeyMap<u32, u32>>();
    send::<WeakSet<u32>>();
    send::<ObjectRef>();
    send::<DeathCallback>();
    send::<WeakWithCallback<u32>>();
}
