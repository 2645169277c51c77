//! Tracing helpers, the simulated current task and raw_tp contexts: the interpreter against
//! the running kernel. raw_tp programs are test-run with `ctx_in` = the u64 args array; the
//! simulator's current task is set to mirror the calling thread (tid, pid, comm, ids, parent)
//! so task values must match exactly. XDP programs check `bpf_fib_lookup` on `lo` against the
//! host's fresh-namespace defaults, and a load matrix checks which program types may call
//! each helper. Every test skips (passes with a SKIP line) when bpf(2) is unavailable.
//!
//! `KernelProgram::test_run` always passes output buffers, which the kernel's raw_tp test run
//! refuses (EINVAL), so this file issues that one `BPF_PROG_TEST_RUN` itself.
//! Set `TRACE_DEBUG=1` to print every compared pair.
#![allow(unsafe_code)]

use std::os::fd::RawFd;

use bpflab_kernel::{KernelProgram, probe};
use bpflab_vm::asm::assemble;
use bpflab_vm::engine::{EngineError, RunInput};
use bpflab_vm::helpers::HelperError;
use bpflab_vm::kobj::Layout;
use bpflab_vm::{Collection, Interpreter, ProgType, Program, VmErrorKind};

/// `union bpf_attr` for `BPF_PROG_TEST_RUN` (the `test` member, 80 bytes).
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    pad: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// A raw_tp test run: only ctx_in (and, to check the refusal, data_in). Returns the retval or
/// the errno.
fn raw_tp_run(fd: RawFd, ctx: &[u8], data: &[u8]) -> Result<u32, i32> {
    let mut attr = TestRunAttr { prog_fd: fd as u32, ..TestRunAttr::default() };
    if !ctx.is_empty() {
        attr.ctx_size_in = ctx.len() as u32;
        attr.ctx_in = ctx.as_ptr() as u64;
    }
    if !data.is_empty() {
        attr.data_size_in = data.len() as u32;
        attr.data_in = data.as_ptr() as u64;
    }
    // SAFETY: the kernel reads ctx_size_in bytes at ctx_in and data_size_in bytes at data_in,
    // both borrowed slices alive for the call, and writes only into `attr` (no output buffer
    // pointers are set); `attr` is a properly sized, initialized `bpf_attr` prefix.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &raw mut attr,
            std::mem::size_of::<TestRunAttr>(),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(attr.retval)
    }
}

fn available() -> bool {
    match probe() {
        Ok(()) => true,
        Err(e) => {
            println!("SKIP: bpf(2) unavailable: {e}");
            false
        }
    }
}

/// A raw_tp argument: a value, or bytes of user memory (a real buffer in the kernel run, a
/// [`Kernel::map_user`](bpflab_vm::kobj::Kernel::map_user) mapping in the simulator).
#[derive(Clone, Debug)]
enum Arg {
    Val(u64),
    User(Vec<u8>),
}

/// Outcome of one run on either side: the 32-bit return value, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Ret(u32),
    Refused(String),
}

impl Out {
    fn ret(&self) -> Option<u32> {
        match self {
            Out::Ret(r) => Some(*r),
            Out::Refused(_) => None,
        }
    }
}

fn kernel_raw_tp(src: &str, args: &[Arg], data: &[u8]) -> Out {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let prog = match KernelProgram::load(ProgType::RawTracepoint, &insns, "GPL") {
        Ok(p) => p,
        Err(e) => return Out::Refused(format!("load: {e}")),
    };
    let bufs: Vec<Vec<u8>> = args
        .iter()
        .map(|a| match a {
            Arg::User(b) => b.clone(),
            Arg::Val(_) => Vec::new(),
        })
        .collect();
    let ctx: Vec<u8> = args
        .iter()
        .zip(&bufs)
        .flat_map(|(a, b)| match a {
            Arg::Val(v) => v.to_le_bytes(),
            Arg::User(_) => (b.as_ptr() as u64).to_le_bytes(),
        })
        .collect();
    match raw_tp_run(prog.raw_fd(), &ctx, data) {
        Ok(r) => Out::Ret(r),
        Err(errno) => Out::Refused(format!("run: errno {errno}")),
    }
}

