//! The engine's interface: the `Engine` trait, the compile cache, disassembly, and errors.

use bpflab_jit::{JitConfig, JitEngine, JitError, Mode};
use bpflab_vm::asm::assemble;
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Engine, EngineError, Program, RunInput};

fn collection(src: &str) -> Collection {
    let insns = assemble(src).expect("assembles");
    Collection {
        maps: vec![MapSpec::new("a", MapType::Array, 4, 8, 2)],
        programs: vec![Program::raw("p", insns)],
        ..Collection::default()
    }
}

#[test]
fn engine_is_shareable_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<JitEngine>();
    send_sync::<JitError>();
}

#[test]
fn runs_and_maps_through_the_engine_trait() {
    let engine: &dyn Engine = &JitEngine::default();
    assert_eq!(engine.name(), "jit");
    let src = "*(u32 *)(r10 - 4) = 1\nr1 = map[idx:0] ll\nr2 = r10\nr2 += -4\ncall bpf_map_lookup_elem\nif r0 == 0 goto out\nr1 = 3\nlock *(u64 *)(r0 + 0) += r1\nr0 = *(u64 *)(r0 + 0)\nout:\nexit";
    let mut loaded = engine.load(&collection(src)).expect("loads");
    loaded.map_update(0, &1u32.to_le_bytes(), &10u64.to_le_bytes(), 0).expect("update");
    let out = loaded.run(0, &RunInput::data(vec![])).expect("runs");
    assert_eq!(out.r0, 13);
    assert!(out.insn_count.is_some());
    assert_eq!(
        loaded.map_lookup(0, &1u32.to_le_bytes()).unwrap(),
        Some(13u64.to_le_bytes().to_vec())
    );
    assert_eq!(loaded.map_keys(0).unwrap().len(), 2);
    assert!(matches!(loaded.run(5, &RunInput::data(vec![])), Err(EngineError::Unsupported { .. })));
}

#[test]
fn compiled_code_is_cached_by_content() {
    let engine = JitEngine::with_mode(Mode::Trusted).unwrap();
    let a = engine.instantiate(&collection("r0 = 1\nexit")).unwrap();
    let b = engine.instantiate(&collection("r0 = 1\nexit")).unwrap();
    assert_eq!(engine.cached(), 1);
    assert_eq!(a.compile_stats(), b.compile_stats());
    engine.instantiate(&collection("r0 = 2\nexit")).unwrap();
    assert_eq!(engine.cached(), 2);
    drop((a, b));
    engine.clear_cache();
    assert_eq!(engine.cached(), 0);
    // Without the cache, every instantiation compiles.
    let config = JitConfig { cache: false, ..JitConfig::default() };
    let engine = JitEngine::new(config, bpflab_vm::standard_helpers()).unwrap();
    let _a = engine.instantiate(&collection("r0 = 1\nexit")).unwrap();
    assert_eq!(engine.cached(), 0);
}

#[test]
fn disassembly_and_ir_name_every_function() {
    let src = "r1 = 2\ncall f\nexit\nf:\nr0 = r1\nexit";
    let inst = JitEngine::default().instantiate(&collection(src)).unwrap();
    let text = inst.disassemble(0).unwrap();
    assert!(
        text.contains("function at instruction 0") && text.contains("function at instruction 3"),
        "{text}"
    );
    assert!(text.contains("ret"), "{text}");
    assert!(inst.ir(0).contains("function u0:0"));
    assert!(inst.disassemble(7).unwrap().is_empty());
    let stats = inst.compile_stats();
    assert_eq!(stats.functions, 2);
    assert!(stats.code_bytes > 0);
}

#[test]
fn load_errors_are_the_interpreters() {
    let engine: &dyn Engine = &JitEngine::default();
    let bad = Collection { programs: vec![Program::raw("p", vec![])], ..Collection::default() };
    assert!(matches!(engine.load(&bad), Err(EngineError::Load(_))));
}
