//! Runs bpflab programs in the real Linux kernel: a small, safe wrapper of the bpf(2) system
//! call (maps, `BPF_BTF_LOAD` and `BPF_PROG_LOAD` with the verifier logs, `BPF_PROG_TEST_RUN`)
//! and [`KernelEngine`], the kernel as a [`bpflab_vm::Engine`].
//!
//! All `unsafe` code is in the private `sys` module.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use bpflab_vm::engine::KernelLineInfo;
use bpflab_vm::isa::{AluOp, Insn, Operand, Reg, Width, encode_bytes};
use bpflab_vm::{EngineError, ProgType};

pub mod features;
mod sys;
pub mod verdict;

use sys::{FuncInfoRec, LineInfoRec, MapHandle, OBJ_NAME_LEN, SysError};

/// First verifier log buffer size when a load fails (the log is only asked for then); a
/// longer log comes back as ENOSPC with its true size, and the load is retried with that.
/// Small, because the buffer is zeroed for every refused load.
const LOG_START: usize = 64 << 10;
/// The largest verifier log buffer; beyond it the log keeps its last part only.
const LOG_CAP: usize = 256 << 20;
/// Verifier log lines [`KernelError::Rejected`] shows when displayed.
const LOG_TAIL_LINES: usize = 12;

/// Why a kernel operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The verifier refused the program; `log` is its full log (level 1).
    #[error("verifier rejected the program:\n{}", log_tail(log, LOG_TAIL_LINES))]
    Rejected {
        /// The verifier log.
        log: String,
    },
    /// The kernel's BTF checker refused the object's BTF (`BPF_BTF_LOAD`); `log` is its full
    /// log (level 1).
    #[error("kernel rejected the BTF:\n{}", log_tail(log, LOG_TAIL_LINES))]
    BtfRejected {
        /// The BTF verifier log.
        log: String,
    },
    /// A bpf(2) command failed with `errno`.
    #[error("{op}: {}", std::io::Error::from_raw_os_error(*errno))]
    Os {
        /// The command (`BPF_MAP_CREATE`, `BPF_PROG_LOAD`, ...).
        op: &'static str,
        /// The error number.
        errno: i32,
    },
    /// The kernel backend cannot do what was asked.
    #[error("not supported by the kernel backend: {what}")]
    Unsupported {
        /// What is unsupported.
        what: String,
    },
    /// A key, value or buffer has the wrong size.
    #[error("{what} has {got} bytes, expected {expected}")]
    Size {
        /// Which buffer.
        what: &'static str,
        /// The size required.
        expected: usize,
        /// The size given.
        got: usize,
    },
}

impl KernelError {
    /// The errno of an [`KernelError::Os`] error.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Os { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    fn os(op: &'static str, e: SysError) -> KernelError {
        KernelError::Os { op, errno: e.errno }
    }
}

/// The last `n` lines of a log, with a note of how many were left out.
fn log_tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.trim_end().lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[... {skip} earlier lines of the verifier log ...]\n"));
    }
    out.push_str(&lines[skip..].join("\n"));
    out
}

