// `vmap`'s options with values it cannot take: each attribute gives its own error.
use fluxion::vmap;

#[vmap(chunk_size = 0)]
fn a(x: f64) -> f64 {
    x * 2.0
}

#[vmap(chunk_size = "big")]
fn b(x: f64) -> f64 {
    x * 2.0
}

#[vmap(in_dims)]
fn c(x: f64) -> f64 {
    x * 2.0
}

fn main() {}
