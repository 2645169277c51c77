//! The interface shared by every way of running a program: the interpreter, the JIT and the
//! kernel. Each takes the same [`Program`] and [`RunInput`] and returns a [`RunOutcome`], so a
//! test can run one case on all of them and compare.

use std::fmt;

use crate::isa::Insn;
use crate::spec::Collection;

/// The kernel's program types (`enum bpf_prog_type`), with their numeric ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProgType {
    /// No context: raw mode, r1 points to the input memory and r2 holds its length.
    Unspec = 0,
    /// `SEC("socket")`.
    SocketFilter = 1,
    /// `SEC("kprobe/...")`.
    Kprobe = 2,
    /// `SEC("tc")`, `SEC("classifier")`.
    SchedCls = 3,
    /// `SEC("action")`.
    SchedAct = 4,
    /// `SEC("tracepoint/...")`.
    Tracepoint = 5,
    /// `SEC("xdp")`.
    Xdp = 6,
    /// `SEC("perf_event")`.
    PerfEvent = 7,
    /// `SEC("cgroup_skb/...")`.
    CgroupSkb = 8,
    /// `SEC("cgroup/sock...")`.
    CgroupSock = 9,
    /// `SEC("lwt_in")`.
    LwtIn = 10,
    /// `SEC("lwt_out")`.
    LwtOut = 11,
    /// `SEC("lwt_xmit")`.
    LwtXmit = 12,
    /// `SEC("sockops")`.
    SockOps = 13,
    /// `SEC("sk_skb/...")`.
    SkSkb = 14,
    /// `SEC("cgroup/dev")`.
    CgroupDevice = 15,
    /// `SEC("sk_msg")`.
    SkMsg = 16,
    /// `SEC("raw_tp/...")`.
    RawTracepoint = 17,
    /// `SEC("cgroup/bind4")` and friends.
    CgroupSockAddr = 18,
    /// `SEC("lwt_seg6local")`.
    LwtSeg6local = 19,
    /// `SEC("lirc_mode2")`.
    LircMode2 = 20,
    /// `SEC("sk_reuseport")`.
    SkReuseport = 21,
    /// `SEC("flow_dissector")`.
    FlowDissector = 22,
    /// `SEC("cgroup/sysctl")`.
    CgroupSysctl = 23,
    /// `SEC("raw_tp.w/...")`.
    RawTracepointWritable = 24,
    /// `SEC("cgroup/getsockopt")` and `setsockopt`.
    CgroupSockopt = 25,
    /// `SEC("fentry/...")`, `fexit`, `fmod_ret`, `tp_btf`, `iter`.
    Tracing = 26,
    /// `SEC("struct_ops/...")`.
    StructOps = 27,
    /// `SEC("freplace/...")`.
    Ext = 28,
    /// `SEC("lsm/...")`.
    Lsm = 29,
    /// `SEC("sk_lookup")`.
    SkLookup = 30,
    /// `SEC("syscall")`.
    Syscall = 31,
    /// `SEC("netfilter")`.
    Netfilter = 32,
}