/// Runs a loading command (`BPF_PROG_LOAD`, `BPF_BTF_LOAD`) the way libbpf does: first without
/// a log; if that fails for another reason than missing privilege, again with a level-1 log
/// (grown while the kernel reports it truncated) whose text `rejected` turns into the error.
fn load_with_log(
    op: &'static str,
    mut attempt: impl FnMut(Option<(u32, &mut [u8])>) -> Result<OwnedFd, SysError>,
    rejected: fn(String) -> KernelError,
) -> Result<OwnedFd, KernelError> {
    let first = match attempt(None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    if first.errno == libc::EPERM {
        // Not the verifier's doing (no privilege): a log would stay empty.
        return Err(KernelError::os(op, first));
    }
    let mut size = LOG_START;
    loop {
        let mut buf = vec![0u8; size];
        let err = match attempt(Some((1, &mut buf))) {
            Ok(fd) => return Ok(fd),
            Err(e) => e,
        };
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let mut log = String::from_utf8_lossy(&buf[..end]).into_owned();
        if err.errno == libc::ENOSPC {
            let wanted = (err.size_hint as usize).max(size.saturating_mul(2));
            if size < LOG_CAP {
                size = wanted.min(LOG_CAP);
                continue;
            }
            log.insert_str(0, &format!("[log truncated to its last {size} bytes]\n"));
        }
        if log.trim().is_empty() {
            return Err(KernelError::os(op, err));
        }
        return Err(rejected(log));
    }
}

/// A kernel object name: at most 15 bytes of `[A-Za-z0-9_.]`, other bytes replaced by `_`.
fn obj_name(name: &str) -> [u8; OBJ_NAME_LEN] {
    let mut out = [0u8; OBJ_NAME_LEN];
    for (o, b) in out.iter_mut().zip(name.bytes().take(OBJ_NAME_LEN - 1)) {
        *o = if b.is_ascii_alphanumeric() || b == b'.' { b } else { b'_' };
    }
    out
}

/// Checks that bpf(2) works here: creates a tiny array map and loads `r0 = 0; exit`.
pub fn probe() -> Result<(), KernelError> {
    let map = KernelMap::array(8, 1)?;
    map.update(&0u32.to_ne_bytes(), &0u64.to_ne_bytes())?;
    let r0 = Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(0) };
    let insns = [r0, Insn::Exit];
    KernelProgram::load(ProgType::SocketFilter, &insns, "GPL")?;
    Ok(())
}

pub use bpflab_vm::MapType;

