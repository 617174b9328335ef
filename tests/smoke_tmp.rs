use fluxion::{differentiable, grad, hessian, jacfwd, jacrev, jvp, vjp, grad_and_value};

mod inner {
    use fluxion::differentiable;
    #[differentiable]
    pub fn sq(x: f64) -> f64 {
        x * x
    }
}

#[differentiable]
fn cube(x: f64) -> f64 {
    x * inner::sq(x)
}

#[hessian]
fn uses_call(x: f64, y: f64) -> f64 {
    cube(x) * y.sin()
}

#[grad]
fn branchy(x: f64) -> f64 {
    if x < 0.0 {
        return -x * 2.0;
    }
    let y = if x > 1.0 { x.ln() } else { x * x };
    y
}

#[jacrev]
fn elementwise<const N: usize>(x: [f64; N]) -> [f64; N] {
    let mut y = [0.0; N];
    for i in 0..N {
        y[i] = x[i].sin() * x[i];
    }
    y
}

#[jacfwd(argnums = (0, 1))]
fn two(x: [f64; 3], y: [f64; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for i in 0..3 {
        out[i] = x[i] + y[i] * y[i];
    }
    out
}

#[vjp]
fn vj(x: f64, y: [f64; 2]) -> f64 {
    x * y[0] + y[1].exp()
}

#[jvp]
fn jv(x: f64, y: [f64; 2]) -> f64 {
    x * y[0] + y[1].exp()
}

#[grad_and_value(has_aux)]
fn aux(x: f64) -> (f64, f64) {
    (x * x, x + 1.0)
}

#[grad]
fn recur(x: f64) -> f64 {
    let mut s = x;
    for _ in 0..5 {
        s = s * s * 0.5 + x;
    }
    s
}

#[test]
fn smoke() {
    let h = uses_call_hessian(1.5, 0.7);
    // d2/dx2 (x^3 sin y) = 6x sin y
    assert!((h - 6.0 * 1.5 * 0.7f64.sin()).abs() < 1e-12, "{h}");
    assert_eq!(branchy_grad(-1.0), -2.0);
    assert!((branchy_grad(2.0) - 0.5).abs() < 1e-15);
    assert!((branchy_grad(0.5) - 1.0).abs() < 1e-15);
    let j = elementwise_jacrev([0.1, 0.2, 0.3]);
    assert!((j[1][1] - (0.2f64.cos() * 0.2 + 0.2f64.sin())).abs() < 1e-15);
    assert_eq!(j[0][1], 0.0);
    let (jx, jy) = two_jacfwd([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]);
    assert_eq!(jx[2][2], 1.0);
    assert_eq!(jy[1][1], 10.0);
    let (y, pb) = vj_vjp(2.0, [3.0, 0.5]);
    let (bx, by) = pb(1.0);
    assert_eq!(y, 6.0 + 0.5f64.exp());
    assert_eq!(bx, 3.0);
    assert_eq!(by, [2.0, 0.5f64.exp()]);
    let (y2, (bx2, by2)) = vj_vjp_ct(2.0, [3.0, 0.5], 2.0);
    assert_eq!((y2, bx2, by2), (y, 6.0, [4.0, 2.0 * 0.5f64.exp()]));
    let (y3, t3) = jv_jvp(2.0, [3.0, 0.5], 1.0, [0.0, 1.0]);
    assert_eq!(y3, y);
    assert_eq!(t3, 3.0 + 0.5f64.exp());
    let (g, (v, a)) = aux_grad_and_value(3.0);
    assert_eq!((g, v, a), (6.0, 9.0, 4.0));
    let eps = 1e-6;
    let fd = (recur(0.3 + eps) - recur(0.3 - eps)) / (2.0 * eps);
    assert!((recur_grad(0.3) - fd).abs() < 1e-6, "{} {}", recur_grad(0.3), fd);
}
