// A qualified path (`<T>::ITEM`, `<T as Trait>::ITEM`).
use fluxion::grad;

#[grad]
fn f(x: f64) -> f64 {
    x + <f64>::EPSILON
}

fn main() {}
