use gcptr::WeakValueMap;

struct Session(u32);

fn main() {
    let _cache: WeakValueMap<u32, Session> = WeakValueMap::new();
}
