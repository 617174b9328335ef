//! What the tests of this crate share.

use fluxion::Parameters;

/// Central differences (step `1e-6`) of `f` in each trainable scalar of `p`, in `to_flat`
/// order.
pub fn fd<P: Parameters<Scalar = f64> + Clone>(p: &P, f: impl Fn(&P) -> f64) -> Vec<f64> {
    let flat = p.to_flat();
    let h = 1e-6;
    (0..flat.len())
        .map(|k| {
            let (mut a, mut b) = (flat.clone(), flat.clone());
            a[k] += h;
            b[k] -= h;
            let (mut pa, mut pb) = (p.clone(), p.clone());
            pa.read_flat(&a);
            pb.read_flat(&b);
            (f(&pa) - f(&pb)) / (2.0 * h)
        })
        .collect()
}
