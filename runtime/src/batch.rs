//! What `vmap`'s generated functions call around their kernel: moving a chunk of samples
//! into lanes and back, and checking that the batched arguments agree in length.
//!
//! ```text
//! samples  x: &[[f64; 3]]   [x0, x1, x2, x3]            (array of structures)
//! packed   [f64x4; 3]       [[x0[0] x1[0] x2[0] x3[0]],  (structure of lanes)
//!                            [x0[1] ..], [x0[2] ..]]
//! ```
//!
//! A chunk shorter than the lane count (the end of a batch) is padded with copies of its
//! last sample, so the padding lanes compute an ordinary value (no NaN or infinity from a
//! made-up input) that is never written out.

use crate::lanes::Lanes;

/// A per-sample type that `vmap` batches: a float packs into a lane vector `L`, a fixed
/// array into an array of packed elements, a tuple into a tuple.
pub trait Pack<L: Lanes>: Copy {
    /// The chunk of samples in lanes.
    type Packed: Copy;
    /// Lane `l` holds `sample(min(l, n - 1))`: the `n >= 1` samples of a chunk, padded
    /// with the last.
    fn pack_by(n: usize, sample: &dyn Fn(usize) -> Self) -> Self::Packed;
    /// The sample in lane `l`.
    fn lane_of(p: &Self::Packed, l: usize) -> Self;
    /// Adds the samples in lanes `0..m` into `acc`, lane 0 first, element by element: the
    /// sums (and their order) of adding `lane_of(p, 0)`, .., `lane_of(p, m - 1)` in turn
    /// with [`crate::acc`], with no temporary of the sample's size (a batch's reduction of
    /// a shared argument's cotangent: a model's weights).
    fn add_lanes(p: &Self::Packed, m: usize, acc: &mut Self);
    /// Writes the sample in lane `l` to `out`, element by element (no temporary of the
    /// sample's size).
    #[inline(always)]
    fn write_lane(p: &Self::Packed, l: usize, out: &mut Self) {
        *out = Self::lane_of(p, l);
    }
    /// A full chunk (`s.len() == L::LANES`) in lanes: `pack_by`, or one load for floats.
    #[inline(always)]
    fn pack_full(s: &[Self]) -> Self::Packed {
        Self::pack_by(L::LANES, &|l| s[l])
    }
    /// Writes a full chunk (`out.len() == L::LANES`): `lane_of` lane by lane, or one
    /// store for floats.
    #[inline(always)]
    fn unpack_full(p: &Self::Packed, out: &mut [Self]) {
        for (l, o) in out.iter_mut().enumerate() {
            Self::write_lane(p, l, o);
        }
    }
    /// Writes a full chunk to the samples `out` (one reference per lane): `write_lane`
    /// lane by lane, or (arrays of floats) transposed in blocks of lanes.
    #[inline(always)]
    fn unpack_refs(p: &Self::Packed, out: &mut [&mut Self]) {
        for (l, o) in out.iter_mut().enumerate() {
            Self::write_lane(p, l, o);
        }
    }
    /// [`Pack::unpack_refs`] of arrays of `Self`: element by element, which floats
    /// replace by a transposition of `L::LANES x L::LANES` blocks (whole rows of each
    /// sample stored at once, not one element at a time).
    #[inline(always)]
    fn unpack_array_refs<const N: usize>(p: &[Self::Packed; N], out: &mut [&mut [Self; N]]) {
        for (k, q) in p.iter().enumerate() {
            match out {
                [a, b, c, d] => Self::unpack_refs(q, &mut [&mut a[k], &mut b[k], &mut c[k], &mut d[k]]),
                [a, b, c, d, e, f, g, h] => Self::unpack_refs(
                    q,
                    &mut [
                        &mut a[k], &mut b[k], &mut c[k], &mut d[k], &mut e[k], &mut f[k], &mut g[k], &mut h[k],
                    ],
                ),
                _ => {
                    for (l, o) in out.iter_mut().enumerate() {
                        Self::write_lane(q, l, &mut o[k]);
                    }
                }
            }
        }
    }
}

/// Rows of floats from lanes, `B x B` blocks transposed by [`Lanes::store_transposed`]:
/// sample `l`'s row gets whole runs of elements per store. `out.len() == B == L::LANES`.
#[inline(always)]
fn transpose_rows<L: Lanes, const B: usize, const N: usize>(p: &[L; N], out: &mut [&mut [L::Elem; N]]) {
    let mut j = 0;
    while j + B <= N {
        L::store_transposed(&p[j..j + B], out, j);
        j += B;
    }
    for (k, q) in p.iter().enumerate().skip(j) {
        for (l, o) in out.iter_mut().enumerate() {
            o[k] = q.lane(l);
        }
    }
}

