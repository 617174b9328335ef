//! Prints what fluxion generates for the annotated functions of a Rust file.
//!
//! `cargo run -p fluxion-engine --example expand -- examples/quickstart.rs [fn_name]`

use fluxion_engine::expand::expand_item_text;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: expand FILE.rs [FN_NAME]");
        std::process::exit(2);
    };
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    match expand_item_text(&src, args.get(2).map(String::as_str)) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