fn sim_raw_tp(src: &str, args: &[Arg], data: &[u8]) -> Out {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let prog = Program::raw("t", insns).with_type(ProgType::RawTracepoint);
    let mut inst =
        Interpreter::default().instantiate(&Collection::single(prog)).expect("instantiate");
    let w = &mut inst.world;
    w.kernel.set_current(bpflab_kernel::calling_thread_task()).expect("task");
    let mut ctx = Vec::new();
    for a in args {
        let v = match a {
            Arg::Val(v) => *v,
            Arg::User(b) => w.kernel.map_user(&mut w.mem, b.clone()).expect("map_user"),
        };
        ctx.extend_from_slice(&v.to_le_bytes());
    }
    let mut input = RunInput::data(data.to_vec());
    input.ctx = (!ctx.is_empty()).then_some(ctx);
    match inst.run(0, &input) {
        Ok(o) => Out::Ret(o.r0 as u32),
        Err(e) => Out::Refused(e.to_string()),
    }
}

/// Runs `src` on both sides; asserts both refuse or both return the same value.
fn same(what: &str, src: &str, args: &[Arg], data: &[u8]) -> Out {
    let k = kernel_raw_tp(src, args, data);
    let s = sim_raw_tp(src, args, data);
    if std::env::var_os("TRACE_DEBUG").is_some() {
        println!("{what}: kernel {k:?} interp {s:?}");
    }
    match (&k, &s) {
        (Out::Ret(a), Out::Ret(b)) => {
            assert_eq!(a, b, "{what}: kernel {a:#x}, interpreter {b:#x}\n{src}")
        }
        (Out::Refused(_), Out::Refused(_)) => {}
        _ => panic!("{what}: kernel {k:?}, interpreter {s:?}\n{src}"),
    }
    k
}

/// Stack at entry: 16-byte destination at fp-16 filled with 0xaa, and at fp-32 the bytes
/// "abc\0defghijklmno" (a kernel string). r6 = ctx.
const PROLOGUE: &str = "r6 = r1
r8 = 0xaaaaaaaaaaaaaaaa ll
*(u64 *)(r10 - 8) = r8
*(u64 *)(r10 - 16) = r8
r8 = 0x6766656400636261 ll
*(u64 *)(r10 - 32) = r8
r8 = 0x6f6e6d6c6b6a6968 ll
*(u64 *)(r10 - 24) = r8
";

/// The five observations of a read into fp-16: the return value, then the 16 bytes.
const RESULTS: [&str; 5] = [
    "r0 = r0",
    "r0 = *(u32 *)(r10 - 16)",
    "r0 = *(u32 *)(r10 - 12)",
    "r0 = *(u32 *)(r10 - 8)",
    "r0 = *(u32 *)(r10 - 4)",
];