/// A float is one lane of `L`; arrays of floats unpack in transposed blocks.
macro_rules! float_pack {
    ($($t:ident),*) => {$(
        impl<L: Lanes<Elem = $t>> Pack<L> for $t {
            type Packed = L;
            #[inline(always)]
            fn pack_by(n: usize, sample: &dyn Fn(usize) -> $t) -> L {
                L::from_fn(|l| sample(l.min(n - 1)))
            }
            #[inline(always)]
            fn lane_of(p: &L, l: usize) -> $t {
                p.lane(l)
            }
            #[inline(always)]
            fn add_lanes(p: &L, m: usize, acc: &mut $t) {
                for l in 0..m {
                    *acc += p.lane(l);
                }
            }
            #[inline(always)]
            fn pack_full(s: &[$t]) -> L {
                L::from_slice(s)
            }
            #[inline(always)]
            fn unpack_full(p: &L, out: &mut [$t]) {
                p.write_to_slice(out)
            }
            #[inline(always)]
            fn unpack_array_refs<const N: usize>(p: &[L; N], out: &mut [&mut [$t; N]]) {
                match (L::LANES, out.len()) {
                    (4, 4) => transpose_rows::<L, 4, N>(p, out),
                    (8, 8) => transpose_rows::<L, 8, N>(p, out),
                    _ => {
                        for (k, q) in p.iter().enumerate() {
                            for (l, o) in out.iter_mut().enumerate() {
                                o[k] = Self::lane_of(q, l);
                            }
                        }
                    }
                }
            }
        }
    )*};
}
float_pack!(f64, f32);

impl<L: Lanes, T: Pack<L>, const N: usize> Pack<L> for [T; N] {
    type Packed = [T::Packed; N];
    #[inline(always)]
    fn pack_by(n: usize, sample: &dyn Fn(usize) -> [T; N]) -> [T::Packed; N] {
        core::array::from_fn(|j| T::pack_by(n, &|l| sample(l)[j]))
    }
    #[inline(always)]
    fn lane_of(p: &[T::Packed; N], l: usize) -> [T; N] {
        core::array::from_fn(|j| T::lane_of(&p[j], l))
    }
    #[inline(always)]
    fn add_lanes(p: &[T::Packed; N], m: usize, acc: &mut [T; N]) {
        for (a, q) in acc.iter_mut().zip(p) {
            T::add_lanes(q, m, a);
        }
    }
    #[inline(always)]
    fn write_lane(p: &[T::Packed; N], l: usize, out: &mut [T; N]) {
        for (o, q) in out.iter_mut().zip(p) {
            T::write_lane(q, l, o);
        }
    }
    #[inline(always)]
    fn unpack_full(p: &[T::Packed; N], out: &mut [[T; N]]) {
        match out {
            [a, b, c, d] => T::unpack_array_refs(p, &mut [a, b, c, d]),
            [a, b, c, d, e, f, g, h] => T::unpack_array_refs(p, &mut [a, b, c, d, e, f, g, h]),
            _ => {
                for (l, o) in out.iter_mut().enumerate() {
                    Self::write_lane(p, l, o);
                }
            }
        }
    }
    #[inline(always)]
    fn unpack_refs(p: &[T::Packed; N], out: &mut [&mut [T; N]]) {
        T::unpack_array_refs(p, out)
    }
}

macro_rules! pack_tuples {
    ($(($($t:ident $k:tt),+)),*) => {$(
        impl<L: Lanes, $($t: Pack<L>),+> Pack<L> for ($($t,)+) {
            type Packed = ($($t::Packed,)+);
            #[inline(always)]
            fn pack_by(n: usize, sample: &dyn Fn(usize) -> Self) -> Self::Packed {
                ($($t::pack_by(n, &|l| sample(l).$k),)+)
            }
            #[inline(always)]
            fn lane_of(p: &Self::Packed, l: usize) -> Self {
                ($($t::lane_of(&p.$k, l),)+)
            }
            #[inline(always)]
            fn write_lane(p: &Self::Packed, l: usize, out: &mut Self) {
                $($t::write_lane(&p.$k, l, &mut out.$k);)+
            }
            #[inline(always)]
            fn add_lanes(p: &Self::Packed, m: usize, acc: &mut Self) {
                $($t::add_lanes(&p.$k, m, &mut acc.$k);)+
            }
        }
    )*};
}
pack_tuples!(
    (A 0),
    (A 0, B 1),
    (A 0, B 1, C 2),
    (A 0, B 1, C 2, D 3),
    (A 0, B 1, C 2, D 3, E 4),
    (A 0, B 1, C 2, D 3, E 4, F 5),
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6),
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
);

/// `()`, the tangent of an integer or `bool` inside a tuple (a shared argument's
/// cotangent, read lane by lane by a batch's reverse half): nothing in every lane.
impl<L: Lanes> Pack<L> for () {
    type Packed = ();
    #[inline(always)]
    fn pack_by(_n: usize, _sample: &dyn Fn(usize) -> Self) -> Self::Packed {}
    #[inline(always)]
    fn lane_of(_p: &Self::Packed, _l: usize) -> Self {}
    #[inline(always)]
    fn add_lanes(_p: &Self::Packed, _m: usize, _acc: &mut Self) {}
}

/// `T::add_lanes(p, m, acc)`: lanes `0..m` of `p` added into `acc` in lane order.
#[inline(always)]
pub fn acc_lanes<L: Lanes, T: Pack<L>>(acc: &mut T, p: &T::Packed, m: usize) {
    T::add_lanes(p, m, acc);
}

