//! Contexts of tracing programs, read-only as in the kernel:
//! - kprobe/kretprobe: `struct pt_regs` (x86_64, 168 bytes), any aligned load
//!   (`kprobe_prog_is_valid_access`);
//! - tracepoint: the event's raw record; its first 8 bytes (the common fields) are not
//!   readable (`tp_prog_is_valid_access`);
//! - raw_tp / raw_tp.w: `u64 args[]`, as `BPF_PROG_TEST_RUN` builds it from ctx_in;
//! - fentry/fexit/fmod_ret/tp_btf (`BPF_PROG_TYPE_TRACING`) and lsm: `u64 args[]`, followed by
//!   the return value for fexit, fmod_ret and lsm (the trampoline's layout).
//!
//! Inputs: [`RunInput::ctx`] holds the raw bytes (pt_regs, the tracepoint record, the args
//! array; for fexit/fmod_ret/lsm the args then the return value), or [`RunInput::trace`]
//! gives typed arguments ([`TraceInput`]); kprobes then get them in di, si, dx, cx, r8, r9
//! and the return value in ax. `data` must be empty (the kernel's raw_tp test run refuses
//! data with EINVAL).

use std::any::Any;

use super::{CtxError, Installed, Target, allowed, denied, read_field};
use crate::engine::{ProgType, RunInput};
use crate::memory::{Access, ContextAccess, MemError, Memory};

/// `sizeof(struct pt_regs)` on x86_64.
pub const PT_REGS_SIZE: usize = super::layout::PT_REGS_SIZE as usize;
/// The largest tracepoint record (`PERF_MAX_TRACE_SIZE`).
pub const PERF_MAX_TRACE_SIZE: usize = super::layout::PERF_MAX_TRACE_SIZE as usize;
/// Most arguments of a traced function or raw tracepoint (`MAX_BPF_FUNC_ARGS`).
pub const MAX_BPF_FUNC_ARGS: usize = super::layout::MAX_BPF_FUNC_ARGS as usize;
/// Argument registers of a kprobe (`PT_REGS_PARM1..6`).
pub const KPROBE_ARG_REGS: usize = 6;

/// `BPF_TRACE_RAW_TP`: tp_btf programs.
pub const BPF_TRACE_RAW_TP: u32 = 23;
/// `BPF_TRACE_FENTRY`.
pub const BPF_TRACE_FENTRY: u32 = 24;
/// `BPF_TRACE_FEXIT`.
pub const BPF_TRACE_FEXIT: u32 = 25;
/// `BPF_MODIFY_RETURN`: fmod_ret programs.
pub const BPF_MODIFY_RETURN: u32 = 26;
/// `BPF_LSM_MAC`.
pub const BPF_LSM_MAC: u32 = 27;
/// `BPF_LSM_CGROUP`.
pub const BPF_LSM_CGROUP: u32 = 43;

/// Indices of the `struct pt_regs` slots (x86_64 `asm/ptrace.h`, 8 bytes each).
pub mod reg {
    /// r15.
    pub const R15: usize = 0;
    /// r14.
    pub const R14: usize = 1;
    /// r13.
    pub const R13: usize = 2;
    /// r12.
    pub const R12: usize = 3;
    /// bp.
    pub const BP: usize = 4;
    /// bx.
    pub const BX: usize = 5;
    /// r11.
    pub const R11: usize = 6;
    /// r10.
    pub const R10: usize = 7;
    /// r9 (`PT_REGS_PARM6`).
    pub const R9: usize = 8;
    /// r8 (`PT_REGS_PARM5`).
    pub const R8: usize = 9;
    /// ax (`PT_REGS_RC`).
    pub const AX: usize = 10;
    /// cx (`PT_REGS_PARM4`).
    pub const CX: usize = 11;
    /// dx (`PT_REGS_PARM3`).
    pub const DX: usize = 12;
    /// si (`PT_REGS_PARM2`).
    pub const SI: usize = 13;
    /// di (`PT_REGS_PARM1`).
    pub const DI: usize = 14;
    /// orig_ax.
    pub const ORIG_AX: usize = 15;
    /// ip.
    pub const IP: usize = 16;
    /// cs.
    pub const CS: usize = 17;
    /// flags.
    pub const FLAGS: usize = 18;
    /// sp.
    pub const SP: usize = 19;
    /// ss.
    pub const SS: usize = 20;
    /// The registers of `PT_REGS_PARM1..6`, in order.
    pub const PARMS: [usize; 6] = [DI, SI, DX, CX, R8, R9];
}

