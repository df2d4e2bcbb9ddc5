//! The update loop allocates nothing: counting every allocation, a segment of
//! 60 updates costs as many allocations as one of 12 (what remains is the
//! per-segment cost: threads, the cost vectors' first growth).

use rbm::data::Images;
use rbm::train::{Method, Trainer};

mod common;
use rbm::{Rbm, Stream};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn training_updates_do_not_allocate() {
    let pixels: Vec<u8> = (0..1000 * 784).map(|i| if (i * 7919) % 5 == 0 { 200 } else { 0 }).collect();
    let data = Images { n: 1000, rows: 28, cols: 28, pixels };
    for method in [Method::Pcd, Method::Cd] {
        let cfg = common::train_config(method, 3, 0.01, 10, 1, 100, 1, 1000);
        let rbm = Rbm::new(784, 100, &mut Stream::new(1, 0)).unwrap();
        let mut t = Trainer::new(&rbm, common::checked(&cfg)).unwrap();
        t.run(&data, 64, 2).unwrap(); // warm up: scratch buffers reach their sizes
        let count = |t: &mut Trainer, n: usize| {
            let before = ALLOCS.load(Ordering::SeqCst);
            t.run(&data, n, 2).unwrap();
            ALLOCS.load(Ordering::SeqCst) - before
        };
        let short = count(&mut t, 12);
        let long = count(&mut t, 60);
        // a per-update allocation would add 48 or more; allow 2 for amortised vector growth
        assert!(long <= short + 2, "{method:?}: 60 updates made {long} allocations, 12 made {short}");
    }
}
