//! The pre-walk checks (`bpflab_verifier::cfg`) against the running kernel: every rejection
//! with the kernel's message, class and instruction, the same program loaded into the kernel
//! and refused with the same error line; accepted shapes (subprograms, bounded loops, the
//! fixtures' programs); prune points; and the static register liveness compared with the
//! kernel's own (`Live regs before insn:` in its level-2 log).

use std::path::Path;

use bpflab_kernel::verdict::{BPF_LOG_LEVEL2, KernelVerdict, VerdictOptions, kernel_verdict};
use bpflab_verifier::cfg::{Cfg, analyze, analyze_in, decode_error_message};
use bpflab_verifier::{Config, ErrorKind, VerifyError};
use bpflab_vm::asm::assemble;
use bpflab_vm::helpers::HelperRegistry;
use bpflab_vm::isa::{CallKind, Insn, Operand, PseudoSrc, RawInsn, Reg, decode_program};
use bpflab_vm::{Collection, ProgType, Program};

fn kernel_available() -> bool {
    match bpflab_kernel::probe() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("kernel comparison skipped: {e}");
            false
        }
    }
}

fn program(insns: Vec<Insn>) -> Program {
    Program::raw("cfg_test", insns).with_type(ProgType::SocketFilter)
}

fn asm(src: &str) -> Program {
    program(assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}")))
}

fn ours(p: &Program) -> Result<Cfg, VerifyError> {
    analyze(p, 0, &HelperRegistry::standard(), &Config::default())
}

fn kernel(p: &Program, log_level: u32) -> Option<KernelVerdict> {
    if !kernel_available() {
        return None;
    }
    let opts = VerdictOptions { log_level, ..VerdictOptions::default() };
    Some(kernel_verdict(&Collection::single(p.clone()), 0, &opts).expect("kernel decides"))
}

/// Ours rejects with `message` of `kind` at `insn`, and so does the kernel.
fn rejects_like_kernel(p: &Program, kind: ErrorKind, insn: Option<usize>, message: &str) {
    let e = ours(p).expect_err("rejected");
    assert_eq!(e.message, message);
    assert_eq!(e.kind, kind, "{message}");
    assert_eq!(e.insn, insn, "{message}");
    assert_eq!(ErrorKind::classify(message), kind, "the kernel's line classes the same");
    if let Some(v) = kernel(p, 1) {
        assert!(!v.accepted, "kernel accepted:\n{}", v.log);
        assert_eq!(v.error_line.as_deref(), Some(message), "kernel log:\n{}", v.log);
    }
}

fn accepted_like_kernel(p: &Program) -> Cfg {
    let cfg = ours(p).unwrap_or_else(|e| panic!("rejected: {e:?}"));
    if let Some(v) = kernel(p, 1) {
        assert!(v.accepted, "kernel rejected:\n{}", v.log);
    }
    cfg
}

fn slots(flags: &[bool]) -> Vec<usize> {
    flags.iter().enumerate().filter(|(_, b)| **b).map(|(i, _)| i).collect()
}

#[test]
fn jump_out_of_range() {
    rejects_like_kernel(
        &asm("r0 = 0\ngoto +5\nexit"),
        ErrorKind::JumpOutOfRange,
        Some(1),
        "jump out of range from insn 1 to 7",
    );
    rejects_like_kernel(
        &asm("goto -2\nexit"),
        ErrorKind::JumpOutOfRange,
        Some(0),
        "jump out of range from insn 0 to -1",
    );
    rejects_like_kernel(
        &asm("r0 = 0\nif r0 > 3 goto -5\nexit"),
        ErrorKind::JumpOutOfRange,
        Some(1),
        "jump out of range from insn 1 to -3",
    );
    // gotol takes its offset from imm.
    rejects_like_kernel(
        &program(vec![Insn::JaLong { imm: 100 }, Insn::Exit]),
        ErrorKind::JumpOutOfRange,
        Some(0),
        "jump out of range from insn 0 to 101",
    );
}

#[test]
fn jumps_stay_inside_their_subprogram() {
    // main: call f; goto +1 (into f); exit.  f: r0 = 0; exit
    rejects_like_kernel(
        &asm("call f\ngoto +1\nexit\nf:\nr0 = 0\nexit"),
        ErrorKind::JumpOutOfRange,
        Some(1),
        "jump out of range from insn 1 to 3",
    );
}

#[test]
fn last_insn_must_be_exit_or_jump() {
    rejects_like_kernel(
        &asm("r0 = 0"),
        ErrorKind::FallOffEnd,
        Some(0),
        "last insn is not an exit or jmp",
    );
    // A subprogram that falls into the next one.
    rejects_like_kernel(
        &asm("call f\nexit\nf:\nr0 = 0\ncall g\ng:\nr0 = 1\nexit"),
        ErrorKind::FallOffEnd,
        Some(3),
        "last insn is not an exit or jmp",
    );
    // The last slot is the second half of an LD_IMM64.
    rejects_like_kernel(
        &asm("r0 = 0\nexit\nr1 = 0x1122334455 ll"),
        ErrorKind::FallOffEnd,
        Some(3),
        "last insn is not an exit or jmp",
    );
}

#[test]
fn unreachable_insn() {
    rejects_like_kernel(
        &asm("r0 = 0\nexit\nexit"),
        ErrorKind::UnreachableInsn,
        Some(2),
        "unreachable insn 2",
    );
    // A privileged infinite loop is no back-edge error, but what follows it is unreachable.
    rejects_like_kernel(
        &asm("r0 = 0\nl:\ngoto l\nexit"),
        ErrorKind::UnreachableInsn,
        Some(2),
        "unreachable insn 2",
    );
    // A subprogram no call reaches does not exist: its code is unreachable main code.
    rejects_like_kernel(
        &asm("r0 = 0\nexit\nr0 = 1\nexit"),
        ErrorKind::UnreachableInsn,
        Some(2),
        "unreachable insn 2",
    );
}

#[test]
fn jump_into_the_middle_of_ldimm64() {
    rejects_like_kernel(
        &program(vec![Insn::ld_imm64(Reg::R0, 1), Insn::Ja { off: -2 }, Insn::Exit]),
        ErrorKind::JumpOutOfRange,
        Some(0),
        "jump into the middle of ldimm64 insn 0",
    );
    rejects_like_kernel(
        &program(vec![
            Insn::Alu {
                width: bpflab_vm::isa::Width::W64,
                op: bpflab_vm::isa::AluOp::Mov,
                dst: Reg::R0,
                src: Operand::Imm(0),
            },
            Insn::Jump {
                width: bpflab_vm::isa::Width::W64,
                cond: bpflab_vm::isa::JmpCond::Eq,
                dst: Reg::R0,
                src: Operand::Imm(0),
                off: 1,
            },
            Insn::ld_imm64(Reg::R0, 1),
            Insn::Exit,
        ]),
        ErrorKind::JumpOutOfRange,
        Some(2),
        "jump into the middle of ldimm64 insn 2",
    );
}

#[test]
fn calls_to_nothing() {
    let call = |imm| program(vec![Insn::Call { kind: CallKind::Local, imm, off: 0 }, Insn::Exit]);
    for imm in [5, 1, -2, -3, i32::MAX] {
        rejects_like_kernel(
            &call(imm),
            ErrorKind::JumpOutOfRange,
            Some(0),
            "call to invalid destination",
        );
    }
}

