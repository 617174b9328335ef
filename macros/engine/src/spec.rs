//! What a transform attribute asks for: the options `attr.rs` parses and the transforms
//! read (so the transforms do not depend on the parser).

use proc_macro2::Span;

use crate::symbol::Transform;

/// `argnums = k` or `argnums = (j, k, ..)`.
#[derive(Clone, Debug)]
pub enum Argnums {
    /// One argument: the result is not a tuple.
    One(usize, Span),
    /// A tuple of arguments: the result is a tuple, even of length 1.
    Many(Vec<(usize, Span)>),
}

impl Argnums {
    /// The argument indices.
    pub fn indices(&self) -> Vec<(usize, Span)> {
        match self {
            Argnums::One(k, s) => vec![(*k, *s)],
            Argnums::Many(v) => v.clone(),
        }
    }
}

/// The options of one transform attribute.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which transform.
    pub transform: Transform,
    /// Where the attribute was written.
    pub span: Span,
    /// `argnums`
    pub argnums: Option<Argnums>,
    /// `has_aux`
    pub has_aux: bool,
    /// `name = "..."`
    pub name: Option<(String, Span)>,
    /// `show`: attach the generated code to the generated function's docs.
    pub show: bool,
}

impl Options {
    /// Defaults for a transform.
    pub fn new(transform: Transform, span: Span) -> Options {
        Options {
            transform,
            span,
            argnums: None,
            has_aux: false,
            name: None,
            show: false,
        }
    }
}
