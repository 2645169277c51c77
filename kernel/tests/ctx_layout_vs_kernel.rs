//! The static context descriptions (`bpflab_vm::ctx::layout`) against the running kernel's
//! verifier: for every program type (and the expected attach types its rules depend on) the
//! kernel can load, every aligned (offset, size) over the context, read, sign-extending read
//! and write, must be allowed by the table exactly when the kernel's verifier accepts it.
//!
//! The accesses the table allows are loaded in batches (one program per direction and
//! target): an acceptance proves them all; a rejection names the first refused one in the
//! log ("invalid bpf_context access off=.. size=.."), which is recorded as a disagreement
//! and dropped before retrying. Each access the table refuses is one program the kernel must
//! reject with that message. Misaligned accesses are refused by every `is_valid_access`: the
//! table is checked to refuse all of them, and the kernel on a sample. Large contexts
//! (tracepoint records, syscall argument buffers) are covered at their start and their end.
//! Types the kernel cannot load print one SKIP line each.

use bpflab_kernel::{KernelError, KernelProgram, ProgLoadOptions, probe};
use bpflab_vm::ProgType;
use bpflab_vm::ctx::Target;
use bpflab_vm::ctx::layout::{self, AccessKind, CtxLayout, Object, attach as a};
use bpflab_vm::isa::{AluOp, CallKind, Insn, JmpCond, MemSize, Operand, Reg, Width};

/// `BPF_F_SLEEPABLE` (syscall programs must be sleepable).
const BPF_F_SLEEPABLE: u32 = 1 << 4;

/// What is checked: a program type with an expected attach type and load flags.
#[derive(Clone, Copy, Debug)]
struct Subject {
    prog_type: ProgType,
    attach: Option<u32>,
    flags: u32,
}

fn subjects() -> Vec<Subject> {
    use ProgType::*;
    let s = |prog_type, attach| Subject { prog_type, attach, flags: 0 };
    let mut v = vec![
        s(SocketFilter, None),
        s(SchedCls, None),
        s(SchedAct, None),
        s(CgroupSkb, Some(a::CGROUP_INET_INGRESS)),
        s(CgroupSkb, Some(a::CGROUP_INET_EGRESS)),
        s(LwtIn, None),
        s(LwtOut, None),
        s(LwtXmit, None),
        s(LwtSeg6local, None),
        s(SkSkb, None),
        s(FlowDissector, None),
        s(Xdp, None),
        s(Xdp, Some(a::XDP_DEVMAP)),
        s(Xdp, Some(a::XDP_CPUMAP)),
        s(SockOps, None),
        s(SkMsg, None),
        s(SkLookup, Some(a::SK_LOOKUP)),
        s(SkReuseport, None),
        s(SkReuseport, Some(a::SK_REUSEPORT_SELECT_OR_MIGRATE)),
        s(CgroupSock, None),
        s(CgroupSock, Some(a::CGROUP_INET_SOCK_RELEASE)),
        s(CgroupSock, Some(a::CGROUP_INET4_POST_BIND)),
        s(CgroupSock, Some(a::CGROUP_INET6_POST_BIND)),
        s(CgroupSysctl, None),
        s(CgroupSockopt, Some(a::CGROUP_GETSOCKOPT)),
        s(CgroupSockopt, Some(a::CGROUP_SETSOCKOPT)),
        s(CgroupDevice, None),
        s(Kprobe, None),
        s(Tracepoint, None),
        s(PerfEvent, None),
        s(RawTracepoint, None),
        s(RawTracepointWritable, None),
        s(Netfilter, Some(a::NETFILTER)),
        s(LircMode2, None),
        Subject { prog_type: Syscall, attach: None, flags: BPF_F_SLEEPABLE },
    ];
    for at in [
        a::CGROUP_INET4_BIND,
        a::CGROUP_INET6_BIND,
        a::CGROUP_INET4_CONNECT,
        a::CGROUP_INET6_CONNECT,
        a::CGROUP_UNIX_CONNECT,
        a::CGROUP_INET4_GETPEERNAME,
        a::CGROUP_INET6_GETPEERNAME,
        a::CGROUP_UNIX_GETPEERNAME,
        a::CGROUP_INET4_GETSOCKNAME,
        a::CGROUP_INET6_GETSOCKNAME,
        a::CGROUP_UNIX_GETSOCKNAME,
        a::CGROUP_UDP4_SENDMSG,
        a::CGROUP_UDP6_SENDMSG,
        a::CGROUP_UNIX_SENDMSG,
        a::CGROUP_UDP4_RECVMSG,
        a::CGROUP_UDP6_RECVMSG,
        a::CGROUP_UNIX_RECVMSG,
    ] {
        v.push(s(CgroupSockAddr, Some(at)));
    }
    v
}