#[test]
fn too_many_subprograms() {
    // main calls 256 functions: with main, 257.
    let mut src = String::new();
    for i in 0..256 {
        src += &format!("call f{i}\n");
    }
    src += "r0 = 0\nexit\n";
    for i in 0..256 {
        src += &format!("f{i}:\nr0 = {i}\nexit\n");
    }
    rejects_like_kernel(&asm(&src), ErrorKind::TooComplex, Some(255), "too many subprograms");
    // 256 in all is fine.
    let mut src = String::new();
    for i in 0..255 {
        src += &format!("call f{i}\n");
    }
    src += "r0 = 0\nexit\n";
    for i in 0..255 {
        src += &format!("f{i}:\nr0 = {i}\nexit\n");
    }
    let cfg = accepted_like_kernel(&asm(&src));
    assert_eq!(cfg.subprogs.len(), 256);
}

#[test]
fn subprograms_without_btf_may_not_use_ld_abs_or_tail_calls() {
    rejects_like_kernel(
        &asm("r6 = r1\ncall f\nexit\nf:\nr0 = *(u8 *)skb[0]\nexit"),
        ErrorKind::Call,
        Some(3),
        "LD_ABS is not allowed in subprogs without BTF",
    );
    rejects_like_kernel(
        &asm("call f\nexit\nf:\nr3 = 0\ncall 12\nr0 = 0\nexit"),
        ErrorKind::TailCall,
        Some(2),
        "tail_call is not allowed in subprogs without BTF",
    );
    // The main program may.
    let cfg = accepted_like_kernel(&asm("r6 = r1\nr0 = *(u8 *)skb[0]\nexit"));
    assert!(cfg.subprogs[0].has_ld_abs);
}

#[test]
fn map_references_must_name_a_map() {
    let p = program(vec![
        Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapFd, imm: 1000, next_imm: 0 },
        Insn::Alu {
            width: bpflab_vm::isa::Width::W64,
            op: bpflab_vm::isa::AluOp::Mov,
            dst: Reg::R0,
            src: Operand::Imm(0),
        },
        Insn::Exit,
    ]);
    rejects_like_kernel(
        &p,
        ErrorKind::InvalidInsn,
        Some(0),
        "fd 1000 is not pointing to valid bpf_map",
    );
    // A literal fd is never one of the collection's maps, however many there are.
    assert!(analyze(&p, 1001, &HelperRegistry::standard(), &Config::default()).is_err());
    // A map index is, when the collection has that many maps.
    let idx = |imm| {
        program(vec![
            Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapIdx, imm, next_imm: 0 },
            Insn::Exit,
        ])
    };
    assert!(analyze(&idx(1000), 1001, &HelperRegistry::standard(), &Config::default()).is_ok());
    let e =
        analyze(&idx(1), 1, &HelperRegistry::standard(), &Config::default()).expect_err("no map 1");
    assert_eq!((e.message.as_str(), e.insn), ("fd 1 is not pointing to valid bpf_map", Some(0)));
    let value = |off| {
        program(vec![
            Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapIdxValue, imm: 0, next_imm: off },
            Insn::Exit,
        ])
    };
    let e = analyze(&value(1 << 29), 1, &HelperRegistry::standard(), &Config::default())
        .expect_err("offset too large");
    assert_eq!(e.message, "direct value offset of 536870912 is not allowed");
    assert_eq!(e.insn, Some(0));
    assert!(analyze(&value(8), 1, &HelperRegistry::standard(), &Config::default()).is_ok());
}

#[test]
fn the_kernels_order_decides_the_first_error() {
    // Out of range (subprogram pass) before unreachable (CFG pass).
    rejects_like_kernel(
        &asm("r0 = 0\nexit\ngoto +5\nexit"),
        ErrorKind::JumpOutOfRange,
        Some(2),
        "jump out of range from insn 2 to 8",
    );
    // Call targets before jumps.
    rejects_like_kernel(
        &asm("goto +7\ncall 9\ncall pc+9\nexit"),
        ErrorKind::JumpOutOfRange,
        Some(2),
        "call to invalid destination",
    );
    // Map references (LD_IMM64 pass) before unreachable code (CFG pass).
    let p = program(vec![
        Insn::Alu {
            width: bpflab_vm::isa::Width::W64,
            op: bpflab_vm::isa::AluOp::Mov,
            dst: Reg::R0,
            src: Operand::Imm(0),
        },
        Insn::Exit,
        Insn::LdImm64 { dst: Reg::R1, src: PseudoSrc::MapFd, imm: 999, next_imm: 0 },
        Insn::Exit,
    ]);
    rejects_like_kernel(
        &p,
        ErrorKind::InvalidInsn,
        Some(2),
        "fd 999 is not pointing to valid bpf_map",
    );
}

#[test]
fn unprivileged_mode_refuses_loops_and_calls() {
    // The kernel refuses unprivileged loads here (kernel.unprivileged_bpf_disabled), so these
    // are checked against the kernel's source text only.
    let unpriv = Config { privileged: false, ..Config::default() };
    let reg = HelperRegistry::standard();
    let p = asm("r0 = 0\nl:\nr0 += 1\nif r0 < 3 goto l\nexit");
    let e = analyze(&p, 0, &reg, &unpriv).expect_err("back-edge");
    assert_eq!(e.message, "back-edge from insn 2 to 1");
    assert_eq!((e.kind, e.insn), (ErrorKind::BackEdge, Some(2)));
    // Privileged: a bounded loop is fine (the walk decides whether it ends).
    let cfg = accepted_like_kernel(&p);
    assert_eq!(slots(&cfg.prune_point), [1, 2]);
    let e = analyze(&asm("call f\nexit\nf:\nr0 = 0\nexit"), 0, &reg, &unpriv).expect_err("call");
    assert_eq!(
        e.message,
        "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN"
    );
    assert_eq!(e.insn, Some(0));
    // The unprivileged size limit.
    let mut insns = vec![Insn::ld_imm64(Reg::R0, 0); 2048];
    insns.push(Insn::Exit);
    let e = analyze(&program(insns), 0, &reg, &unpriv).expect_err("too large");
    assert_eq!((e.kind, e.insn), (ErrorKind::TooComplex, None));
    assert!(e.message.contains("4097 insns, the limit is 4096"), "{}", e.message);
    // Unprivileged loads of other types than socket filters and cgroup skb programs are
    // refused before the verifier.
    let xdp = asm("r0 = 0\nexit").with_type(ProgType::Xdp);
    let e = analyze(&xdp, 0, &reg, &unpriv).expect_err("xdp");
    assert_eq!((e.kind, e.insn), (ErrorKind::Other, None));
    assert!(e.message.contains("EPERM"), "{}", e.message);
    let skb = asm("r0 = 0\nexit").with_type(ProgType::CgroupSkb);
    assert!(analyze(&skb, 0, &reg, &unpriv).is_ok());
}

#[test]
fn too_large_and_empty_programs_fail_before_the_verifier() {
    let mut insns = vec![Insn::Ja { off: 0 }; 1_000_000];
    insns.push(Insn::Exit);
    let p = program(insns);
    let e = ours(&p).expect_err("too large");
    assert_eq!((e.kind, e.insn), (ErrorKind::TooComplex, None));
    assert!(e.message.starts_with("BPF program is too large: 1000001 insns"), "{}", e.message);
    if let Some(v) = kernel(&p, 1) {
        assert!(!v.accepted);
        assert_eq!(v.errno, libc_e2big());
        assert_eq!(v.error_line, None, "no log: {}", v.log);
    }
    let empty = program(vec![]);
    let e = ours(&empty).expect_err("empty");
    assert_eq!((e.kind, e.insn), (ErrorKind::Other, None));
    assert!(e.message.contains("E2BIG"), "{}", e.message);
    if let Some(v) = kernel(&empty, 1) {
        assert_eq!((v.accepted, v.errno, v.error_line), (false, libc_e2big(), None));
    }
}

/// `E2BIG` (7 on Linux).
fn libc_e2big() -> i32 {
    7
}

