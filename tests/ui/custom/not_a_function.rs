// `custom_rule` on something that is not a function.
use fluxion::custom_rule;

#[custom_rule(jvp = f_jvp)]
struct Solver;

fn main() {}