/// One context access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Probe {
    off: i64,
    size: u32,
    kind: AccessKind,
}

fn mem_size(size: u32) -> MemSize {
    match size {
        1 => MemSize::B,
        2 => MemSize::H,
        4 => MemSize::W,
        _ => MemSize::Dw,
    }
}

fn mov(dst: Reg, imm: i32) -> Insn {
    Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Imm(imm) }
}

/// `r2 = 0`, the accesses through r1, then `r0 = ret; exit`.
fn program(probes: &[Probe], ret: i32) -> Vec<Insn> {
    let mut insns = vec![mov(Reg::R2, 0)];
    for p in probes {
        let (size, off) = (mem_size(p.size), p.off as i16);
        insns.push(match p.kind {
            AccessKind::Read | AccessKind::ReadSx => Insn::Load {
                size,
                signed: p.kind == AccessKind::ReadSx,
                dst: Reg::R0,
                src: Reg::R1,
                off,
            },
            AccessKind::Write => {
                Insn::Store { size, dst: Reg::R1, off, src: Operand::Reg(Reg::R2) }
            }
        });
    }
    insns.push(mov(Reg::R0, ret));
    insns.push(Insn::Exit);
    insns
}

/// The kernel's verdict on a program.
enum Verdict {
    Accepted,
    /// Refused with "invalid bpf_context access off=.. size=.." (or "R2 invalid sock access
    /// off=.. size=.." for socket objects).
    CtxRefused {
        off: i64,
        size: u32,
    },
    /// Refused for another reason (the log's last lines).
    Other(String),
}

/// Loads the accesses as `subject` (returning 1, a valid return code for every program type
/// of [`subjects`]).
fn load(subject: Subject, probes: &[Probe]) -> Result<Verdict, KernelError> {
    let opts = ProgLoadOptions {
        name: "ctx_layout",
        expected_attach_type: subject.attach,
        flags: subject.flags,
        ..ProgLoadOptions::default()
    };
    load_with(subject.prog_type, &opts, &program(probes, 1))
}