#[test]
fn subprograms_and_their_bounds() {
    let p = asm("r1 = 1\n\
         call f\n\
         call g\n\
         exit\n\
         f:\n\
         r0 = r1\n\
         exit\n\
         g:\n\
         r0 = 0x100000000 ll\n\
         r1 = 1\n\
         if r1 > 0 goto done\n\
         r0 = 0\n\
         done:\n\
         exit");
    let cfg = accepted_like_kernel(&p);
    assert_eq!(cfg.slots, 12);
    let bounds: Vec<_> = cfg.subprogs.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(bounds, [(0, 4), (4, 6), (6, 12)]);
    assert!(cfg.subprogs.iter().all(|s| !s.is_global && !s.has_tail_call && !s.has_ld_abs));
    assert_eq!(cfg.subprog_of(7), Some(2));
    assert_eq!(cfg.subprog_of(5), Some(1));
    assert_eq!(cfg.subprog_of(11), Some(2));
    assert_eq!(cfg.subprog_of(12), None);
    assert_eq!(cfg.subprog_starting_at(4), Some(1));
    assert_eq!(cfg.subprog_starting_at(5), None);
    // Slots and instruction indices.
    assert_eq!(cfg.insn_at[6], Some(6));
    assert_eq!(cfg.insn_at[7], None);
    assert_eq!(cfg.insn_at[8], Some(7));
    assert_eq!(cfg.slot_of, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]);
    assert_eq!(cfg.insn(&p, 8), Some(&p.insns[7]));
    assert_eq!(cfg.insn(&p, 7), None);
    // Prune points: after each call (2, 3), each call's target (4, 6), the conditional
    // jump (9) and its target (11), not its fall-through (10); the local calls (1, 2).
    assert_eq!(slots(&cfg.prune_point), [1, 2, 3, 4, 6, 9, 11]);
    assert_eq!(slots(&cfg.jmp_point), [2, 3, 4, 6, 11]);
    assert!(slots(&cfg.force_checkpoint).is_empty());
}

#[test]
fn prune_points_and_callbacks() {
    // r2 = func cb; bpf_loop(4, cb, 0, 0); callbacks are forced checkpoints.
    let p = asm("r2 = func cb ll\n\
         r1 = 4\n\
         r3 = 0\n\
         r4 = 0\n\
         call 181\n\
         r6 = r1\n\
         if r6 == 0 goto out\n\
         call 5\n\
         out:\n\
         goto +0\n\
         r0 = 0\n\
         exit\n\
         cb:\n\
         r0 = 0\n\
         exit");
    let cfg = ours(&p).expect("accepted");
    assert_eq!(slots(&cfg.prune_point), [0, 2, 5, 6, 7, 9, 10, 12]);
    assert_eq!(slots(&cfg.force_checkpoint), [5]);
    assert_eq!(slots(&cfg.calls_callback), [5]);
    assert_eq!(slots(&cfg.jmp_point), [2, 5, 6, 9, 10, 12]);
    assert_eq!(cfg.subprogs.len(), 2);
    assert!(!cfg.test_state_freq);
    let freq = Config {
        flags: bpflab_verifier::Flags { test_state_freq: true, ..Default::default() },
        ..Config::default()
    };
    let reg = HelperRegistry::standard();
    assert!(analyze(&p, 0, &reg, &freq).unwrap().test_state_freq);
    let unpriv = Config { privileged: false, ..freq };
    // Unprivileged, the func load is refused (and test_state_freq would be ignored).
    assert!(analyze(&p, 0, &reg, &unpriv).is_err());
    // A timer callback: only the call is a prune point (async callback).
    let cfg = ours(&asm("r1 = 0\nr2 = 0\ncall 170\nexit")).unwrap();
    assert_eq!(slots(&cfg.prune_point), [2, 3]);
    assert!(slots(&cfg.calls_callback).is_empty());
}

/// The kernel's `Live regs before insn:` table: per slot, the registers r0..r9 shown live.
fn kernel_live_regs(log: &str) -> Vec<(usize, u16)> {
    let mut out = Vec::new();
    let mut lines = log.lines().skip_while(|l| !l.starts_with("Live regs before insn:"));
    lines.next();
    for line in lines {
        let Some((head, rest)) = line.split_once(": ") else { break };
        let Some(Ok(slot)) = head.split_whitespace().last().map(str::parse::<usize>) else {
            break;
        };
        // Ten columns, `.` or the register's digit, then a space; the state trace that
        // follows the table does not look like that.
        let regs = rest.as_bytes();
        let is_table = regs.len() > 10
            && regs[10] == b' '
            && regs[..10].iter().enumerate().all(|(r, &c)| c == b'.' || c == b'0' + r as u8);
        if !is_table {
            break;
        }
        let mut mask = 0u16;
        for (r, &c) in regs[..10].iter().enumerate() {
            if c != b'.' {
                mask |= 1 << r;
            }
        }
        out.push((slot, mask));
    }
    out
}

/// Our liveness equals the kernel's for every slot it prints (r0..r9; r10 is never shown).
fn live_like_kernel(p: &Program, cfg: &Cfg, name: &str) {
    let Some(v) = kernel(p, BPF_LOG_LEVEL2) else { return };
    check_live(&v, cfg, name);
}

fn check_live(v: &KernelVerdict, cfg: &Cfg, name: &str) {
    let theirs = kernel_live_regs(&v.log);
    assert!(!theirs.is_empty(), "{name}: no liveness table in:\n{}", v.log);
    let ours: Vec<(usize, u16)> = cfg
        .insn_at
        .iter()
        .enumerate()
        .filter(|(_, i)| i.is_some())
        .map(|(s, _)| (s, cfg.live_in[s] & 0x3ff))
        .collect();
    assert_eq!(ours, theirs, "{name}: ours vs the kernel's (slot, live mask)");
}

#[test]
fn liveness_of_a_small_program() {
    let p = asm("r6 = r1\n\
         r1 = 0\n\
         if r6 == 0 goto +1\n\
         r0 = 1\n\
         call 5\n\
         r0 = r6\n\
         exit");
    let cfg = accepted_like_kernel(&p);
    // r1 before 0; r6 from 1 on; r0 at the exit only (the call defines it).
    assert_eq!(cfg.live_in, [0x002, 0x040, 0x040, 0x040, 0x040, 0x040, 0x001]);
    live_like_kernel(&p, &cfg, "small");
}

#[test]
fn liveness_of_calls_stores_atomics_and_legacy_loads() {
    let cases = [
        (
            "local call",
            "r1 = 3\ncall f\nexit\nf:\nr0 = r1\nexit",
            vec![0x03c, 0x03e, 0x001, 0x002, 0x001],
        ),
        (
            "helper args",
            // bpf_get_prandom_u32 (0 args), bpf_probe_read_kernel (3 args).
            "r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\nr4 = 7\ncall 113\ncall 7\nexit",
            vec![0x400, 0x002, 0x002, 0x006, 0x00e, 0x00e, 0x000, 0x001],
        ),
        (
            "stores and atomics",
            "r1 = 5\n*(u64 *)(r10 -8) = r1\n*(u32 *)(r10 -16) = 7\n\
             r2 = 1\nlock *(u64 *)(r10 -8) += r2\nr2 = atomic64_fetch_add((u64 *)(r10 -8), r2)\n\
             r0 = 0\nr0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r2)\nr0 = *(u64 *)(r10 -8)\nexit",
            vec![0x400, 0x402, 0x400, 0x400, 0x404, 0x404, 0x404, 0x405, 0x400, 0x001],
        ),
        ("ld_abs", "r6 = r1\nr0 = *(u16 *)skb[12]\nr0 = 0\nexit", vec![0x7bf, 0x7ff, 0x000, 0x001]),
        (
            "alu, endian, neg",
            "r1 = 1\nr2 = 2\nr1 += r2\nr1 = be16 r1\nr1 = -r1\nw0 = w1\nexit",
            vec![0x000, 0x002, 0x006, 0x002, 0x002, 0x002, 0x001],
        ),
    ];
    for (name, src, want) in cases {
        let p = asm(src);
        let cfg = ours(&p).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let got: Vec<u16> = cfg
            .insn_at
            .iter()
            .zip(&cfg.live_in)
            .filter(|(i, _)| i.is_some())
            .map(|(_, &l)| l)
            .collect();
        assert_eq!(got, want, "{name}");
        live_like_kernel(&p, &cfg, name);
    }
}