#[test]
fn probe_reads_match_the_kernel() {
    if !available() {
        return;
    }
    let from_arg = "r3 = *(u64 *)(r6 + 0)";
    let sources: Vec<(&str, &str, Vec<Arg>)> = vec![
        ("NULL", from_arg, vec![Arg::Val(0)]),
        ("0x1000", from_arg, vec![Arg::Val(0x1000)]),
        ("non-canonical", from_arg, vec![Arg::Val(0x8000_0000_0000_0000)]),
        ("unmapped kernel", from_arg, vec![Arg::Val(0xffff_8000_0000_0000)]),
        ("vsyscall", from_arg, vec![Arg::Val(0xffff_ffff_ff60_0000)]),
        ("stack", "r3 = r10\nr3 += -32", vec![]),
        ("user hi", from_arg, vec![Arg::User(b"hi\0xyzw!abcdefghijklmnop\0".to_vec())]),
        ("user long", from_arg, vec![Arg::User(b"0123456789abcdefghij\0".to_vec())]),
        ("user empty", from_arg, vec![Arg::User(b"\0zzzzzzzzzzzzzzzzzzz".to_vec())]),
        ("user 8-aligned NUL", from_arg, vec![Arg::User(b"abcdefg\0hijklmno\0".to_vec())]),
    ];
    let helpers = [
        "bpf_probe_read_kernel",
        "bpf_probe_read_user",
        "bpf_probe_read",
        "bpf_probe_read_kernel_str",
        "bpf_probe_read_user_str",
        "bpf_probe_read_str",
    ];
    for helper in helpers {
        for (name, src, args) in &sources {
            for size in [0u32, 1, 3, 8, 16] {
                for result in RESULTS {
                    let prog = format!(
                        "{PROLOGUE}r1 = r10\nr1 += -16\nr2 = {size}\n{src}\ncall {helper}\n{result}\nexit"
                    );
                    let what = format!("{helper}({name}, size {size}): {result}");
                    assert!(same(&what, &prog, args, &[]).ret().is_some(), "{what} refused");
                }
            }
        }
    }
    // The fixture's checks (FIXTURES.md, kernel behaviour 5).
    let null = [Arg::Val(0)];
    let ret = |h: &str| {
        let p = format!("{PROLOGUE}r1 = r10\nr1 += -16\nr2 = 8\n{from_arg}\ncall {h}\nexit");
        same(h, &p, &null, &[]).ret().map(|r| r as i32)
    };
    assert_eq!(ret("bpf_probe_read_kernel"), Some(-34));
    assert_eq!(ret("bpf_probe_read_user"), Some(-14));
    assert_eq!(ret("bpf_probe_read"), Some(-14));
    assert_eq!(ret("bpf_probe_read_user_str"), Some(-14));
}

#[test]
fn current_task_helpers_match_the_kernel() {
    if !available() {
        return;
    }
    let cases = [
        ("pid", "call bpf_get_current_pid_tgid\nexit"),
        ("tgid", "call bpf_get_current_pid_tgid\nr0 >>= 32\nexit"),
        ("uid", "call bpf_get_current_uid_gid\nexit"),
        ("gid", "call bpf_get_current_uid_gid\nr0 >>= 32\nexit"),
        ("task != 0", "call bpf_get_current_task\nif r0 == 0 goto z\nr0 = 1\nz:\nexit"),
        ("task_btf != 0", "call bpf_get_current_task_btf\nif r0 == 0 goto z\nr0 = 1\nz:\nexit"),
    ];
    for (what, src) in cases {
        same(what, src, &[], &[]);
    }
    for size in [1u32, 4, 15, 16] {
        for result in RESULTS {
            let src = format!(
                "{PROLOGUE}r1 = r10\nr1 += -16\nr2 = {size}\ncall bpf_get_current_comm\n{result}\nexit"
            );
            same(&format!("comm size {size}: {result}"), &src, &[], &[]);
        }
    }
}