/// The samples `s` (at most `L::LANES` of them, at least one) in lanes, padded with the
/// last.
#[inline(always)]
pub fn pack<L: Lanes, T: Pack<L>>(s: &[T]) -> T::Packed {
    assert!(
        !s.is_empty() && s.len() <= L::LANES,
        "vmap: a chunk of {} samples for {} lanes",
        s.len(),
        L::LANES
    );
    if s.len() == L::LANES {
        T::pack_full(s)
    } else {
        T::pack_by(s.len(), &|l| s[l])
    }
}

/// Writes the first `out.len()` lanes of `p` to `out`, one sample each.
#[inline(always)]
pub fn unpack<L: Lanes, T: Pack<L>>(p: &T::Packed, out: &mut [T]) {
    if out.len() == L::LANES {
        return T::unpack_full(p, out);
    }
    for (l, o) in out.iter_mut().enumerate() {
        T::write_lane(p, l, o);
    }
}

/// [`pack`] of samples that hold a packable value rather than being one: lane `l` holds
/// `*get(&s[min(l, n - 1)])`. A nalgebra matrix per sample (`&[SVector<T, N>]`) is read
/// through its storage array (`|s| &s.data.0[0]`, `[T; N]`; a matrix's columns `&s.data.0`,
/// `[[T; R]; C]`), which the runtime never names.
#[inline(always)]
pub fn pack_with<L: Lanes, S, T: Pack<L>>(s: &[S], get: impl Fn(&S) -> &T) -> T::Packed {
    assert!(
        !s.is_empty() && s.len() <= L::LANES,
        "vmap: a chunk of {} samples for {} lanes",
        s.len(),
        L::LANES
    );
    T::pack_by(s.len(), &|l| *get(&s[l]))
}

/// The samples `start..start + m` of an argument in the structure-of-arrays layout
/// (`in_dims = 1`: component `j` of every sample in the slice `s[j]`) in lanes: component by
/// component, as [`pack`] packs them (`1 <= m <= L::LANES`, the last sample repeated).
#[inline(always)]
pub fn pack_soa<L: Lanes, T: Pack<L>, const N: usize>(s: &[&[T]; N], start: usize, m: usize) -> [T::Packed; N] {
    core::array::from_fn(|j| pack::<L, T>(&s[j][start..start + m]))
}

/// Writes the first `m` lanes of `p` to the slots `start..start + m` of each component
/// buffer of an output in the structure-of-arrays layout (`out_dims = 1`).
#[inline(always)]
pub fn unpack_soa<L: Lanes, T: Pack<L>, const N: usize>(
    p: &[T::Packed; N],
    out: &mut [&mut [T]; N],
    start: usize,
    m: usize,
) {
    for (q, o) in p.iter().zip(out.iter_mut()) {
        unpack::<L, T>(q, &mut o[start..start + m]);
    }
}

/// Batched arguments of a `vmap`ped function with different numbers of samples: what the
/// `try_` form returns where the other forms panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// The argument (or output buffer) whose length differs.
    pub what: &'static str,
    /// Its number of samples.
    pub len: usize,
    /// The first batched argument (`what` itself when `component` is given).
    pub first: &'static str,
    /// Its number of samples.
    pub n: usize,
    /// `Some(j)`: `what` is in the structure-of-arrays layout (`in_dims = 1`, `out_dims = 1`)
    /// and its component `j` has `len` samples where its component 0 has `n`.
    pub component: Option<usize>,
    /// `Some(o)`: the lengths disagree inside sample `o` of the outer batch of a nested
    /// `vmap` (the arguments named are the inner function's).
    pub sample: Option<usize>,
}

impl BatchError {
    /// `what` has `len` samples where the first batched argument `first` has `n`.
    pub fn lengths(what: &'static str, len: usize, first: &'static str, n: usize) -> BatchError {
        BatchError {
            what,
            len,
            first,
            n,
            component: None,
            sample: None,
        }
    }
}

impl core::fmt::Display for BatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("vmap: ")?;
        if let Some(o) = self.sample {
            write!(f, "in sample {o} of the outer batch, ")?;
        }
        match self.component {
            Some(j) => write!(
                f,
                "component {j} of `{}` has {} samples but its component 0 has {}: every component holds one value per sample",
                self.what, self.len, self.n
            ),
            None => write!(
                f,
                "`{}` has {} samples but `{}` has {}: batched arguments must have one sample each",
                self.what, self.len, self.first, self.n
            ),
        }
    }
}

impl core::error::Error for BatchError {}

/// `Err` unless the batched argument `what` has as many samples (`len`) as the first
/// batched argument `first` (`n`): `vmap` pairs samples by index.
#[inline]
pub fn try_check_batch(what: &'static str, len: usize, first: &'static str, n: usize) -> Result<(), BatchError> {
    if len == n {
        Ok(())
    } else {
        Err(BatchError::lengths(what, len, first, n))
    }
}

/// Panics unless the batched argument `what` has as many samples (`len`) as the first
/// batched argument `first` (`n`), naming both.
#[inline]
#[track_caller]
pub fn check_batch(what: &'static str, len: usize, first: &'static str, n: usize) {
    or_panic(try_check_batch(what, len, first, n));
}