#[test]
fn the_fixture_programs_pass_and_their_liveness_is_the_kernels() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests");
    let reg = HelperRegistry::standard();
    let config = Config::default();
    let mut checked = 0;
    let mut compared = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    entries.sort();
    let live = kernel_available();
    for path in entries {
        let bytes = std::fs::read(&path).expect("read");
        let Ok(obj) = bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(&path))
        else {
            continue;
        };
        let c = &obj.collection;
        for (i, p) in c.programs.iter().enumerate() {
            let name = format!("{}:{}", path.file_name().unwrap().to_string_lossy(), p.name);
            let cfg = analyze_in(c, i, &reg, &config).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            checked += 1;
            if !live || p.prog_type == ProgType::Unspec {
                continue;
            }
            let opts = VerdictOptions { log_level: BPF_LOG_LEVEL2, ..VerdictOptions::default() };
            let Ok(v) = kernel_verdict(c, i, &opts) else { continue };
            // Programs the kernel refuses before its liveness pass print no table.
            if v.log.contains("Live regs before insn:") {
                check_live(&v, &cfg, &name);
                compared += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} fixture programs");
    eprintln!("{checked} fixture programs analyzed, {compared} compared with the kernel");
    assert!(!live || compared > 50, "only {compared} liveness tables compared");
}

#[test]
fn decode_errors_get_the_kernels_messages() {
    let raw = |code, dst, src, off, imm| RawInsn { code, dst, src, off, imm };
    let exit = raw(0x95, 0, 0, 0, 0);
    let mov0 = raw(0xb7, 0, 0, 0, 0);
    let cases: Vec<(Vec<RawInsn>, &str)> = vec![
        (vec![raw(0x07, 0, 0, 2, 1), exit], "BPF_ALU uses reserved fields"),
        (vec![mov0, raw(0x87, 0, 0, 0, 1), exit], "BPF_NEG uses reserved fields"),
        (vec![mov0, raw(0xd4, 0, 0, 0, 8), exit], "BPF_END uses reserved fields"),
        (vec![raw(0xbf, 0, 1, 0, 1), exit], "BPF_MOV uses reserved fields"),
        (vec![raw(0x61, 0, 1, 0, 1), exit], "BPF_LDX uses reserved fields"),
        (vec![raw(0x21, 0, 1, 0, 0), exit], "BPF_LDX uses reserved fields"),
        (vec![raw(0x99, 0, 1, 0, 0), exit], "unknown opcode 99"),
        (vec![raw(0x62, 10, 1, -4, 0), mov0, exit], "BPF_ST uses reserved fields"),
        (vec![raw(0x63, 10, 1, -4, 1), mov0, exit], "BPF_STX uses reserved fields"),
        (vec![raw(0xdb, 10, 1, -8, 2), mov0, exit], "BPF_ATOMIC uses invalid atomic opcode 02"),
        (vec![raw(0xff, 0, 0, 0, 0), exit], "unknown opcode ff"),
        (vec![raw(0xe4, 0, 0, 0, 0), exit], "unknown opcode e4"),
        (vec![raw(0x05, 0, 0, 0, 1), mov0, exit], "BPF_JA uses reserved fields"),
        (vec![raw(0x85, 1, 0, 0, 5), mov0, exit], "BPF_CALL uses reserved fields"),
        (vec![raw(0x85, 0, 3, 0, 5), mov0, exit], "BPF_CALL uses reserved fields"),
        (vec![mov0, raw(0x95, 0, 1, 0, 0)], "BPF_EXIT uses reserved fields"),
        (vec![mov0, raw(0x15, 0, 1, 0, 0), exit], "BPF_JMP/JMP32 uses reserved fields"),
        (vec![mov0, raw(0x1d, 0, 1, 0, 1), exit], "BPF_JMP/JMP32 uses reserved fields"),
        (vec![raw(0x18, 0, 7, 0, 1), RawInsn::default(), exit], "unrecognized bpf_ld_imm64 insn"),
        (
            vec![raw(0x18, 0, 0, 1, 1), RawInsn::default(), exit],
            "BPF_LD_IMM64 uses reserved fields",
        ),
        (vec![raw(0x18, 0, 0, 0, 1), raw(0x07, 0, 0, 0, 0), exit], "invalid bpf_ld_imm64 insn"),
        (vec![raw(0x18, 0, 1, 0, 1), raw(0, 0, 0, 0, 5), exit], "unrecognized bpf_ld_imm64 insn"),
        (vec![mov0, exit, raw(0x18, 0, 0, 0, 1)], "last insn is not an exit or jmp"),
        (vec![raw(0xb7, 11, 0, 0, 0), exit], "R11 is invalid"),
        (vec![raw(0xbf, 0, 11, 0, 0), exit], "R11 is invalid"),
        (
            vec![raw(0xbf, 6, 1, 0, 0), raw(0x30, 1, 0, 0, 0), exit],
            "BPF_LD_[ABS|IND] uses reserved fields",
        ),
        (vec![raw(0x86, 0, 0, 0, 5), mov0, exit], "unknown opcode 86"),
        (vec![raw(0x00, 0, 0, 0, 0), mov0, exit], "unknown opcode 00"),
        (vec![mov0, raw(0x8f, 0, 0, 0, 0), exit], "unknown opcode 8f"),
    ];
    for (slots, want) in cases {
        let e = decode_program(&slots).expect_err(want);
        let v = decode_error_message(&e);
        assert_eq!(v.message, want, "{e}");
        assert_eq!(v.insn, Some(e.index), "{want}");
        assert_eq!(v.kind, ErrorKind::classify(want), "{want}");
    }
}

/// Kernel messages of the checks this pass makes (everything before the path walk).
const PRE_WALK_MESSAGES: &[&str] = &[
    "jump out of range from insn",
    "call to invalid destination",
    "too many subprograms",
    "last insn is not an exit or jmp",
    "unreachable insn",
    "back-edge from insn",
    "jump into the middle of ldimm64",
    "is not allowed in subprogs without BTF",
    "is only allowed in functions that return 'int'",
    "is not pointing to valid bpf_map",
    "direct value offset of",
    "no direct value access support",
    "invalid access to map value pointer",
    "exception callback",
    "number of funcs in func_info",
    "func_info BTF section doesn't match",
    "loading/calling other bpf or kernel functions",
    "invalid type id",
    "line_info",
    "can be sleepable",
    "can only be sleepable",
    "cannot call kernel function from non-GPL compatible program",
    "failed to find BTF for kernel function",
    "too many different kernel function calls",
    "Sleepable programs can only use",
    "bpf_struct_ops map cannot be used in prog",
    "only one cgroup storage of each type is allowed",
    "Only one arena per program",
    "The total number of maps per program",
];

