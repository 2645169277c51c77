//! Which program types may call a helper: the prototypes' sets, enforced once by the
//! interpreter before it calls an implementation (implementations do not check).

use std::sync::Arc;

use bpflab_vm::asm::assemble;
use bpflab_vm::engine::{EngineError, ProgType, RunInput, RunOutcome};
use bpflab_vm::helpers::{
    Allowed, Helper, HelperCtx, HelperError, HelperProto, HelperRegistry, RetType,
};
use bpflab_vm::{Collection, Config, Interpreter, Program, VmErrorKind};

/// A 60-byte IPv4 frame: enough for every packet program type.
fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[12] = 0x08;
    f[14] = 0x45;
    f
}

fn run_with(helpers: HelperRegistry, t: ProgType, src: &str) -> Result<RunOutcome, EngineError> {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let prog = Program::raw("p", insns).with_type(t);
    let mut inst = Interpreter::new(Config::default(), Arc::new(helpers))
        .instantiate(&Collection::single(prog))
        .expect("instantiate");
    inst.run(0, &RunInput::data(frame()))
}

fn run(t: ProgType, src: &str) -> Result<RunOutcome, EngineError> {
    run_with(HelperRegistry::standard(), t, src)
}

fn helper_fault(out: Result<RunOutcome, EngineError>) -> (usize, &'static str, HelperError) {
    match out {
        Err(EngineError::Fault(e)) => match e.kind() {
            VmErrorKind::Helper { name, error } => (e.pc(), *name, error.clone()),
            other => panic!("expected a helper fault, got {other:?}"),
        },
        other => panic!("expected a fault, got {other:?}"),
    }
}

const ADJUST_HEAD: &str = "r2 = 0\ncall bpf_xdp_adjust_head\nexit";

#[test]
fn xdp_adjust_head_is_refused_in_a_tc_program() {
    let (pc, name, error) = helper_fault(run(ProgType::SchedCls, ADJUST_HEAD));
    assert_eq!(pc, 1);
    assert_eq!(name, "bpf_xdp_adjust_head");
    assert_eq!(error, HelperError::NotAllowed { prog_type: ProgType::SchedCls });
    assert_eq!(error.to_string(), "not allowed in SchedCls programs");
    assert_eq!(run(ProgType::Xdp, ADJUST_HEAD).expect("XDP may call it").r0, 0);
}

#[test]
fn every_type_outside_the_set_is_refused() {
    let registry = HelperRegistry::standard();
    let proto = registry.get(44).expect("bpf_xdp_adjust_head").proto;
    assert_eq!(proto.prog_types, Allowed::Only(&[ProgType::Xdp]));
    for &t in ProgType::ALL {
        let expected = matches!(t, ProgType::Xdp | ProgType::Unspec);
        assert_eq!(proto.allowed(t), expected, "{t:?}");
    }
}

/// A helper whose implementation never checks the program type: only the interpreter does.
fn xdp_only(ret: fn(&mut HelperCtx<'_>, [u64; 5]) -> Result<u64, HelperError>) -> HelperRegistry {
    let mut r = HelperRegistry::empty();
    r.register(Helper {
        proto: HelperProto {
            id: 7,
            name: "bpf_get_prandom_u32",
            ret: RetType::Integer,
            args: &[],
            gpl_only: false,
            prog_types: Allowed::Only(&[ProgType::Xdp]),
        },
        func: ret,
    });
    r
}

fn forty_two(_: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(42)
}

fn must_not_run(_: &mut HelperCtx<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    panic!("the interpreter called a helper the program type may not call")
}

#[test]
fn the_interpreter_checks_before_calling_the_implementation() {
    let src = "call bpf_get_prandom_u32\nexit";
    let (_, name, error) = helper_fault(run_with(xdp_only(must_not_run), ProgType::SchedCls, src));
    assert_eq!(name, "bpf_get_prandom_u32");
    assert_eq!(error, HelperError::NotAllowed { prog_type: ProgType::SchedCls });
    assert_eq!(run_with(xdp_only(forty_two), ProgType::Xdp, src).expect("allowed").r0, 42);
}

#[test]
fn raw_mode_may_call_every_helper() {
    let src = "call bpf_get_prandom_u32\nexit";
    assert_eq!(run_with(xdp_only(forty_two), ProgType::Unspec, src).expect("raw mode").r0, 42);
    // A standard helper of another program type runs too (and fails on the missing context,
    // not on the program type).
    let (_, _, error) = helper_fault(run(ProgType::Unspec, ADJUST_HEAD));
    assert_eq!(error, HelperError::BadArg { arg: 1, reason: "not an XDP context" });
    // bpf_csum_diff needs no context: raw mode gets its value.
    let src = "*(u32 *)(r10 - 4) = 0x01020304\nr1 = 0\nr2 = 0\nr3 = r10\nr3 += -4\nr4 = 4\n\
               r5 = 0\ncall bpf_csum_diff\nexit";
    assert_eq!(run(ProgType::Unspec, src).expect("raw mode").r0, 0x0406);
    assert!(matches!(
        helper_fault(run(ProgType::SocketFilter, src)).2,
        HelperError::NotAllowed { prog_type: ProgType::SocketFilter }
    ));
}

#[test]
fn helpers_of_every_type_pass_the_check() {
    // bpf_ktime_get_ns is in bpf_base_func_proto: every program type may call it.
    let registry = HelperRegistry::standard();
    let ktime = registry.get(5).expect("bpf_ktime_get_ns");
    assert_eq!(ktime.proto.prog_types, Allowed::All);
    assert!(ProgType::ALL.iter().all(|&t| ktime.allowed(t)));
    assert_eq!(ktime.check(ProgType::Netfilter), Ok(()));
    // The merged bpf_get_socket_cookie keeps the set its checks had.
    let cookie = registry.get(46).expect("bpf_get_socket_cookie");
    assert!(cookie.allowed(ProgType::SockOps) && cookie.allowed(ProgType::SocketFilter));
    assert_eq!(
        cookie.check(ProgType::SkMsg),
        Err(HelperError::NotAllowed { prog_type: ProgType::SkMsg })
    );
}