impl ProgType {
    /// Every program type, in id order.
    pub const ALL: &'static [ProgType] = &[
        ProgType::Unspec,
        ProgType::SocketFilter,
        ProgType::Kprobe,
        ProgType::SchedCls,
        ProgType::SchedAct,
        ProgType::Tracepoint,
        ProgType::Xdp,
        ProgType::PerfEvent,
        ProgType::CgroupSkb,
        ProgType::CgroupSock,
        ProgType::LwtIn,
        ProgType::LwtOut,
        ProgType::LwtXmit,
        ProgType::SockOps,
        ProgType::SkSkb,
        ProgType::CgroupDevice,
        ProgType::SkMsg,
        ProgType::RawTracepoint,
        ProgType::CgroupSockAddr,
        ProgType::LwtSeg6local,
        ProgType::LircMode2,
        ProgType::SkReuseport,
        ProgType::FlowDissector,
        ProgType::CgroupSysctl,
        ProgType::RawTracepointWritable,
        ProgType::CgroupSockopt,
        ProgType::Tracing,
        ProgType::StructOps,
        ProgType::Ext,
        ProgType::Lsm,
        ProgType::SkLookup,
        ProgType::Syscall,
        ProgType::Netfilter,
    ];

    /// The kernel's numeric id.
    pub const fn id(self) -> u32 {
        self as u32
    }

    /// The program type with this kernel id.
    pub fn from_id(id: u32) -> Option<ProgType> {
        ProgType::ALL.iter().copied().find(|t| t.id() == id)
    }

    /// The name libbpf prints for the type (`libbpf_bpf_prog_type_str`: `socket_filter`,
    /// `sched_cls`, `xdp`, ...), also what bpftool and `--prog-type` use.
    pub const fn name(self) -> &'static str {
        match self {
            ProgType::Unspec => "unspec",
            ProgType::SocketFilter => "socket_filter",
            ProgType::Kprobe => "kprobe",
            ProgType::SchedCls => "sched_cls",
            ProgType::SchedAct => "sched_act",
            ProgType::Tracepoint => "tracepoint",
            ProgType::Xdp => "xdp",
            ProgType::PerfEvent => "perf_event",
            ProgType::CgroupSkb => "cgroup_skb",
            ProgType::CgroupSock => "cgroup_sock",
            ProgType::LwtIn => "lwt_in",
            ProgType::LwtOut => "lwt_out",
            ProgType::LwtXmit => "lwt_xmit",
            ProgType::SockOps => "sock_ops",
            ProgType::SkSkb => "sk_skb",
            ProgType::CgroupDevice => "cgroup_device",
            ProgType::SkMsg => "sk_msg",
            ProgType::RawTracepoint => "raw_tracepoint",
            ProgType::CgroupSockAddr => "cgroup_sock_addr",
            ProgType::LwtSeg6local => "lwt_seg6local",
            ProgType::LircMode2 => "lirc_mode2",
            ProgType::SkReuseport => "sk_reuseport",
            ProgType::FlowDissector => "flow_dissector",
            ProgType::CgroupSysctl => "cgroup_sysctl",
            ProgType::RawTracepointWritable => "raw_tracepoint_writable",
            ProgType::CgroupSockopt => "cgroup_sockopt",
            ProgType::Tracing => "tracing",
            ProgType::StructOps => "struct_ops",
            ProgType::Ext => "ext",
            ProgType::Lsm => "lsm",
            ProgType::SkLookup => "sk_lookup",
            ProgType::Syscall => "syscall",
            ProgType::Netfilter => "netfilter",
        }
    }

    /// The program type libbpf names `name` ([`ProgType::name`]).
    pub fn from_name(name: &str) -> Option<ProgType> {
        ProgType::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// A program as every engine takes it: instructions (relocated) plus what they need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The program's name (its function symbol, or a name the user gave).
    pub name: String,
    /// What kind of program it is; decides the context the engines build.
    pub prog_type: ProgType,
    /// The instructions, entry point first.
    pub insns: Vec<Insn>,
    /// The license string (`"GPL"` lets the program call GPL-only helpers).
    pub license: String,
    /// The ELF section it came from (`xdp`, `kprobe/tcp_connect`, ...); empty for raw code.
    pub section: String,
    /// The kernel's `expected_attach_type` (`enum bpf_attach_type` id), where the type needs one.
    pub expected_attach_type: Option<u32>,
    /// What it attaches to (a kernel function, tracepoint or BTF name), from the section name.
    pub attach_to: Option<String>,
    /// `BPF_PROG_LOAD` flags (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`, ...).
    pub flags: u32,
    /// BTF function info for the kernel: `(slot, BTF type id of the FUNC)` per function.
    pub func_info: Vec<(u32, u32)>,
    /// BTF line info for the kernel, in its record format.
    pub line_info: Vec<KernelLineInfo>,
}

/// One `struct bpf_line_info` record: a slot and its source position in the object's BTF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLineInfo {
    /// Instruction slot in the linked program.
    pub slot: u32,
    /// Offset of the file name in the BTF string table.
    pub file_name_off: u32,
    /// Offset of the line's text in the BTF string table.
    pub line_off: u32,
    /// Line number `<< 10` | column.
    pub line_col: u32,
}

impl Program {
    /// A raw-mode program (no context; r1 = input memory, r2 = its length).
    pub fn raw(name: impl Into<String>, insns: Vec<Insn>) -> Program {
        Program {
            name: name.into(),
            prog_type: ProgType::Unspec,
            insns,
            license: "GPL".into(),
            section: String::new(),
            expected_attach_type: None,
            attach_to: None,
            flags: 0,
            func_info: Vec::new(),
            line_info: Vec::new(),
        }
    }

