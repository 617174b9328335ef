//! Error collection: every problem found is reported, each on its own span.
//!
//! Like serde's `Ctxt`: errors are pushed as they are found and combined at the end, so
//! a user sees all of them at once rather than one per build. The transforms, which work
//! on the IR rather than on syntax, return a [`Diag`]; it becomes a `syn::Error` where it
//! is reported.

use proc_macro2::Span;
use quote::ToTokens;

/// A diagnostic of the engine: one message and, when known, the source it is about.
#[derive(Clone, Debug)]
pub struct Diag {
    /// The message.
    pub msg: String,
    /// The offending source, if known.
    pub span: Option<Span>,
}

impl Diag {
    /// A diagnostic without a span (the reporter supplies one).
    pub fn new(msg: impl Into<String>) -> Diag {
        Diag {
            msg: msg.into(),
            span: None,
        }
    }
    /// A diagnostic at `span`.
    pub fn spanned(span: Span, msg: impl Into<String>) -> Diag {
        Diag {
            msg: msg.into(),
            span: Some(span),
        }
    }
    /// The same diagnostic, at `span` unless it already has a span.
    pub fn at(self, span: Span) -> Diag {
        Diag {
            span: Some(self.span.unwrap_or(span)),
            ..self
        }
    }
}

/// The message alone.
impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// At its span, or at the macro's call site if it has none.
impl From<Diag> for syn::Error {
    fn from(d: Diag) -> syn::Error {
        syn::Error::new(d.span.unwrap_or_else(Span::call_site), d.msg)
    }
}

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
    /// Records a ready-made error or a [`Diag`].
    pub fn push(&mut self, e: impl Into<syn::Error>) {
        self.errors.push(e.into());
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
