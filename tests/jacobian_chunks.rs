//! `chunk_size` on `jacrev` and `jacfwd` (torch.func's option): the emitted Jacobian of a
//! vector output computes its rows (`jacrev`) or columns (`jacfwd`) on SIMD lanes of
//! basis directions, and `jacrev` runs chunks of rows as tasks of the runtime
//! (`jacobian_rows`, on rayon's threads). `chunk_size = 1` is one sweep per row or column
//! (torch.func's for-loop); any other value sets the rows per task. The Jacobian is the
//! same bit for bit for every chunk size and thread count, and checked against central
//! finite differences.

// The bodies index as the formulas do.
#![allow(clippy::needless_range_loop)]

use fluxion::transforms;

/// A prefix recurrence (not separable: every row depends on the rows before), with
/// transcendentals and a division.
macro_rules! chain {
    ($name:ident, $($attr:tt)*) => {
        $($attr)*
        #[allow(dead_code)]
        fn $name<const N: usize>(x: [f64; N]) -> [f64; N] {
            let mut y = [0.0; N];
            let mut s = 0.0;
            for i in 0..N {
                s = s * 0.5 + x[i].sin() * x[(i + 1) % N].exp() / (1.0 + x[i] * x[i]);
                y[i] = s;
            }
            y
        }
    };
}

chain!(chain, #[transforms(jacrev, jacfwd)]);
chain!(per_row, #[transforms(jacrev(chunk_size = 1), jacfwd(chunk_size = 1))]);
chain!(three, #[transforms(jacrev(chunk_size = 3), jacfwd(chunk_size = 3))]);
chain!(four, #[transforms(jacrev(chunk_size = 4), jacfwd(chunk_size = 4))]);
chain!(many, #[transforms(jacrev(chunk_size = 64), jacfwd(chunk_size = 64))]);

fn point<const N: usize>() -> [f64; N] {
    std::array::from_fn(|i| 0.9 * ((i as f64 * 0.618_033_988_75) % 1.0) - 0.3)
}

fn bits<const N: usize, const M: usize>(j: &[[f64; N]; M]) -> Vec<u64> {
    j.iter().flatten().map(|x| x.to_bits()).collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(256 << 20)
        .build()
        .expect("a thread pool")
}

/// Every chunk size and 1 or 2 threads give the rows of one sweep each, bit for bit, for
/// sizes below, at and above the lane count and several tasks.
fn same_for_every_chunk_size<const N: usize>() {
    let x = point::<N>();
    let reference = bits(&per_row_jacrev(x));
    assert_eq!(bits(&per_row_jacfwd(x)).len(), reference.len());
    for threads in [1, 2] {
        pool(threads).install(|| {
            for (what, j) in [
                ("none", chain_jacrev(x)),
                ("3", three_jacrev(x)),
                ("4", four_jacrev(x)),
                ("64", many_jacrev(x)),
            ] {
                assert_eq!(
                    bits(&j),
                    reference,
                    "jacrev chunk_size {what}, {threads} threads, N = {N}"
                );
            }
            let mut out = [[f64::NAN; N]; N];
            chain_jacrev_into(x, &mut out);
            assert_eq!(bits(&out), reference, "jacrev_into, {threads} threads, N = {N}");
        });
    }
    // `jacfwd`'s chunks of columns run as tasks too (each writing its own columns).
    let columns = bits(&per_row_jacfwd(x));
    for threads in [1, 2] {
        pool(threads).install(|| {
            for (what, j) in [
                ("none", chain_jacfwd(x)),
                ("3", three_jacfwd(x)),
                ("4", four_jacfwd(x)),
                ("64", many_jacfwd(x)),
            ] {
                assert_eq!(
                    bits(&j),
                    columns,
                    "jacfwd chunk_size {what}, {threads} threads, N = {N}"
                );
            }
            let mut out = [[f64::NAN; N]; N];
            three_jacfwd_into(x, &mut out);
            assert_eq!(bits(&out), columns, "jacfwd_into, {threads} threads, N = {N}");
        });
    }
}

#[test]
fn chunk_sizes_and_threads_give_the_same_jacobian() {
    same_for_every_chunk_size::<1>();
    same_for_every_chunk_size::<3>();
    same_for_every_chunk_size::<4>();
    same_for_every_chunk_size::<5>();
    same_for_every_chunk_size::<9>();
    same_for_every_chunk_size::<17>();
    same_for_every_chunk_size::<130>();
}

/// A Jacobian large enough for several tasks of the default size (the cost sizes them),
/// against central finite differences and `jacfwd`.
#[test]
fn a_large_jacobian_matches_finite_differences() {
    // (Jacobians of 600 x 600 on the stack: a thread with room for them.)
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(large)
        .expect("a thread")
        .join()
        .expect("no panic");
}

fn large() {
    const N: usize = 600;
    let x = point::<N>();
    let j = chain_jacrev(x);
    let f = pool(2).install(|| chain_jacfwd(x));
    for i in 0..N {
        for k in 0..N {
            let (a, b) = (j[i][k], f[i][k]);
            assert!(
                (a - b).abs() <= 8.0 * f64::EPSILON * a.abs().max(b.abs()).max(1.0),
                "[{i}][{k}]: {a} vs {b}"
            );
        }
    }
    for k in [0, 1, 299, 598, 599] {
        let h = 6e-6 * x[k].abs().max(1.0);
        let (mut up, mut down) = (x, x);
        up[k] += h;
        down[k] -= h;
        let (fu, fd) = (chain(up), chain(down));
        for i in 0..N {
            let fdiff = (fu[i] - fd[i]) / (2.0 * h);
            assert!(
                (j[i][k] - fdiff).abs() <= 1e-6 * fdiff.abs().max(1.0),
                "[{i}][{k}]: {} vs {fdiff}",
                j[i][k]
            );
        }
    }
}
