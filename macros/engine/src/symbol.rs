//! Keywords of the attribute surface, in one place.

/// `argnums`
pub const ARGNUMS: &str = "argnums";
/// `has_aux`
pub const HAS_AUX: &str = "has_aux";
/// `name`
pub const NAME: &str = "name";
/// `show`
pub const SHOW: &str = "show";
/// `in_dims`
pub const IN_DIMS: &str = "in_dims";
/// `out_dims`
pub const OUT_DIMS: &str = "out_dims";
/// `chunk_size`
pub const CHUNK_SIZE: &str = "chunk_size";
/// `randomness = "error" | "different" | "same"` (`vmap`).
pub const RANDOMNESS: &str = "randomness";

/// The transforms, one per attribute macro.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// `#[differentiable]`: no new public function, only the companions.
    Differentiable,
    /// `#[grad]`
    Grad,
    /// `#[grad_and_value]`
    GradAndValue,
    /// `#[vjp]`
    Vjp,
    /// `#[jvp]`
    Jvp,
    /// `#[jacrev]`
    Jacrev,
    /// `#[jacfwd]`
    Jacfwd,
    /// `#[hessian]`
    Hessian,
    /// `#[vmap]`
    Vmap,
}

impl Transform {
    /// Every transform.
    pub const ALL: [Transform; 9] = [
        Transform::Differentiable,
        Transform::Grad,
        Transform::GradAndValue,
        Transform::Vjp,
        Transform::Jvp,
        Transform::Jacrev,
        Transform::Jacfwd,
        Transform::Hessian,
        Transform::Vmap,
    ];
    /// The attribute's name.
    pub fn name(self) -> &'static str {
        match self {
            Transform::Differentiable => "differentiable",
            Transform::Grad => "grad",
            Transform::GradAndValue => "grad_and_value",
            Transform::Vjp => "vjp",
            Transform::Jvp => "jvp",
            Transform::Jacrev => "jacrev",
            Transform::Jacfwd => "jacfwd",
            Transform::Hessian => "hessian",
            Transform::Vmap => "vmap",
        }
    }
    /// Looks an attribute name up.
    pub fn from_name(s: &str) -> Option<Transform> {
        Transform::ALL.iter().copied().find(|t| t.name() == s)
    }
    /// The options the transform takes.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Transform::Differentiable => &[SHOW],
            Transform::Grad | Transform::GradAndValue => &[ARGNUMS, HAS_AUX, NAME, SHOW],
            Transform::Jacrev | Transform::Jacfwd => &[ARGNUMS, HAS_AUX, CHUNK_SIZE, NAME, SHOW],
            Transform::Hessian => &[ARGNUMS, HAS_AUX, NAME, SHOW],
            Transform::Vjp | Transform::Jvp => &[HAS_AUX, NAME, SHOW],
            Transform::Vmap => &[IN_DIMS, OUT_DIMS, CHUNK_SIZE, RANDOMNESS, NAME, SHOW],
        }
    }
    /// The suffix of the generated function's default name.
    pub fn suffix(self) -> &'static str {
        self.name()
    }
    /// The torch.func / JAX function this mirrors.
    pub fn mirrors(self) -> &'static str {
        match self {
            Transform::Differentiable => "a function other transforms can differentiate through",
            Transform::Grad => "`torch.func.grad` / `jax.grad`",
            Transform::GradAndValue => {
                "`torch.func.grad_and_value` (`jax.value_and_grad` returns the opposite order, `(value, grad)`)"
            }
            Transform::Vjp => "`torch.func.vjp` / `jax.vjp`",
            Transform::Jvp => "`torch.func.jvp` / `jax.jvp`",
            Transform::Jacrev => "`torch.func.jacrev` / `jax.jacrev`",
            Transform::Jacfwd => "`torch.func.jacfwd` / `jax.jacfwd`",
            Transform::Hessian => "`torch.func.hessian` / `jax.hessian`",
            Transform::Vmap => "`torch.func.vmap` / `jax.vmap`",
        }
    }
}
