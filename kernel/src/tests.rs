//! Tests against the running kernel; each prints one `SKIP:` line when bpf(2) is unavailable.

use bpflab_vm::isa::{AluOp, Insn, Operand, PseudoSrc, Reg, Width};
use bpflab_vm::{Collection, Engine, EngineError, ProgType, Program, RunInput};

use super::*;

/// True if the kernel can be used; otherwise prints the one `SKIP:` line.
fn kernel_available() -> bool {
    match probe() {
        Ok(()) => true,
        Err(e) => {
            println!("SKIP: bpf(2) unavailable: {e}");
            false
        }
    }
}

fn mov(dst: Reg, imm: i32) -> Insn {
    Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Imm(imm) }
}

const PACKET: [u8; 64] = [0xab; 64];

#[test]
fn returns_constant() {
    if !kernel_available() {
        return;
    }
    let prog = KernelProgram::load(ProgType::SocketFilter, &[mov(Reg::R0, 42), Insn::Exit], "GPL")
        .expect("load");
    assert_eq!(prog.prog_type(), ProgType::SocketFilter);
    let run = prog.test_run(&PACKET, None, 1).expect("test_run");
    assert_eq!(run.retval, 42);
    // A socket filter sees the packet after the Ethernet header; the kernel hands back that
    // header zeroed.
    assert_eq!(run.data_out.len(), PACKET.len());
    assert_eq!(run.data_out[14..], PACKET[14..]);
    let run = prog.test_run(&PACKET, None, 3).expect("test_run repeated");
    assert_eq!(run.retval, 42);
}

#[test]
fn array_map_roundtrip() {
    if !kernel_available() {
        return;
    }
    let map = KernelMap::array(8, 4).expect("create");
    assert_eq!((map.key_size(), map.value_size(), map.max_entries()), (4, 8, 4));
    assert_eq!(map.map_type(), MapType::Array);
    assert_eq!(map.get_u64(2).unwrap(), Some(0));
    map.set_u64(2, 0x1122_3344_5566_7788).unwrap();
    assert_eq!(map.get_u64(2).unwrap(), Some(0x1122_3344_5566_7788));
    assert_eq!(map.lookup(&9u32.to_ne_bytes()).unwrap(), None);
    assert!(matches!(
        map.update(&9u32.to_ne_bytes(), &[0; 8]),
        Err(KernelError::Os { errno, .. }) if errno == libc::E2BIG
    ));
    assert!(matches!(map.lookup(&[0; 3]), Err(KernelError::Size { expected: 4, got: 3, .. })));

    let hash = KernelMap::create(MapType::Hash, 8, 2, 16).expect("create hash");
    assert_eq!(hash.lookup(&[1; 8]).unwrap(), None);
    hash.update(&[1; 8], &[5, 6]).unwrap();
    assert_eq!(hash.lookup(&[1; 8]).unwrap(), Some(vec![5, 6]));
}

#[test]
fn program_writes_map() {
    if !kernel_available() {
        return;
    }
    let map = KernelMap::array(8, 1).unwrap();
    let insns = [
        Insn::ld_imm64(Reg::R6, 0x8000_0000_dead_beef),
        Insn::Store {
            size: bpflab_vm::isa::MemSize::W,
            dst: Reg::R10,
            off: -4,
            src: Operand::Imm(0),
        },
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R2, src: Operand::Reg(Reg::R10) },
        Insn::Alu { width: Width::W64, op: AluOp::Add, dst: Reg::R2, src: Operand::Imm(-4) },
        Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapFd, imm: map.fd(), next_imm: 0 },
        Insn::Call { kind: bpflab_vm::isa::CallKind::Helper, imm: 1, off: 0 },
        Insn::Jump {
            width: Width::W64,
            cond: bpflab_vm::isa::JmpCond::Eq,
            dst: Reg::R0,
            src: Operand::Imm(0),
            off: 1,
        },
        Insn::Store {
            size: bpflab_vm::isa::MemSize::Dw,
            dst: Reg::R0,
            off: 0,
            src: Operand::Reg(Reg::R6),
        },
        mov(Reg::R0, 7),
        Insn::Exit,
    ];
    let prog = KernelProgram::load(ProgType::SocketFilter, &insns, "GPL").expect("load");
    let run = prog.test_run(&PACKET, None, 1).unwrap();
    assert_eq!(run.retval, 7);
    assert_eq!(map.get_u64(0).unwrap(), Some(0x8000_0000_dead_beef));
}

#[test]
fn verifier_rejection_has_log() {
    if !kernel_available() {
        return;
    }
    let insns = [
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Reg(Reg::R5) },
        Insn::Exit,
    ];
    match KernelProgram::load(ProgType::SocketFilter, &insns, "GPL") {
        Err(KernelError::Rejected { log }) => {
            assert!(log.contains("R5 !read_ok"), "log: {log}");
        }
        other => panic!("expected a verifier rejection, got {other:?}"),
    }
    let err = KernelProgram::load(ProgType::SocketFilter, &insns, "GPL").unwrap_err();
    assert!(err.to_string().contains("R5 !read_ok"), "{err}");
}