/// Typed input of a tracing run (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceInput {
    /// The function's or tracepoint's arguments (at most 12; 6 for kprobes).
    pub args: Vec<u64>,
    /// The return value (fexit, fmod_ret, lsm; kretprobe `ax`); 0 when absent.
    pub ret: Option<u64>,
    /// The traced function's address (`bpf_get_func_ip`; kprobe `ip`).
    pub func_ip: u64,
    /// The attachment's cookie (`bpf_get_attach_cookie`).
    pub cookie: u64,
}

impl TraceInput {
    /// Input with these arguments.
    pub fn args(args: impl Into<Vec<u64>>) -> TraceInput {
        TraceInput { args: args.into(), ..TraceInput::default() }
    }

    /// The same input with a return value.
    pub fn ret(mut self, ret: u64) -> TraceInput {
        self.ret = Some(ret);
        self
    }

    /// The same input with a function address.
    pub fn func_ip(mut self, ip: u64) -> TraceInput {
        self.func_ip = ip;
        self
    }

    /// The same input with an attach cookie.
    pub fn cookie(mut self, cookie: u64) -> TraceInput {
        self.cookie = cookie;
        self
    }
}

/// A kprobe's `struct pt_regs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtRegsCtx {
    /// The registers, in `struct pt_regs` order (see [`reg`]).
    pub regs: [u64; PT_REGS_SIZE / 8],
    /// What `bpf_get_func_ip` returns.
    pub func_ip: u64,
    /// What `bpf_get_attach_cookie` returns.
    pub cookie: u64,
}

/// A tracepoint's raw record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracepointCtx {
    /// The record, common fields first.
    pub record: Vec<u8>,
    /// What `bpf_get_attach_cookie` returns.
    pub cookie: u64,
}

/// Which program reads an argument array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgsKind {
    /// `raw_tp` / `raw_tp.w` (`BPF_PROG_TYPE_RAW_TRACEPOINT[_WRITABLE]`).
    RawTp,
    /// `tp_btf` (tracing, `BPF_TRACE_RAW_TP`).
    TpBtf,
    /// `fentry`.
    Fentry,
    /// `fexit`.
    Fexit,
    /// `fmod_ret`.
    FmodRet,
    /// `lsm` (`BPF_LSM_MAC`).
    Lsm,
}

impl ArgsKind {
    /// Runs from a BPF trampoline (`bpf_prog_has_trampoline`): the func_arg helpers work.
    pub fn has_trampoline(self) -> bool {
        matches!(self, ArgsKind::Fentry | ArgsKind::Fexit | ArgsKind::FmodRet | ArgsKind::Lsm)
    }

    /// The return value follows the arguments.
    pub fn has_ret(self) -> bool {
        matches!(self, ArgsKind::Fexit | ArgsKind::FmodRet | ArgsKind::Lsm)
    }
}

/// An argument array: raw or BTF tracepoint, fentry/fexit/fmod_ret, lsm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgsCtx {
    /// The program kind.
    pub kind: ArgsKind,
    /// The program's type and attach type, whose [`super::layout`] decides accesses.
    pub target: Target,
    /// The array's bytes: the arguments, then the return value where there is one.
    pub bytes: Vec<u8>,
    /// The number of arguments (`bpf_get_func_arg_cnt`).
    pub nr_args: usize,
    /// What `bpf_get_func_ip` returns.
    pub func_ip: u64,
    /// What `bpf_get_attach_cookie` returns.
    pub cookie: u64,
}

impl ArgsCtx {
    /// Argument `n`, if there is one.
    pub fn arg(&self, n: usize) -> Option<u64> {
        (n < self.nr_args && (n + 1) * 8 <= self.bytes.len())
            .then(|| read_field(&self.bytes, n * 8, 8))
    }

    /// The return value slot (0 where the program kind has none).
    pub fn ret(&self) -> u64 {
        let off = self.nr_args * 8;
        if self.kind.has_ret() && off + 8 <= self.bytes.len() {
            read_field(&self.bytes, off, 8)
        } else {
            0
        }
    }
}