/// The simulated task mirroring the calling thread: what `bpf_get_current_*` helpers see when
/// the kernel test-runs a program on this thread (read from `/proc/thread-self`; fields it
/// cannot read are 0). Give it to the simulator (`World::kernel.set_current`) to compare
/// tracing helpers with the kernel.
pub fn calling_thread_task() -> bpflab_vm::kobj::Task {
    use bpflab_vm::kobj::Task;
    let read = |p: String| std::fs::read_to_string(p).unwrap_or_default().trim_end().to_string();
    let status = read("/proc/thread-self/status".into());
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let (tid, tgid, ppid, uid, gid) =
        (field("Pid:"), field("Tgid:"), field("PPid:"), field("Uid:"), field("Gid:"));
    Task::new(tid)
        .tgid(tgid)
        .comm(&read("/proc/thread-self/comm".into()))
        .uid(uid)
        .gid(gid)
        .parent(Task::new(ppid).comm(&read(format!("/proc/{ppid}/comm"))))
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`), which sizes per-CPU
/// values in map syscalls.
pub fn possible_cpus() -> Result<u32, KernelError> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .map_err(|e| KernelError::Unsupported { what: format!("reading possible CPUs: {e}") })?;
    let mut n = 0u32;
    for part in text.trim().split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u32, u32) = match (lo.parse(), hi.parse()) {
            (Ok(lo), Ok(hi)) if hi >= lo => (lo, hi),
            _ => return Err(KernelError::Unsupported { what: format!("possible CPUs {text:?}") }),
        };
        n += hi - lo + 1;
    }
    Ok(n.max(1))
}

/// True for the map types whose syscall values hold one slot per possible CPU.
fn is_percpu(t: MapType) -> bool {
    matches!(
        t,
        MapType::PercpuArray
            | MapType::PercpuHash
            | MapType::LruPercpuHash
            | MapType::PercpuCgroupStorage
    )
}

/// Map types whose BTF libbpf never passes to `BPF_MAP_CREATE` (their values are fds, ids or
/// nothing the kernel checks against BTF; `bpf_object__create_map`).
fn map_type_takes_btf(t: MapType) -> bool {
    !matches!(
        t,
        MapType::PerfEventArray
            | MapType::CgroupArray
            | MapType::StackTrace
            | MapType::ArrayOfMaps
            | MapType::HashOfMaps
            | MapType::Devmap
            | MapType::DevmapHash
            | MapType::Cpumap
            | MapType::Xskmap
            | MapType::Sockmap
            | MapType::Sockhash
            | MapType::Queue
            | MapType::Stack
            | MapType::Arena
            | MapType::StructOps
    )
}

/// An object's BTF loaded into the kernel (`BPF_BTF_LOAD`), closed on drop. Maps and programs
/// refer to its types by id.
#[derive(Debug)]
pub struct KernelBtf {
    fd: OwnedFd,
}

impl KernelBtf {
    /// Loads a raw BTF blob (header, types, strings), as `Collection::btf` holds it; a
    /// refusal comes back as [`KernelError::BtfRejected`] with the BTF checker's log.
    pub fn load(btf: &[u8]) -> Result<KernelBtf, KernelError> {
        let fd = load_with_log(
            "BPF_BTF_LOAD",
            |log| sys::btf_load(btf, log),
            |log| KernelError::BtfRejected { log },
        )?;
        Ok(KernelBtf { fd })
    }

    /// The BTF object's file descriptor number (valid while it lives).
    pub fn raw_fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }
}

impl AsFd for KernelBtf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A kernel map, closed on drop.
#[derive(Debug)]
pub struct KernelMap {
    handle: MapHandle,
    map_type: MapType,
    max_entries: u32,
}

/// An array map is a [`KernelMap`] of [`MapType::Array`].
pub type ArrayMap = KernelMap;

impl KernelMap {
    /// Creates a map (BPF_MAP_CREATE) with no flags.
    pub fn create(
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<KernelMap, KernelError> {
        KernelMap::from_spec(
            &bpflab_vm::MapSpec::new("bpflab", map_type, key_size, value_size, max_entries),
            None,
        )
    }

    /// Creates the map `spec` describes; map-in-map types need the `inner` template map.
    /// Global-data maps get their initial bytes, and `.rodata` is frozen, as libbpf does.
    pub fn from_spec(
        spec: &bpflab_vm::MapSpec,
        inner: Option<&KernelMap>,
    ) -> Result<KernelMap, KernelError> {
        KernelMap::from_spec_with_btf(spec, inner, None)
    }

    /// Like [`KernelMap::from_spec`], with the key and value BTF type ids of `spec` in `btf`
    /// (the object's BTF), as libbpf's `bpf_object__create_map` creates maps: map types that
    /// take no BTF get none, and a creation with BTF that fails is retried without it (the
    /// first error is reported if that fails too). A perf event array without `max_entries`
    /// gets one entry per possible CPU.
    pub fn from_spec_with_btf(
        spec: &bpflab_vm::MapSpec,
        inner: Option<&KernelMap>,
        btf: Option<&KernelBtf>,
    ) -> Result<KernelMap, KernelError> {
        let value_buf = if is_percpu(spec.map_type) {
            (spec.value_size as usize).div_ceil(8) * 8 * possible_cpus()? as usize
        } else {
            spec.value_size as usize
        };
        let max_entries = if spec.map_type == MapType::PerfEventArray && spec.max_entries == 0 {
            possible_cpus()?
        } else {
            spec.max_entries
        };
        let ids = (spec.btf_key_type_id.unwrap_or(0), spec.btf_value_type_id.unwrap_or(0));
        let btf = btf
            .filter(|_| map_type_takes_btf(spec.map_type) && ids != (0, 0))
            .map(|b| (b.as_fd(), ids.0, ids.1));
        let mut params = sys::MapParams {
            map_type: spec.map_type.id(),
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries,
            flags: spec.flags,
            inner_map_fd: inner.map(KernelMap::fd),
            btf,
            name: obj_name(&spec.name),
            value_buf,
        };
        let handle = match sys::map_create(&params) {
            Ok(h) => h,
            Err(first) if params.btf.is_some() => {
                params.btf = None;
                sys::map_create(&params)
                    .map_err(|_| KernelError::os("BPF_MAP_CREATE (with BTF)", first))?
            }
            Err(e) => return Err(KernelError::os("BPF_MAP_CREATE", e)),
        };
        let map = KernelMap { handle, map_type: spec.map_type, max_entries };
        if let Some((section, bytes)) = &spec.data {
            let mut value = bytes.clone();
            value.resize(spec.value_size as usize, 0);
            map.update(&0u32.to_ne_bytes(), &value)?;
            if *section == bpflab_vm::spec::DataSection::Rodata {
                map.handle.freeze().map_err(|e| KernelError::os("BPF_MAP_FREEZE", e))?;
            }
        }
        Ok(map)
    }

    /// Creates an array map of `max_entries` values of `value_size` bytes (u32 keys).
    pub fn array(value_size: u32, max_entries: u32) -> Result<KernelMap, KernelError> {
        KernelMap::create(MapType::Array, 4, value_size, max_entries)
    }

    /// The map's file descriptor number, for `r1 = map[fd:N] ll` (valid while the map lives).
    pub fn fd(&self) -> RawFd {
        self.handle.raw_fd()
    }

    /// The map type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.handle.key_size()
    }

    /// Value size in bytes.
    pub fn value_size(&self) -> u32 {
        self.handle.value_size()
    }

    /// Maximum number of entries.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    fn check(&self, what: &'static str, expected: u32, got: usize) -> Result<(), KernelError> {
        if got == expected as usize {
            Ok(())
        } else {
            Err(KernelError::Size { what, expected: expected as usize, got })
        }
    }

    /// The value stored under `key`, or `None` if there is none (BPF_MAP_LOOKUP_ELEM); per-CPU
    /// maps give every possible CPU's value, each padded to 8 bytes.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        self.check("map key", self.key_size(), key.len())?;
        let mut value = vec![0u8; self.handle.value_buf()];
        match self.handle.lookup(key, &mut value) {
            Ok(()) => Ok(Some(value)),
            Err(e) if e.errno == libc::ENOENT => Ok(None),
            Err(e) => Err(KernelError::os("BPF_MAP_LOOKUP_ELEM", e)),
        }
    }

    /// Stores `value` under `key`, creating or replacing it (BPF_MAP_UPDATE_ELEM, BPF_ANY).
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
        self.update_flags(key, value, 0)
    }

    /// BPF_MAP_UPDATE_ELEM with `BPF_ANY`/`BPF_NOEXIST`/`BPF_EXIST` flags.
    pub fn update_flags(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), KernelError> {
        self.check("map key", self.key_size(), key.len())?;
        if value.len() != self.handle.value_buf() {
            return Err(KernelError::Size {
                what: "map value",
                expected: self.handle.value_buf(),
                got: value.len(),
            });
        }
        self.handle.update(key, value, flags).map_err(|e| KernelError::os("BPF_MAP_UPDATE_ELEM", e))
    }

    /// Deletes `key` (BPF_MAP_DELETE_ELEM).
    pub fn delete(&self, key: &[u8]) -> Result<(), KernelError> {
        self.check("map key", self.key_size(), key.len())?;
        self.handle.delete(key).map_err(|e| KernelError::os("BPF_MAP_DELETE_ELEM", e))
    }

    /// Every key, in the kernel's iteration order (BPF_MAP_GET_NEXT_KEY).
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, KernelError> {
        let mut keys: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut next = vec![0u8; self.key_size() as usize];
            match self.handle.next_key(keys.last().map(Vec::as_slice), &mut next) {
                Ok(()) => keys.push(next),
                Err(e) if e.errno == libc::ENOENT => return Ok(keys),
                Err(e) => return Err(KernelError::os("BPF_MAP_GET_NEXT_KEY", e)),
            }
            if keys.len() > self.max_entries as usize {
                return Err(KernelError::Unsupported {
                    what: "iteration that does not end".into(),
                });
            }
        }
    }

    /// The u64 at `index` of an array map with 8-byte values.
    pub fn get_u64(&self, index: u32) -> Result<Option<u64>, KernelError> {
        self.check("map value", self.value_size(), 8)?;
        Ok(self.lookup(&index.to_ne_bytes())?.map(|v| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v);
            u64::from_ne_bytes(b)
        }))
    }

    /// Stores a u64 at `index` of an array map with 8-byte values.
    pub fn set_u64(&self, index: u32, value: u64) -> Result<(), KernelError> {
        self.update(&index.to_ne_bytes(), &value.to_ne_bytes())
    }
}

impl AsFd for KernelMap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.handle.fd()
    }
}

/// The result of one `BPF_PROG_TEST_RUN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (the low 32 bits of r0).
    pub retval: u32,
    /// The packet after the run.
    pub data_out: Vec<u8>,
    /// The context after the run, when one was passed in and the program type's test run
    /// reports it (not for raw tracepoints).
    pub ctx_out: Option<Vec<u8>>,
    /// Average run time per repetition, in nanoseconds.
    pub duration_ns: u32,
}

