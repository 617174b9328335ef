//! placeholder
pub use fluxion_macros::{custom_rule, differentiable, grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp};
pub use fluxion_runtime::stop_gradient;
#[doc(hidden)]
pub mod __private {
    pub use fluxion_runtime::*;
}