fn u64s(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn bad(msg: impl Into<String>) -> CtxError {
    CtxError::BadCtx(msg.into())
}

/// Builds and installs the context of a tracing program.
pub(crate) fn install(
    target: Target,
    input: &RunInput,
    mem: &mut Memory,
) -> Result<Installed, CtxError> {
    if !input.data.is_empty() {
        return Err(bad(format!(
            "{:?} programs take no data (got {} bytes)",
            target.prog_type,
            input.data.len()
        )));
    }
    let trace = input.trace.clone().unwrap_or_default();
    let ctx: Box<dyn ContextAccess> = match target.prog_type {
        ProgType::Kprobe => Box::new(pt_regs(input, &trace)?),
        ProgType::Tracepoint => {
            let record = input.ctx.clone().unwrap_or_default();
            if record.len() > PERF_MAX_TRACE_SIZE {
                return Err(bad(format!(
                    "tracepoint record of {} bytes exceeds PERF_MAX_TRACE_SIZE ({PERF_MAX_TRACE_SIZE})",
                    record.len()
                )));
            }
            Box::new(TracepointCtx { record, cookie: trace.cookie })
        }
        ProgType::RawTracepoint | ProgType::RawTracepointWritable => {
            Box::new(args_ctx(ArgsKind::RawTp, target, input, &trace)?)
        }
        ProgType::Tracing => {
            let kind = match target.attach {
                Some(BPF_TRACE_RAW_TP) => ArgsKind::TpBtf,
                Some(BPF_TRACE_FENTRY) => ArgsKind::Fentry,
                Some(BPF_TRACE_FEXIT) => ArgsKind::Fexit,
                Some(BPF_MODIFY_RETURN) => ArgsKind::FmodRet,
                Some(other) => {
                    return Err(bad(format!(
                        "tracing programs of attach type {other} have no simulated context"
                    )));
                }
                None => {
                    return Err(bad(
                        "tracing programs need an expected attach type (fentry 24, fexit 25, fmod_ret 26, tp_btf 23)",
                    ));
                }
            };
            Box::new(args_ctx(kind, target, input, &trace)?)
        }
        ProgType::Lsm => match target.attach {
            None | Some(BPF_LSM_MAC | BPF_LSM_CGROUP) => {
                Box::new(args_ctx(ArgsKind::Lsm, target, input, &trace)?)
            }
            Some(other) => {
                return Err(bad(format!(
                    "lsm programs of attach type {other} have no simulated context"
                )));
            }
        },
        other => return Err(CtxError::Unsupported(other)),
    };
    let id = mem.set_context(ctx)?;
    Ok(Installed { r1: id.base(), ld_abs: None, owned: Vec::new() })
}

fn pt_regs(input: &RunInput, trace: &TraceInput) -> Result<PtRegsCtx, CtxError> {
    let mut regs = [0u64; PT_REGS_SIZE / 8];
    if let Some(bytes) = &input.ctx {
        if bytes.len() != PT_REGS_SIZE {
            return Err(bad(format!(
                "struct pt_regs must be {PT_REGS_SIZE} bytes, got {}",
                bytes.len()
            )));
        }
        if !trace.args.is_empty() || trace.ret.is_some() {
            return Err(bad("give the registers either as ctx bytes or as trace arguments"));
        }
        for (i, r) in regs.iter_mut().enumerate() {
            *r = read_field(bytes, i * 8, 8);
        }
    } else {
        if trace.args.len() > KPROBE_ARG_REGS {
            return Err(bad(format!(
                "a kprobe sees at most {KPROBE_ARG_REGS} register arguments, got {}",
                trace.args.len()
            )));
        }
        for (&r, &v) in reg::PARMS.iter().zip(&trace.args) {
            regs[r] = v;
        }
        regs[reg::AX] = trace.ret.unwrap_or(0);
        regs[reg::IP] = trace.func_ip;
    }
    Ok(PtRegsCtx { regs, func_ip: trace.func_ip, cookie: trace.cookie })
}

fn args_ctx(
    kind: ArgsKind,
    target: Target,
    input: &RunInput,
    trace: &TraceInput,
) -> Result<ArgsCtx, CtxError> {
    let max = MAX_BPF_FUNC_ARGS;
    let (bytes, nr_args) = match &input.ctx {
        Some(bytes) => {
            if !trace.args.is_empty() || trace.ret.is_some() {
                return Err(bad("give the arguments either as ctx bytes or as trace arguments"));
            }
            let words = bytes.len() / 8;
            let nr = if kind.has_ret() { words.saturating_sub(1) } else { words };
            if kind != ArgsKind::RawTp && (bytes.len() % 8 != 0 || (kind.has_ret() && words == 0)) {
                return Err(bad(format!(
                    "the ctx must be u64 args{} ({} bytes given)",
                    if kind.has_ret() { " followed by the return value" } else { "" },
                    bytes.len()
                )));
            }
            if bytes.len() > max * 8 + if kind.has_ret() { 8 } else { 0 } {
                return Err(bad(format!("at most {max} arguments ({} bytes given)", bytes.len())));
            }
            (bytes.clone(), nr)
        }
        None => {
            if trace.args.len() > max {
                return Err(bad(format!("at most {max} arguments, got {}", trace.args.len())));
            }
            let mut words = trace.args.clone();
            if kind.has_ret() {
                words.push(trace.ret.unwrap_or(0));
            } else if trace.ret.is_some() {
                return Err(bad(format!("{kind:?} programs see no return value")));
            }
            (u64s(&words), trace.args.len())
        }
    };
    Ok(ArgsCtx { kind, target, bytes, nr_args, func_ip: trace.func_ip, cookie: trace.cookie })
}

/// The bytes the kernel's ctx pointer would show to `bpf_probe_read_kernel` for the installed
/// context (tracing contexts as built here, others as their `ctx_out`).
pub(crate) fn ctx_bytes(mem: &Memory) -> Option<Vec<u8>> {
    let c = mem.context()?;
    let any = c.as_any();
    if let Some(p) = any.downcast_ref::<PtRegsCtx>() {
        return Some(u64s(&p.regs));
    }
    if let Some(t) = any.downcast_ref::<TracepointCtx>() {
        return Some(t.record.clone());
    }
    if let Some(a) = any.downcast_ref::<ArgsCtx>() {
        return Some(a.bytes.clone());
    }
    c.ctx_out(mem)
}

/// Reads `len` bytes at `off` of `bytes` once `target`'s layout allows the load, refusing
/// loads past the bytes the run was given.
fn load_from(target: Target, bytes: &[u8], off: usize, len: usize) -> Result<u64, MemError> {
    allowed(target, Access::Read, off, len)?;
    if off.checked_add(len).is_none_or(|end| end > bytes.len()) {
        return Err(denied(Access::Read, off, len, "past the end of the context"));
    }
    Ok(read_field(bytes, off, len))
}

macro_rules! read_only_ctx {
    ($what:literal) => {
        fn store(
            &mut self,
            _mem: &Memory,
            off: usize,
            len: usize,
            _value: u64,
        ) -> Result<(), MemError> {
            allowed(self.target(), Access::Write, off, len)?;
            Err(denied(Access::Write, off, len, concat!($what, " is read-only")))
        }

        fn packet_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
            None
        }

        fn ctx_out(&self, _mem: &Memory) -> Option<Vec<u8>> {
            None
        }

        fn as_any(&self) -> &dyn Any {
            self
        }

        fn as_any_mut(&mut self) -> &mut dyn Any {
            self
        }
    };
}

impl PtRegsCtx {
    fn target(&self) -> Target {
        Target { prog_type: ProgType::Kprobe, attach: None }
    }
}

impl TracepointCtx {
    fn target(&self) -> Target {
        Target { prog_type: ProgType::Tracepoint, attach: None }
    }
}

impl ArgsCtx {
    fn target(&self) -> Target {
        self.target
    }
}

impl ContextAccess for PtRegsCtx {
    fn size(&self) -> usize {
        PT_REGS_SIZE
    }

    fn load(&self, _mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        load_from(self.target(), &u64s(&self.regs), off, len)
    }

    read_only_ctx!("struct pt_regs");
}

impl ContextAccess for TracepointCtx {
    fn size(&self) -> usize {
        self.record.len()
    }

    fn load(&self, _mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        load_from(self.target(), &self.record, off, len)
    }

    read_only_ctx!("a tracepoint record");
}

impl ContextAccess for ArgsCtx {
    fn size(&self) -> usize {
        self.bytes.len()
    }

    fn load(&self, _mem: &Memory, off: usize, len: usize) -> Result<u64, MemError> {
        load_from(self.target, &self.bytes, off, len)
    }

    read_only_ctx!("the argument array");
}
