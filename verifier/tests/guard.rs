//! `guard` silences the panics it catches on its own thread only, and never leaves the
//! process's panic hook silent: threads guarding at once once raced on the global hook.
//! Its own test binary: it installs a panic hook, which is process-wide.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::catch_unwind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use zkinfer_verifier::guard;

static REPORTED: AtomicUsize = AtomicUsize::new(0);

#[test]
fn guarded_panics_are_silent_and_others_are_reported() {
    std::panic::set_hook(Box::new(|_| {
        REPORTED.fetch_add(1, Ordering::SeqCst);
    }));
    // Many threads guarding panicking closures at once.
    let caught = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let caught = Arc::clone(&caught);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let r = guard(|| {
                        if i % 2 == 0 {
                            panic!("inside a guard");
                        }
                        i
                    });
                    if r.is_none() {
                        caught.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(caught.load(Ordering::SeqCst), 8 * 25);
    assert_eq!(
        REPORTED.load(Ordering::SeqCst),
        0,
        "a guarded panic was reported"
    );
    // Outside every guard, a panic reaches the hook installed before the guards.
    assert!(catch_unwind(|| panic!("outside")).is_err());
    assert_eq!(REPORTED.load(Ordering::SeqCst), 1);
    // A guard nested in a guard: still silent, and the outer one still catches.
    let r = guard(|| guard(|| panic!("inner")).is_none() && guard(|| 3) == Some(3));
    assert_eq!(r, Some(true));
    assert_eq!(REPORTED.load(Ordering::SeqCst), 1);
}
