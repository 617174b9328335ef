use fluxion_engine::interp::{companion, Env, Value};
use fluxion_engine::ir::{Mode};
use fluxion_engine::jvp::{jvp, JvpSpec};
use fluxion_engine::rules::RuleTable;
use fluxion_engine::vjp::{vjp, VjpSpec};

fn lower(src: &str) -> Result<fluxion_engine::ir::Func, String> {
    let item: syn::ItemFn = syn::parse_str(src).map_err(|e| e.to_string())?;
    let mut cx = fluxion_engine::error::Ctxt::new();
    let f = fluxion_engine::lower::lower_fn(&item, &mut cx);
    match cx.check() { Err(e) => Err(e.to_string()), Ok(()) => f.ok_or("none".into()) }
}

#[test]
fn scratch() {
    let rules = RuleTable::standard();
    let env = Env { rules: rules.clone(), ..Default::default() };
    println!("{:?}", lower("fn f(x: f64, y: f64, z: f64) -> f64 { x.mul_add(y, z) }").err());
    let f = lower("fn f(x: f64, n: i32) -> f64 { x.powi(n) }").unwrap();
    let j = jvp(&f, &JvpSpec { active: vec![true; 2], all_params: false, seeds: vec![] }, &rules).unwrap();
    println!("jvp params {}", j.params.len());
    println!("{:?}", env.eval(&j, &[Value::F(2.0), Value::I(3), Value::F(1.0)]));
    let v = vjp(&f, &VjpSpec { active: vec![true; 2], all_params: false, seed: None }, &rules).unwrap();
    println!("vjp params {}", v.func.params.len());
    println!("{:?}", env.eval(&v.func, &[Value::F(2.0), Value::I(3), Value::F(1.0)]));
    let c = companion(&f, &[Mode::Vjp, Mode::Jvp], &rules).unwrap();
    println!("vj params {}", c.params.len());
    println!("{:?}", env.eval(&c, &[Value::F(2.0), Value::I(3), Value::F(1.0), Value::F(1.0), Value::Unit, Value::F(0.0)]));
    let c = companion(&f, &[Mode::Vjp, Mode::Vjp], &rules).unwrap();
    println!("vv params {}", c.params.len());
    println!("{:?}", env.eval(&c, &[Value::F(2.0), Value::I(3), Value::F(1.0), Value::Tup(vec![Value::F(0.0), Value::Tup(vec![Value::F(1.0), Value::Unit])])]));
    let f = lower("fn f(x: f64) -> f64 { x.powi(7) }").unwrap();
    println!("{:#?}", f.body);
}