#[test]
fn task_struct_layout_matches_the_kernel() {
    if !available() {
        return;
    }
    let l = Layout::running_kernel();
    if !l.has_btf() {
        println!("SKIP: no vmlinux BTF");
        return;
    }
    let (t, c) = (l.task, l.cred);
    // r7 = current task; read u32 at r7 + off (through probe_read_kernel).
    let read = |ptr: &str, off: usize| {
        format!("r1 = r10\nr1 += -8\nr2 = 8\nr3 = {ptr}\nr3 += {off}\ncall bpf_probe_read_kernel\n")
    };
    let deref = |field: usize| format!("{}r7 = *(u64 *)(r10 - 8)\n", read("r7", field));
    let head = "r1 = 0\n*(u64 *)(r10 - 8) = r1\ncall bpf_get_current_task\nr7 = r0\n";
    let tail = "r0 = *(u32 *)(r10 - 8)\nexit";
    let cases = [
        ("pid", format!("{head}{}{tail}", read("r7", t.pid))),
        ("tgid", format!("{head}{}{tail}", read("r7", t.tgid))),
        (
            "real_parent->tgid",
            format!("{head}{}{}{tail}", deref(t.real_parent), read("r7", t.tgid)),
        ),
        ("parent->pid", format!("{head}{}{}{tail}", deref(t.parent), read("r7", t.pid))),
        (
            "group_leader->pid",
            format!("{head}{}{}{tail}", deref(t.group_leader), read("r7", t.pid)),
        ),
        ("cred->uid", format!("{head}{}{}{tail}", deref(t.cred), read("r7", c.uid))),
        ("real_cred->egid", format!("{head}{}{}{tail}", deref(t.real_cred), read("r7", c.egid))),
        ("comm[0..4]", format!("{head}{}{tail}", read("r7", t.comm))),
        ("comm[4..8]", format!("{head}{}{tail}", read("r7", t.comm + 4))),
        (
            "probe_read_kernel_str(comm)",
            format!(
                "{head}r1 = r10\nr1 += -16\nr2 = 16\nr3 = r7\nr3 += {}\ncall bpf_probe_read_kernel_str\nexit",
                t.comm
            ),
        ),
        // The BTF pointer reads the same object directly.
        (
            "task_btf->tgid",
            format!("call bpf_get_current_task_btf\nr0 = *(u32 *)(r0 + {})\nexit", t.tgid),
        ),
    ];
    for (what, src) in &cases {
        assert!(same(what, src, &[], &[]).ret().is_some(), "{what} refused");
    }
}

#[test]
fn raw_tp_context_matches_the_kernel() {
    if !available() {
        return;
    }
    let two = [Arg::Val(0x1122_3344_5566_7788), Arg::Val(0x0102_0304_0506_0708)];
    for (what, src) in [
        ("args[1]", "r0 = *(u64 *)(r1 + 8)\nexit"),
        ("u32 @4", "r0 = *(u32 *)(r1 + 4)\nexit"),
        ("u16 @10", "r0 = *(u16 *)(r1 + 10)\nexit"),
        ("u8 @9", "r0 = *(u8 *)(r1 + 9)\nexit"),
        ("cookie", "call bpf_get_attach_cookie\nexit"),
    ] {
        assert!(same(what, src, &two, &[]).ret().is_some(), "{what}");
    }
    // Refused by both: misaligned, write, past args[11], args beyond ctx_size_in, a ctx of
    // more than 12 args, data_in, helpers raw_tp may not call.
    let refused = [
        ("misaligned", "r0 = *(u32 *)(r1 + 2)\nexit", vec![Arg::Val(1)], vec![]),
        ("write", "*(u64 *)(r1 + 0) = 1\nr0 = 0\nexit", vec![Arg::Val(1)], vec![]),
        ("args[12]", "r0 = *(u64 *)(r1 + 96)\nexit", vec![Arg::Val(0); 12], vec![]),
        ("short ctx", "r0 = *(u64 *)(r1 + 8)\nexit", vec![Arg::Val(1)], vec![]),
        ("13 args", "r0 = 1\nexit", vec![Arg::Val(0); 13], vec![]),
        ("data", "r0 = 1\nexit", vec![Arg::Val(1)], vec![1u8; 8]),
        ("get_func_ip", "call bpf_get_func_ip\nexit", vec![Arg::Val(1)], vec![]),
        ("get_func_arg_cnt", "call bpf_get_func_arg_cnt\nexit", vec![Arg::Val(1)], vec![]),
        (
            "fib_lookup",
            "r2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall bpf_fib_lookup\nexit",
            vec![],
            vec![],
        ),
    ];
    for (what, src, args, data) in refused {
        let out = same(what, src, &args, &data);
        assert!(out.ret().is_none(), "{what}: {out:?}");
    }
}