/// The kernel's selftest objects (built by the corpus, `verifier/corpus/selftests/obj`):
/// wherever the kernel stops a program with a pre-walk error we stop it with the same line,
/// we stop no program the kernel lets past these checks, and our liveness is the kernel's
/// for every program small enough for a level-2 log.
#[test]
fn the_selftests_agree_with_the_kernel_before_the_walk() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/selftests/obj");
    let Ok(read) = std::fs::read_dir(&dir) else {
        eprintln!("no selftest objects at {}: build the corpus first", dir.display());
        return;
    };
    if !kernel_available() {
        return;
    }
    let mut paths: Vec<_> = read
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect();
    paths.sort();
    let reg = HelperRegistry::standard();
    let config = Config::default();
    let (mut programs, mut live_compared, mut kernel_pre_walk) = (0, 0, 0);
    let mut disagreements = Vec::new();
    let mut unavailable = Vec::new();
    for path in paths {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(obj) = bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(&path))
        else {
            continue;
        };
        let c = &obj.collection;
        for (i, p) in c.programs.iter().enumerate() {
            if p.prog_type == ProgType::Unspec {
                continue;
            }
            let Ok(v) = kernel_verdict(c, i, &VerdictOptions::default()) else { continue };
            if !v.accepted && v.error_line.is_none() {
                // Refused before the verifier ran (attach target, flags): nothing to compare.
                continue;
            }
            programs += 1;
            let name = format!("{}:{}", path.file_name().unwrap().to_string_lossy(), p.name);
            let ours = analyze_in(c, i, &reg, &config);
            let theirs = v
                .error_line
                .as_deref()
                .filter(|l| !v.accepted && PRE_WALK_MESSAGES.iter().any(|m| l.contains(m)));
            kernel_pre_walk += usize::from(theirs.is_some());
            match (&ours, theirs) {
                (Err(e), Some(line)) if e.message == line => {}
                (Ok(_), None) => {}
                (Err(e), _) => disagreements
                    .push(format!("{name}: ours {:?}, kernel {:?}", e.message, v.error_line)),
                (Ok(_), Some(line)) => {
                    disagreements.push(format!("{name}: ours passes, kernel {line:?}"))
                }
            }
            let Ok(cfg) = ours else { continue };
            // Where a helper or kfunc is not available to the program type, the kernel has no
            // prototype and takes r1-r5 as read. Kfunc availability is not known before the
            // walk, and helper availability is the helper registry's (a table in vm, which
            // can differ from the kernel's): those programs are left out here.
            let kfunc_refused = v.error_line.as_deref().is_some_and(|l| {
                l.starts_with("calling kernel function") && l.ends_with("is not allowed")
            });
            let helper_refused = p.insns.iter().any(|insn| match *insn {
                Insn::Call { kind: CallKind::Helper, imm, .. } => {
                    reg.get(i64::from(imm)).is_some_and(|h| !reg.allowed(h, p.prog_type))
                }
                _ => false,
            });
            if kfunc_refused || helper_refused {
                unavailable.push(name);
                continue;
            }
            if cfg.slots > 2000 || v.processed_insns.is_none_or(|n| n > 20_000) {
                continue;
            }
            let opts = VerdictOptions { log_level: BPF_LOG_LEVEL2, ..VerdictOptions::default() };
            let Ok(v2) = kernel_verdict(c, i, &opts) else { continue };
            if !v2.log.contains("Live regs before insn:") {
                continue;
            }
            let theirs = kernel_live_regs(&v2.log);
            let ours: Vec<(usize, u16)> = cfg
                .insn_at
                .iter()
                .enumerate()
                .filter(|(_, i)| i.is_some())
                .map(|(s, _)| (s, cfg.live_in[s] & 0x3ff))
                .collect();
            live_compared += 1;
            if ours != theirs {
                let first = ours.iter().zip(&theirs).find(|(a, b)| a != b);
                let table: String = v2
                    .log
                    .lines()
                    .skip_while(|l| !l.starts_with("Live regs"))
                    .take(cfg.slots.min(40) + 1)
                    .map(|l| format!("    {l}\n"))
                    .collect();
                disagreements.push(format!(
                    "{name}: liveness differs, first (ours, kernel) {first:?}\n{table}"
                ));
            }
        }
    }
    eprintln!(
        "{programs} selftest programs, {kernel_pre_walk} stopped by the kernel before its walk, \
         {live_compared} liveness tables compared, {} disagreements; left out for helper or \
         kfunc availability: {unavailable:?}",
        disagreements.len()
    );
    assert!(live_compared > 1000, "only {live_compared} liveness tables compared");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

/// With `BPF_F_TEST_STATE_FREQ` the kernel stores a state at every prune point it reaches:
/// on programs whose walk reaches every instruction once, its state count is the number of
/// our prune points.
#[test]
fn prune_points_are_where_the_kernel_stores_states_under_test_state_freq() {
    let cases = [
        // Local call (1), after it (2), its target (6); goto target (3); after a helper (5).
        ("r1 = 1\ncall f\ngoto +0\nr0 = 0\ncall 5\nexit\nf:\nr0 = r1\nexit", 5),
        // A conditional jump (1) and its target (3), not its fall-through (2).
        ("r0 = 1\nif r0 == 0 goto +1\nr0 += 1\nr0 += 1\nexit", 2),
        ("r1 = 0x1 ll\ngoto +0\nr0 = 0\nexit", 1),
        ("gotol +0\nr0 = 0\nexit", 1),
        ("r0 = 0\nexit", 0),
    ];
    for (src, want) in cases {
        let p = asm(src);
        let cfg = ours(&p).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        assert_eq!(cfg.prune_point.iter().filter(|&&b| b).count(), want, "{src}");
        if !kernel_available() {
            continue;
        }
        let opts = VerdictOptions {
            prog_flags: bpflab_kernel::verdict::prog_flags::TEST_STATE_FREQ,
            ..VerdictOptions::default()
        };
        let v = kernel_verdict(&Collection::single(p.clone()), 0, &opts).expect("decides");
        assert!(v.accepted, "{src}: {}", v.log);
        assert_eq!(v.total_states, Some(want as u64), "{src}: {}", v.log);
    }
}

/// `calls_xdp` of the calls fixture (six functions, with BTF func and line info), and its
/// collection.
fn calls_fixture() -> (Collection, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests/calls.bpf.o");
    let bytes = std::fs::read(&path).expect("fixture");
    let obj =
        bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(&path)).expect("loads");
    let i = obj.collection.programs.iter().position(|p| p.name == "calls_xdp").expect("calls_xdp");
    (obj.collection, i)
}

/// Ours on the (changed) fixture rejects with `message`, and so does the kernel.
fn fixture_rejects_like_kernel(c: &Collection, i: usize, message: &str) {
    let e = analyze_in(c, i, &HelperRegistry::standard(), &Config::default()).expect_err(message);
    assert_eq!(e.message, message);
    assert_eq!(e.kind, ErrorKind::classify(message));
    if kernel_available() {
        let v = kernel_verdict(c, i, &VerdictOptions::default()).expect("decides");
        assert!(!v.accepted, "{message}: kernel accepted");
        // The kernel prints some func info messages without a newline, so the statistics
        // that follow end up on the same line.
        let line = v.error_line.as_deref().unwrap_or("");
        let line = line.split_once("verification time").map_or(line, |(m, _)| m);
        assert_eq!(line, message, "kernel log:\n{}", v.log);
    }
}

