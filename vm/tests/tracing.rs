//! Tracing programs on simulated kernel objects: kprobe, tracepoint, raw_tp, fentry/fexit,
//! tp_btf and lsm contexts; the probe_read family, task helpers, trampoline helpers and
//! bpf_fib_lookup, with the exact values of programs/tests/FIXTURES.md where a fixture exists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bpflab_vm::asm::assemble;
use bpflab_vm::ctx::CtxError;
use bpflab_vm::ctx::tracing::{
    BPF_LSM_MAC, BPF_MODIFY_RETURN, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_TRACE_RAW_TP, TraceInput,
};
use bpflab_vm::engine::{EngineError, ProgType, RunInput, RunOutcome};
use bpflab_vm::helpers::HelperError;
use bpflab_vm::interp::Instance;
use bpflab_vm::kobj::fib::{NetDevice, Route, RouteKind};
use bpflab_vm::kobj::{AddrClass, KobjError, Layout, Task, View};
use bpflab_vm::memory::{Access, MemError, RegionKind};
use bpflab_vm::{Collection, Interpreter, MapSpec, MapType, Program, VmErrorKind};

const EFAULT: i64 = -14;
const ERANGE: i64 = -34;
const EINVAL: i64 = -22;

fn program(t: ProgType, attach: Option<u32>, src: &str) -> Program {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let mut p = Program::raw("t", insns).with_type(t);
    p.expected_attach_type = attach;
    p
}

fn instance(t: ProgType, attach: Option<u32>, src: &str, maps: Vec<MapSpec>) -> Instance {
    let mut c = Collection::single(program(t, attach, src));
    c.maps = maps;
    Interpreter::default().instantiate(&c).expect("instantiate")
}

/// An instance whose layout is the documented fallback, so offsets are fixed.
fn fixed(t: ProgType, attach: Option<u32>, src: &str) -> Instance {
    let mut inst = instance(t, attach, src, vec![]);
    inst.world.kernel.set_layout(Arc::new(Layout::fallback()));
    inst
}

fn ctx_input(ctx: Vec<u8>) -> RunInput {
    let mut i = RunInput::default();
    i.ctx = Some(ctx);
    i
}

fn trace_input(t: TraceInput) -> RunInput {
    let mut i = RunInput::default();
    i.trace = Some(t);
    i
}

