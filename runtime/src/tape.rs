//! Storage of reverse-mode tapes.
//!
//! A loop's reverse sweep reads values its forward sweep stored, one slot per iteration.
//! Tapes up to [`TAPE_STACK_BYTES`] are arrays on the stack (no allocation); larger ones
//! are `Vec`s on the heap, so a long loop cannot overflow a thread's stack (2 MiB for
//! spawned threads and test threads). Where a loop bound is a named constant, the macro
//! cannot see its value, and rustc chooses between the two through [`TapeStorage`].

use alloc::vec::Vec;

/// The largest tape kept on the stack, in bytes (64 KiB). Keep in sync with the engine's
/// `ir::TAPE_STACK_BYTES`.
pub const TAPE_STACK_BYTES: usize = 64 * 1024;

/// Selects a tape's storage: `Tape<false>` on the stack, `Tape<true>` on the heap.
pub struct Tape<const HEAP: bool>;

/// A tape of `N` elements of type `E`, stored where `Self` says.
pub trait TapeStorage<E, const N: usize> {
    /// `[E; N]` or `Vec<E>`; both are indexed as `tape[i]`.
    type Store;
    /// A tape whose every element is `zero`.
    fn zeroed(zero: E) -> Self::Store;
}

impl<E: Copy, const N: usize> TapeStorage<E, N> for Tape<false> {
    type Store = [E; N];
    #[inline(always)]
    fn zeroed(zero: E) -> [E; N] {
        [zero; N]
    }
}

impl<E: Clone, const N: usize> TapeStorage<E, N> for Tape<true> {
    type Store = Vec<E>;
    #[inline]
    fn zeroed(zero: E) -> Vec<E> {
        alloc::vec![zero; N]
    }
}

/// A tape of `len` elements on the heap (the size is known to exceed
/// [`TAPE_STACK_BYTES`], or its element type is one the macro cannot see).
#[inline]
pub fn heap_tape<E: Clone>(zero: E, len: usize) -> Vec<E> {
    alloc::vec![zero; len]
}
