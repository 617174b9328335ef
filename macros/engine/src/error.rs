//! Error collection: every problem found is reported, each on its own span.
//!
//! Like serde's `Ctxt`: errors are pushed as they are found and combined at the end, so
//! a user sees all of them at once rather than one per build.

use proc_macro2::Span;
use quote::ToTokens;

/// Collected errors.
#[derive(Default)]
pub struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    /// An empty context.
    pub fn new() -> Ctxt {
        Ctxt::default()
    }
    /// Records an error spanned on `tokens`.
    pub fn error_spanned_by<T: ToTokens>(&mut self, tokens: T, msg: impl std::fmt::Display) {
        self.errors
            .push(syn::Error::new_spanned(tokens.into_token_stream(), msg));
    }
    /// Records an error at `span`.
    pub fn error_at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, msg));
    }
    /// Records a ready-made error.
    pub fn push(&mut self, e: syn::Error) {
        self.errors.push(e);
    }
    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
    /// All errors combined into one, or `Ok` if there were none.
    pub fn check(mut self) -> syn::Result<()> {
        let mut iter = std::mem::take(&mut self.errors).into_iter();
        match iter.next() {
            None => Ok(()),
            Some(mut first) => {
                for e in iter {
                    first.combine(e);
                }
                Err(first)
            }
        }
    }
}

/// Errors collected and never reported are a bug of the engine (serde's `Ctxt` has the
/// same check): every path must end in [`Ctxt::check`].
impl Drop for Ctxt {
    fn drop(&mut self) {
        debug_assert!(
            self.errors.is_empty() || std::thread::panicking(),
            "fluxion: {} error(s) collected and never reported",
            self.errors.len()
        );
    }
}
