//! Assembling a Jacobian from chunks of rows computed independently: the emitted `jacrev`
//! of a vector output computes its rows `L` at a time (one reverse sweep over `L` basis
//! cotangents on SIMD lanes), and the chunks do not interact, so they can run as tasks on
//! rayon's threads.
//!
//! torch.func has two assembly strategies (`jacrev(.., chunk_size, _preallocate_and_copy)`):
//! each chunk's rows stacked and concatenated at the end, or copied into a preallocated
//! result. Both are here, over the same task bodies:
//!
//! - [`jacobian_rows`]: every task writes its rows in place in the caller's buffer (what
//!   the emitted code uses: no buffer but the result, no copy);
//! - [`jacobian_rows_stacked`]: every task fills a buffer of its own rows, and the buffers
//!   are copied into the result in order (more memory and a copy; no task ever holds a
//!   part of the result).
//!
//! `benches/jacobians.rs` (`jacobian_assembly/*`) compares them. Rows never depend on the
//! split, so the result is the same bit for bit for every chunk size and thread count.

use alloc::vec::Vec;

/// Rows per task: `chunk_size` rounded up to whole chunks of `lanes` rows, or with `None`
/// enough rows of a body costing `weight` per row to make [`crate::PARALLEL_WORK`].
#[inline]
#[track_caller]
pub fn rows_per_task(chunk_size: Option<usize>, weight: usize, lanes: usize) -> usize {
    let lanes = lanes.max(1);
    let k = match chunk_size {
        Some(0) => panic!("jacrev: `chunk_size` is 0: give a positive number of rows, or `None`"),
        Some(k) => k,
        None => crate::PARALLEL_WORK / weight.max(1),
    };
    k.div_ceil(lanes).max(1) * lanes
}

/// Runs `body(first_chunk, rows)` over `out` split into tasks of whole chunks of `lanes`
/// rows ([`rows_per_task`]): `rows` is the task's part of `out`, starting at row
/// `first_chunk * lanes`. Tasks run on rayon's threads when there are several (and the
/// `rayon` feature is on), else in order on the calling thread.
pub fn jacobian_rows<R: Send>(
    out: &mut [R],
    lanes: usize,
    chunk_size: Option<usize>,
    weight: usize,
    body: &(dyn Fn(usize, &mut [R]) + Sync),
) {
    let lanes = lanes.max(1);
    let task = rows_per_task(chunk_size, weight, lanes);
    split(out, 0, task, lanes, body);
}

#[cfg(feature = "rayon")]
fn split<R: Send>(out: &mut [R], first_row: usize, task: usize, lanes: usize, body: &(dyn Fn(usize, &mut [R]) + Sync)) {
    if out.len() <= task {
        if !out.is_empty() {
            body(first_row / lanes, out);
        }
        return;
    }
    // Halves that are whole multiples of the task size.
    let mid = (out.len() / 2).div_ceil(task) * task;
    let (a, b) = out.split_at_mut(mid);
    rayon::join(
        || split(a, first_row, task, lanes, body),
        || split(b, first_row + mid, task, lanes, body),
    );
}

#[cfg(not(feature = "rayon"))]
fn split<R: Send>(out: &mut [R], first_row: usize, task: usize, lanes: usize, body: &(dyn Fn(usize, &mut [R]) + Sync)) {
    in_order(out, first_row, task, lanes, body);
}

/// The tasks of [`split`] in order on the calling thread (without the `rayon` feature).
/// Compiled with it too, so that the unit tests check it in every configuration (the
/// workspace's tests turn `rayon` on).
#[cfg_attr(feature = "rayon", allow(dead_code))]
fn in_order<R: Send>(
    out: &mut [R],
    first_row: usize,
    task: usize,
    lanes: usize,
    body: &(dyn Fn(usize, &mut [R]) + Sync),
) {
    for (k, rows) in out.chunks_mut(task).enumerate() {
        body((first_row + k * task) / lanes, rows);
    }
}

