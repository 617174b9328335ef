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

/// `in_dims` of `vmap`: which arguments carry the batch (torch.func's, restricted to the
/// leading axis): `Some(0)` batched along its leading axis, `None` shared by the batch.
#[derive(Clone, Debug)]
pub enum InDims {
    /// One value for every argument: `in_dims = 0`.
    All(Option<usize>, Span),
    /// One per argument: `in_dims = (None, 0, 0)`.
    Each(Vec<(Option<usize>, Span)>, Span),
}

impl InDims {
    /// Whether each of `n` arguments is batched, or `Err` with the span and message of a
    /// tuple of the wrong length.
    pub fn batched(&self, n: usize) -> Result<Vec<bool>, (Span, String)> {
        match self {
            InDims::All(d, _) => Ok(vec![d.is_some(); n]),
            InDims::Each(v, span) if v.len() != n => Err((
                *span,
                format!(
                    "`in_dims` has {} entries for {n} argument{}: give one per argument (`None` for a shared one), or a single `0` for all",
                    v.len(),
                    if n == 1 { "" } else { "s" }
                ),
            )),
            InDims::Each(v, _) => Ok(v.iter().map(|(d, _)| d.is_some()).collect()),
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
    /// `in_dims` (`vmap`); `None` when not given (every argument batched).
    pub in_dims: Option<InDims>,
    /// `chunk_size = k` (`vmap`): samples per thread task.
    pub chunk_size: Option<(usize, Span)>,
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
            in_dims: None,
            chunk_size: None,
        }
    }
}