/// What `BPF_PROG_LOAD` takes besides the program type, instructions and license.
#[derive(Clone, Copy, Debug)]
pub struct ProgLoadOptions<'a> {
    /// The program's name (shortened to the kernel's 15 characters of `[A-Za-z0-9_.]`).
    pub name: &'a str,
    /// The kernel's `expected_attach_type`, where the program type needs one.
    pub expected_attach_type: Option<u32>,
    /// `prog_flags`: `BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`, ...
    pub flags: u32,
    /// The BTF `func_info` and `line_info` refer to; without it they are not passed.
    pub btf: Option<&'a KernelBtf>,
    /// `bpf_func_info` records: (first slot of a function, its FUNC type id).
    pub func_info: &'a [(u32, u32)],
    /// `bpf_line_info` records.
    pub line_info: &'a [KernelLineInfo],
    /// The attach target's kernel BTF id (fentry/fexit, LSM), where the type needs one.
    pub attach_btf_id: Option<u32>,
    /// `kern_version`.
    pub kern_version: u32,
}

impl Default for ProgLoadOptions<'_> {
    fn default() -> Self {
        ProgLoadOptions {
            name: "bpflab",
            expected_attach_type: None,
            flags: 0,
            btf: None,
            func_info: &[],
            line_info: &[],
            attach_btf_id: None,
            kern_version: 0,
        }
    }
}