/// [`jacobian_rows`] with the stacked assembly: each task writes into a buffer of its own
/// rows (initialised to `zero`), and the buffers are then copied into `out` in order.
pub fn jacobian_rows_stacked<R: Send + Sync + Copy>(
    out: &mut [R],
    zero: R,
    lanes: usize,
    chunk_size: Option<usize>,
    weight: usize,
    body: &(dyn Fn(usize, &mut [R]) + Sync),
) {
    let lanes = lanes.max(1);
    let task = rows_per_task(chunk_size, weight, lanes);
    let m = out.len();
    let starts: Vec<usize> = (0..m).step_by(task).collect();
    let run = |start: &usize| -> Vec<R> {
        let mut rows = alloc::vec![zero; task.min(m - start)];
        body(start / lanes, &mut rows);
        rows
    };
    #[cfg(feature = "rayon")]
    let parts: Vec<Vec<R>> = {
        use rayon::prelude::*;
        starts.par_iter().map(run).collect()
    };
    #[cfg(not(feature = "rayon"))]
    let parts: Vec<Vec<R>> = starts.iter().map(run).collect();
    for (start, rows) in starts.iter().zip(parts) {
        out[*start..*start + rows.len()].copy_from_slice(&rows);
    }
}

/// The columns `lo..hi` of a Jacobian `[[E; N]]` (rows of `N` columns), which one task of
/// [`jacobian_cols`] writes: `set(row, col, v)`. Columns are not contiguous, so the tasks
/// share the buffer; each may write only its own columns (checked on every write), so no
/// element is written by two tasks and none is read.
pub struct Columns<'a, E> {
    ptr: *mut E,
    rows: usize,
    stride: usize,
    lo: usize,
    hi: usize,
    _out: core::marker::PhantomData<&'a mut [E]>,
}

impl<E> Columns<'_, E> {
    /// `out[row][col] = v` (panics unless `row` is a row and `col` one of this task's columns).
    #[inline(always)]
    pub fn set(&mut self, row: usize, col: usize, v: E) {
        assert!(
            row < self.rows && self.lo <= col && col < self.hi,
            "jacobian_cols: element [{row}][{col}] outside the task's columns {}..{} of {} rows",
            self.lo,
            self.hi,
            self.rows
        );
        // SAFETY: `row < rows` and `col < hi <= stride`, so the element is inside the
        // buffer `jacobian_cols` borrowed mutably for the tasks' whole run; the tasks'
        // column ranges are disjoint, so no other task writes it, and nothing reads it
        // while they run.
        unsafe { self.ptr.add(row * self.stride + col).write(v) }
    }
    /// This task's first column.
    pub fn first(&self) -> usize {
        self.lo
    }
    /// The number of this task's columns.
    pub fn len(&self) -> usize {
        self.hi - self.lo
    }
    /// Whether the task has no column.
    pub fn is_empty(&self) -> bool {
        self.hi == self.lo
    }
}

/// The buffer's address, shared by the tasks (each writes its own columns through
/// [`Columns`]).
struct Shared<E>(*mut E);
// SAFETY: the tasks write disjoint elements (their own columns, checked), read none, and
// `jacobian_cols` holds the only borrow of the buffer until every task has returned.
unsafe impl<E: Send> Sync for Shared<E> {}
unsafe impl<E: Send> Send for Shared<E> {}

impl<E> Shared<E> {
    /// The address (a method, so that closures capture the whole `Shared`).
    fn get(&self) -> *mut E {
        self.0
    }
}

