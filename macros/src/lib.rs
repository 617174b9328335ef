//! The attribute macros of fluxion. Each is a three-line shim over `fluxion-engine`;
//! see the `fluxion` crate for documentation.
#![warn(missing_docs)]

use fluxion_engine::{expand, Transform};
use proc_macro::TokenStream;

macro_rules! transform {
    ($(#[$doc:meta])* $name:ident => $t:expr) => {
        $(#[$doc])*
        #[proc_macro_attribute]
        pub fn $name(args: TokenStream, item: TokenStream) -> TokenStream {
            expand($t, args.into(), item.into()).unwrap_or_else(syn_error_to_tokens).into()
        }
    };
}

fn syn_error_to_tokens(e: fluxion_engine::Error) -> proc_macro2::TokenStream {
    e.to_compile_error()
}

transform!(
    /// Marks a function that other transforms can differentiate through. See `fluxion::differentiable`.
    differentiable => Transform::Differentiable
);
transform!(
    /// `torch.func.grad`. See `fluxion::grad`.
    grad => Transform::Grad
);
transform!(
    /// `torch.func.grad_and_value`. See `fluxion::grad_and_value`.
    grad_and_value => Transform::GradAndValue
);
transform!(
    /// `torch.func.vjp`. See `fluxion::vjp`.
    vjp => Transform::Vjp
);
transform!(
    /// `torch.func.jvp`. See `fluxion::jvp`.
    jvp => Transform::Jvp
);
transform!(
    /// `torch.func.jacrev`. See `fluxion::jacrev`.
    jacrev => Transform::Jacrev
);
transform!(
    /// `torch.func.jacfwd`. See `fluxion::jacfwd`.
    jacfwd => Transform::Jacfwd
);
transform!(
    /// `torch.func.hessian`. See `fluxion::hessian`.
    hessian => Transform::Hessian
);

/// Hand-written derivative rules. See `fluxion::custom_rule`.
#[proc_macro_attribute]
pub fn custom_rule(args: TokenStream, item: TokenStream) -> TokenStream {
    fluxion_engine::custom::expand_custom(args.into(), item.into())
        .unwrap_or_else(syn_error_to_tokens)
        .into()
}

/// Independent transforms of one function, each entry nested as torch.func nests calls:
/// `#[transforms(grad, hessian, jacfwd(jacrev))]`. See `fluxion::transforms`.
#[proc_macro_attribute]
pub fn transforms(args: TokenStream, item: TokenStream) -> TokenStream {
    fluxion_engine::list::expand_transforms(args.into(), item.into())
        .unwrap_or_else(syn_error_to_tokens)
        .into()
}
