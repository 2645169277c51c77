//! A program from a section libbpf does not know runs only once typed, in every engine and
//! through the library too (not only the CLI): never in raw mode.

use std::sync::Arc;

use bpflab_jit::{JitConfig, JitEngine, Mode};
use bpflab_loader::{LoadOptions, parse_prog_type};
use bpflab_vm::ctx::CtxError;
use bpflab_vm::{Config, EngineError, Interpreter, RunInput, standard_helpers};

fn object() -> bpflab_loader::Object {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/programs/tests/unknown_sections.bpf.o");
    let bytes = std::fs::read(path).expect("fixture");
    bpflab_loader::load(&bytes, &LoadOptions::for_path(path)).expect("loads untyped")
}

/// Runs program `name` of `obj` on a 64-byte frame in the interpreter and both JIT modes.
fn run_everywhere(obj: &bpflab_loader::Object, name: &str) -> Vec<Result<u64, EngineError>> {
    let prog = obj.collection.programs.iter().position(|p| p.name == name).expect("program");
    let input = RunInput::data(vec![0u8; 64]);
    let interp = Interpreter::new(Config::default(), standard_helpers());
    let mut out = vec![interp.instantiate(&obj.collection).expect("interp").run(prog, &input)];
    for mode in [Mode::Checked, Mode::Trusted] {
        let engine = JitEngine::new(JitConfig::with_mode(mode), Arc::clone(&standard_helpers()))
            .expect("jit");
        out.push(engine.instantiate(&obj.collection).expect("jit").run(prog, &input));
    }
    out.into_iter().map(|r| r.map(|o| o.r0)).collect()
}

#[test]
fn untyped_programs_are_refused_until_typed() {
    let mut obj = object();
    for r in run_everywhere(&obj, "xdp_pass_v4") {
        match r {
            Err(EngineError::Context(CtxError::Untyped { program, section })) => {
                assert_eq!((program.as_str(), section.as_str()), ("xdp_pass_v4", "xdp_pass"));
            }
            other => panic!("expected an untyped-program error, got {other:?}"),
        }
    }
    obj.set_prog_type("xdp_pass_v4", &parse_prog_type("xdp").expect("type")).expect("typed");
    let typed = run_everywhere(&obj, "xdp_pass_v4");
    let first = typed[0].as_ref().expect("runs once typed");
    assert!(typed.iter().all(|r| r.as_ref().ok() == Some(first)), "{typed:?}");
}