#[test]
fn func_and_line_info_must_match_the_functions() {
    let (c, i) = calls_fixture();
    let reg = HelperRegistry::standard();
    let cfg = analyze_in(&c, i, &reg, &Config::default()).expect("accepted");
    let p = &c.programs[i];
    assert_eq!(cfg.subprogs.len(), 6);
    let starts: Vec<u32> = cfg.subprogs.iter().map(|s| s.start as u32).collect();
    let info: Vec<u32> = p.func_info.iter().map(|f| f.0).collect();
    assert_eq!(starts, info);
    // The program is global, its static helpers are not (BTF linkage).
    assert!(cfg.subprogs[0].is_global);
    assert!(cfg.subprogs[1..].iter().all(|s| !s.is_global), "{:?}", cfg.subprogs);

    // One func info record fewer than functions.
    let mut c2 = c.clone();
    c2.programs[i].func_info.pop();
    fixture_rejects_like_kernel(
        &c2,
        i,
        "number of funcs in func_info doesn't match number of subprogs",
    );
    // A record off a function's start.
    let mut c2 = c.clone();
    c2.programs[i].func_info[1].0 += 1;
    fixture_rejects_like_kernel(
        &c2,
        i,
        "func_info BTF section doesn't match subprog layout in BPF program",
    );
    // A record naming a type that is no function (type 1 of the object's BTF is not one).
    let mut c2 = c.clone();
    c2.programs[i].func_info[1].1 = 1;
    fixture_rejects_like_kernel(&c2, i, "invalid type id 1 in func info");
    // A function without line info at its start.
    let mut c2 = c.clone();
    let sub1 = cfg.subprogs[1].start as u32;
    c2.programs[i].line_info.retain(|l| l.slot != sub1);
    fixture_rejects_like_kernel(&c2, i, "missing bpf_line_info for func#1");
    // Line info out of order.
    let mut c2 = c.clone();
    let li = &mut c2.programs[i].line_info;
    li.swap(1, 2);
    let (a, b) = (li[1].slot, li[2].slot);
    fixture_rejects_like_kernel(
        &c2,
        i,
        &format!("Invalid line_info[2].insn_off:{b} (prev_offset:{a} prog->len:{})", cfg.slots),
    );
}

#[test]
fn line_info_rules_without_btf() {
    let reg = HelperRegistry::standard();
    let line = |slot| bpflab_vm::engine::KernelLineInfo {
        slot,
        file_name_off: 0,
        line_off: 0,
        line_col: 0,
    };
    // On the second half of an LD_IMM64.
    let mut p = asm("r0 = 0x100000000 ll\nexit");
    p.line_info = vec![line(0), line(1)];
    let e = analyze(&p, 0, &reg, &Config::default()).expect_err("tail");
    assert_eq!(e.message, "Invalid insn code at line_info[1].insn_off");
    // Past the end.
    p.line_info = vec![line(0), line(3)];
    let e = analyze(&p, 0, &reg, &Config::default()).expect_err("past the end");
    assert_eq!(e.message, "Invalid line_info[1].insn_off:3 (prev_offset:0 prog->len:3)");
    // The last functions without any.
    let mut p = asm("call f\nexit\nf:\nr0 = 0\ncall g\nexit\ng:\nr0 = 1\nexit");
    p.line_info = vec![line(0), line(1)];
    let e = analyze(&p, 0, &reg, &Config::default()).expect_err("missing");
    assert_eq!(e.message, "missing bpf_line_info for 2 funcs starting from func#1");
    // Line info without func info still forbids LD_ABS in subprograms.
    let mut p = asm("r6 = r1\ncall f\nexit\nf:\nr0 = *(u8 *)skb[0]\nexit");
    p.line_info = vec![line(0), line(3)];
    let e = analyze(&p, 0, &reg, &Config::default()).expect_err("ld_abs");
    assert_eq!(e.message, "LD_ABS is not allowed in subprogs without BTF");
}

#[test]
fn only_some_program_types_may_sleep() {
    let sleepable = |t| {
        let mut p = asm("r0 = 0\nexit").with_type(t);
        p.flags = 1 << 4;
        p
    };
    rejects_like_kernel(
        &sleepable(ProgType::Xdp),
        ErrorKind::Other,
        None,
        "Only fentry/fexit/fmod_ret, lsm, iter, uprobe, and struct_ops programs can be sleepable",
    );
    accepted_like_kernel(&sleepable(ProgType::Kprobe));
    rejects_like_kernel(
        &asm("r0 = 0\nexit").with_type(ProgType::Syscall),
        ErrorKind::Other,
        None,
        "Syscall programs can only be sleepable",
    );
    accepted_like_kernel(&sleepable(ProgType::Syscall));
    // The load flag may come from the configuration too.
    let config = Config {
        flags: bpflab_verifier::Flags { sleepable: true, ..Default::default() },
        ..Config::default()
    };
    let p = asm("r0 = 0\nexit").with_type(ProgType::SchedCls);
    assert!(analyze(&p, 0, &HelperRegistry::standard(), &config).is_err());
    // The CFG comes first.
    let mut p = sleepable(ProgType::Xdp);
    p.insns.push(Insn::Exit);
    assert_eq!(ours(&p).unwrap_err().message, "unreachable insn 2");
}

/// Random small programs of jumps, calls, exits and LD_IMM64s (most of them malformed):
/// the pass never panics, what it returns is consistent, and it agrees with the kernel on
/// whether the program is stopped before the walk and with which error line.
mod random {
    use super::*;
    use bpflab_vm::isa::{AluOp, JmpCond, MemSize, Width};
    use proptest::prelude::*;

    fn insn() -> impl Strategy<Value = Insn> {
        let mov = |dst: u8, imm: i32| Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: Reg::new(dst).expect("reg"),
            src: Operand::Imm(imm),
        };
        prop_oneof![
            3 => (0u8..2, -2i32..3).prop_map(move |(d, i)| mov(d, i)),
            3 => Just(Insn::Exit),
            2 => (-2i16..5).prop_map(|off| Insn::Ja { off }),
            1 => (-4i32..5).prop_map(|imm| Insn::JaLong { imm }),
            3 => (-2i16..5).prop_map(|off| Insn::Jump {
                width: Width::W64,
                cond: JmpCond::Eq,
                dst: Reg::R0,
                src: Operand::Imm(0),
                off,
            }),
            2 => (-3i32..7).prop_map(|imm| Insn::Call { kind: CallKind::Local, imm, off: 0 }),
            1 => Just(Insn::Call { kind: CallKind::Helper, imm: 5, off: 0 }),
            1 => Just(Insn::Call { kind: CallKind::Helper, imm: 12, off: 0 }),
            1 => Just(Insn::ld_imm64(Reg::R1, 7)),
            1 => Just(Insn::LdAbs { size: MemSize::B, imm: 0 }),
        ]
    }

    fn raw_slot() -> impl Strategy<Value = RawInsn> {
        let codes = proptest::sample::select(vec![
            0x07u8, 0xb7, 0xbf, 0x87, 0xd4, 0x61, 0x99, 0x62, 0x63, 0xdb, 0x05, 0x06, 0x15, 0x1d,
            0x85, 0x95, 0x18, 0x00, 0x30, 0xff, 0xe5,
        ]);
        (codes, 0u8..12, 0u8..12, -3i16..4, -3i32..4)
            .prop_map(|(code, dst, src, off, imm)| RawInsn { code, dst, src, off, imm })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whatever the bytes, a raw program gets an answer, and one exactly when it does not
        /// decode.
        #[test]
        fn raw_programs_never_panic(slots in proptest::collection::vec(raw_slot(), 1..16)) {
            let reg = HelperRegistry::standard();
            let got = bpflab_verifier::cfg::raw_program_error(
                &slots,
                ProgType::SocketFilter,
                &reg,
                &Config::default(),
            );
            prop_assert_eq!(got.is_none(), decode_program(&slots).is_ok());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn agrees_with_the_kernel(
            insns in proptest::collection::vec(insn(), 1..12),
            end_with_exit in proptest::bool::weighted(0.7),
        ) {
            // LD_ABS needs the context in r6: start with r6 = r1.
            let mut all = vec![Insn::Alu {
                width: Width::W64,
                op: AluOp::Mov,
                dst: Reg::R6,
                src: Operand::Reg(Reg::R1),
            }];
            all.extend(insns);
            if end_with_exit {
                all.push(Insn::Exit);
            }
            let p = program(all);
            let ours = super::ours(&p);
            if let Ok(cfg) = &ours {
                prop_assert_eq!(cfg.subprogs[0].start, 0);
                prop_assert!(cfg.subprogs.windows(2).all(|w| w[0].end == w[1].start));
                prop_assert_eq!(cfg.subprogs.last().map(|s| s.end), Some(cfg.slots));
                prop_assert!(cfg.live_in.iter().all(|&m| m & !0x7ff == 0));
                prop_assert_eq!(cfg.prune_point.len(), cfg.slots);
            }
            if let Some(v) = kernel(&p, 1) {
                let theirs = v.error_line.as_deref().filter(|l| {
                    !v.accepted && PRE_WALK_MESSAGES.iter().any(|m| l.contains(m))
                });
                match (&ours, theirs) {
                    (Err(e), Some(line)) => prop_assert_eq!(e.message.as_str(), line),
                    (Ok(_), None) => {}
                    (Err(e), None) => prop_assert!(false, "ours {:?}, kernel {:?}\n{}",
                        e.message, v.error_line, bpflab_vm::asm::disassemble(&p.insns)),
                    (Ok(_), Some(line)) => prop_assert!(false, "ours passes, kernel {:?}\n{}",
                        line, bpflab_vm::asm::disassemble(&p.insns)),
                }
            }
        }
    }
}

