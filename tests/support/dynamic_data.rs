// Data and comparisons shared by the tests of dynamic-length data (`dynamic.rs`,
// `reverse_over_reverse_dynamic.rs`), included with `include!`.

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

/// Deterministic points: `n` values in about [-1.3, 1.3], different for each `seed`.
fn points(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.6 - 1.3
        })
        .collect()
}

/// `n` particles on a slightly perturbed grid (no two closer than about 0.8).
fn particles(n: usize, seed: u64) -> Vec<[f64; 3]> {
    let p = points(3 * n, seed);
    (0..n)
        .map(|i| {
            let (a, b, c) = ((i % 2) as f64, ((i / 2) % 2) as f64, (i / 4) as f64);
            [
                1.1 * a + 0.05 * p[3 * i],
                1.1 * b + 0.05 * p[3 * i + 1],
                1.1 * c + 0.05 * p[3 * i + 2],
            ]
        })
        .collect()
}

fn flat3(xs: &[[f64; 3]]) -> Vec<f64> {
    xs.iter().flatten().copied().collect()
}

fn unflat3(v: &[f64]) -> Vec<[f64; 3]> {
    v.chunks(3).map(|c| [c[0], c[1], c[2]]).collect()
}
