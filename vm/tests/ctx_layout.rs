//! The interpreter's contexts decide by `ctx::layout`: for every program type with a runtime
//! context, every aligned (offset, size) over the context, loaded and stored, runs exactly
//! when the static table allows it, and is refused as a context access otherwise (the tables
//! themselves are checked against the kernel in kernel/tests/ctx_layout_vs_kernel.rs).
//! Accesses past the context's region are refused by the memory's bounds check first.
//! Sign-extending loads are left to the verifier: the interpreter's memory does not see them.

use bpflab_vm::ctx::Target;
use bpflab_vm::ctx::layout::{self, AccessKind, attach as a};
use bpflab_vm::ctx::tracing::TraceInput;
use bpflab_vm::engine::{EngineError, RunInput};
use bpflab_vm::isa::{AluOp, Insn, MemSize, Operand, Reg, Width};
use bpflab_vm::memory::{Access, MemError, RegionKind};
use bpflab_vm::{Collection, Interpreter, ProgType, Program, VmErrorKind};

/// An Ethernet + IPv4 + TCP frame.
fn frame() -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&40u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[46] = 0x50;
    f
}

/// A run's input and the program's attach type, per program type.
fn subject(t: ProgType) -> (Option<u32>, RunInput) {
    let with_ctx = |ctx: Vec<u8>| {
        let mut i = RunInput::default();
        i.ctx = Some(ctx);
        i
    };
    let with_args = || {
        let mut i = RunInput::default();
        i.trace = Some(TraceInput::args([7u64; 12]));
        i
    };
    match t {
        ProgType::SkLookup => {
            let mut c = vec![0u8; 72];
            c[8..12].copy_from_slice(&2u32.to_le_bytes());
            c[12..16].copy_from_slice(&6u32.to_le_bytes());
            (Some(a::SK_LOOKUP), with_ctx(c))
        }
        ProgType::Kprobe => (None, RunInput::default()),
        ProgType::Tracepoint => (None, with_ctx(vec![0; layout::PERF_MAX_TRACE_SIZE as usize])),
        ProgType::RawTracepoint | ProgType::RawTracepointWritable => (None, with_args()),
        ProgType::Tracing => (Some(a::TRACE_FENTRY), with_args()),
        ProgType::Syscall => (None, with_ctx(vec![0; layout::SYSCALL_CTX_MAX as usize])),
        ProgType::SkMsg => (None, RunInput::data(vec![1; 64])),
        _ => (None, RunInput::data(frame())),
    }
}

fn mem_size(size: u32) -> MemSize {
    match size {
        1 => MemSize::B,
        2 => MemSize::H,
        4 => MemSize::W,
        _ => MemSize::Dw,
    }
}

/// `r2 = 0`, the access through r1, `r0 = 0; exit`.
fn program(off: i64, size: u32, kind: AccessKind) -> Vec<Insn> {
    let mov =
        |dst, imm| Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Imm(imm) };
    let (size, off) = (mem_size(size), off as i16);
    let access = match kind {
        AccessKind::Write => Insn::Store { size, dst: Reg::R1, off, src: Operand::Reg(Reg::R2) },
        _ => Insn::Load { size, signed: false, dst: Reg::R0, src: Reg::R1, off },
    };
    vec![mov(Reg::R2, 0), access, mov(Reg::R0, 0), Insn::Exit]
}

/// Whether the interpreter runs the access; panics on any fault but a context refusal.
fn runs(
    t: ProgType,
    attach: Option<u32>,
    input: &RunInput,
    off: i64,
    size: u32,
    kind: AccessKind,
) -> bool {
    let mut p = Program::raw("ctx", program(off, size, kind)).with_type(t);
    p.expected_attach_type = attach;
    let mut inst = Interpreter::default().instantiate(&Collection::single(p)).expect("instantiate");
    match inst.run(0, input) {
        Ok(_) => true,
        Err(EngineError::Fault(f)) => match f.kind() {
            VmErrorKind::Memory(MemError::Context { access, off: o, len, .. }) => {
                let want = if kind == AccessKind::Write { Access::Write } else { Access::Read };
                assert_eq!((*access, *o as i64, *len as u32), (want, off, size), "{t:?}: {f}");
                false
            }
            // Past the context's region: the memory's bounds check comes first.
            VmErrorKind::Memory(MemError::OutOfBounds {
                kind: RegionKind::Context,
                off: o,
                ..
            }) => {
                assert_eq!(*o, off, "{t:?}: {f}");
                false
            }
            other => panic!("{t:?} {kind:?} off={off} size={size}: unexpected fault {other:?}"),
        },
        Err(e) => panic!("{t:?}: {e}"),
    }
}

#[test]
fn runtime_contexts_allow_exactly_what_the_tables_allow() {
    use ProgType::*;
    let types = [
        SocketFilter,
        SchedCls,
        SchedAct,
        CgroupSkb,
        LwtIn,
        LwtOut,
        LwtXmit,
        LwtSeg6local,
        SkSkb,
        FlowDissector,
        Xdp,
        SockOps,
        SkMsg,
        SkLookup,
        Kprobe,
        Tracepoint,
        RawTracepoint,
        RawTracepointWritable,
        Tracing,
        Syscall,
    ];
    let (mut allowed, mut refused) = (0, 0);
    for t in types {
        let (attach, input) = subject(t);
        let size = i64::from(layout::layout(t).expect("a layout").size);
        let max = i64::from(i16::MAX);
        let offsets: Vec<i64> = if size <= 256 {
            (0..size + 8).collect()
        } else {
            (0..128).chain((size.min(max) - 64)..(size + 8).min(max + 1)).collect()
        };
        for kind in [AccessKind::Read, AccessKind::Write] {
            for &off in &offsets {
                for sz in [1u32, 2, 4, 8] {
                    // Misaligned ones only at the start (the rule is uniform).
                    if off % i64::from(sz) != 0 && off >= 16 {
                        continue;
                    }
                    let target = Target { prog_type: t, attach };
                    let table = layout::check_access(target, off, sz, kind).is_ok();
                    let ran = runs(t, attach, &input, off, sz, kind);
                    assert_eq!(ran, table, "{t:?} {kind:?} off={off} size={sz}");
                    if table { allowed += 1 } else { refused += 1 }
                }
            }
        }
    }
    // The totals pin the coverage: every type contributes both outcomes.
    assert!(allowed > 3000 && refused > 5000, "{allowed} allowed, {refused} refused");
    println!("{allowed} accesses allowed and {refused} refused by both");
}

#[test]
fn devmap_programs_read_egress_ifindex() {
    let input = RunInput::data(frame());
    assert!(!runs(ProgType::Xdp, None, &input, 20, 4, AccessKind::Read));
    assert!(runs(ProgType::Xdp, Some(a::XDP_DEVMAP), &input, 20, 4, AccessKind::Read));
    assert!(!runs(ProgType::Xdp, Some(a::XDP_CPUMAP), &input, 20, 4, AccessKind::Read));
}
