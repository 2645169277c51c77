//! The JIT refuses helper calls exactly where the interpreter does: a program type the
//! prototype (or the kernel profile in use) does not allow, a GPL-only helper called from a
//! program whose license is not GPL-compatible.

use std::sync::Arc;

use bpflab_jit::{JitConfig, JitEngine, Mode};
use bpflab_vm::asm::assemble;
use bpflab_vm::helpers::{HelperError, HelperRegistry};
use bpflab_vm::profile::KernelProfile;
use bpflab_vm::{
    Collection, Config, EngineError, Interpreter, ProgType, Program, RunInput, VmErrorKind,
};

/// `bpf_ktime_get_ns` (id 5) is not GPL-only; `bpf_skb_store_bytes` (9) is not
/// available to XDP; `bpf_xdp_adjust_meta` (54) is XDP's; `bpf_probe_read_kernel` (113) is
/// GPL-only.
fn program(src: &str, prog_type: ProgType, license: &str) -> Collection {
    let mut p = Program::raw("p", assemble(src).expect("assembles")).with_type(prog_type);
    p.license = license.into();
    Collection { programs: vec![p], ..Collection::default() }
}

/// The error kind each engine gives for running `c`'s program on a 64-byte packet.
fn errors(c: &Collection, helpers: Arc<HelperRegistry>) -> Vec<Option<VmErrorKind>> {
    let kind = |r: Result<_, EngineError>| match r {
        Ok(_) => None,
        Err(EngineError::Fault(e)) => Some(e.kind().clone()),
        Err(e) => panic!("not a fault: {e}"),
    };
    let input = RunInput::data(vec![0u8; 64]);
    let mut out = Vec::new();
    let interp = Interpreter::new(Config::default(), Arc::clone(&helpers));
    out.push(kind(interp.instantiate(c).expect("interp").run(0, &input)));
    for mode in [Mode::Checked, Mode::Trusted] {
        let engine = JitEngine::new(JitConfig::with_mode(mode), Arc::clone(&helpers)).expect("jit");
        out.push(kind(engine.instantiate(c).expect("jit").run(0, &input)));
    }
    out
}

#[test]
fn gpl_only_helpers_need_a_gpl_compatible_license() {
    let src = "r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\ncall bpf_probe_read_kernel\nr0 = 2\nexit";
    let std = bpflab_vm::standard_helpers();
    let refused = errors(&program(src, ProgType::Xdp, "Proprietary"), Arc::clone(&std));
    let want = VmErrorKind::Helper { name: "bpf_probe_read_kernel", error: HelperError::GplOnly };
    assert_eq!(refused, vec![Some(want); 3]);
    assert_eq!(
        errors(&program(src, ProgType::Xdp, "Dual MIT/GPL"), Arc::clone(&std)),
        vec![None; 3]
    );
    // A helper that is not GPL-only runs under any license.
    let free = "call bpf_ktime_get_ns\nr0 = 2\nexit";
    assert_eq!(errors(&program(free, ProgType::Xdp, "Proprietary"), std), vec![None; 3]);
}

#[test]
fn program_types_and_kernel_profiles_limit_helpers() {
    let std = bpflab_vm::standard_helpers();
    let pid = "call bpf_skb_store_bytes\nr0 = 2\nexit";
    let errs = errors(&program(pid, ProgType::Xdp, "GPL"), Arc::clone(&std));
    assert!(
        errs.iter().all(|e| matches!(
            e,
            Some(VmErrorKind::Helper { error: HelperError::NotAllowed { .. }, .. })
        )),
        "{errs:?}"
    );
    let meta = "r2 = 0\ncall bpf_xdp_adjust_meta\nr0 = 2\nexit";
    assert_eq!(errors(&program(meta, ProgType::Xdp, "GPL"), Arc::clone(&std)), vec![None; 3]);
    let mut profile = KernelProfile::bpflab(&HelperRegistry::standard());
    profile.helpers.get_mut(&ProgType::Xdp).expect("xdp").remove(&54);
    profile.source = "prod".into();
    let limited = Arc::new(HelperRegistry::standard().with_profile(&profile));
    let want = VmErrorKind::Helper {
        name: "bpf_xdp_adjust_meta",
        error: HelperError::NotInKernel {
            prog_type: ProgType::Xdp,
            kernel: "prod (6.18.0)".into(),
        },
    };
    assert_eq!(errors(&program(meta, ProgType::Xdp, "GPL"), limited), vec![Some(want); 3]);
}