/// The number of samples of `what`, an argument or output buffer in the structure-of-arrays
/// layout whose components have the lengths `lens`: their common length (0 without
/// components), or `Err` naming the first component whose length differs from component 0's.
#[inline]
pub fn try_components<const N: usize>(what: &'static str, lens: [usize; N]) -> Result<usize, BatchError> {
    let n = lens.first().copied().unwrap_or(0);
    match lens.iter().position(|&l| l != n) {
        None => Ok(n),
        Some(j) => Err(BatchError {
            component: Some(j),
            ..BatchError::lengths(what, lens[j], what, n)
        }),
    }
}

/// `Err` unless the components of `what` (an argument or output buffer in the
/// structure-of-arrays layout, with the lengths `lens`) agree with each other and with the
/// first batched argument `first` (`n` samples). An array of no components holds no values,
/// so it agrees with any number of samples.
#[inline]
pub fn try_check_components<const N: usize>(
    what: &'static str,
    lens: [usize; N],
    first: &'static str,
    n: usize,
) -> Result<(), BatchError> {
    let len = try_components(what, lens)?;
    if N == 0 {
        return Ok(());
    }
    try_check_batch(what, len, first, n)
}

/// `r`, its error marked as found in sample `o` of the outer batch (unless an inner level
/// marked it already).
#[inline]
pub fn in_sample<T>(o: usize, r: Result<T, BatchError>) -> Result<T, BatchError> {
    r.map_err(|e| BatchError {
        sample: Some(e.sample.unwrap_or(o)),
        ..e
    })
}

/// Panics with the message of `r`'s error, if any.
#[inline]
#[track_caller]
pub fn or_panic(r: Result<(), BatchError>) {
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// The caller's result buffers of a batched function, split between threads: a slice, or
/// a tuple of slices of one length (one per output).
pub trait OutSlices: Send + Sized {
    /// The number of samples.
    fn samples(&self) -> usize;
    /// The first `mid` samples and the rest.
    fn split_at_sample(self, mid: usize) -> (Self, Self);
}

impl<T: Send> OutSlices for &mut [T] {
    #[inline]
    fn samples(&self) -> usize {
        self.len()
    }
    #[inline]
    fn split_at_sample(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

/// The buffers of an output in the structure-of-arrays layout (`out_dims = 1`): one slice
/// per component, split together.
impl<T: Send, const N: usize> OutSlices for [&mut [T]; N] {
    #[inline]
    fn samples(&self) -> usize {
        self.first().map_or(0, |c| c.len())
    }
    #[inline]
    fn split_at_sample(mut self, mid: usize) -> (Self, Self) {
        let rest = self.each_mut().map(|c| {
            let (a, b) = core::mem::take(c).split_at_mut(mid);
            *c = a;
            b
        });
        (self, rest)
    }
}

/// The per-sample outputs of a batch written into fields of the caller's values: row `k`
/// of the batch is `rows[k]`, and `field` gives the places of its outputs in it (a tuple of
/// `&mut` to disjoint fields, one per output, or one `&mut` for a single output). A batched
/// gradient with respect to a parameter struct writes each sample's gradient into that
/// sample's struct this way, leaf by leaf, with no buffer per leaf. Split across threads
/// as a slice is.
pub struct FieldRows<'a, S, F> {
    rows: &'a mut [S],
    field: F,
}

impl<'a, S, F: Copy> FieldRows<'a, S, F> {
    /// The rows `rows`, their outputs' places given by `field`.
    #[inline]
    pub fn new(rows: &'a mut [S], field: F) -> Self {
        FieldRows { rows, field }
    }
    /// The places of a row's outputs.
    #[inline(always)]
    pub fn field(&self) -> F {
        self.field
    }
    /// The rows.
    #[inline(always)]
    pub fn rows_mut(&mut self) -> &mut [S] {
        self.rows
    }
}

impl<S: Send, F: Copy + Send> OutSlices for FieldRows<'_, S, F> {
    #[inline]
    fn samples(&self) -> usize {
        self.rows.len()
    }
    #[inline]
    fn split_at_sample(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.rows.split_at_mut(mid);
        (
            FieldRows {
                rows: a,
                field: self.field,
            },
            FieldRows {
                rows: b,
                field: self.field,
            },
        )
    }
}

macro_rules! out_tuples {
    ($(($($t:ident $k:tt),+)),*) => {$(
        /// One buffer (or set of component buffers) per output, split together; the
        /// number of samples is the largest (an output of no components has none).
        impl<$($t: OutSlices),+> OutSlices for ($($t,)+) {
            #[inline]
            fn samples(&self) -> usize {
                0 $(.max(self.$k.samples()))+
            }
            #[inline]
            fn split_at_sample(self, mid: usize) -> (Self, Self) {
                let halves = ($(self.$k.split_at_sample(mid),)+);
                (($(halves.$k.0,)+), ($(halves.$k.1,)+))
            }
        }
    )*};
}
out_tuples!((A 0), (A 0, B 1), (A 0, B 1, C 2), (A 0, B 1, C 2, D 3), (A 0, B 1, C 2, D 3, E 4), (A 0, B 1, C 2, D 3, E 4, F 5));

/// Work per thread task, in the cost model's weighted operations (about a nanosecond
/// each): below about this much, splitting a batch costs more than it saves.
pub const PARALLEL_WORK: usize = 1 << 16;

/// The samples per thread task: `chunk_size` if given (`Some(0)` is a misuse: a panic),
/// else enough samples of a kernel costing `cost` per sample to make [`PARALLEL_WORK`],
/// rounded up to whole lane chunks.
#[inline]
#[track_caller]
pub fn grain(chunk_size: Option<usize>, cost: usize, lanes: usize) -> usize {
    match chunk_size {
        Some(0) => panic!("vmap: `chunk_size` is 0: give a positive number of samples, or `None`"),
        Some(k) => k,
        None => {
            let k = PARALLEL_WORK / cost.max(1);
            k.div_ceil(lanes).max(1) * lanes
        }
    }
}

/// Runs `body(start, out)` over the batch, each call on the samples `start..start +
/// out.samples()` and their slots of the caller's buffers: on the calling thread when the
/// batch is at most `grain` samples (or without the `rayon` feature), else split in halves
/// across rayon's threads, down to tasks of at most `grain`. Each sample's result does not
/// depend on the split.
///
/// The halves are as even as whole chunks of [`SPLIT_ALIGN`] samples allow (of `grain`
/// samples when `grain` is smaller), so two threads get the same work whatever the grain
/// (halves in whole grains would give one thread up to a grain more), and a split never
/// cuts a chunk of lanes (4 or 8 samples) in two.
pub fn drive<O: OutSlices>(grain: usize, out: O, body: &(dyn Fn(usize, O) + Sync)) {
    let grain = grain.max(1);
    drive_from(0, grain, grain.min(SPLIT_ALIGN), out, body);
}

/// The samples a split of [`drive`] keeps together: a multiple of every lane count (4
/// and 8).
pub const SPLIT_ALIGN: usize = 8;

#[cfg(feature = "rayon")]
fn drive_from<O: OutSlices>(start: usize, grain: usize, align: usize, out: O, body: &(dyn Fn(usize, O) + Sync)) {
    let n = out.samples();
    if n <= grain {
        return body(start, out);
    }
    // Halves that are whole multiples of `align` (`n > grain >= align`: both non-empty).
    let mid = (n / 2).div_ceil(align) * align;
    let (a, b) = out.split_at_sample(mid);
    rayon::join(
        || drive_from(start, grain, align, a, body),
        || drive_from(start + mid, grain, align, b, body),
    );
}

/// Without threads: the whole batch on the calling thread.
#[cfg(not(feature = "rayon"))]
fn drive_from<O: OutSlices>(start: usize, _grain: usize, _align: usize, out: O, body: &(dyn Fn(usize, O) + Sync)) {
    body(start, out);
}

/// Runs `body(start, out)` on each task of `grain` samples (the last one shorter), in
/// parallel as [`drive`] does: every call gets exactly one task, the same ones whatever
/// the threads (with or without the `rayon` feature), so per-task partial results
/// ([`TaskSlots`]) added in task order do not depend on the threads.
pub fn drive_tasks<O: OutSlices>(grain: usize, out: O, body: &(dyn Fn(usize, O) + Sync)) {
    let g = grain.max(1);
    // Splits in whole tasks, so each call below starts at a multiple of `g`.
    drive_from(0, g, g, out, &|start, out| {
        let (mut rest, mut s) = (out, start);
        while rest.samples() > 0 {
            let m = rest.samples().min(g);
            let (a, b) = rest.split_at_sample(m);
            body(s, a);
            rest = b;
            s += m;
        }
    });
}

/// One slot per task of a batch split by [`drive_tasks`] (slot `k` for the samples `k
/// grain..(k + 1) grain`): where each task writes its partial sum of a reduction over the
/// batch.
pub struct TaskSlots<'a, W> {
    slots: &'a mut [W],
    samples: usize,
    grain: usize,
}