fn load_with(
    prog_type: ProgType,
    opts: &ProgLoadOptions<'_>,
    insns: &[Insn],
) -> Result<Verdict, KernelError> {
    match KernelProgram::load_with_options(prog_type, insns, "GPL", opts) {
        Ok(_) => Ok(Verdict::Accepted),
        Err(KernelError::Rejected { log }) => {
            // "invalid bpf_context access off=%d size=%d" for contexts, "R%d invalid sock
            // access off=%d size=%d" (and sock_common, tcp_sock) for socket objects.
            let parsed = log.lines().find_map(|l| {
                let rest = l.split_once("invalid ")?.1.split_once(" access off=")?.1;
                let (off, size) = rest.split_once(" size=")?;
                Some((off.trim().parse().ok()?, size.trim().parse().ok()?))
            });
            Ok(match parsed {
                Some((off, size)) => Verdict::CtxRefused { off, size },
                None => {
                    let tail: Vec<&str> = log.lines().rev().take(3).collect();
                    Verdict::Other(tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
                }
            })
        }
        Err(e) => Err(e),
    }
}

/// The offsets to cover: the whole context, or for large ones its start and its end, plus a
/// little past the end. An instruction's offset is an `i16` and the verifier refuses
/// dereferences of a moved context pointer, so no access reaches past `i16::MAX`: a syscall
/// program's buffer is covered up to there.
fn offsets(size: u32) -> Vec<i64> {
    let size = i64::from(size);
    let max = i64::from(i16::MAX);
    if size <= 256 {
        (0..size + 8).collect()
    } else if size + 8 <= max {
        (0..128).chain(size - 64..size + 8).collect()
    } else {
        (0..128).chain(max - 64..=max).collect()
    }
}

#[test]
fn context_tables_match_the_kernel_verifier() {
    if let Err(e) = probe() {
        println!("SKIP: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let started = std::time::Instant::now();
    let (mut compared, mut skipped, mut loads) = (0usize, 0usize, 0usize);
    let mut disagreements = Vec::new();
    for t in [ProgType::StructOps, ProgType::Ext] {
        println!("SKIP {t:?}: the context is the attach target's (not described by a table)");
        skipped += 1;
    }
    for subject in subjects() {
        let target = Target { prog_type: subject.prog_type, attach: subject.attach };
        let label = format!("{:?}/{:?}", subject.prog_type, subject.attach);
        let l = layout::layout(subject.prog_type).expect("a layout for every subject");
        // Can the kernel load this type at all?
        loads += 1;
        match load(subject, &[]) {
            Ok(Verdict::Accepted) => {}
            Ok(Verdict::CtxRefused { .. }) => unreachable!("no accesses"),
            Ok(Verdict::Other(why)) => {
                println!("SKIP {label}: the kernel refuses an empty program: {why}");
                skipped += 1;
                continue;
            }
            Err(e) => {
                println!("SKIP {label}: the kernel cannot load it: {e}");
                skipped += 1;
                continue;
            }
        }
        let table = |p: &Probe| layout::check_access(target, p.off, p.size, p.kind).is_ok();
        // Misaligned accesses: the table refuses all, the kernel a sample.
        for off in offsets(l.size) {
            for size in [2u32, 4, 8] {
                if off % i64::from(size) != 0 {
                    for kind in [AccessKind::Read, AccessKind::Write] {
                        assert!(
                            !table(&Probe { off, size, kind }),
                            "{label}: misaligned {off}/{size}"
                        );
                    }
                }
            }
        }
        let mut sample = vec![];
        for (off, size) in [(1, 2), (2, 4), (4, 8), (6, 4), (3, 2)] {
            sample.push(Probe { off, size, kind: AccessKind::Read });
            sample.push(Probe { off, size, kind: AccessKind::Write });
        }
        let mut probes = sample.clone();
        for kind in [AccessKind::Read, AccessKind::ReadSx, AccessKind::Write] {
            for off in offsets(l.size) {
                for size in [1u32, 2, 4, 8] {
                    if off % i64::from(size) != 0 || (kind == AccessKind::ReadSx && size == 8) {
                        continue;
                    }
                    probes.push(Probe { off, size, kind });
                }
            }
        }
        // A sign-extending load is never allowed where a plain one is not (`is_ldsx` only
        // adds refusals): those are checked against the table alone.
        probes.retain(|p| {
            let plain = Probe { kind: AccessKind::Read, ..*p };
            p.kind != AccessKind::ReadSx || table(&plain) || {
                assert!(!table(p), "{label}: {p:?} allowed, its plain load refused");
                false
            }
        });
        let (mut allowed, refused): (Vec<Probe>, Vec<Probe>) =
            probes.iter().partition(|p| table(p));
        compared += probes.len();
        // Refused by the table: the kernel must refuse each, with the context message.
        for p in &refused {
            loads += 1;
            match load(subject, &[*p]).expect("load") {
                Verdict::CtxRefused { off, size } if (off, size) == (p.off, p.size) => {}
                Verdict::CtxRefused { off, size } => {
                    disagreements.push(format!("{label}: {p:?} refused as off={off} size={size}"))
                }
                Verdict::Accepted => disagreements.push(format!("{label}: kernel accepts {p:?}")),
                Verdict::Other(why) => {
                    disagreements.push(format!("{label}: {p:?} refused otherwise: {why}"))
                }
            }
        }
        // Allowed by the table: one program per kind, dropping what the kernel refuses.
        for kind in [AccessKind::Read, AccessKind::ReadSx, AccessKind::Write] {
            let mut batch: Vec<Probe> =
                allowed.iter().copied().filter(|p| p.kind == kind).collect();
            while !batch.is_empty() {
                loads += 1;
                match load(subject, &batch).expect("load") {
                    Verdict::Accepted => break,
                    Verdict::CtxRefused { off, size } => {
                        let Some(i) = batch.iter().position(|p| (p.off, p.size) == (off, size))
                        else {
                            panic!("{label}: refused off={off} size={size}, not in the batch");
                        };
                        disagreements.push(format!("{label}: kernel refuses {:?}", batch[i]));
                        batch.remove(i);
                    }
                    Verdict::Other(why) => {
                        disagreements.push(format!("{label}: {kind:?} batch refused: {why}"));
                        break;
                    }
                }
            }
        }
        allowed.clear();
    }
    println!(
        "context layouts vs kernel: {compared} accesses compared in {loads} loads, {} \
         disagreements, {skipped} subjects skipped, {:.1}s",
        disagreements.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// A refusal whose log is longer than the first log buffer (every instruction of the path is
/// logged) still comes back whole, naming the access: the log grows to its true size.
#[test]
fn a_refusal_after_a_long_path_keeps_its_whole_log() {
    if let Err(e) = probe() {
        println!("SKIP: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let mut insns = vec![mov(Reg::R0, 0); 6000];
    insns.push(Insn::Load { size: MemSize::W, signed: false, dst: Reg::R0, src: Reg::R1, off: 2 });
    insns.push(Insn::Exit);
    let Err(KernelError::Rejected { log }) =
        KernelProgram::load(ProgType::SocketFilter, &insns, "GPL")
    else {
        panic!("a misaligned context load was accepted");
    };
    assert!(log.len() > 64 << 10, "log of {} bytes", log.len());
    assert!(log.starts_with("func#0") || log.starts_with("0: "), "{}", &log[..80]);
    assert!(log.contains("invalid bpf_context access off=2 size=4"), "{}", &log[log.len() - 300..]);
}

/// A traced function: its argument slots (true for pointers, which must be loaded as u64)
/// and whether the program sees a scalar return value after them.
struct Traced {
    prog_type: ProgType,
    attach: u32,
    /// The BTF `FUNC` attached to.
    func: &'static str,
    pointers: &'static [bool],
    ret: bool,
    /// The program's return value (fentry and fexit must return 0, LSM 0 or an errno).
    exit: i32,
}

/// fentry/fexit/fmod_ret/lsm: the table gives the slot rules (read-only, at multiples of 8,
/// at most 12 slots); which slots exist and which must be loaded whole the attach target's
/// BTF says (`btf_ctx_access`). Every aligned access over the slots, read, sign-extending read
/// and write, against the kernel.
#[test]
fn traced_argument_slots_match_the_kernel() {
    if let Err(e) = probe() {
        println!("SKIP: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let Ok(vmlinux) = bpflab_btf::Btf::from_vmlinux() else {
        println!("SKIP: no kernel BTF");
        return;
    };
    // bpf_fentry_test6(u64 a, void *b, short c, int d, void *e, u64 f) and
    // int bpf_modify_return_test(int a, int *b), the kernel's own test targets, and the LSM
    // hook int file_open(struct file *file).
    let test6: &[bool] = &[false, true, false, false, true, false];
    let traced = [
        Traced {
            prog_type: ProgType::Tracing,
            attach: a::TRACE_FENTRY,
            func: "bpf_fentry_test6",
            pointers: test6,
            ret: false,
            exit: 0,
        },
        Traced {
            prog_type: ProgType::Tracing,
            attach: a::TRACE_FEXIT,
            func: "bpf_fentry_test6",
            pointers: test6,
            ret: true,
            exit: 0,
        },
        Traced {
            prog_type: ProgType::Tracing,
            attach: a::MODIFY_RETURN,
            func: "bpf_modify_return_test",
            pointers: &[false, true],
            ret: true,
            exit: 0,
        },
        Traced {
            prog_type: ProgType::Lsm,
            attach: a::LSM_MAC,
            func: "bpf_lsm_file_open",
            pointers: &[true],
            ret: true,
            exit: 0,
        },
    ];
    let (mut compared, mut disagreements) = (0, Vec::new());
    for t in &traced {
        let label = format!("{:?}/{}/{}", t.prog_type, t.attach, t.func);
        let Some(id) = vmlinux.find_by_name(t.func, bpflab_btf::BtfKind::Func) else {
            println!("SKIP {label}: not in the kernel's BTF");
            continue;
        };
        let opts = ProgLoadOptions {
            name: "ctx_layout",
            expected_attach_type: Some(t.attach),
            attach_btf_id: Some(id),
            ..ProgLoadOptions::default()
        };
        match load_with(t.prog_type, &opts, &program(&[], t.exit)) {
            Ok(Verdict::Accepted) => {}
            Ok(Verdict::Other(why)) => {
                println!("SKIP {label}: the kernel refuses an empty program: {why}");
                continue;
            }
            Ok(Verdict::CtxRefused { .. }) => unreachable!("no accesses"),
            Err(e) => {
                println!("SKIP {label}: {e}");
                continue;
            }
        }
        let target = Target { prog_type: t.prog_type, attach: Some(t.attach) };
        for kind in [AccessKind::Read, AccessKind::ReadSx, AccessKind::Write] {
            for off in 0..i64::from(layout::ARGS_SIZE) + 8 {
                for size in [1u32, 2, 4, 8] {
                    if off % i64::from(size) != 0 || (kind == AccessKind::ReadSx && size == 8) {
                        continue;
                    }
                    let p = Probe { off, size, kind };
                    let slot = (off / 8) as usize;
                    let pointer = t.pointers.get(slot).copied().unwrap_or(false);
                    let exists = slot < t.pointers.len() || (t.ret && slot == t.pointers.len());
                    let table = layout::check_access(target, off, size, kind).is_ok();
                    let expected = table && exists && (size == 8 || !pointer);
                    let kernel = match load_with(t.prog_type, &opts, &program(&[p], t.exit))
                        .expect("load")
                    {
                        Verdict::Accepted => true,
                        Verdict::CtxRefused { .. } => false,
                        Verdict::Other(why) => {
                            disagreements.push(format!("{label}: {p:?} refused otherwise: {why}"));
                            continue;
                        }
                    };
                    compared += 1;
                    if kernel != expected {
                        disagreements
                            .push(format!("{label}: {p:?}: kernel {kernel}, table+BTF {expected}"));
                    }
                }
            }
        }
    }
    println!("traced argument slots vs kernel: {compared} accesses compared");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// How a program reaches a socket object: the instructions that leave its pointer in r2 and
/// jump past `n` loads to the exit when it is NULL.
type Reach = fn(n: i16) -> Vec<Insn>;

fn ld64(dst: Reg, src: Reg, off: i16) -> Insn {
    Insn::Load { size: MemSize::Dw, signed: false, dst, src, off }
}

fn if_null(reg: Reg, skip: i16) -> Insn {
    Insn::Jump { width: Width::W64, cond: JmpCond::Eq, dst: reg, src: Operand::Imm(0), off: skip }
}

/// sk_msg: `sk` is a `PTR_TO_SOCKET`, never NULL.
fn reach_sock(_: i16) -> Vec<Insn> {
    vec![ld64(Reg::R2, Reg::R1, 72)]
}

/// tc: `skb->sk` is a `PTR_TO_SOCK_COMMON_OR_NULL`.
fn reach_sock_common(n: i16) -> Vec<Insn> {
    vec![ld64(Reg::R2, Reg::R1, 168), if_null(Reg::R2, n)]
}

/// tc: `bpf_tcp_sock(skb->sk)` is a `PTR_TO_TCP_SOCK_OR_NULL`.
fn reach_tcp_sock(n: i16) -> Vec<Insn> {
    vec![
        ld64(Reg::R1, Reg::R1, 168),
        if_null(Reg::R1, n + 3),
        Insn::Call { kind: CallKind::Helper, imm: 96, off: 0 },
        if_null(Reg::R0, n + 1),
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R2, src: Operand::Reg(Reg::R0) },
    ]
}

/// The loads through r2 after `reach`, then `r0 = 1; exit`.
fn object_program(reach: Reach, loads: &[(i64, u32)]) -> Vec<Insn> {
    let mut insns = reach(loads.len() as i16);
    for &(off, size) in loads {
        insns.push(Insn::Load {
            size: mem_size(size),
            signed: false,
            dst: Reg::R3,
            src: Reg::R2,
            off: off as i16,
        });
    }
    insns.push(mov(Reg::R0, 1));
    insns.push(Insn::Exit);
    insns
}

/// Socket objects (`check_sock_access`): every aligned load over `bpf_sock` (as a full socket
/// and as a sock_common) and `bpf_tcp_sock` is allowed by the object tables exactly when the
/// kernel allows it.
#[test]
fn socket_object_tables_match_the_kernel_verifier() {
    if let Err(e) = probe() {
        println!("SKIP: the kernel cannot load BPF programs here: {e}");
        return;
    }
    let cases: [(&str, ProgType, Reach, &CtxLayout); 3] = [
        ("sock (sk_msg sk)", ProgType::SkMsg, reach_sock, layout::object_layout(Object::Sock)),
        (
            "sock_common (skb->sk)",
            ProgType::SchedCls,
            reach_sock_common,
            layout::object_layout(Object::SockCommon),
        ),
        (
            "tcp_sock (bpf_tcp_sock)",
            ProgType::SchedCls,
            reach_tcp_sock,
            layout::object_layout(Object::TcpSock),
        ),
    ];
    let (mut compared, mut disagreements) = (0, Vec::new());
    for (label, prog_type, reach, l) in cases {
        let opts = ProgLoadOptions { name: "ctx_layout", ..ProgLoadOptions::default() };
        let mut allowed = Vec::new();
        for off in 0..i64::from(l.size) + 8 {
            for size in [1u32, 2, 4, 8] {
                if off % i64::from(size) != 0 {
                    continue;
                }
                compared += 1;
                if l.check(0, true, off, size, AccessKind::Read).is_ok() {
                    allowed.push((off, size));
                    continue;
                }
                match load_with(prog_type, &opts, &object_program(reach, &[(off, size)]))
                    .expect("load")
                {
                    Verdict::CtxRefused { off: o, size: s } if (o, s) == (off, size) => {}
                    // bpf_tcp_sock_is_valid_access lets u32 loads of the upper halves of the
                    // u64 byte counters through, and the rewrite then fails: refused too.
                    Verdict::Other(why) if why.contains("error during ctx access conversion") => {}
                    Verdict::Accepted => {
                        disagreements.push(format!("{label}: kernel accepts off={off} size={size}"))
                    }
                    Verdict::CtxRefused { off: o, size: s } => disagreements
                        .push(format!("{label}: off={off} size={size} refused as {o}/{s}")),
                    Verdict::Other(why) => disagreements
                        .push(format!("{label}: off={off} size={size} refused otherwise: {why}")),
                }
            }
        }
        while !allowed.is_empty() {
            match load_with(prog_type, &opts, &object_program(reach, &allowed)).expect("load") {
                Verdict::Accepted => break,
                Verdict::CtxRefused { off, size } => {
                    let Some(i) = allowed.iter().position(|&p| p == (off, size)) else {
                        panic!("{label}: refused off={off} size={size}, not in the batch");
                    };
                    disagreements.push(format!("{label}: kernel refuses off={off} size={size}"));
                    allowed.remove(i);
                }
                Verdict::Other(why) => {
                    disagreements.push(format!("{label}: batch refused: {why}"));
                    break;
                }
            }
        }
    }
    println!("socket objects vs kernel: {compared} loads compared");
    assert!(
        disagreements.is_empty(),
        "{} disagreements:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
