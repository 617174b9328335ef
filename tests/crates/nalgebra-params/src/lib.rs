//! Nothing but tests: `Parameters` for nalgebra's matrices and vectors, in `tests/`.
