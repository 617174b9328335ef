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

/// A span and a message: an option that does not fit the function.
pub type Misfit = (Span, String);

/// `in_dims` of `vmap`: where each argument carries the batch (torch.func's): `Some(0)`
/// along its leading axis (a slice of samples), `Some(1)` along the axis after an array's
/// first (structure of arrays: one slice per component), `None` shared by the batch.
#[derive(Clone, Debug)]
pub enum InDims {
    /// One value for every argument: `in_dims = 0`.
    All(Option<usize>, Span),
    /// One per argument: `in_dims = (None, 0, 0)`.
    Each(Vec<(Option<usize>, Span)>, Span),
}

impl InDims {
    /// The axis of each of `n` arguments with its span, or `Err` with the span and message
    /// of a tuple of the wrong length.
    pub fn dims(&self, n: usize) -> Result<Vec<(Option<usize>, Span)>, Misfit> {
        match self {
            InDims::All(d, s) => Ok(vec![(*d, *s); n]),
            InDims::Each(v, span) if v.len() != n => Err((
                *span,
                format!(
                    "`in_dims` has {} entries for {n} argument{}: give one per argument (`None` for a shared one), or a single `0` for all",
                    v.len(),
                    if n == 1 { "" } else { "s" }
                ),
            )),
            InDims::Each(v, _) => Ok(v.clone()),
        }
    }

    /// Whether each of `n` arguments is batched (along any axis), or `Err` as [`InDims::dims`].
    pub fn batched(&self, n: usize) -> Result<Vec<bool>, Misfit> {
        Ok(self.dims(n)?.iter().map(|(d, _)| d.is_some()).collect())
    }
}

/// `out_dims` of `vmap`: where each output carries the batch: `0` a `Vec` of per-sample
/// results, `1` (an array output) one `Vec` per component.
#[derive(Clone, Debug)]
pub enum OutDims {
    /// One value for every output: `out_dims = 1`.
    All(usize, Span),
    /// One per output of a tuple result: `out_dims = (0, 1)`.
    Each(Vec<(usize, Span)>, Span),
}

impl OutDims {
    /// The axis of each of `n` outputs (`tuple`: the result is a tuple of `n`) with its
    /// span, or `Err` with the span and message of a tuple of the wrong length.
    pub fn dims(&self, n: usize, tuple: bool) -> Result<Vec<(usize, Span)>, Misfit> {
        match self {
            OutDims::All(d, s) => Ok(vec![(*d, *s); n]),
            OutDims::Each(v, span) if !tuple => Err((
                *span,
                format!(
                    "`out_dims` has {} entries but the function returns one value, not a tuple: write a single `out_dims = 0` or `1`",
                    v.len()
                ),
            )),
            OutDims::Each(v, span) if v.len() != n => Err((
                *span,
                format!(
                    "`out_dims` has {} entries for a tuple of {n} outputs: give one per output, or a single value for all",
                    v.len()
                ),
            )),
            OutDims::Each(v, _) => Ok(v.clone()),
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
    /// `out_dims` (`vmap`); `None` when not given (every output along axis 0).
    pub out_dims: Option<OutDims>,
    /// `chunk_size = k` (`vmap`): samples per thread task.
    pub chunk_size: Option<(usize, Span)>,
    /// `randomness` (`vmap`), torch.func's option: how the samples of a batch draw from a
    /// generator argument. `Error` when not given.
    pub randomness: Randomness,
    /// Internal (set by the parameter structs' mapping, never parsed): the `vmap` of a
    /// gradient with respect to one parameter struct, which also emits the hidden
    /// `name_rows` form writing each sample's outputs into fields of the caller's structs
    /// (`FieldRows`).
    pub rows: bool,
}

/// `vmap`'s `randomness`: what the samples of a batch draw (torch.func's option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Randomness {
    /// A function that draws cannot be batched (the default, as in torch.func).
    Error,
    /// Each sample its own numbers: sample `k` draws from `rng.sample(k)`.
    Different,
    /// One draw shared by the whole batch: every sample draws from `rng`.
    Same,
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
            out_dims: None,
            chunk_size: None,
            randomness: Randomness::Error,
            rows: false,
        }
    }
}
