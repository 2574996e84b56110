//! The extension's global allocator: mimalloc, called the way that is fast for
//! Rust's layouts.
//!
//! The `mimalloc` crate's `GlobalAlloc` sends every allocation through
//! `mi_malloc_aligned`, whatever its alignment. In mimalloc v3 that call's
//! fast path only serves a block that happens to be aligned in a page with a
//! free block at hand; otherwise it takes the generic aligned path, which for
//! blocks over 128 bytes over-allocates and marks the page as holding aligned
//! blocks (their frees then take the slow path too). Nearly every Rust
//! allocation asks for an alignment of at most 8, which every mimalloc block
//! has (blocks are whole words in word-aligned pages), so those go to plain
//! `mi_malloc`/`mi_zalloc`/`mi_realloc`, as the `mimalloc` crate itself did
//! before 0.1.44; larger alignments still use the aligned calls.
//! (callgrind, `render_event` on 1,000 records: see docs/BENCHMARKS.md.)
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Alignment every mimalloc block has: one machine word.
const WORD: usize = std::mem::size_of::<usize>();

pub struct Allocator;

// SAFETY: each method hands the layout's size to mimalloc and returns its
// block (or null); blocks from `mi_malloc`/`mi_zalloc`/`mi_realloc` are
// word-aligned, so they serve layouts aligned to at most a word, and the
// `_aligned` calls serve the rest. Every block is freed by `mi_free`, which
// takes blocks from all of these.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_malloc(layout.size()).cast()
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_zalloc(layout.size()).cast()
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for() {
        // GIVEN layouts of every size up to 4 KiB and alignments 1 to 64
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64] {
            for size in (1..=4096).step_by(7) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // WHEN allocated, zero-allocated and grown
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null() && p as usize % align == 0, "{size}/{align}");
                    p.write_bytes(0xAB, size);
                    let q = a.realloc(p, layout, size * 2);
                    // THEN aligned, and the contents survive the move
                    assert!(q as usize % align == 0, "realloc {size}/{align}");
                    assert!(std::slice::from_raw_parts(q, size)
                        .iter()
                        .all(|&b| b == 0xAB));
                    a.dealloc(q, Layout::from_size_align(size * 2, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert!(z as usize % align == 0, "zeroed {size}/{align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