/// A program loaded into the kernel (verified and JIT-compiled), unloaded on drop.
#[derive(Debug)]
pub struct KernelProgram {
    fd: std::os::fd::OwnedFd,
    prog_type: ProgType,
}

impl KernelProgram {
    /// Loads `insns` as a program of `prog_type` (BPF_PROG_LOAD); a verifier rejection comes
    /// back as [`KernelError::Rejected`] with the log.
    pub fn load(
        prog_type: ProgType,
        insns: &[Insn],
        license: &str,
    ) -> Result<KernelProgram, KernelError> {
        KernelProgram::load_named("bpflab", prog_type, insns, license)
    }

    /// Like [`KernelProgram::load`], naming the program `name` (shortened to the kernel's 15
    /// characters of `[A-Za-z0-9_.]`).
    pub fn load_named(
        name: &str,
        prog_type: ProgType,
        insns: &[Insn],
        license: &str,
    ) -> Result<KernelProgram, KernelError> {
        KernelProgram::load_with(name, prog_type, None, insns, license)
    }

    /// Loads `insns` with the kernel's `expected_attach_type` (some program types need one,
    /// e.g. cgroup socket-address hooks).
    pub fn load_with(
        name: &str,
        prog_type: ProgType,
        expected_attach_type: Option<u32>,
        insns: &[Insn],
        license: &str,
    ) -> Result<KernelProgram, KernelError> {
        let opts = ProgLoadOptions { name, expected_attach_type, ..ProgLoadOptions::default() };
        KernelProgram::load_with_options(prog_type, insns, license, &opts)
    }