/// The emitted `jacfwd`'s chunks of columns as tasks: `body(first_chunk, columns)` over
/// `out` (rows of `N` columns) split into tasks of whole chunks of `lanes` columns
/// ([`rows_per_task`] columns each), on rayon's threads where there are several (and the
/// `rayon` feature is on), else in order. The columns are the same bit for bit for every
/// split: each is computed by one task, from nothing another writes.
pub fn jacobian_cols<E: Send, const N: usize>(
    out: &mut [[E; N]],
    lanes: usize,
    chunk_size: Option<usize>,
    weight: usize,
    body: &(dyn Fn(usize, &mut Columns<'_, E>) + Sync),
) {
    let lanes = lanes.max(1);
    let task = rows_per_task(chunk_size, weight, lanes);
    let rows = out.len();
    let shared = Shared(out.as_mut_ptr().cast::<E>());
    let run = |lo: usize, hi: usize| {
        let mut cols = Columns {
            ptr: shared.get(),
            rows,
            stride: N,
            lo,
            hi,
            _out: core::marker::PhantomData,
        };
        body(lo / lanes, &mut cols);
    };
    split_cols(0, N, task, &run);
}

#[cfg(feature = "rayon")]
fn split_cols(lo: usize, hi: usize, task: usize, run: &(dyn Fn(usize, usize) + Sync)) {
    if hi - lo <= task {
        if hi > lo {
            run(lo, hi);
        }
        return;
    }
    let mid = lo + ((hi - lo) / 2).div_ceil(task) * task;
    rayon::join(|| split_cols(lo, mid, task, run), || split_cols(mid, hi, task, run));
}

#[cfg(not(feature = "rayon"))]
fn split_cols(lo: usize, hi: usize, task: usize, run: &(dyn Fn(usize, usize) + Sync)) {
    cols_in_order(lo, hi, task, run);
}

/// The tasks of [`split_cols`] in order on the calling thread (without the `rayon`
/// feature). Compiled with it too, so that the unit tests check it in every configuration
/// (the workspace's tests turn `rayon` on).
#[cfg_attr(feature = "rayon", allow(dead_code))]
fn cols_in_order(lo: usize, hi: usize, task: usize, run: &(dyn Fn(usize, usize) + Sync)) {
    let mut a = lo;
    while a < hi {
        let b = (a + task).min(hi);
        run(a, b);
        a = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column is written by the task that owns it, each element once, whatever the
    /// split; a write outside the task's columns panics.
    #[test]
    fn every_column_is_written_by_its_task() {
        for chunk in [None, Some(1), Some(3), Some(4), Some(64)] {
            for lanes in [1, 4, 8] {
                let mut a = alloc::vec![[usize::MAX; 37]; 3];
                jacobian_cols(&mut a, lanes, chunk, 7, &|c0, cols| {
                    assert_eq!(cols.first(), c0 * lanes);
                    for col in cols.first()..cols.first() + cols.len() {
                        for row in 0..3 {
                            cols.set(row, col, row * 1000 + col);
                        }
                    }
                });
                for (row, r) in a.iter().enumerate() {
                    for (col, v) in r.iter().enumerate() {
                        assert_eq!(*v, row * 1000 + col, "chunk {chunk:?}, lanes {lanes}");
                    }
                }
            }
        }
    }

    /// The tasks are the whole chunks of `rows_per_task` columns, each run once and none
    /// empty (no task at all for a Jacobian without columns), in either split (rayon's and
    /// `cols_in_order`).
    #[test]
    fn the_tasks_are_whole_chunks_of_columns() {
        // At each column, `1 + 64 len` for every task starting there.
        use core::sync::atomic::{AtomicUsize, Ordering};
        fn tasks<const N: usize>(lanes: usize, chunk: Option<usize>) -> Vec<usize> {
            let seen: Vec<AtomicUsize> = (0..=N).map(|_| AtomicUsize::new(0)).collect();
            let mut a = alloc::vec![[0u8; N]; 2];
            jacobian_cols(&mut a, lanes, chunk, 7, &|c0, cols| {
                assert!(!cols.is_empty());
                seen[c0 * lanes].fetch_add(1 + 64 * cols.len(), Ordering::Relaxed);
            });
            seen.into_iter().map(AtomicUsize::into_inner).collect()
        }
        // The same tasks of `cols_in_order` (the split without `rayon`).
        fn in_order(n: usize, lanes: usize, chunk: Option<usize>) -> Vec<usize> {
            let seen: Vec<AtomicUsize> = (0..=n).map(|_| AtomicUsize::new(0)).collect();
            cols_in_order(0, n, rows_per_task(chunk, 7, lanes), &|lo, hi| {
                seen[lo].fetch_add(1 + 64 * (hi - lo), Ordering::Relaxed);
            });
            seen.into_iter().map(AtomicUsize::into_inner).collect()
        }
        for chunk in [None, Some(1), Some(3), Some(4), Some(64)] {
            for lanes in [1, 4, 8] {
                let task = rows_per_task(chunk, 7, lanes);
                let mut want = alloc::vec![0; 38];
                for lo in (0..37).step_by(task) {
                    want[lo] = 1 + 64 * task.min(37 - lo);
                }
                assert_eq!(tasks::<37>(lanes, chunk), want, "chunk {chunk:?}, lanes {lanes}");
                assert_eq!(
                    tasks::<0>(lanes, chunk),
                    [0],
                    "no columns: chunk {chunk:?}, lanes {lanes}"
                );
                assert_eq!(
                    in_order(37, lanes, chunk),
                    want,
                    "in order: chunk {chunk:?}, lanes {lanes}"
                );
                assert_eq!(
                    in_order(0, lanes, chunk),
                    [0],
                    "in order, no columns: chunk {chunk:?}, lanes {lanes}"
                );
            }
        }
    }

    /// `is_empty` and `len` of a task's columns.
    #[test]
    fn a_task_without_columns_is_empty() {
        let mut a = [[0.0f64; 4]; 1];
        let ptr = a.as_mut_ptr().cast::<f64>();
        let cols = |lo, hi| Columns {
            ptr,
            rows: 1,
            stride: 4,
            lo,
            hi,
            _out: core::marker::PhantomData,
        };
        let (empty, some) = (cols(2, 2), cols(1, 3));
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert!(!some.is_empty());
        assert_eq!((some.first(), some.len()), (1, 2));
    }

    #[test]
    #[should_panic(expected = "outside the task's columns")]
    fn a_write_outside_the_tasks_columns_panics() {
        let mut a = [[0.0; 8]; 2];
        jacobian_cols(&mut a, 4, Some(4), 1, &|_, cols| {
            let c = cols.first() + cols.len();
            cols.set(0, c, 1.0);
        });
    }

    /// A task body writing, in each row, its index and the task's first chunk.
    fn label(lanes: usize) -> impl Fn(usize, &mut [[usize; 2]]) + Sync {
        move |c0, rows| {
            for (k, r) in rows.iter_mut().enumerate() {
                *r = [c0 * lanes + k, c0];
            }
        }
    }

    #[test]
    fn every_row_is_written_once_by_the_task_that_owns_it() {
        for m in [0, 1, 3, 4, 5, 8, 9, 17, 1000] {
            for chunk in [None, Some(1), Some(3), Some(4), Some(8), Some(5000)] {
                for lanes in [1, 4, 8] {
                    let task = rows_per_task(chunk, 7, lanes);
                    assert_eq!(task % lanes, 0);
                    let mut a = alloc::vec![[usize::MAX; 2]; m];
                    jacobian_rows(&mut a, lanes, chunk, 7, &label(lanes));
                    let mut b = alloc::vec![[usize::MAX; 2]; m];
                    jacobian_rows_stacked(&mut b, [usize::MAX; 2], lanes, chunk, 7, &label(lanes));
                    let mut c = alloc::vec![[usize::MAX; 2]; m];
                    in_order(&mut c, 0, task, lanes, &label(lanes));
                    for (i, (ra, rb)) in a.iter().zip(&b).enumerate() {
                        // Row i is written with its own index, by the task starting at the
                        // chunk `i / task * task / lanes`.
                        assert_eq!(
                            *ra,
                            [i, i / task * task / lanes],
                            "m {m}, chunk {chunk:?}, lanes {lanes}"
                        );
                        assert_eq!(ra, rb);
                        assert_eq!(*ra, c[i], "in order: m {m}, chunk {chunk:?}, lanes {lanes}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_task_size_comes_from_the_option_or_the_cost() {
        assert_eq!(rows_per_task(Some(1), 3, 4), 4);
        assert_eq!(rows_per_task(Some(5), 3, 4), 8);
        assert_eq!(rows_per_task(Some(8), 3, 4), 8);
        assert_eq!(rows_per_task(None, crate::PARALLEL_WORK, 4), 4);
        assert_eq!(rows_per_task(None, 1, 4), crate::PARALLEL_WORK);
        assert_eq!(rows_per_task(None, 1000, 4), 68);
    }

    #[test]
    #[should_panic(expected = "`chunk_size` is 0")]
    fn a_chunk_size_of_zero_panics() {
        rows_per_task(Some(0), 1, 4);
    }
}