impl<'a, W> TaskSlots<'a, W> {
    /// The slots of `samples` samples in tasks of `grain`.
    ///
    /// # Panics
    ///
    /// If there is not one slot per task.
    pub fn new(slots: &'a mut [W], samples: usize, grain: usize) -> Self {
        let grain = grain.max(1);
        assert_eq!(slots.len(), samples.div_ceil(grain), "fluxion: one slot per task");
        TaskSlots { slots, samples, grain }
    }
    /// The first task's slot.
    ///
    /// # Panics
    ///
    /// If there are no samples (no task).
    pub fn slot(&mut self) -> &mut W {
        &mut self.slots[0]
    }
    /// Every slot of these samples (with `grain` the lane count: one per chunk).
    pub fn all(&mut self) -> &mut [W] {
        self.slots
    }
}

impl<W: Send> OutSlices for TaskSlots<'_, W> {
    #[inline]
    fn samples(&self) -> usize {
        self.samples
    }
    #[inline]
    fn split_at_sample(self, mid: usize) -> (Self, Self) {
        let (a, b) = self.slots.split_at_mut(mid.div_ceil(self.grain));
        (
            TaskSlots {
                slots: a,
                samples: mid,
                grain: self.grain,
            },
            TaskSlots {
                slots: b,
                samples: self.samples - mid,
                grain: self.grain,
            },
        )
    }
}

