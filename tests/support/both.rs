// Shared by test files with `include!("support/both.rs")` (a file in a subdirectory of
// `tests/` is not a test target of its own).

/// Stamps one function body out under three names: `$r` with `#[grad(..)]` (reverse mode),
/// `$f` with `#[jacfwd(..)]` (forward mode), same arguments, and `$name`, the primal.
macro_rules! both {
    ($r:ident, $f:ident, ($($args:tt)*), fn $name:ident $($rest:tt)*) => {
        #[fluxion::grad($($args)*)]
        #[allow(dead_code)]
        fn $r $($rest)*
        #[fluxion::jacfwd($($args)*)]
        #[allow(dead_code)]
        fn $f $($rest)*
        #[allow(dead_code)]
        fn $name $($rest)*
    };
}