fn args(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn r0(out: Result<RunOutcome, EngineError>) -> i64 {
    out.unwrap_or_else(|e| panic!("{e}")).r0 as i64
}

fn fault(out: Result<RunOutcome, EngineError>) -> VmErrorKind {
    match out {
        Err(EngineError::Fault(e)) => e.kind().clone(),
        other => panic!("expected a fault, got {other:?}"),
    }
}

fn not_allowed(out: Result<RunOutcome, EngineError>) -> bool {
    matches!(fault(out), VmErrorKind::Helper { error: HelperError::NotAllowed { .. }, .. })
}

fn s64_array(name: &str, n: u32) -> MapSpec {
    MapSpec::new(name, MapType::Array, 4, 8, n)
}

fn slots(inst: &Instance, map: usize, n: u32) -> Vec<i64> {
    (0..n)
        .map(|k| {
            let v = inst.world.lookup(map, &k.to_le_bytes()).expect("lookup").expect("present");
            i64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
        })
        .collect()
}

/// `res(slot = r1, value = r2)`: stores into the s64 array map 0 (a subprogram).
const RES: &str = "
res:
*(u32 *)(r10 - 4) = r1
*(u64 *)(r10 - 16) = r2
r1 = map[idx:0] ll
r2 = r10
r2 += -4
r3 = r10
r3 += -16
r4 = 0
call bpf_map_update_elem
exit
";

/// programs/tests/tracing.bpf.c `raw_sys_enter`, by hand: returns 511 for args {NULL, 257}
/// and fills `trace_res` = [-34, -14, -14, -14, strlen(comm)+1, strlen(comm), 257, 1].
const RAW_SYS_ENTER: &str = "
r7 = *(u64 *)(r1 + 0)
r8 = *(u64 *)(r1 + 8)
r9 = 0
r1 = 6
r2 = r8
call res
if r8 != 257 goto b1
r9 |= 1
b1:
call bpf_get_current_pid_tgid
if r0 == 0 goto b2
r0 >>= 32
if r0 == 0 goto b2
r9 |= 2
b2:
r1 = 0
*(u64 *)(r10 - 16) = r1
*(u64 *)(r10 - 8) = r1
*(u64 *)(r10 - 32) = r1
*(u64 *)(r10 - 24) = r1
r1 = r10
r1 += -16
r2 = 16
call bpf_get_current_comm
if r0 != 0 goto b3
r1 = *(u8 *)(r10 - 16)
if r1 == 0 goto b3
r9 |= 4
b3:
call bpf_get_current_task
if r0 == 0 goto b4
r9 |= 8
b4:
r1 = r10
r1 += -40
r2 = 8
r3 = r7
call bpf_probe_read_kernel
*(u64 *)(r10 - 48) = r0
r2 = r0
r1 = 0
call res
r0 = *(u64 *)(r10 - 48)
if r0 != -34 goto b5
r9 |= 16
b5:
r1 = r10
r1 += -40
r2 = 8
r3 = r7
call bpf_probe_read_user
*(u64 *)(r10 - 48) = r0
r2 = r0
r1 = 1
call res
r0 = *(u64 *)(r10 - 48)
if r0 != -14 goto b6
r9 |= 32
b6:
r1 = r10
r1 += -40
r2 = 8
r3 = r7
call bpf_probe_read
*(u64 *)(r10 - 48) = r0
r2 = r0
r1 = 2
call res
r0 = *(u64 *)(r10 - 48)
if r0 != -14 goto b7
r9 |= 64
b7:
r6 = 0
r2 = r10
r2 += -16
len:
if r6 >= 16 goto lend
r3 = r2
r3 += r6
r4 = *(u8 *)(r3 + 0)
if r4 == 0 goto lend
r6 += 1
goto len
lend:
r1 = 5
r2 = r6
call res
r1 = r10
r1 += -32
r2 = 16
r3 = r10
r3 += -16
call bpf_probe_read_kernel_str
*(u64 *)(r10 - 48) = r0
r2 = r0
r1 = 4
call res
r0 = *(u64 *)(r10 - 48)
r6 += 1
if r0 != r6 goto b8
r9 |= 128
b8:
r1 = r10
r1 += -32
r2 = 16
r3 = r7
call bpf_probe_read_user_str
*(u64 *)(r10 - 48) = r0
r2 = r0
r1 = 3
call res
r0 = *(u64 *)(r10 - 48)
if r0 != -14 goto b9
r9 |= 256
b9:
call bpf_get_current_uid_gid
r2 = 0
if r0 == -1 goto b10
r2 = 1
b10:
r1 = 7
call res
r0 = r9
exit
";

#[test]
fn raw_sys_enter_fixture() {
    let src = format!("{RAW_SYS_ENTER}{RES}");
    let mut inst = instance(ProgType::RawTracepoint, None, &src, vec![s64_array("trace_res", 8)]);
    let out = inst.run(0, &ctx_input(args(&[0, 257])));
    assert_eq!(r0(out), 511);
    // Default task: comm "bpflab" (6 bytes).
    assert_eq!(slots(&inst, 0, 8), [-34, -14, -14, -14, 7, 6, 257, 1]);
    // A task named like the fixture author's caller.
    inst.world.kernel.set_current(Task::new(4321).comm("python3")).expect("task");
    assert_eq!(r0(inst.run(0, &trace_input(TraceInput::args([0, 257])))), 511);
    assert_eq!(slots(&inst, 0, 8), [-34, -14, -14, -14, 8, 7, 257, 1]);
}

/// core.bpf.c `core_task` with the running kernel's offsets (CO-RE resolves to these).
#[test]
fn core_task_fixture() {
    let l = Layout::running_kernel();
    let (t, _) = (l.task, l.cred);
    let read = |ptr: &str, off: usize, dst: i32| {
        format!(
            "r1 = r10\nr1 += {dst}\nr2 = 8\nr3 = {ptr}\nr3 += {off}\ncall bpf_probe_read_kernel\n"
        )
    };
    let src = format!(
        "r9 = 0
*(u64 *)(r10 - 8) = r9
*(u64 *)(r10 - 16) = r9
*(u64 *)(r10 - 24) = r9
*(u64 *)(r10 - 32) = r9
*(u64 *)(r10 - 40) = r9
call bpf_get_current_task
r7 = r0
call bpf_get_current_pid_tgid
r8 = r0
{pid}r1 = *(u32 *)(r10 - 8)
r2 = r8
r2 <<= 32
r2 >>= 32
if r1 != r2 goto c1
r9 |= 1
c1:
{tgid}r1 = *(u32 *)(r10 - 8)
r2 = r8
r2 >>= 32
if r1 != r2 goto c2
r9 |= 2
c2:
{parent}r6 = *(u64 *)(r10 - 8)
{ptgid}r1 = *(u32 *)(r10 - 8)
if r1 == 0 goto c3
r9 |= 4
c3:
r1 = r10
r1 += -24
r2 = 16
r3 = r7
r3 += {comm}
call bpf_probe_read_kernel_str
r1 = r10
r1 += -40
r2 = 16
call bpf_get_current_comm
r1 = *(u64 *)(r10 - 24)
r2 = *(u64 *)(r10 - 40)
if r1 != r2 goto c4
r1 = *(u64 *)(r10 - 16)
r2 = *(u64 *)(r10 - 32)
if r1 != r2 goto c4
r1 = *(u8 *)(r10 - 24)
if r1 == 0 goto c4
r9 |= 8
c4:
r0 = r9
exit",
        pid = read("r7", t.pid, -8),
        tgid = read("r7", t.tgid, -8),
        parent = read("r7", t.real_parent, -8),
        ptgid = read("r6", t.tgid, -8),
        comm = t.comm,
    );
    let mut inst = instance(ProgType::RawTracepoint, None, &src, vec![]);
    assert_eq!(r0(inst.run(0, &ctx_input(args(&[0, 257])))), 15);
    // A thread that is not its group's leader, with a parent.
    let task = Task::new(77).tgid(70).comm("worker").parent(Task::new(9).comm("shell"));
    inst.world.kernel.set_current(task).expect("task");
    assert_eq!(r0(inst.run(0, &ctx_input(args(&[0, 257])))), 15);
}

#[test]
fn task_objects_follow_the_layout() {
    let mut inst = fixed(ProgType::RawTracepoint, None, "r0 = 0\nexit");
    let task = Task::new(1234).tgid(1200).comm("a-very-long-command-name").uid(1000).gid(100);
    let task = task.euid(0).parent(Task::new(1200).comm("leader-parent"));
    inst.world.kernel.set_current(task.clone()).expect("task");
    assert_eq!(task.pid_tgid(), 1200 << 32 | 1234);
    assert_eq!(task.uid_gid(), 100 << 32 | 1000);
    assert_eq!(task.comm_str(), b"a-very-long-com");
    let w = &mut inst.world;
    let probe = w.kernel.current_task(&mut w.mem, View::Probe).expect("task");
    let btf = w.kernel.current_task(&mut w.mem, View::Btf).expect("task");
    assert_ne!(probe, btf);
    // Stable while the task does not change.
    assert_eq!(w.kernel.current_task(&mut w.mem, View::Probe).expect("task"), probe);
    let bytes = |w: &bpflab_vm::world::World, addr: u64| {
        let (id, kind, off) = w.mem.resolve(addr).expect("mapped");
        assert_eq!((kind, off), (RegionKind::Kernel, 0));
        w.mem.bytes(id).to_vec()
    };
    let t = bytes(w, probe);
    assert_eq!(t.len(), 3264);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4"));
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8"));
    assert_eq!((u32_at(&t, 1264), u32_at(&t, 1268)), (1234, 1200));
    assert_eq!(&t[1752..1768], b"a-very-long-com\0");
    let cred = bytes(w, u64_at(&t, 1736));
    assert_eq!(cred.len(), 184);
    assert_eq!((u32_at(&cred, 8), u32_at(&cred, 12), u32_at(&cred, 24)), (1000, 100, 0));
    assert_eq!(u64_at(&t, 1728), u64_at(&t, 1736));
    // The group leader is a separate task with pid = tgid.
    let leader = bytes(w, u64_at(&t, 1328));
    assert_eq!((u32_at(&leader, 1264), u32_at(&leader, 1268)), (1200, 1200));
    // real_parent -> the parent, whose parent is itself (like init_task).
    let parent_addr = u64_at(&t, 1280);
    let parent = bytes(w, parent_addr);
    assert_eq!(u32_at(&parent, 1264), 1200);
    assert_eq!(&parent[1752..1766], b"leader-parent\0");
    assert_eq!(u64_at(&parent, 1280), parent_addr);
    // The BTF view points within the BTF view.
    let tb = bytes(w, btf);
    assert_eq!(u32_at(&tb, 1264), 1234);
    let parent_btf = u64_at(&tb, 1280);
    assert_ne!(parent_btf, parent_addr);
    assert_eq!(w.kernel.classify(&w.mem, parent_btf), AddrClass::Kernel);
    // Changing the task rebuilds the objects.
    w.kernel.set_current(Task::new(5)).expect("task");
    let again = w.kernel.current_task(&mut w.mem, View::Probe).expect("task");
    assert_eq!(u32_at(&bytes(w, again), 1264), 5);
    // The fallback layout knows only its own fields.
    assert!(matches!(
        w.kernel.set_current(Task::new(5).field("prio", &[1, 0, 0, 0])),
        Err(KobjError::NoField { .. })
    ));
    assert!(matches!(
        w.kernel.set_current(Task::new(5).field("pid", &[0; 5])),
        Err(KobjError::ValueTooLong { len: 5, size: 4, .. })
    ));
}

#[test]
fn btf_layout_fields_and_objects() {
    let l = Layout::running_kernel();
    if !l.has_btf() {
        println!("SKIP: no vmlinux BTF");
        return;
    }
    // Nested and anonymous members resolve; bitfield-free paths only.
    let dentry = l.field("file", "f_path.dentry").expect("f_path.dentry");
    let f_path = l.field("file", "f_path").expect("f_path");
    assert_eq!((dentry.offset, dentry.size), (f_path.offset + 8, 8));
    assert_eq!(l.field("cred", "uid.val").expect("uid").offset, l.cred.uid);
    assert!(matches!(l.field("file", "nope"), Err(KobjError::NoField { .. })));
    assert!(matches!(l.field("no_such_struct", "x"), Err(KobjError::NoStruct(_))));
    // An extra task field and a built object.
    let prio = l.field("task_struct", "prio").expect("prio");
    let src = format!(
        "call bpf_get_current_task\nr3 = r0\nr3 += {}\nr1 = r10\nr1 += -8\nr2 = 4\ncall bpf_probe_read_kernel\nr0 = *(u32 *)(r10 - 8)\nexit",
        prio.offset
    );
    let mut inst = instance(ProgType::Kprobe, None, &src, vec![]);
    inst.world.kernel.set_current(Task::new(3).field("prio", &120u32.to_le_bytes())).expect("task");
    assert_eq!(r0(inst.run(0, &RunInput::default())), 120);
    // fentry reads a BTF object (struct open_how) directly; a probe-view copy faults.
    let flags = l.field("open_how", "flags").expect("open_how.flags");
    let src = format!("r1 = *(u64 *)(r1 + 16)\nr0 = *(u64 *)(r1 + {})\nexit", flags.offset);
    let mut inst = instance(ProgType::Tracing, Some(BPF_TRACE_FENTRY), &src, vec![]);
    let w = &mut inst.world;
    let fields: &[(&str, &[u8])] = &[("flags", &0o101u64.to_le_bytes())];
    let how = w.kernel.build_object(&mut w.mem, "open_how", fields, View::Btf).expect("object");
    let hidden = w.kernel.build_object(&mut w.mem, "open_how", fields, View::Probe).expect("obj");
    assert_eq!(r0(inst.run(0, &trace_input(TraceInput::args([3, 0, how])))), 0o101);
    assert!(matches!(
        fault(inst.run(0, &trace_input(TraceInput::args([3, 0, hidden])))),
        VmErrorKind::Memory(MemError::NoAccess { kind: RegionKind::Kernel, .. })
    ));
    let w = &mut inst.world;
    w.kernel.unmap(&mut w.mem, how).expect("unmap");
    assert_eq!(w.kernel.unmap(&mut w.mem, how), Err(KobjError::NotMapped(how)));
}

/// A read of `size` bytes by `helper` from `src_setup`'s r3 into fp-16 (pre-filled with
/// 0xaa), with "abc\0defghijklmno" at fp-32; returns the helper's result.
fn read_prog(helper: &str, size: u32, src_setup: &str) -> String {
    format!(
        "r6 = r1
r8 = 0xaaaaaaaaaaaaaaaa ll
*(u64 *)(r10 - 8) = r8
*(u64 *)(r10 - 16) = r8
r8 = 0x6766656400636261 ll
*(u64 *)(r10 - 32) = r8
r8 = 0x6f6e6d6c6b6a6968 ll
*(u64 *)(r10 - 24) = r8
r1 = r10
r1 += -16
r2 = {size}
{src_setup}
call {helper}
r7 = r0
r0 = *(u64 *)(r10 - 16)
*(u64 *)(r6 + 0) = r0
r0 = *(u64 *)(r10 - 8)
*(u64 *)(r6 + 8) = r0
r0 = r7
exit"
    )
}

/// Runs a read in raw mode with r3 = `src` (a value, or user memory holding the bytes);
/// returns (r0, the 16 destination bytes).
fn read_with(helper: &str, size: u32, src: Src<'_>) -> (i64, Vec<u8>) {
    let setup = match src {
        Src::Stack => "r3 = r10\nr3 += -32".to_string(),
        _ => "r3 = *(u64 *)(r6 + 16)".to_string(),
    };
    let mut inst = instance(ProgType::Unspec, None, &read_prog(helper, size, &setup), vec![]);
    let addr = match src {
        Src::Val(v) => v,
        Src::Stack => 0,
        Src::User(b) => {
            let w = &mut inst.world;
            w.kernel.map_user(&mut w.mem, b.to_vec()).expect("user")
        }
        Src::Kernel(b) => {
            let w = &mut inst.world;
            w.kernel.map_object(&mut w.mem, b.to_vec(), View::Probe).expect("object")
        }
    };
    let mut data = vec![0u8; 24];
    data[16..].copy_from_slice(&addr.to_le_bytes());
    let (r0, _) = inst.run_raw(0, &mut data).unwrap_or_else(|e| panic!("{e}"));
    (r0 as i64, data[..16].to_vec())
}

#[derive(Clone, Copy)]
enum Src<'a> {
    Val(u64),
    Stack,
    User(&'a [u8]),
    Kernel(&'a [u8]),
}

const AA: [u8; 16] = [0xaa; 16];

fn filled(prefix: &[u8]) -> Vec<u8> {
    let mut v = AA.to_vec();
    v[..prefix.len()].copy_from_slice(prefix);
    v
}

#[test]
fn probe_read_null_and_address_classes() {
    let zero = vec![0u8; 16];
    for (addr, kernel, user) in [
        (0, ERANGE, EFAULT),
        (0x1000, ERANGE, EFAULT),
        (0x8000_0000_0000_0000, ERANGE, EFAULT),
        (0xffff_8000_0000_0000, EFAULT, EFAULT),
        (0xffff_ffff_ff60_0000, ERANGE, EFAULT),
    ] {
        let v = Src::Val(addr);
        assert_eq!(read_with("bpf_probe_read_kernel", 16, v), (kernel, zero.clone()), "{addr:#x}");
        assert_eq!(read_with("bpf_probe_read_user", 16, v), (user, zero.clone()), "{addr:#x}");
        assert_eq!(read_with("bpf_probe_read_kernel_str", 16, v), (kernel, zero.clone()));
        assert_eq!(read_with("bpf_probe_read_user_str", 16, v), (user, zero.clone()));
        // The legacy helpers take the user path below TASK_SIZE, the kernel path above.
        let legacy = if addr < 1 << 47 { user } else { kernel };
        assert_eq!(read_with("bpf_probe_read", 16, v), (legacy, zero.clone()), "{addr:#x}");
        assert_eq!(read_with("bpf_probe_read_str", 16, v), (legacy, zero.clone()));
    }
    // Size 0: kernel reads still check the address class; user reads of user addresses and
    // the _str variants return 0; the buffer is untouched.
    let null = Src::Val(0);
    assert_eq!(read_with("bpf_probe_read_kernel", 0, null), (ERANGE, AA.to_vec()));
    assert_eq!(read_with("bpf_probe_read_user", 0, null), (0, AA.to_vec()));
    assert_eq!(read_with("bpf_probe_read_user", 0, Src::Stack), (EFAULT, AA.to_vec()));
    assert_eq!(read_with("bpf_probe_read_kernel", 0, Src::Val(0xffff_8000_0000_0000)).0, 0);
    assert_eq!(read_with("bpf_probe_read_kernel_str", 0, null), (0, AA.to_vec()));
    assert_eq!(read_with("bpf_probe_read_user_str", 0, null), (0, AA.to_vec()));
    // A failed read zeroes only `size` bytes.
    assert_eq!(read_with("bpf_probe_read_kernel", 3, null), (ERANGE, filled(&[0, 0, 0])));
}

#[test]
fn probe_read_kernel_and_user_memory() {
    let abc = b"abc\0defghijklmno";
    // The stack is kernel memory.
    assert_eq!(read_with("bpf_probe_read_kernel", 16, Src::Stack), (0, abc.to_vec()));
    assert_eq!(read_with("bpf_probe_read", 3, Src::Stack), (0, filled(b"abc")));
    assert_eq!(read_with("bpf_probe_read_user", 16, Src::Stack), (EFAULT, vec![0; 16]));
    // Kernel strings: byte by byte, nothing written past the NUL; truncation keeps a NUL.
    assert_eq!(read_with("bpf_probe_read_kernel_str", 16, Src::Stack), (4, filled(b"abc\0")));
    assert_eq!(read_with("bpf_probe_read_kernel_str", 3, Src::Stack), (3, filled(b"ab\0")));
    assert_eq!(read_with("bpf_probe_read_str", 16, Src::Stack), (4, filled(b"abc\0")));
    assert_eq!(read_with("bpf_probe_read_user_str", 16, Src::Stack), (EFAULT, vec![0; 16]));
    // A kernel object: in bounds, past its end, no NUL before its end.
    let obj: &[u8] = b"kernel-string\0xx";
    assert_eq!(read_with("bpf_probe_read_kernel", 16, Src::Kernel(obj)), (0, obj.to_vec()));
    assert_eq!(
        read_with("bpf_probe_read_kernel", 16, Src::Kernel(&obj[..8])),
        (EFAULT, vec![0; 16])
    );
    assert_eq!(read_with("bpf_probe_read_kernel_str", 16, Src::Kernel(obj)).0, 14);
    assert_eq!(
        read_with("bpf_probe_read_kernel_str", 16, Src::Kernel(b"no-nul")),
        (EFAULT, vec![0; 16])
    );
    assert_eq!(
        read_with("bpf_probe_read_kernel_str", 4, Src::Kernel(b"no-nul")),
        (4, filled(b"no-\0"))
    );
    assert_eq!(read_with("bpf_probe_read_user", 8, Src::Kernel(obj)), (EFAULT, filled(&[0; 8])));
    // User memory.
    let hi: &[u8] = b"hi\0xyzw!abcdefghijklmnop\0";
    assert_eq!(read_with("bpf_probe_read_user", 16, Src::User(hi)), (0, hi[..16].to_vec()));
    assert_eq!(read_with("bpf_probe_read", 16, Src::User(hi)), (0, hi[..16].to_vec()));
    assert_eq!(read_with("bpf_probe_read_kernel", 16, Src::User(hi)), (ERANGE, vec![0; 16]));
    assert_eq!(read_with("bpf_probe_read_user", 16, Src::User(&hi[..10])), (EFAULT, vec![0; 16]));
    // User strings: whole 8-byte words while they fit, so the rest of the NUL's word is
    // zeroed (as observed on 6.18); bytes after that word are untouched.
    let mut want = b"hi\0\0\0\0\0\0".to_vec();
    want.extend_from_slice(&[0xaa; 8]);
    assert_eq!(read_with("bpf_probe_read_user_str", 16, Src::User(hi)), (3, want.clone()));
    assert_eq!(read_with("bpf_probe_read_str", 16, Src::User(hi)), (3, want));
    assert_eq!(read_with("bpf_probe_read_user_str", 3, Src::User(hi)), (3, filled(b"hi\0")));
    let long: &[u8] = b"0123456789abcdefghij\0";
    assert_eq!(
        read_with("bpf_probe_read_user_str", 16, Src::User(long)),
        (16, b"0123456789abcde\0".to_vec())
    );
    let empty: &[u8] = b"\0zzzzzzzzzzzzzzzzz";
    assert_eq!(read_with("bpf_probe_read_user_str", 16, Src::User(empty)), (1, filled(&[0; 8])));
    assert_eq!(read_with("bpf_probe_read_user_str", 3, Src::User(empty)), (1, filled(&[0])));
    // A user string running off its mapping faults; the buffer is zeroed.
    assert_eq!(
        read_with("bpf_probe_read_user_str", 16, Src::User(b"unterminated")),
        (EFAULT, vec![0; 16])
    );
    assert_eq!(
        read_with("bpf_probe_read_user_str", 12, Src::User(b"unterminated")),
        (12, filled(b"unterminate\0"))
    );
    assert_eq!(
        read_with("bpf_probe_read_kernel_str", 16, Src::User(b"x\0")),
        (ERANGE, vec![0; 16])
    );
}

#[test]
fn probe_read_bad_destination_and_program_types() {
    // A destination the verifier would refuse stops the program.
    let src = "r1 = 0\nr2 = 8\nr3 = 0\ncall bpf_probe_read_kernel\nexit";
    let mut inst = instance(ProgType::RawTracepoint, None, src, vec![]);
    assert!(matches!(
        fault(inst.run(0, &RunInput::default())),
        VmErrorKind::Helper { error: HelperError::BadMemoryArg { arg: 1, .. }, .. }
    ));
    // The legacy helpers are for tracing programs only; the new ones for every type.
    let legacy = "r1 = r10\nr1 += -8\nr2 = 8\nr3 = 0\ncall bpf_probe_read\nexit";
    let mut xdp = instance(ProgType::Xdp, None, legacy, vec![]);
    assert!(not_allowed(xdp.run(0, &RunInput::data(vec![0; 60]))));
    let legacy_str = legacy.replace("bpf_probe_read", "bpf_probe_read_str");
    let mut xdp = instance(ProgType::Xdp, None, &legacy_str, vec![]);
    assert!(not_allowed(xdp.run(0, &RunInput::data(vec![0; 60]))));
    let new = legacy.replace("bpf_probe_read", "bpf_probe_read_kernel");
    let mut xdp = instance(ProgType::Xdp, None, &new, vec![]);
    assert_eq!(r0(xdp.run(0, &RunInput::data(vec![0; 60]))), ERANGE);
    for t in [ProgType::Kprobe, ProgType::Tracepoint, ProgType::RawTracepoint] {
        let mut inst = instance(t, None, legacy, vec![]);
        let input =
            if t == ProgType::Tracepoint { ctx_input(vec![0; 16]) } else { RunInput::default() };
        assert_eq!(r0(inst.run(0, &input)), EFAULT, "{t:?}");
    }
}

#[test]
fn current_task_helpers() {
    let comm = |size: u32| {
        format!(
            "r8 = 0xaaaaaaaaaaaaaaaa ll\n*(u64 *)(r10 - 8) = r8\n*(u64 *)(r10 - 16) = r8\nr1 = r10\nr1 += -16\nr2 = {size}\ncall bpf_get_current_comm\nr6 = *(u64 *)(r10 - 16)\n*(u64 *)(r1 + 0) = r6\nexit"
        )
    };
    let task = Task::new(42).tgid(40).comm("curl").uid(1000).gid(1001);
    let run = |src: &str| {
        let mut inst = instance(ProgType::Xdp, None, src, vec![]);
        inst.world.kernel.set_current(task.clone()).expect("task");
        inst.run(0, &RunInput::data(vec![0; 60]))
    };
    assert_eq!(r0(run("call bpf_get_current_pid_tgid\nexit")), 40 << 32 | 42);
    assert_eq!(r0(run("call bpf_get_current_uid_gid\nexit")), 1001 << 32 | 1000);
    // strscpy_pad: at most size-1 bytes, then NULs up to size.
    let comm_bytes = |size: u32| {
        let src = comm(size).replace(
            "r6 = *(u64 *)(r10 - 16)\n*(u64 *)(r1 + 0) = r6\n",
            "r0 = *(u64 *)(r10 - 16)\n",
        );
        (r0(run(&src)) as u64).to_le_bytes()
    };
    assert_eq!(&comm_bytes(16), b"curl\0\0\0\0");
    assert_eq!(&comm_bytes(3), b"cu\0\xaa\xaa\xaa\xaa\xaa");
    assert_eq!(&comm_bytes(1), b"\0\xaa\xaa\xaa\xaa\xaa\xaa\xaa");
    assert!(matches!(
        fault(run("r1 = r10\nr1 += -8\nr2 = 0\ncall bpf_get_current_comm\nexit")),
        VmErrorKind::Helper { error: HelperError::BadArg { arg: 2, .. }, .. }
    ));
    // get_current_task is a scalar: loading through it faults (kernel pointers need
    // bpf_probe_read_kernel); get_current_task_btf is a BTF pointer, readable directly.
    assert!(matches!(
        fault(run("call bpf_get_current_task\nr0 = *(u32 *)(r0 + 0)\nexit")),
        VmErrorKind::Memory(MemError::NoAccess {
            access: Access::Read,
            kind: RegionKind::Kernel,
            ..
        })
    ));
    let pid_off = Layout::running_kernel().task.pid;
    assert_eq!(
        r0(run(&format!("call bpf_get_current_task_btf\nr0 = *(u32 *)(r0 + {pid_off})\nexit"))),
        42
    );
    assert!(matches!(
        fault(run("call bpf_get_current_task_btf\nr1 = 1\n*(u32 *)(r0 + 0) = r1\nexit")),
        VmErrorKind::Memory(MemError::ReadOnly { .. })
    ));
}

#[test]
fn kprobe_context_and_fixture() {
    // tracing.bpf.c kprobe_openat2: PT_REGS_PARM1 (di) = dfd, PARM2 (si) = user filename.
    let src = "
r6 = r1
r7 = *(u64 *)(r6 + 112)
r7 <<= 32
r7 >>= 32
r3 = *(u64 *)(r6 + 104)
r1 = r10
r1 += -64
r2 = 64
call bpf_probe_read_user_str
r0 <<= 32
r0 |= r7
exit";
    let mut inst = instance(ProgType::Kprobe, None, src, vec![]);
    let w = &mut inst.world;
    let name = w.kernel.map_user(&mut w.mem, b"/etc/passwd\0".to_vec()).expect("user");
    let out = r0(inst.run(0, &trace_input(TraceInput::args([(-100i64) as u64, name, 0]))));
    assert_eq!(out >> 32, 12, "name_len = strlen + 1");
    assert_eq!(out as i32, -100, "dfd");
    // pt_regs layout: PARM1..6 = di, si, dx, cx, r8, r9; RC = ax; ip.
    let regs = "r0 = 0\nr2 = *(u64 *)(r1 + 112)\nr0 += r2\nr2 = *(u64 *)(r1 + 104)\nr0 += r2\nr2 = *(u64 *)(r1 + 96)\nr0 += r2\nr2 = *(u64 *)(r1 + 88)\nr0 += r2\nr2 = *(u64 *)(r1 + 72)\nr0 += r2\nr2 = *(u64 *)(r1 + 64)\nr0 += r2\nr2 = *(u64 *)(r1 + 80)\nr0 += r2\nr2 = *(u64 *)(r1 + 128)\nr0 += r2\nexit";
    let mut inst = instance(ProgType::Kprobe, None, regs, vec![]);
    let t = TraceInput::args([1, 2, 4, 8, 16, 32]).ret(64).func_ip(128);
    assert_eq!(r0(inst.run(0, &trace_input(t))), 255);
    // Raw pt_regs bytes: narrow aligned loads are allowed, writes and misaligned loads not.
    let mut raw = vec![0u8; 168];
    raw[80..88].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    let mut inst = instance(ProgType::Kprobe, None, "r0 = *(u16 *)(r1 + 82)\nexit", vec![]);
    assert_eq!(r0(inst.run(0, &ctx_input(raw.clone()))), 0x5566);
    let mut inst = instance(ProgType::Kprobe, None, "r0 = *(u32 *)(r1 + 82)\nexit", vec![]);
    assert!(fault(inst.run(0, &ctx_input(raw.clone()))).to_string().contains("misaligned"));
    let mut inst = instance(ProgType::Kprobe, None, "*(u64 *)(r1 + 80) = 1\nr0 = 0\nexit", vec![]);
    assert!(matches!(
        fault(inst.run(0, &ctx_input(raw.clone()))),
        VmErrorKind::Memory(MemError::Context { access: Access::Write, off: 80, .. })
    ));
    let mut inst = instance(ProgType::Kprobe, None, "r0 = *(u64 *)(r1 + 168)\nexit", vec![]);
    assert!(matches!(
        fault(inst.run(0, &ctx_input(raw.clone()))),
        VmErrorKind::Memory(MemError::OutOfBounds { .. })
    ));
    // The ctx is kernel memory to bpf_probe_read_kernel.
    let src = "r3 = r1\nr3 += 80\nr1 = r10\nr1 += -8\nr2 = 8\ncall bpf_probe_read_kernel\nr0 = *(u64 *)(r10 - 8)\nexit";
    let mut inst = instance(ProgType::Kprobe, None, src, vec![]);
    assert_eq!(r0(inst.run(0, &ctx_input(raw.clone()))) as u64, 0x1122_3344_5566_7788);
    // Input errors.
    let mut inst = instance(ProgType::Kprobe, None, "r0 = 0\nexit", vec![]);
    assert!(matches!(
        inst.run(0, &ctx_input(vec![0; 100])),
        Err(EngineError::Context(CtxError::BadCtx(_)))
    ));
    assert!(matches!(
        inst.run(0, &trace_input(TraceInput::args([0; 7]))),
        Err(EngineError::Context(CtxError::BadCtx(_)))
    ));
    assert!(matches!(
        inst.run(0, &RunInput::data(vec![1])),
        Err(EngineError::Context(CtxError::BadCtx(_)))
    ));
    // kretprobe_openat2: PT_REGS_RC.
    let mut inst = instance(ProgType::Kprobe, None, "r0 = *(u64 *)(r1 + 80)\nexit", vec![]);
    assert_eq!(r0(inst.run(0, &trace_input(TraceInput::default().ret(5)))), 5);
}

#[test]
fn kprobe_func_ip_and_cookie() {
    let mut inst = instance(ProgType::Kprobe, None, "call bpf_get_func_ip\nexit", vec![]);
    let t = TraceInput::args([1]).func_ip(0xffff_ffff_8123_4560).cookie(9);
    assert_eq!(r0(inst.run(0, &trace_input(t.clone()))) as u64, 0xffff_ffff_8123_4560);
    let mut inst = instance(ProgType::Kprobe, None, "call bpf_get_attach_cookie\nexit", vec![]);
    assert_eq!(r0(inst.run(0, &trace_input(t))), 9);
    assert_eq!(r0(inst.run(0, &RunInput::default())), 0);
    // r1 must be the context.
    let mut inst = instance(ProgType::Kprobe, None, "r1 = r10\ncall bpf_get_func_ip\nexit", vec![]);
    assert!(matches!(
        fault(inst.run(0, &RunInput::default())),
        VmErrorKind::Helper { error: HelperError::BadArg { arg: 1, .. }, .. }
    ));
    let mut inst = instance(
        ProgType::Kprobe,
        None,
        "r1 = r10\nr1 += -8\nr2 = 0\nr3 = r10\nr3 += -16\ncall bpf_get_func_arg\nexit",
        vec![],
    );
    assert!(not_allowed(inst.run(0, &RunInput::default())));
    let mut inst = instance(
        ProgType::Kprobe,
        None,
        "r2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall bpf_fib_lookup\nexit",
        vec![],
    );
    assert!(not_allowed(inst.run(0, &RunInput::default())));
}

#[test]
fn tracepoint_context_and_fixture() {
    // tracing.bpf.c tp_enter_openat: dfd @16, filename @24, flags @32.
    let mut record = vec![0u8; 48];
    record[0..2].copy_from_slice(&700u16.to_le_bytes());
    record[8..12].copy_from_slice(&257u32.to_le_bytes());
    record[16..24].copy_from_slice(&(-100i64).to_le_bytes());
    record[32..40].copy_from_slice(&0o101u64.to_le_bytes());
    let src = "r6 = r1\nr3 = *(u64 *)(r6 + 24)\nr1 = r10\nr1 += -16\nr2 = 16\ncall bpf_probe_read_user_str\nr1 = *(u64 *)(r6 + 32)\nr0 <<= 32\nr0 |= r1\nr1 = *(u32 *)(r6 + 16)\nr0 += r1\nexit";
    let mut inst = instance(ProgType::Tracepoint, None, src, vec![]);
    let w = &mut inst.world;
    let name = w.kernel.map_user(&mut w.mem, b"/tmp/x\0".to_vec()).expect("user");
    record[24..32].copy_from_slice(&name.to_le_bytes());
    let out = r0(inst.run(0, &ctx_input(record.clone()))) as u64;
    assert_eq!(out >> 32, 7, "name_len");
    assert_eq!(out as u32, 0o101u32.wrapping_add(-100i32 as u32));
    // The common fields are not readable, nor anything past the record.
    let mut inst = instance(ProgType::Tracepoint, None, "r0 = *(u16 *)(r1 + 0)\nexit", vec![]);
    assert!(fault(inst.run(0, &ctx_input(record.clone()))).to_string().contains("common fields"));
    let mut inst = instance(ProgType::Tracepoint, None, "r0 = *(u32 *)(r1 + 8)\nexit", vec![]);
    assert_eq!(r0(inst.run(0, &ctx_input(record.clone()))), 257);
    let mut inst = instance(ProgType::Tracepoint, None, "r0 = *(u64 *)(r1 + 48)\nexit", vec![]);
    assert!(matches!(
        fault(inst.run(0, &ctx_input(record.clone()))),
        VmErrorKind::Memory(MemError::OutOfBounds { .. })
    ));
    let mut inst =
        instance(ProgType::Tracepoint, None, "*(u32 *)(r1 + 8) = 1\nr0 = 0\nexit", vec![]);
    assert!(matches!(
        fault(inst.run(0, &ctx_input(record.clone()))),
        VmErrorKind::Memory(MemError::Context { access: Access::Write, .. })
    ));
    assert!(matches!(
        inst.run(0, &ctx_input(vec![0; 8193])),
        Err(EngineError::Context(CtxError::BadCtx(_)))
    ));
    let mut inst = instance(ProgType::Tracepoint, None, "call bpf_get_func_ip\nexit", vec![]);
    assert!(not_allowed(inst.run(0, &ctx_input(record.clone()))));
    let mut inst = instance(ProgType::Tracepoint, None, "call bpf_get_attach_cookie\nexit", vec![]);
    let mut input = ctx_input(record);
    input.trace = Some(TraceInput::default().cookie(77));
    assert_eq!(r0(inst.run(0, &input)), 77);
}

#[test]
fn raw_tp_context() {
    let two = args(&[0x1122_3344_5566_7788, 0x0102_0304_0506_0708]);
    let run = |src: &str, input: RunInput| {
        instance(ProgType::RawTracepoint, None, src, vec![]).run(0, &input)
    };
    assert_eq!(
        r0(run("r0 = *(u64 *)(r1 + 8)\nexit", ctx_input(two.clone()))),
        0x0102_0304_0506_0708
    );
    assert_eq!(r0(run("r0 = *(u8 *)(r1 + 9)\nexit", ctx_input(two.clone()))), 7);
    assert_eq!(r0(run("r0 = *(u32 *)(r1 + 4)\nexit", ctx_input(two.clone()))), 0x1122_3344);
    // Typed args build the same array.
    let t = trace_input(TraceInput::args([0x1122_3344_5566_7788, 0x0102_0304_0506_0708]).cookie(3));
    assert_eq!(r0(run("r0 = *(u32 *)(r1 + 12)\nexit", t.clone())), 0x0102_0304);
    assert_eq!(r0(run("call bpf_get_attach_cookie\nexit", t)), 3);
    assert!(
        fault(run("r0 = *(u32 *)(r1 + 2)\nexit", ctx_input(two.clone())))
            .to_string()
            .contains("misaligned")
    );
    assert!(matches!(
        fault(run("r0 = *(u64 *)(r1 + 16)\nexit", ctx_input(two.clone()))),
        VmErrorKind::Memory(MemError::OutOfBounds { off: 16, .. })
    ));
    assert!(matches!(
        fault(run("*(u64 *)(r1 + 0) = 1\nr0 = 0\nexit", ctx_input(two.clone()))),
        VmErrorKind::Memory(MemError::Context { access: Access::Write, .. })
    ));
    for bad in
        [ctx_input(vec![0; 104]), RunInput::data(vec![1]), trace_input(TraceInput::args([0; 13]))]
    {
        assert!(matches!(run("r0 = 0\nexit", bad), Err(EngineError::Context(CtxError::BadCtx(_)))));
    }
    let mut both = ctx_input(two);
    both.trace = Some(TraceInput::args([1]));
    assert!(matches!(run("r0 = 0\nexit", both), Err(EngineError::Context(CtxError::BadCtx(_)))));
    // raw_tp.w shares the context.
    let mut inst =
        instance(ProgType::RawTracepointWritable, None, "r0 = *(u64 *)(r1 + 0)\nexit", vec![]);
    assert_eq!(r0(inst.run(0, &trace_input(TraceInput::args([5])))), 5);
}

/// fentry.bpf.c: `func_res` slots 0-3 (fentry) and 4-7 (fexit).
const FUNC_RES: &str = "
r6 = r1
call bpf_get_func_arg_cnt
r2 = r0
r1 = 0
call res
r1 = 0
*(u64 *)(r10 - 8) = r1
*(u64 *)(r10 - 24) = r1
r1 = r6
r2 = 0
r3 = r10
r3 += -8
call bpf_get_func_arg
r2 = r0
r1 = 1
call res
r1 = *(u64 *)(r10 - 8)
r2 = *(u64 *)(r6 + 0)
r3 = 0
if w1 != w2 goto f1
r3 = 1
f1:
r2 = r3
r1 = 2
call res
r1 = r6
r2 = 3
r3 = r10
r3 += -24
call bpf_get_func_arg
r2 = r0
r1 = 3
call res
r0 = *(u64 *)(r10 - 24)
exit
";

const FEXIT_RES: &str = "
r6 = r1
call bpf_get_func_arg_cnt
r2 = r0
r1 = 4
call res
r1 = 0
*(u64 *)(r10 - 8) = r1
r1 = r6
r2 = r10
r2 += -8
call bpf_get_func_ret
r2 = r0
r1 = 5
call res
r1 = *(u64 *)(r10 - 8)
r2 = *(u64 *)(r6 + 24)
r3 = 0
if r1 != r2 goto f1
r3 = 1
f1:
r2 = r3
r1 = 6
call res
r2 = *(u64 *)(r6 + 24)
r1 = 7
call res
r0 = 0
exit
";

#[test]
fn fentry_fexit_fixture() {
    let maps = || vec![s64_array("func_res", 8)];
    let mut fentry =
        instance(ProgType::Tracing, Some(BPF_TRACE_FENTRY), &format!("{FUNC_RES}{RES}"), maps());
    // get_func_arg(ctx, 3) fails with -EINVAL and leaves the value alone (r0 = 0 below).
    assert_eq!(r0(fentry.run(0, &trace_input(TraceInput::args([3, 0x1000, 0x2000]))),), 0);
    assert_eq!(slots(&fentry, 0, 4), [3, 0, 1, EINVAL]);
    // The fixture's ctx form: u64 args {dfd, filename, how}.
    assert_eq!(r0(fentry.run(0, &ctx_input(args(&[(-100i64) as u64, 1, 2]))),), 0);
    assert_eq!(slots(&fentry, 0, 4), [3, 0, 1, EINVAL]);
    let mut fexit =
        instance(ProgType::Tracing, Some(BPF_TRACE_FEXIT), &format!("{FEXIT_RES}{RES}"), maps());
    assert_eq!(r0(fexit.run(0, &trace_input(TraceInput::args([3, 0x1000, 0x2000]).ret(5)))), 0);
    assert_eq!(slots(&fexit, 0, 8)[4..], [3, 0, 1, 5]);
    // ctx form: {dfd, filename, how, ret}.
    assert_eq!(r0(fexit.run(0, &ctx_input(args(&[3, 1, 2, (-2i64) as u64])))), 0);
    assert_eq!(slots(&fexit, 0, 8)[4..], [3, 0, 1, -2]);
    // fmod_ret sees the return value too; a 12-arg function's value is past args[11].
    let mut fmod =
        instance(ProgType::Tracing, Some(BPF_MODIFY_RETURN), &format!("{FEXIT_RES}{RES}"), maps());
    assert_eq!(r0(fmod.run(0, &trace_input(TraceInput::args([1, 2, 3]).ret(9)))), 0);
    assert_eq!(slots(&fmod, 0, 8)[4..], [3, 0, 1, 9]);
    let mut ret12 =
        instance(ProgType::Tracing, Some(BPF_TRACE_FEXIT), "r0 = *(u64 *)(r1 + 96)\nexit", vec![]);
    assert!(
        fault(ret12.run(0, &trace_input(TraceInput::args([0; 12]).ret(1))))
            .to_string()
            .contains("args[11]")
    );
}

#[test]
fn trampoline_helpers_per_attach_type() {
    let ret = "r2 = r10\nr2 += -8\nr3 = 0x55\n*(u64 *)(r10 - 8) = r3\ncall bpf_get_func_ret\nr1 = *(u64 *)(r10 - 8)\nr0 <<= 32\nr0 |= r1\nexit";
    let t = || trace_input(TraceInput::args([1, 2]).ret(7).func_ip(0xabc).cookie(11));
    // fentry: -EOPNOTSUPP, value untouched.
    let mut i = instance(ProgType::Tracing, Some(BPF_TRACE_FENTRY), ret, vec![]);
    let entry = trace_input(TraceInput::args([1, 2]));
    assert_eq!(r0(i.run(0, &entry)) as u64, (-95i64 as u64) << 32 | 0x55);
    // fentry programs have no return value to be given.
    assert!(matches!(i.run(0, &t()), Err(EngineError::Context(CtxError::BadCtx(_)))));
    let mut i = instance(ProgType::Lsm, Some(BPF_LSM_MAC), ret, vec![]);
    assert_eq!(r0(i.run(0, &t())), 7);
    // tp_btf has no trampoline: no func_arg helpers, no func_ip; the cookie works.
    let mut i = instance(ProgType::Tracing, Some(BPF_TRACE_RAW_TP), ret, vec![]);
    assert!(not_allowed(i.run(0, &trace_input(TraceInput::args([1, 2])))));
    let mut i = instance(
        ProgType::Tracing,
        Some(BPF_TRACE_RAW_TP),
        "call bpf_get_func_arg_cnt\nexit",
        vec![],
    );
    assert!(not_allowed(i.run(0, &trace_input(TraceInput::args([1, 2])))));
    let mut i =
        instance(ProgType::Tracing, Some(BPF_TRACE_RAW_TP), "call bpf_get_func_ip\nexit", vec![]);
    assert!(not_allowed(i.run(0, &trace_input(TraceInput::args([1, 2])))));
    let mut i = instance(
        ProgType::Tracing,
        Some(BPF_TRACE_RAW_TP),
        "call bpf_get_attach_cookie\nexit",
        vec![],
    );
    assert_eq!(r0(i.run(0, &trace_input(TraceInput::args([1]).cookie(4)))), 4);
    assert!(matches!(
        i.run(0, &trace_input(TraceInput::args([1]).ret(4))),
        Err(EngineError::Context(CtxError::BadCtx(_)))
    ));
    // func_ip: fentry/fexit/fmod_ret, not lsm.
    for at in [BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN] {
        let input = if at == BPF_TRACE_FENTRY {
            trace_input(TraceInput::args([1, 2]).func_ip(0xabc).cookie(11))
        } else {
            t()
        };
        let mut i = instance(ProgType::Tracing, Some(at), "call bpf_get_func_ip\nexit", vec![]);
        assert_eq!(r0(i.run(0, &input)), 0xabc);
        let mut i =
            instance(ProgType::Tracing, Some(at), "call bpf_get_attach_cookie\nexit", vec![]);
        assert_eq!(r0(i.run(0, &input)), 11);
    }
    let mut i = instance(ProgType::Lsm, Some(BPF_LSM_MAC), "call bpf_get_func_ip\nexit", vec![]);
    assert!(not_allowed(i.run(0, &t())));
    // get_func_arg's index is a u32: 2^32 + 1 reads arg 1; out of range is -EINVAL.
    let arg = |n: u64| {
        format!(
            "r2 = {n} ll\nr3 = r10\nr3 += -8\ncall bpf_get_func_arg\nr0 <<= 32\nr1 = *(u64 *)(r10 - 8)\nr0 |= r1\nexit"
        )
    };
    let mut i = instance(ProgType::Tracing, Some(BPF_TRACE_FEXIT), &arg((1 << 32) + 1), vec![]);
    assert_eq!(r0(i.run(0, &t())), 2);
    let mut i = instance(ProgType::Tracing, Some(BPF_TRACE_FEXIT), &arg(2), vec![]);
    assert_eq!(r0(i.run(0, &t())) as u64, (EINVAL as u64) << 32, "value untouched");
    // The ret slot is not an argument.
    let mut i = instance(
        ProgType::Tracing,
        Some(BPF_TRACE_FEXIT),
        "call bpf_get_func_arg_cnt\nexit",
        vec![],
    );
    assert_eq!(r0(i.run(0, &t())), 2);
    // Missing attach type, unsupported attach type.
    let mut i = instance(ProgType::Tracing, None, "r0 = 0\nexit", vec![]);
    assert!(matches!(i.run(0, &t()), Err(EngineError::Context(CtxError::BadCtx(_)))));
    let mut i = instance(ProgType::Tracing, Some(28), "r0 = 0\nexit", vec![]);
    assert!(matches!(i.run(0, &t()), Err(EngineError::Context(CtxError::BadCtx(_)))));
    // Not callable from other program types.
    let mut i = instance(ProgType::RawTracepoint, None, "call bpf_get_func_arg_cnt\nexit", vec![]);
    assert!(not_allowed(i.run(0, &RunInput::default())));
}

#[test]
fn lsm_fixture() {
    // lsm.bpf.c lsm_file_open: counts calls and non-NULL files, returns 0 (deny_all = 0).
    let src = "
r6 = *(u64 *)(r1 + 0)
r1 = 0
*(u32 *)(r10 - 4) = r1
r1 = map[idx:0] ll
r2 = r10
r2 += -4
call bpf_map_lookup_elem
if r0 == 0 goto out
r1 = 1
lock *(u64 *)(r0 + 0) += r1
if r6 == 0 goto out
r1 = 1
*(u32 *)(r10 - 4) = r1
r1 = map[idx:0] ll
r2 = r10
r2 += -4
call bpf_map_lookup_elem
if r0 == 0 goto out
r1 = 1
lock *(u64 *)(r0 + 0) += r1
out:
r0 = 0
exit";
    let mut inst = instance(ProgType::Lsm, Some(BPF_LSM_MAC), src, vec![s64_array("lsm_calls", 2)]);
    let w = &mut inst.world;
    let file = w.kernel.map_object(&mut w.mem, vec![0; 184], View::Btf).expect("file");
    assert_eq!(r0(inst.run(0, &trace_input(TraceInput::args([file])))), 0);
    assert_eq!(slots(&inst, 0, 2), [1, 1]);
    assert_eq!(r0(inst.run(0, &trace_input(TraceInput::args([0])))), 0);
    assert_eq!(slots(&inst, 0, 2), [2, 1]);
}

/// `struct bpf_fib_lookup` at fp-64 (IPv4 or IPv6), `bpf_fib_lookup(ctx, p, plen, flags)`,
/// then the 64 bytes are copied to the front of the packet (XDP) for inspection.
fn fib_src(p: &[u8; 64], plen: u32, flags: u32) -> String {
    let mut src = String::from("r6 = r1\n");
    for (i, w) in p.chunks(8).enumerate() {
        let v = u64::from_le_bytes(w.try_into().expect("8"));
        src.push_str(&format!("r1 = {v:#x} ll\n*(u64 *)(r10 - {}) = r1\n", 64 - i * 8));
    }
    src.push_str(&format!(
        "r1 = r6\nr2 = r10\nr2 += -64\nr3 = {plen}\nr4 = {flags}\ncall bpf_fib_lookup\nr7 = r0\n"
    ));
    src
}

fn fib_params(family: u8, ifindex: u32, src: IpAddr, dst: IpAddr, tot_len: u16) -> [u8; 64] {
    let mut p = [0u8; 64];
    p[0] = family;
    p[1] = 6;
    p[6..8].copy_from_slice(&tot_len.to_le_bytes());
    p[8..12].copy_from_slice(&ifindex.to_le_bytes());
    let put = |p: &mut [u8; 64], off: usize, a: IpAddr| match a {
        IpAddr::V4(a) => p[off..off + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => p[off..off + 16].copy_from_slice(&a.octets()),
    };
    put(&mut p, 16, src);
    put(&mut p, 32, dst);
    p
}

/// Runs a fib lookup in an XDP (or tc) program of `inst`'s kind; returns (rc, params after).
fn fib_run(
    t: ProgType,
    setup: impl FnOnce(&mut Instance),
    p: [u8; 64],
    plen: u32,
    flags: u32,
    packet_len: usize,
) -> (i64, [u8; 64]) {
    let mut src = fib_src(&p, plen, flags);
    // Copy the params out through a ring of stores into a map value.
    src.push_str("r1 = 0\n*(u32 *)(r10 - 68) = r1\nr1 = map[idx:0] ll\nr2 = r10\nr2 += -68\nr3 = r10\nr3 += -64\nr4 = 0\ncall bpf_map_update_elem\nr0 = r7\nexit");
    let mut inst = instance(t, None, &src, vec![MapSpec::new("out", MapType::Array, 4, 64, 1)]);
    setup(&mut inst);
    let mut frame = vec![0u8; packet_len];
    frame[12] = 0x08;
    frame[14] = 0x45;
    let rc = r0(inst.run(0, &RunInput::data(frame)));
    let v = inst.world.lookup(0, &0u32.to_le_bytes()).expect("lookup").expect("value");
    (rc, v[..64].try_into().expect("64"))
}

const MAC_ETH0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_GW: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn router(inst: &mut Instance) {
    let fib = &mut inst.world.kernel.fib;
    fib.add_device(NetDevice::new(2, "eth0", MAC_ETH0).forwarding(true).addr(v4([192, 168, 1, 2])));
    fib.add_device(NetDevice::new(3, "eth1", [2, 0, 0, 0, 0, 3]).forwarding(true));
    fib.add_route(Route::unicast(v4([192, 168, 1, 0]), 24, 2));
    fib.add_route(Route::unicast(v4([0, 0, 0, 0]), 0, 2).via(v4([192, 168, 1, 254])).metric(100));
    fib.add_route(Route::unicast(v4([10, 0, 0, 0]), 8, 3).via(v4([10, 9, 9, 9])));
    fib.add_route(Route::reject(v4([10, 66, 0, 0]), 16, RouteKind::Blackhole));
    fib.add_route(Route::reject(v4([10, 67, 0, 0]), 16, RouteKind::Unreachable));
    fib.add_route(Route::reject(v4([10, 68, 0, 0]), 16, RouteKind::Prohibit));
    fib.add_route(Route::local(v4([192, 168, 1, 2]), 32, 2));
    fib.add_route(
        Route::unicast(v4([172, 16, 0, 0]), 12, 2).table(100).via(v4([192, 168, 1, 254])),
    );
    fib.add_neighbour(2, v4([192, 168, 1, 254]), MAC_GW);
    fib.add_neighbour(2, v4([192, 168, 1, 7]), [2, 0, 0, 0, 0, 7]);
    let v6gw: IpAddr = "2001:db8::fe".parse().expect("v6");
    fib.add_route(Route::unicast("2001:db8:1::".parse().expect("v6"), 48, 2).via(v6gw));
    fib.add_neighbour(2, v6gw, MAC_GW);
    let dev = fib.device_mut(2).expect("eth0");
    dev.addrs.push("2001:db8::2".parse().expect("v6"));
}

#[test]
fn fib_lookup_fixture_and_errors() {
    // net_lookup.bpf.c: lo with forwarding off -> FWD_DISABLED (5); no device -> -ENODEV.
    let lo = v4([127, 0, 0, 1]);
    let p = fib_params(2, 1, lo, lo, 40);
    for t in [ProgType::SchedCls, ProgType::Xdp] {
        let (rc, after) = fib_run(t, |_| {}, p, 64, 2, 60);
        assert_eq!((rc, after), (5, p), "{t:?}");
        assert_eq!(fib_run(t, |_| {}, fib_params(2, 0x7fff_ffff, lo, lo, 40), 64, 2, 60).0, -19);
    }
    // Forwarding on: 127.0.0.1 is a local route -> NOT_FWDED (4).
    let fwd = |i: &mut Instance| i.world.kernel.fib.device_mut(1).expect("lo").forwarding = true;
    assert_eq!(fib_run(ProgType::SchedCls, fwd, p, 64, 2, 60).0, 4);
    // Argument checks, before anything else.
    assert_eq!(fib_run(ProgType::Xdp, |_| {}, p, 63, 2, 60).0, EINVAL);
    assert_eq!(fib_run(ProgType::Xdp, |_| {}, p, 64, 0x40, 60).0, EINVAL);
    assert_eq!(fib_run(ProgType::Xdp, |_| {}, fib_params(99, 1, lo, lo, 0), 64, 0, 60).0, -97);
    // IPv6 loopback and link-local are never forwarded.
    let l6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(fib_run(ProgType::Xdp, |_| {}, fib_params(10, 1, l6, l6, 0), 64, 0, 60).0, 4);
    let g6: IpAddr = "2001:db8::1".parse().expect("v6");
    assert_eq!(fib_run(ProgType::Xdp, |_| {}, fib_params(10, 1, g6, g6, 0), 64, 0, 60).0, 5);
    // Other program types may not call it.
    let mut inst = instance(
        ProgType::RawTracepoint,
        None,
        "r2 = r10\nr2 += -64\nr3 = 64\nr4 = 0\ncall bpf_fib_lookup\nexit",
        vec![],
    );
    assert!(not_allowed(inst.run(0, &RunInput::default())));
}

#[test]
fn fib_lookup_routes_and_neighbours() {
    let src = v4([192, 168, 1, 2]);
    let q = |dst: [u8; 4], tot_len| fib_params(2, 2, src, v4(dst), tot_len);
    let xdp = |p, flags| fib_run(ProgType::Xdp, router, p, 64, flags, 60);
    // Through the gateway: ifindex, dst = gateway, MACs, MTU, metric.
    let (rc, out) = xdp(q([8, 8, 8, 8], 40), 0);
    assert_eq!(rc, 0);
    assert_eq!(u32::from_le_bytes(out[8..12].try_into().expect("4")), 2);
    assert_eq!(&out[32..36], &[192, 168, 1, 254]);
    assert_eq!((&out[52..58], &out[58..64]), (&MAC_ETH0[..], &MAC_GW[..]));
    assert_eq!(u16::from_le_bytes([out[6], out[7]]), 1500);
    assert_eq!(u32::from_le_bytes(out[12..16].try_into().expect("4")), 100);
    // On-link neighbour; missing neighbour (ifindex and dst already rewritten).
    let (rc, out) = xdp(q([192, 168, 1, 7], 40), 0);
    assert_eq!((rc, &out[58..64]), (0, &[2, 0, 0, 0, 0, 7][..]));
    let (rc, out) = xdp(q([10, 1, 2, 3], 40), 0);
    assert_eq!(rc, 7);
    assert_eq!(
        (u32::from_le_bytes(out[8..12].try_into().expect("4")), &out[32..36]),
        (3, &[10, 9, 9, 9][..])
    );
    assert_eq!(xdp(q([10, 1, 2, 3], 40), 4).0, 0, "SKIP_NEIGH");
    // MTU: tot_len above it.
    let (rc, out) = xdp(q([8, 8, 8, 8], 1501), 0);
    assert_eq!((rc, u16::from_le_bytes([out[6], out[7]])), (8, 1500));
    // Reject routes, local and missing routes.
    assert_eq!(xdp(q([10, 66, 1, 1], 0), 0).0, 1);
    assert_eq!(xdp(q([10, 67, 1, 1], 0), 0).0, 2);
    assert_eq!(xdp(q([10, 68, 1, 1], 0), 0).0, 3);
    assert_eq!(xdp(q([192, 168, 1, 2], 0), 0).0, 4);
    // OUTPUT through eth1 skips eth0's routes: 8.8.8.8 has none there.
    let mut p = q([8, 8, 8, 8], 0);
    p[8..12].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(xdp(p, 2).0, 4);
    // DIRECT|TBID: table 100, then a missing table (tbid is zeroed either way).
    let mut p = q([172, 16, 5, 5], 0);
    p[48..52].copy_from_slice(&100u32.to_le_bytes());
    let (rc, out) = xdp(p, 1 | 8);
    assert_eq!((rc, &out[32..36], &out[48..52]), (0, &[192, 168, 1, 254][..], &[0u8; 4][..]));
    assert_eq!(xdp(q([172, 16, 5, 5], 0), 0).0, 0, "main has a default route");
    p[48..52].copy_from_slice(&555u32.to_le_bytes());
    let (rc, out) = xdp(p, 1 | 8);
    assert_eq!((rc, &out[48..52]), (4, &[0u8; 4][..]));
    // SRC: from the device's address; none on eth1 -> NO_SRC_ADDR.
    let mut p = q([8, 8, 8, 8], 0);
    p[16..20].copy_from_slice(&[0; 4]);
    let (rc, out) = xdp(p, 16);
    assert_eq!((rc, &out[16..20]), (0, &[192, 168, 1, 2][..]));
    let mut p = q([10, 1, 2, 3], 0);
    p[8..12].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(xdp(p, 16).0, 9);
    // IPv6 through a gateway.
    let s6: IpAddr = "2001:db8::2".parse().expect("v6");
    let d6: IpAddr = "2001:db8:1::9".parse().expect("v6");
    let (rc, out) = xdp(fib_params(10, 2, s6, d6, 0), 0);
    assert_eq!(rc, 0);
    assert_eq!(&out[32..48], &"2001:db8::fe".parse::<Ipv6Addr>().expect("v6").octets());
    assert_eq!(&out[58..64], &MAC_GW);
    // tc without tot_len: the packet is checked against the egress device and its MTU is
    // reported.
    let tc = |len| fib_run(ProgType::SchedCls, router, q([8, 8, 8, 8], 0), 64, 0, len);
    let (rc, out) = tc(60);
    assert_eq!((rc, u16::from_le_bytes([out[6], out[7]])), (0, 1500));
    assert_eq!(tc(1500 + 14 + 4).0, 0);
    assert_eq!(tc(1500 + 14 + 5).0, 8);
}