    /// Loads `insns` with everything else `BPF_PROG_LOAD` takes: flags, and the program's
    /// BTF with its func and line info (which make the verifier log show source lines). A
    /// verifier rejection comes back as [`KernelError::Rejected`] with the log.
    pub fn load_with_options(
        prog_type: ProgType,
        insns: &[Insn],
        license: &str,
        opts: &ProgLoadOptions<'_>,
    ) -> Result<KernelProgram, KernelError> {
        if prog_type == ProgType::Unspec {
            return Err(KernelError::Unsupported {
                what: "program type Unspec (the kernel has no raw mode)".into(),
            });
        }
        let license = CString::new(license).map_err(|_| KernelError::Unsupported {
            what: "a license string containing a NUL byte".into(),
        })?;
        let bytes = encode_bytes(insns);
        let func_info: Vec<FuncInfoRec> = opts
            .func_info
            .iter()
            .map(|&(insn_off, type_id)| FuncInfoRec { insn_off, type_id })
            .collect();
        let line_info: Vec<LineInfoRec> = opts
            .line_info
            .iter()
            .map(|l| LineInfoRec {
                insn_off: l.slot,
                file_name_off: l.file_name_off,
                line_off: l.line_off,
                line_col: l.line_col,
            })
            .collect();
        let params = sys::ProgParams {
            prog_type: prog_type.id(),
            expected_attach_type: opts.expected_attach_type.unwrap_or(0),
            flags: opts.flags,
            insns: &bytes,
            license: &license,
            name: obj_name(opts.name),
            btf: opts.btf.map(|b| sys::ProgBtf {
                fd: b.as_fd(),
                func_info: &func_info,
                line_info: &line_info,
            }),
            attach_btf_id: opts.attach_btf_id.unwrap_or(0),
            kern_version: opts.kern_version,
        };
        let fd = load_with_log(
            "BPF_PROG_LOAD",
            |log| sys::prog_load(&params, log),
            |log| KernelError::Rejected { log },
        )?;
        Ok(KernelProgram { fd, prog_type })
    }

    /// The program's file descriptor number (valid while it lives).
    pub fn raw_fd(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    /// The program type it was loaded as.
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// Runs the program `repeat` times (0 counts as 1) on `data`, with context `ctx` if given
    /// (BPF_PROG_TEST_RUN). Raw tracepoint and syscall programs take only a context and run
    /// once (their test runs refuse `repeat` and output buffers); a syscall program's context
    /// comes back as the kernel writes it back into the input, a raw tracepoint's not at all.
    pub fn test_run(
        &self,
        data: &[u8],
        ctx: Option<&[u8]>,
        repeat: u32,
    ) -> Result<TestRun, KernelError> {
        let ctx_only = matches!(
            self.prog_type,
            ProgType::RawTracepoint | ProgType::RawTracepointWritable | ProgType::Syscall
        );
        let repeat = if ctx_only { 0 } else { repeat };
        // No output packet without an input packet (sk_lookup, raw_tp and syscall test runs
        // refuse a data_out buffer).
        let mut out =
            if ctx_only || data.is_empty() { Vec::new() } else { vec![0; data.len() + 256] };
        let mut ctx_in = ctx.map(<[u8]>::to_vec);
        let mut ctx_out = if ctx_only { Vec::new() } else { vec![0u8; ctx.map_or(0, <[u8]>::len)] };
        loop {
            let ctx = ctx_in.as_deref_mut();
            match sys::prog_test_run(self.fd.as_fd(), data, &mut out, ctx, &mut ctx_out, repeat) {
                Ok(run) => {
                    out.truncate(run.data_size_out as usize);
                    ctx_out.truncate(run.ctx_size_out as usize);
                    let ctx_out = match self.prog_type {
                        ProgType::Syscall => ctx_in,
                        _ if ctx_only => None,
                        _ => ctx_in.map(|_| ctx_out),
                    };
                    return Ok(TestRun {
                        retval: run.retval,
                        data_out: out,
                        ctx_out,
                        duration_ns: run.duration,
                    });
                }
                Err(e) if e.errno == libc::ENOSPC && e.size_hint as usize > out.len() => {
                    out = vec![0u8; e.size_hint as usize];
                }
                Err(e) => return Err(KernelError::os("BPF_PROG_TEST_RUN", e)),
            }
        }
    }
}

impl AsFd for KernelProgram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Wraps a kernel error for the [`Engine`] interface.
fn backend(e: KernelError) -> EngineError {
    match e {
        KernelError::Unsupported { what } => EngineError::Unsupported { engine: "kernel", what },
        e => EngineError::Backend { engine: "kernel", source: Box::new(e) },
    }
}

mod engine;
pub use engine::{KernelEngine, KernelLoaded};

#[cfg(test)]
mod tests;