/// Raw programs bpflab's decoder refuses: the kernel's first error, in the kernel's order
/// (each case's line as this machine's kernel printed it for the same bytes).
#[test]
fn raw_programs_get_the_kernels_first_error() {
    use bpflab_verifier::cfg::raw_program_error;
    use bpflab_verifier::error::Stop;
    let raw = |code, dst, src, off, imm| RawInsn { code, dst, src, off, imm };
    let exit = raw(0x95, 0, 0, 0, 0);
    let mov0 = raw(0xb7, 0, 0, 0, 0);
    let alu_reserved = raw(0x07, 0, 0, 2, 1);
    let cases: Vec<(Vec<RawInsn>, &str)> = vec![
        // The path walk's field checks come after the CFG: unreachable first.
        (vec![mov0, exit, alu_reserved, exit], "unreachable insn 2"),
        // The LD_IMM64 pass's come before it.
        (vec![mov0, exit, raw(0x61, 0, 1, 0, 1), exit], "BPF_LDX uses reserved fields"),
        (vec![mov0, exit, raw(0xff, 0, 0, 0, 0), exit], "unknown opcode ff"),
        // And the subprogram checks before both.
        (vec![alu_reserved, raw(0x05, 0, 0, 5, 0), exit], "jump out of range from insn 1 to 7"),
        (
            vec![mov0, raw(0x05, 0, 0, 5, 0), raw(0xff, 0, 0, 0, 0), exit],
            "jump out of range from insn 1 to 7",
        ),
        (vec![mov0, exit, raw(0x18, 0, 0, 0, 1)], "last insn is not an exit or jmp"),
        // The first of the LD_IMM64 pass's errors in slot order.
        (
            vec![
                mov0,
                raw(0x18, 0, 0, 0, 1),
                raw(0x07, 0, 0, 0, 0),
                raw(0x05, 0, 0, 1, 0),
                raw(0xff, 0, 0, 0, 0),
                exit,
            ],
            "invalid bpf_ld_imm64 insn",
        ),
        // The path walk: fall-through first, into calls.
        (
            vec![
                raw(0x61, 0, 1, 0, 0),
                raw(0x15, 0, 0, 2, 0),
                alu_reserved,
                exit,
                raw(0x87, 0, 0, 0, 1),
                exit,
            ],
            "BPF_ALU uses reserved fields",
        ),
        (
            vec![
                raw(0xb7, 1, 0, 0, 0),
                raw(0x85, 0, 1, 0, 2),
                raw(0x85, 1, 0, 0, 5),
                exit,
                mov0,
                alu_reserved,
                exit,
            ],
            "BPF_ALU uses reserved fields",
        ),
        (vec![raw(0xb7, 11, 0, 0, 0), exit], "R11 is invalid"),
    ];
    let reg = HelperRegistry::standard();
    for (slots, want) in cases {
        let got = raw_program_error(&slots, ProgType::SocketFilter, &reg, &Config::default());
        match got {
            Some(Stop::Reject(e)) => assert_eq!(e.message, want),
            other => panic!("{want}: {other:?}"),
        }
    }
    // Programs that decode have no raw error.
    assert!(
        raw_program_error(&[mov0, exit], ProgType::SocketFilter, &reg, &Config::default())
            .is_none()
    );
    // may_goto is the kernel's, not the decoder's.
    let may_goto = raw(0xe5, 0, 0, 0, 0);
    let got = raw_program_error(
        &[may_goto, mov0, exit],
        ProgType::SocketFilter,
        &reg,
        &Config::default(),
    );
    assert!(matches!(got, Some(Stop::Unsupported(_))), "{got:?}");
}

/// The largest program the kernel takes is analyzed in bounded time: a million slots of
/// conditional jumps over one another.
#[test]
fn a_million_slots() {
    use bpflab_vm::isa::{JmpCond, Width};
    let n = 1_000_000;
    let mut insns: Vec<Insn> = (0..n - 2)
        .map(|i| match i % 3 {
            0 => Insn::Jump {
                width: Width::W64,
                cond: JmpCond::Gt,
                dst: Reg::R1,
                src: Operand::Imm(i as i32),
                off: 1,
            },
            1 => Insn::Alu {
                width: Width::W64,
                op: bpflab_vm::isa::AluOp::Add,
                dst: Reg::R0,
                src: Operand::Reg(Reg::R1),
            },
            _ => Insn::Alu {
                width: Width::W64,
                op: bpflab_vm::isa::AluOp::Mov,
                dst: Reg::R1,
                src: Operand::Reg(Reg::R0),
            },
        })
        .collect();
    insns.push(Insn::Alu {
        width: Width::W64,
        op: bpflab_vm::isa::AluOp::Mov,
        dst: Reg::R0,
        src: Operand::Imm(0),
    });
    insns.push(Insn::Exit);
    let p = program(insns);
    let start = std::time::Instant::now();
    let cfg = ours(&p).expect("accepted");
    let took = start.elapsed();
    assert_eq!(cfg.slots, n);
    assert_eq!(cfg.live_in[0], 0b11, "r0 and r1 are read before written");
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    eprintln!("a million slots analyzed in {took:?}");
}

/// This kernel's BTF id of `name` (a kfunc), from its vmlinux BTF.
fn vmlinux_func(name: &str) -> Option<i32> {
    let btf = bpflab_btf::Btf::from_vmlinux().ok()?;
    btf.find_by_name(name, bpflab_btf::BtfKind::Func).map(|id| id as i32)
}