/// The samples of a chunk, one per lane, for a kernel that writes an output straight
/// into them: `out[l]` for the chunk's `out.len()` samples (`1..=N`, `N` the lane count),
/// and for the padding lanes of a partial chunk the slots of `pad`, made by `zero` the
/// first time a partial chunk needs them (their values, the last sample's again, are
/// written there and never read). A full chunk touches neither.
#[inline(always)]
pub fn lane_rows<'a, T, const N: usize>(
    out: &'a mut [T],
    pad: &'a mut Option<[T; N]>,
    zero: impl Fn() -> T,
) -> [&'a mut T; N] {
    if out.len() == N {
        if let Ok(full) = <&mut [T; N]>::try_from(out) {
            return full.each_mut();
        }
        unreachable!("a slice of N elements is an array of N");
    }
    let pad = pad.get_or_insert_with(|| core::array::from_fn(|_| zero()));
    let mut rows = out.iter_mut().chain(pad.iter_mut());
    core::array::from_fn(|_| rows.next().expect("fluxion: at most N samples in a chunk"))
}

/// [`lane_rows`] from places that may be missing: each lane's sample (`Some`, the places
/// of a chunk's samples in the caller's values), and for the lanes past a partial chunk
/// (`None`) the slots of `pad`, made by `zero` the first time they are needed.
#[inline(always)]
pub fn rows_or_pad<'a, T, const N: usize>(
    places: [Option<&'a mut T>; N],
    pad: &'a mut Option<[T; N]>,
    zero: impl Fn() -> T,
) -> [&'a mut T; N] {
    if places.iter().all(Option::is_some) {
        return places.map(|p| p.expect("fluxion: every lane has its sample"));
    }
    let mut pads = pad
        .get_or_insert_with(|| core::array::from_fn(|_| zero()))
        .each_mut()
        .into_iter();
    places.map(|p| {
        let d = pads.next().expect("fluxion: a padding slot per lane");
        p.unwrap_or(d)
    })
}

/// A chunk loop for [`best_simd`]: the generated code's arguments of one call, in a struct
/// whose `run` (always inlined) calls the loop.
///
/// A struct rather than a closure: a closure's body is a function of its own, and once the
/// loop it calls is inlined into it, LLVM compiles that function apart (too large to inline
/// into [`best_simd`]'s AVX2 copy), with the baseline features. `run` is always inlined, so
/// the loop is compiled in the copy that calls it.
pub trait SimdRun {
    /// What the loop returns.
    type Output;
    /// Runs the loop.
    fn run(self) -> Self::Output;
}