/// `struct bpf_fib_lookup` on the stack at fp-64, then `bpf_fib_lookup(ctx, p, plen, flags)`.
fn fib_prog(
    family: u8,
    ifindex: u32,
    dst: [u8; 16],
    plen: u32,
    flags: u32,
    result: &str,
) -> String {
    let mut p = [0u8; 64];
    p[0] = family;
    p[1] = 6;
    p[2..4].copy_from_slice(&40000u16.to_be_bytes());
    p[4..6].copy_from_slice(&1u16.to_be_bytes());
    p[6..8].copy_from_slice(&40u16.to_le_bytes());
    p[8..12].copy_from_slice(&ifindex.to_le_bytes());
    if family == 2 {
        p[16..20].copy_from_slice(&dst[..4]);
        p[32..36].copy_from_slice(&dst[..4]);
    } else {
        p[32..48].copy_from_slice(&dst);
    }
    let mut src = String::from("r6 = r1\n");
    for (i, w) in p.chunks(8).enumerate() {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        src.push_str(&format!("r1 = {v:#x} ll\n*(u64 *)(r10 - {}) = r1\n", 64 - i * 8));
    }
    src.push_str(&format!(
        "r1 = r6\nr2 = r10\nr2 += -64\nr3 = {plen}\nr4 = {flags}\ncall bpf_fib_lookup\n{result}\nexit"
    ));
    src
}

#[test]
fn fib_lookup_on_loopback_matches_the_kernel() {
    if !available() {
        return;
    }
    let mut frame = vec![0u8; 60];
    frame[12] = 0x08;
    let v4 = |a: [u8; 4]| {
        let mut d = [0u8; 16];
        d[..4].copy_from_slice(&a);
        d
    };
    let lo4 = v4([127, 0, 0, 1]);
    let mut v6 = [0u8; 16];
    v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    v6[15] = 1;
    let mut ll6 = [0u8; 16];
    ll6[..2].copy_from_slice(&[0xfe, 0x80]);
    ll6[15] = 1;
    let cases = [
        ("lo OUTPUT", fib_prog(2, 1, lo4, 64, 2, "")),
        ("lo input", fib_prog(2, 1, lo4, 64, 0, "")),
        ("lo OUTPUT|MARK", fib_prog(2, 1, lo4, 64, 0x22, "")),
        ("lo DIRECT|TBID", fib_prog(2, 1, lo4, 64, 0x9, "")),
        ("no such device", fib_prog(2, 0x7fff_ffff, lo4, 64, 2, "")),
        ("unknown flag", fib_prog(2, 1, lo4, 64, 0x40, "")),
        ("plen 63", fib_prog(2, 1, lo4, 63, 2, "")),
        ("family 99", fib_prog(99, 1, lo4, 64, 2, "")),
        ("v6 global", fib_prog(10, 1, v6, 64, 2, "")),
        ("v6 link-local", fib_prog(10, 1, ll6, 64, 2, "")),
        ("v6 no such device", fib_prog(10, 0x7fff_ffff, v6, 64, 2, "")),
        ("params untouched", fib_prog(2, 1, lo4, 64, 2, "r0 = *(u32 *)(r10 - 56)")),
        ("tot_len untouched", fib_prog(2, 1, lo4, 64, 2, "r0 = *(u16 *)(r10 - 58)")),
    ];
    for (what, src) in &cases {
        let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let k = KernelProgram::load(ProgType::Xdp, &insns, "GPL")
            .expect("load")
            .test_run(&frame, None, 1)
            .expect("test run")
            .retval;
        let prog = Program::raw("f", insns).with_type(ProgType::Xdp);
        let mut inst =
            Interpreter::default().instantiate(&Collection::single(prog)).expect("instantiate");
        let s = inst.run(0, &RunInput::data(frame.clone())).expect("run").r0 as u32;
        assert_eq!(k, s, "{what}: kernel {}, interpreter {}", k as i32, s as i32);
    }
}