#[test]
fn unspec_and_bad_input_are_errors() {
    let err = KernelProgram::load(ProgType::Unspec, &[Insn::Exit], "GPL").unwrap_err();
    assert!(matches!(err, KernelError::Unsupported { .. }), "{err}");
    let err = KernelProgram::load(ProgType::SocketFilter, &[Insn::Exit], "G\0PL").unwrap_err();
    assert!(matches!(err, KernelError::Unsupported { .. }), "{err}");
    let err =
        KernelEngine.load(&Collection::single(Program::raw("x", vec![Insn::Exit]))).unwrap_err();
    assert!(matches!(err, EngineError::Unsupported { engine: "kernel", .. }), "{err}");
    let os = KernelError::Os { op: "BPF_PROG_LOAD", errno: libc::EPERM };
    assert_eq!(os.errno(), Some(libc::EPERM));
    assert!(os.to_string().starts_with("BPF_PROG_LOAD: Operation not permitted"), "{os}");
}

#[test]
fn short_packet_is_os_error() {
    if !kernel_available() {
        return;
    }
    let prog =
        KernelProgram::load(ProgType::SocketFilter, &[mov(Reg::R0, 1), Insn::Exit], "GPL").unwrap();
    let err = prog.test_run(&[0; 4], None, 1).unwrap_err();
    assert!(
        matches!(err, KernelError::Os { op: "BPF_PROG_TEST_RUN", errno } if errno == libc::EINVAL),
        "{err}"
    );
}

#[test]
fn engine_interface() {
    if !kernel_available() {
        return;
    }
    let engine = KernelEngine;
    assert_eq!(engine.name(), "kernel");
    let program = Program::raw("ret 42 in kernel!", vec![mov(Reg::R0, -1), Insn::Exit])
        .with_type(ProgType::SchedCls);
    let mut loaded = engine.load(&Collection::single(program)).expect("load");
    let out = loaded.run(0, &RunInput::data(PACKET.to_vec())).expect("run");
    assert_eq!(out.r0, 0xffff_ffff);
    assert_eq!(out.data, PACKET);
    assert_eq!(out.insn_count, None);

    let bad = Program::raw("bad", vec![Insn::Exit]).with_type(ProgType::Xdp);
    match engine.load(&Collection::single(bad)) {
        Err(EngineError::Backend { engine: "kernel", source }) => {
            let e = source.downcast_ref::<KernelError>().expect("a KernelError");
            assert!(
                matches!(e, KernelError::Rejected { log } if log.contains("R0 !read_ok")),
                "{e}"
            );
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[test]
fn names_are_sanitised() {
    assert_eq!(&obj_name("ret 42 in kernel!"), b"ret_42_in_kerne\0");
    assert_eq!(&obj_name("a.b"), b"a.b\0\0\0\0\0\0\0\0\0\0\0\0\0");
}

#[test]
fn context_only_test_runs() {
    if !kernel_available() {
        return;
    }
    use bpflab_vm::isa::MemSize;
    // raw_tp: r0 = args[1]; the test run takes only the u64 args (no repeat, no outputs).
    let insns = [
        Insn::Load { size: MemSize::Dw, signed: false, dst: Reg::R0, src: Reg::R1, off: 8 },
        Insn::Exit,
    ];
    let prog = KernelProgram::load(ProgType::RawTracepoint, &insns, "GPL").expect("raw_tp");
    let args: Vec<u8> = [0u64, 257].iter().flat_map(|a| a.to_ne_bytes()).collect();
    let run = prog.test_run(&[], Some(&args), 5).expect("raw_tp run");
    assert_eq!((run.retval, run.data_out.len(), run.ctx_out), (257, 0, None));

    // syscall (must be sleepable): ctx->a = 42; return ctx->b. The kernel writes the context
    // back into the input buffer, which comes back as ctx_out.
    let insns = [
        Insn::Store { size: MemSize::W, dst: Reg::R1, off: 0, src: Operand::Imm(42) },
        Insn::Load { size: MemSize::W, signed: false, dst: Reg::R0, src: Reg::R1, off: 4 },
        Insn::Exit,
    ];
    let opts = ProgLoadOptions { flags: 1 << 4, ..ProgLoadOptions::default() }; // BPF_F_SLEEPABLE
    let prog =
        KernelProgram::load_with_options(ProgType::Syscall, &insns, "GPL", &opts).expect("syscall");
    let ctx: Vec<u8> = [6u32, 7].iter().flat_map(|a| a.to_ne_bytes()).collect();
    let run = prog.test_run(&[], Some(&ctx), 1).expect("syscall run");
    let mut want = 42u32.to_ne_bytes().to_vec();
    want.extend(7u32.to_ne_bytes());
    assert_eq!((run.retval, run.ctx_out), (7, Some(want)));
}
