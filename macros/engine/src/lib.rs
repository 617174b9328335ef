//! The compiler behind fluxion's attribute macros, as a plain library.
//!
//! Pipeline (one module per stage):
//! `attr` (options) -> `lower` (check + lower syn to the IR of `ir`) -> `jvp` / `vjp`
//! (reading the rule table of `rules`) -> `transforms` (grad, jacrev, ..) -> `simplify`
//! -> `emit`, driven by `expand`. `interp` evaluates IR for tests; `cost` counts it.
//!
//! Tests and tools call [`expand()`](fn@expand) without rustc; the proc-macro crate is a shim over it.
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod activity;
pub mod attr;
pub mod batch;
pub mod builder;
pub mod cost;
pub mod custom;
pub mod derive;
pub mod dvector;
pub mod emit;
pub mod error;
pub mod expand;
pub mod hoist;
pub mod interp;
pub mod into;
pub mod ir;
pub mod jvp;
pub mod list;
pub mod lower;
pub mod rules;
pub mod simplify;
pub mod sparse;
pub mod spec;
pub mod structs;
pub mod structural;
pub mod stub_types;
pub mod symbol;
pub mod transforms;
pub mod vjp;

pub use expand::{expand, expand_with, expand_with_fields};
pub use symbol::Transform;
/// The error type of expansion (a spanned compile error).
pub type Error = syn::Error;