#[test]
fn kfunc_calls_before_the_walk() {
    let Some(throw) = vmlinux_func("bpf_throw") else {
        eprintln!("no vmlinux BTF with bpf_throw: skipped");
        return;
    };
    let call = |imm, off| {
        let mut p = asm("r1 = 0\nr0 = 0\nexit");
        p.insns.insert(1, Insn::Call { kind: CallKind::Kfunc, imm, off });
        p.with_type(ProgType::Xdp)
    };
    // A program that may call kfuncs.
    let cfg = ours(&call(throw, 0)).expect("passes the pre-walk checks");
    assert_eq!(cfg.kfunc_calls, [1]);
    let mut p = call(throw, 0);
    p.license = "MIT".into();
    rejects_like_kernel(
        &p,
        ErrorKind::Kfunc,
        Some(1),
        "cannot call kernel function from non-GPL compatible program",
    );
    for off in [-1, 1] {
        rejects_like_kernel(
            &call(throw, off),
            ErrorKind::Kfunc,
            Some(1),
            "failed to find BTF for kernel function",
        );
    }
    // 257 different kfuncs.
    let mut insns = Vec::new();
    for i in 0..257 {
        insns.push(Insn::Call { kind: CallKind::Kfunc, imm: 1000 + i, off: 0 });
    }
    insns.extend(assemble("r0 = 0\nexit").unwrap());
    let e = ours(&program(insns)).expect_err("too many");
    assert_eq!(
        (e.message.as_str(), e.insn),
        ("too many different kernel function calls", Some(256))
    );
    // The same one 300 times is one.
    let mut insns = vec![Insn::Call { kind: CallKind::Kfunc, imm: throw, off: 0 }; 300];
    insns.extend(assemble("r0 = 0\nexit").unwrap());
    assert!(ours(&program(insns)).is_ok());
}

fn fixture(file: &str) -> Collection {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests").join(file);
    let bytes = std::fs::read(&path).expect("fixture");
    bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(&path))
        .expect("loads")
        .collection
}

/// The first program and LD_IMM64 referring to map `map` (by name).
fn map_ref(c: &Collection, map: &str) -> (usize, usize) {
    let m = c.maps.iter().position(|s| s.name == map).expect("map") as i32;
    c.programs
        .iter()
        .enumerate()
        .find_map(|(p, prog)| {
            let at = prog.insns.iter().position(|i| {
                matches!(*i, Insn::LdImm64 {
                    imm,
                    src: PseudoSrc::MapIdx | PseudoSrc::MapIdxValue,
                    ..
                } if imm == m)
            })?;
            Some((p, at))
        })
        .expect("a reference")
}

#[test]
fn map_references_as_the_kernel_resolves_them() {
    // A direct value load from an array of several elements, and from a hash map.
    let c = fixture("maps_basic.bpf.o");
    for (map, message) in [
        ("arr", "invalid access to map value pointer, value_size=8 off=0"),
        ("hash", "no direct value access support for this map type"),
    ] {
        let mut c2 = c.clone();
        let (p, at) = map_ref(&c2, map);
        if let Insn::LdImm64 { src, .. } = &mut c2.programs[p].insns[at] {
            *src = PseudoSrc::MapIdxValue;
        }
        fixture_rejects_like_kernel(&c2, p, message);
    }
    // A global variable's offset past its section.
    let c = fixture("globals.bpf.o");
    let data = c.maps.iter().position(|m| m.name == "globals.data").unwrap();
    let size = c.maps[data].value_size as i32;
    let mut c2 = c.clone();
    let (p, at) = map_ref(&c2, "globals.data");
    if let Insn::LdImm64 { next_imm, .. } = &mut c2.programs[p].insns[at] {
        *next_imm = size;
    }
    fixture_rejects_like_kernel(
        &c2,
        p,
        &format!("invalid access to map value pointer, value_size={size} off={size}"),
    );
    // Sleepable programs may not use an LPM trie (the map check comes before the
    // program-type one).
    let mut c = fixture("lpm_trie.bpf.o");
    c.programs[0].flags |= 1 << 4;
    fixture_rejects_like_kernel(
        &c,
        0,
        "Sleepable programs can only use array, hash, ringbuf and local storage maps, also as \
         inner maps",
    );
}

/// A small BTF: `int`, `int (int cookie)`, global functions `main` and `cb` of that type,
/// and, if `tag`, the decl tag `exception_callback:cb` on `main`; `cb_linkage` is `cb`'s.
fn exception_btf(tag: bool, cb_linkage: u32) -> Vec<u8> {
    let strings = b"\0int\0cookie\0main\0cb\0exception_callback:cb\0";
    let (s_int, s_cookie, s_main, s_cb, s_tag) = (1u32, 5u32, 12u32, 17u32, 20u32);
    let mut types: Vec<u32> = vec![
        // 1: int
        s_int,
        1 << 24,
        4,
        (1 << 24) | 32,
        // 2: int (int cookie)
        0,
        (13 << 24) | 1,
        1,
        s_cookie,
        1,
        // 3: main
        s_main,
        (12 << 24) | 1,
        2,
        // 4: cb
        s_cb,
        (12 << 24) | cb_linkage,
        2,
    ];
    if tag {
        // 5: decl tag on main, the function itself (component -1)
        types.extend([s_tag, 17 << 24, 3, u32::MAX]);
    }
    let type_bytes: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend(0xeb9fu16.to_le_bytes());
    out.extend([1u8, 0]);
    for w in [24u32, 0, type_bytes.len() as u32, type_bytes.len() as u32, strings.len() as u32] {
        out.extend(w.to_le_bytes());
    }
    out.extend(type_bytes);
    out.extend(strings);
    out
}

#[test]
fn exception_callbacks_are_roots_of_the_cfg() {
    // main: r0 = 0; exit.  cb (nothing calls it): r0 = 0; exit.
    let mut p = asm("r0 = 0\nexit\nr0 = 0\nexit").with_type(ProgType::Xdp);
    p.func_info = vec![(0, 3), (2, 4)];
    let with = |btf: Vec<u8>| Collection {
        btf: Some(btf),
        programs: vec![p.clone()],
        ..Collection::default()
    };
    let reg = HelperRegistry::standard();
    let c = with(exception_btf(true, 1));
    let cfg = analyze_in(&c, 0, &reg, &Config::default()).expect("passes");
    assert_eq!(cfg.exception_callback, Some(1));
    assert!(cfg.subprogs[1].is_exception_cb && cfg.subprogs[1].is_global);
    assert_eq!(cfg.live_in[2], 0);
    if kernel_available() {
        let v = kernel_verdict(&c, 0, &VerdictOptions::default()).expect("decides");
        let line = v.error_line.unwrap_or_default();
        assert!(!PRE_WALK_MESSAGES.iter().any(|m| line.contains(m)), "{}", v.log);
    }
    // Without the tag, cb is no function: func info has a record too many.
    fixture_rejects_like_kernel(
        &with(exception_btf(false, 1)),
        0,
        "number of funcs in func_info doesn't match number of subprogs",
    );
    // The callback must be global.
    fixture_rejects_like_kernel(
        &with(exception_btf(true, 0)),
        0,
        "exception callback 'cb' must have global linkage",
    );
}

#[test]
fn packet_changing_functions_and_their_callers() {
    // main calls f, which calls g, which pulls packet data; h only reads the time.
    let p = asm("call f\ncall h\nr0 = 0\nexit\n\
         f:\ncall g\nexit\n\
         g:\nr2 = 0\ncall 39\nexit\n\
         h:\ncall 5\nexit")
    .with_type(ProgType::SchedCls);
    let cfg = accepted_like_kernel(&p);
    let changes: Vec<bool> = cfg.subprogs.iter().map(|s| s.changes_pkt_data).collect();
    assert_eq!(changes, [true, true, true, false]);
    // A tail call may run a program that does.
    let cfg = ours(&asm("r2 = 0\nr3 = 0\ncall 12\nr0 = 0\nexit")).unwrap();
    assert!(cfg.subprogs[0].changes_pkt_data);
    let cfg = ours(&asm("r0 = 0\nexit")).unwrap();
    assert!(!cfg.subprogs[0].changes_pkt_data);
}