/// Whether the interpreter refuses `src` in a `prog_type` program as a helper it may not call.
fn sim_allowed(prog_type: ProgType, src: &str) -> Option<bool> {
    let prog = Program::raw("m", assemble(src).expect("asm")).with_type(prog_type);
    let mut inst =
        Interpreter::default().instantiate(&Collection::single(prog)).expect("instantiate");
    let packet = matches!(
        prog_type,
        ProgType::SocketFilter
            | ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::Xdp
            | ProgType::CgroupSkb
    );
    let mut frame = vec![0u8; 60];
    frame[12] = 0x08;
    frame[14] = 0x45;
    let input = if packet { RunInput::data(frame) } else { RunInput::default() };
    match inst.run(0, &input) {
        Err(EngineError::Context(_)) => None,
        Err(EngineError::Fault(e)) => Some(!matches!(
            e.kind(),
            VmErrorKind::Helper { error: HelperError::NotAllowed { .. }, .. }
        )),
        _ => Some(true),
    }
}

#[test]
fn helper_availability_matches_the_kernel() {
    if !available() {
        return;
    }
    let zero64 = "r6 = 0\n*(u64 *)(r10 - 8) = r6\n*(u64 *)(r10 - 16) = r6\n*(u64 *)(r10 - 24) = r6\n*(u64 *)(r10 - 32) = r6\n*(u64 *)(r10 - 40) = r6\n*(u64 *)(r10 - 48) = r6\n*(u64 *)(r10 - 56) = r6\n*(u64 *)(r10 - 64) = r6\n";
    let helpers: Vec<(&str, String)> = [
        "bpf_probe_read",
        "bpf_probe_read_str",
        "bpf_probe_read_kernel",
        "bpf_probe_read_kernel_str",
        "bpf_probe_read_user",
        "bpf_probe_read_user_str",
    ]
    .iter()
    .map(|h| (*h, format!("r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\ncall {h}\nr0 = 0\nexit")))
    .chain(
        [
            "bpf_get_current_pid_tgid",
            "bpf_get_current_uid_gid",
            "bpf_get_current_task",
            "bpf_get_current_task_btf",
            "bpf_get_func_ip",
            "bpf_get_attach_cookie",
            "bpf_get_func_arg_cnt",
        ]
        .iter()
        .map(|h| (*h, format!("call {h}\nr0 = 0\nexit"))),
    )
    .chain([
        (
            "bpf_get_current_comm",
            "r1 = r10\nr1 += -16\nr2 = 16\ncall bpf_get_current_comm\nr0 = 0\nexit".to_string(),
        ),
        (
            "bpf_fib_lookup",
            format!(
                "{zero64}r2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall bpf_fib_lookup\nr0 = 0\nexit"
            ),
        ),
    ])
    .collect();
    let types = [
        ProgType::SocketFilter,
        ProgType::Kprobe,
        ProgType::SchedCls,
        ProgType::SchedAct,
        ProgType::Tracepoint,
        ProgType::Xdp,
        ProgType::CgroupSkb,
        ProgType::RawTracepoint,
        ProgType::RawTracepointWritable,
    ];
    let mut compared = 0;
    for (name, src) in &helpers {
        let insns = assemble(src).expect("asm");
        for &t in &types {
            let kernel = KernelProgram::load(t, &insns, "GPL").is_ok();
            let Some(sim) = sim_allowed(t, src) else { continue };
            assert_eq!(kernel, sim, "{name} in {t:?}: kernel allows {kernel}, interpreter {sim}");
            compared += 1;
        }
    }
    assert!(compared >= helpers.len() * 5, "only {compared} combinations compared");
}