    /// The program with a different type.
    pub fn with_type(mut self, prog_type: ProgType) -> Program {
        self.prog_type = prog_type;
        self
    }

    /// The number of 8-byte instruction slots.
    pub fn slot_count(&self) -> usize {
        self.insns.iter().map(Insn::slots).sum()
    }
}

/// The input of one run, shaped like `BPF_PROG_TEST_RUN`'s: data (packet or raw memory) and
/// an optional context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunInput {
    /// Packet bytes, or the raw memory r1 points to for [`ProgType::Unspec`].
    pub data: Vec<u8>,
    /// The context structure's initial bytes, where the program type takes one.
    pub ctx: Option<Vec<u8>>,
    /// The socket the program runs for (sockops, sk_msg, sk_skb): a socket of the world's
    /// [`SockTable`](crate::sock::SockTable), what the context's `sk` field points to.
    pub sock: Option<crate::sock::SockId>,
    /// Typed arguments of a tracing run (kprobe, raw/BTF tracepoint, fentry/fexit, lsm):
    /// see [`crate::ctx::tracing`].
    pub trace: Option<crate::ctx::tracing::TraceInput>,
}

impl RunInput {
    /// An input with just data.
    pub fn data(data: impl Into<Vec<u8>>) -> RunInput {
        RunInput { data: data.into(), ..RunInput::default() }
    }
}

/// What one run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOutcome {
    /// The program's return value (full 64 bits where the engine can tell).
    pub r0: u64,
    /// The data after the run (the output packet, or the raw memory as the program left it).
    pub data: Vec<u8>,
    /// The context structure after the run, where the program type has one.
    pub ctx: Option<Vec<u8>>,
    /// Instructions executed, where the engine counts them.
    pub insn_count: Option<u64>,
    /// Lines the program printed with `bpf_trace_printk`.
    pub trace: Vec<String>,
    /// Where a redirect helper sent the packet or message, where the engine can tell.
    pub redirect: Option<crate::env::Redirect>,
}

/// Why an engine could not load or run a program.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The program cannot be prepared (bad jump target, unsupported instruction form, ...).
    #[error("cannot load program: {0}")]
    Load(#[from] crate::interp::LoadError),
    /// The program faulted while running.
    #[error("program fault: {0}")]
    Fault(#[from] crate::interp::VmError),
    /// The run's input does not make a context for this program type.
    #[error("cannot build the context: {0}")]
    Context(#[from] crate::ctx::CtxError),
    /// The engine does not support something this program or input needs.
    #[error("{engine} does not support {what}")]
    Unsupported {
        /// The engine's name.
        engine: &'static str,
        /// What is unsupported.
        what: String,
    },
    /// A map operation failed.
    #[error("map {map}: {error}")]
    Map {
        /// The map's index.
        map: usize,
        /// What failed.
        error: crate::maps::MapError,
    },
    /// An engine-specific error (for example the kernel's verifier log or an errno).
    #[error("{engine}: {source}")]
    Backend {
        /// The engine's name.
        engine: &'static str,
        /// The engine's own typed error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A way to run programs: the interpreter, the JIT, or the kernel.
pub trait Engine {
    /// A short name for reports (`interp`, `jit`, `kernel`).
    fn name(&self) -> &'static str;

    /// Creates the collection's maps and prepares (checks, compiles or loads) its programs.
    fn load(&self, collection: &Collection) -> Result<Box<dyn Loaded>, EngineError>;
}

/// A collection an engine has loaded: programs that run any number of times, and the maps
/// they share, readable and writable from outside as through `bpf(2)`. Programs and maps are
/// named by their index in the [`Collection`]. Program-array values are program indices.
pub trait Loaded: fmt::Debug {
    /// Runs program `prog` once on `input`.
    fn run(&mut self, prog: usize, input: &RunInput) -> Result<RunOutcome, EngineError>;

    /// The value under `key` in map `map` (all CPUs' values for per-CPU maps).
    fn map_lookup(&mut self, map: usize, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Writes `value` under `key` in map `map` with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST` flags.
    fn map_update(
        &mut self,
        map: usize,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), EngineError>;

    /// Deletes `key` from map `map`.
    fn map_delete(&mut self, map: usize, key: &[u8]) -> Result<(), EngineError>;

    /// Every key of map `map`, each once.
    fn map_keys(&mut self, map: usize) -> Result<Vec<Vec<u8>>, EngineError>;
}
