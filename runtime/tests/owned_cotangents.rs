//! Cotangents holding `Vec`s (a slice's cotangent inside a tuple of cotangents, in a
//! second reverse pass): `Accumulate for Vec<T>` and `zero_owned`.

use fluxion_runtime::{acc, add, zero_owned, Accumulate};

#[test]
fn vecs_accumulate_element_by_element_also_inside_tuples_and_arrays() {
    let mut a = vec![1.0, 2.0, 3.0];
    a.accumulate(vec![0.5, -2.0, 0.25]);
    assert_eq!(a, [1.5, 0.0, 3.25]);
    let mut t = (vec![[1.0, 2.0]], 1.0f64, ());
    acc(&mut t, (vec![[0.5, 0.5]], 2.0, ()));
    assert_eq!(t, (vec![[1.5, 2.5]], 3.0, ()));
    let s = add([vec![1.0f32], vec![]], [vec![2.0f32], vec![]]);
    assert_eq!(s, [vec![3.0], vec![]]);
    let mut e: Vec<f64> = Vec::new();
    e.accumulate(Vec::new());
    assert!(e.is_empty());
}

#[test]
#[should_panic(expected = "cotangents of slices of different lengths")]
fn vecs_of_different_lengths_do_not_accumulate() {
    let mut a = vec![1.0, 2.0];
    a.accumulate(vec![1.0]);
}

#[test]
fn zeros_of_any_nesting_of_vecs() {
    let v = (vec![[1.5f64, 2.0]; 3], (0.5f32, 7usize), [vec![1.0f64], vec![]]);
    let z = zero_owned(&v);
    assert_eq!(z, (vec![[0.0, 0.0]; 3], (0.0f32, ()), [vec![0.0], vec![]]));
    assert_eq!(zero_owned(&[1.0f64, 2.0][..]), vec![0.0, 0.0]);
    assert_eq!(zero_owned(&&vec![3.0f64]), vec![0.0]);
}