/// Runs `body` compiled for the widest vector features this CPU has among those the
/// runtime knows (AVX2 with FMA on x86-64, detected at run time, with the `std` feature),
/// else as it is. `body.run()` is inlined into each variant, so the code written as
/// scalar code over the lanes is vectorised to 256 bits there: the lane functions (`exp`,
/// `tanh`, `ln`, ..) and the arithmetic, comparisons and selects of
/// [`f64x4`](crate::f64x4) and [`f32x8`](crate::f32x8). `wide`'s functions keep the code
/// paths chosen when the crate was compiled. The results are the same functions within
/// the lane functions' documented bounds (the operators' bits are the same: no fused
/// multiply-add).
#[inline(always)]
pub fn best_simd<B: SimdRun>(body: B) -> B::Output {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            #[target_feature(enable = "avx2,fma")]
            fn avx2<B: SimdRun>(body: B) -> B::Output {
                body.run()
            }
            // SAFETY: the CPU has the features `avx2` enables (detected just above).
            return unsafe { avx2(body) };
        }
    }
    body.run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// `acc_lanes` gives the bits of adding the lanes one by one with `acc`, for every
    /// count of lanes, on floats, arrays and tuples (the sums are not associative: the
    /// order is what is checked).
    #[test]
    fn acc_lanes_adds_lane_by_lane_in_order() {
        use crate::lanes::{f32x8, f64x4};
        fn check<L: Lanes, T: Pack<L> + crate::Accumulate + PartialEq + core::fmt::Debug>(
            sample: &dyn Fn(usize) -> T,
            start: T,
        ) {
            let p = T::pack_by(L::LANES, sample);
            for m in 0..=L::LANES {
                let (mut a, mut b) = (start, start);
                acc_lanes::<L, T>(&mut a, &p, m);
                for l in 0..m {
                    crate::acc(&mut b, T::lane_of(&p, l));
                }
                assert_eq!(a, b, "{m} lanes");
            }
        }
        let v = |l: usize, i: usize| 0.1 * (l as f64 + 1.0) / (i as f64 + 3.0) + 1e16 * (l % 2) as f64;
        check::<f64x4, f64>(&|l| v(l, 0), 0.3);
        check::<f64x4, [[f64; 3]; 2]>(
            &|l| core::array::from_fn(|i| core::array::from_fn(|j| v(l, 3 * i + j))),
            [[0.7; 3]; 2],
        );
        check::<f64x4, ([f64; 2], f64, ())>(&|l| ([v(l, 1), v(l, 2)], v(l, 3), ()), ([0.5; 2], -0.25, ()));
        check::<f32x8, [f32; 5]>(&|l| core::array::from_fn(|i| v(l, i) as f32), [0.125; 5]);
    }

    /// `pack_with` through a field reads what `pack` reads from the fields themselves, the
    /// padding lanes included.
    #[test]
    fn pack_with_reads_through_the_accessor() {
        use crate::lanes::f64x4;
        struct Holder {
            data: ([[f64; 2]; 1], f64),
        }
        let samples: Vec<Holder> = (0..3)
            .map(|k| Holder {
                data: ([[k as f64, 0.5 - k as f64]], 7.0),
            })
            .collect();
        let arrays: Vec<[f64; 2]> = samples.iter().map(|h| h.data.0[0]).collect();
        for n in 1..=3 {
            let got = pack_with::<f64x4, _, [f64; 2]>(&samples[..n], |h| &h.data.0[0]);
            let want = pack::<f64x4, [f64; 2]>(&arrays[..n]);
            for (g, w) in got.iter().zip(want.iter()) {
                for l in 0..4 {
                    assert_eq!(g.lane(l).to_bits(), w.lane(l).to_bits(), "n = {n}, lane {l}");
                }
            }
        }
    }

    /// A full chunk of nested arrays written through the transposed blocks equals the
    /// samples written lane by lane, for rows that are a multiple of the lane count and
    /// rows with a remainder, `f64` on 4 lanes and `f32` on 8, and arrays of tuples.
    #[test]
    fn unpack_full_transposes_rows_exactly() {
        use crate::lanes::{f32x8, f64x4};
        fn check<L: Lanes, T: Pack<L> + PartialEq + core::fmt::Debug>(sample: &dyn Fn(usize) -> T, zero: T) {
            let p = T::pack_by(L::LANES, sample);
            let mut out = vec![zero; L::LANES];
            T::unpack_full(&p, &mut out);
            for (l, o) in out.iter().enumerate() {
                assert_eq!(*o, sample(l), "lane {l}");
            }
        }
        let v = |l: usize, i: usize, j: usize| (l * 1000 + i * 10 + j) as f64 + 0.25;
        check::<f64x4, [[f64; 8]; 3]>(
            &|l| core::array::from_fn(|i| core::array::from_fn(|j| v(l, i, j))),
            [[0.0; 8]; 3],
        );
        check::<f64x4, [[f64; 7]; 2]>(
            &|l| core::array::from_fn(|i| core::array::from_fn(|j| v(l, i, j))),
            [[0.0; 7]; 2],
        );
        check::<f64x4, [f64; 3]>(&|l| core::array::from_fn(|j| v(l, 0, j)), [0.0; 3]);
        check::<f64x4, [f64; 9]>(&|l| core::array::from_fn(|j| v(l, 0, j)), [0.0; 9]);
        check::<f32x8, [[f32; 17]; 2]>(
            &|l| core::array::from_fn(|i| core::array::from_fn(|j| v(l, i, j) as f32)),
            [[0.0; 17]; 2],
        );
        check::<f32x8, ([f32; 8], f32)>(
            &|l| (core::array::from_fn(|j| v(l, 1, j) as f32), l as f32),
            ([0.0; 8], 0.0),
        );
        // Arrays of tuples: each element's tuple written lane by lane (`Pack::unpack_refs`).
        check::<f64x4, [(f64, f64); 3]>(&|l| core::array::from_fn(|j| (v(l, 0, j), v(l, 1, j))), [(0.0, 0.0); 3]);
        check::<f32x8, [(f32, [f32; 2]); 2]>(
            &|l| core::array::from_fn(|j| (v(l, 0, j) as f32, [v(l, 1, j) as f32, v(l, 2, j) as f32])),
            [(0.0, [0.0; 2]); 2],
        );
    }

    /// Every task of `drive_tasks` is one call with its own slot: starts at multiples of
    /// the grain, lengths `grain` but the last, the samples' slots and the task's slot
    /// handed over together.
    #[test]
    fn drive_tasks_calls_each_task_once_with_its_slot() {
        for (n, grain) in [(0, 4), (1, 4), (7, 4), (8, 4), (9, 4), (1000, 96), (1000, 1)] {
            let mut out = vec![0usize; n];
            let mut parts = vec![(usize::MAX, 0usize); n.div_ceil(grain)];
            let slots = TaskSlots::new(&mut parts, n, grain);
            drive_tasks(grain, (&mut out[..], slots), &|start, (o, mut s)| {
                assert_eq!(start % grain, 0);
                assert!(o.len() == grain || start + o.len() == n);
                for (k, x) in o.iter_mut().enumerate() {
                    *x = start + k;
                }
                *s.slot() = (start, o.len());
            });
            assert_eq!(out, (0..n).collect::<Vec<_>>());
            for (t, &(start, len)) in parts.iter().enumerate() {
                assert_eq!(start, t * grain);
                assert_eq!(len, grain.min(n - t * grain));
            }
        }
    }

    /// `drive`'s tasks cover the batch once, in tasks of at most the grain that start at
    /// multiples of 8 (of the grain when it is smaller), and its first split halves the
    /// batch to within 8 samples, whatever the grain (with `rayon`, which the workspace's
    /// tests turn on).
    #[test]
    fn drive_splits_in_even_halves_of_whole_lane_chunks() {
        use std::sync::Mutex;
        for (n, grain) in [
            (0, 4),
            (5, 4),
            (9, 4),
            (9, 8),
            (100, 3),
            (1024, 96),
            (1000, 96),
            (1001, 8),
            (17, 16),
        ] {
            let calls = Mutex::new(Vec::new());
            let mut out = vec![0usize; n];
            drive(grain, &mut out[..], &|start, o: &mut [usize]| {
                for (k, x) in o.iter_mut().enumerate() {
                    *x += start + k + 1;
                }
                calls.lock().unwrap().push((start, o.len()));
            });
            assert_eq!(
                out,
                (1..=n).collect::<Vec<_>>(),
                "n = {n}, grain = {grain}: each sample once"
            );
            let mut calls = calls.into_inner().unwrap();
            calls.sort();
            let align = grain.min(SPLIT_ALIGN);
            for &(start, len) in &calls {
                assert!(
                    len <= grain || calls.len() == 1,
                    "n = {n}, grain = {grain}: a task of {len}"
                );
                assert_eq!(start % align, 0, "n = {n}, grain = {grain}: a task at {start}");
            }
            if n > grain {
                // The first split: the tasks before and after the middle one's start.
                let first_half: usize = calls
                    .iter()
                    .filter(|c| c.0 < (n / 2).div_ceil(align) * align)
                    .map(|c| c.1)
                    .sum();
                assert!(
                    first_half.abs_diff(n - first_half) <= 2 * align,
                    "n = {n}, grain = {grain}: {first_half} of {n}"
                );
            }
        }
    }

    /// `lane_rows`: a full chunk's lanes are its samples, in order, and the pad is not made;
    /// a partial chunk's first lanes are its samples and the rest the pad's first slots,
    /// the pad made once by `zero` and kept.
    #[test]
    fn lane_rows_are_the_samples_then_the_pad() {
        let mut out = [1.0, 2.0, 3.0, 4.0];
        let mut pad: Option<[f64; 4]> = None;
        let rows = lane_rows::<f64, 4>(&mut out, &mut pad, || 9.0);
        for (l, r) in rows.into_iter().enumerate() {
            *r += 10.0 * l as f64;
        }
        assert_eq!((out, pad), ([1.0, 12.0, 23.0, 34.0], None));
        let mut out = [1.0, 2.0];
        let rows = lane_rows::<f64, 4>(&mut out, &mut pad, || 9.0);
        for (l, r) in rows.into_iter().enumerate() {
            *r += 10.0 * l as f64;
        }
        assert_eq!((out, pad), ([1.0, 12.0], Some([29.0, 39.0, 9.0, 9.0])));
        // The pad is made once: later partial chunks reuse it as it is.
        let mut out = [5.0];
        let rows = lane_rows::<f64, 4>(&mut out, &mut pad, || 0.0);
        for r in rows {
            *r += 1.0;
        }
        assert_eq!((out, pad), ([6.0], Some([30.0, 40.0, 10.0, 9.0])));
    }

    /// `rows_or_pad`: every lane with its place gives the places and leaves the pad alone;
    /// missing places (past a partial chunk) are the pad's slots of the same lanes.
    #[test]
    fn rows_or_pad_fills_missing_lanes_from_the_pad() {
        let (mut a, mut b, mut c, mut d) = (1.0, 2.0, 3.0, 4.0);
        let mut pad: Option<[f64; 4]> = None;
        let rows = rows_or_pad(
            [Some(&mut a), Some(&mut b), Some(&mut c), Some(&mut d)],
            &mut pad,
            || 9.0,
        );
        for (l, r) in rows.into_iter().enumerate() {
            *r += 10.0 * l as f64;
        }
        assert_eq!(([a, b, c, d], pad), ([1.0, 12.0, 23.0, 34.0], None));
        let rows = rows_or_pad([Some(&mut a), Some(&mut b), None, None], &mut pad, || 9.0);
        for (l, r) in rows.into_iter().enumerate() {
            *r += 100.0 * l as f64;
        }
        assert_eq!(([a, b], pad), ([1.0, 112.0], Some([9.0, 9.0, 209.0, 309.0])));
    }

    /// `TaskSlots` alone as the batch's buffers: its own sample count drives the tasks
    /// (in a tuple the largest count does, which hides a wrong one).
    #[test]
    fn task_slots_alone_drive_the_tasks() {
        for (n, grain) in [(1usize, 4usize), (9, 4), (1000, 96)] {
            let mut parts = vec![usize::MAX; n.div_ceil(grain)];
            let slots = TaskSlots::new(&mut parts, n, grain);
            drive_tasks(grain, slots, &|start, mut s| {
                assert_eq!(s.samples(), grain.min(n - start));
                *s.slot() = start;
            });
            assert_eq!(parts, (0..n.div_ceil(grain)).map(|t| t * grain).collect::<Vec<_>>());
        }
    }

    /// The batch sizes of a `vmap`ped function's companions: equal ones pass, others panic
    /// naming both.
    #[test]
    fn same_batch_passes_equal_sizes() {
        crate::same_batch("ys", 3, "xs", 3);
        crate::same_batch("ys", 0, "xs", 0);
    }

    #[test]
    #[should_panic(expected = "fluxion: ys has 3 samples but xs has 4")]
    fn same_batch_panics_on_different_sizes() {
        crate::same_batch("ys", 3, "xs", 4);
    }

    #[test]
    #[should_panic(expected = "one slot per task")]
    fn task_slots_need_one_slot_per_task() {
        let mut parts = [0.0; 2];
        let _ = TaskSlots::new(&mut parts, 9, 4);
    }
}
