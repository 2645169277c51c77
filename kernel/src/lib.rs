//! Runs bpflab programs in the real Linux kernel: a small, safe wrapper of the bpf(2) system
//! call (maps, `BPF_PROG_LOAD` with the verifier log, `BPF_PROG_TEST_RUN`) and
//! [`KernelEngine`], the kernel as a [`bpflab_vm::Engine`].
//!
//! All `unsafe` code is in the private `sys` module.

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, RawFd};

use bpflab_vm::isa::{AluOp, Insn, Operand, Reg, Width, encode_bytes};
use bpflab_vm::{Engine, EngineError, Loaded, ProgType, Program, RunInput, RunOutcome};

mod sys;

use sys::{MapHandle, MapKind, OBJ_NAME_LEN, SysError};

/// First verifier log buffer size when a load fails (the log is only asked for then).
const LOG_START: usize = 16 << 20;
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

/// The kinds of map [`KernelMap`] can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`.
    Hash,
    /// `BPF_MAP_TYPE_ARRAY` (4-byte keys, every index present).
    Array,
    /// `BPF_MAP_TYPE_LRU_HASH`.
    LruHash,
}

impl MapType {
    fn kind(self) -> MapKind {
        match self {
            MapType::Hash => MapKind::Hash,
            MapType::Array => MapKind::Array,
            MapType::LruHash => MapKind::LruHash,
        }
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
    /// Creates a map (BPF_MAP_CREATE).
    pub fn create(
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<KernelMap, KernelError> {
        let handle =
            sys::map_create(map_type.kind(), key_size, value_size, max_entries, obj_name("bpflab"))
                .map_err(|e| KernelError::os("BPF_MAP_CREATE", e))?;
        Ok(KernelMap { handle, map_type, max_entries })
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

    /// The value stored under `key`, or `None` if there is none (BPF_MAP_LOOKUP_ELEM).
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        self.check("map key", self.key_size(), key.len())?;
        let mut value = vec![0u8; self.value_size() as usize];
        match self.handle.lookup(key, &mut value) {
            Ok(()) => Ok(Some(value)),
            Err(e) if e.errno == libc::ENOENT => Ok(None),
            Err(e) => Err(KernelError::os("BPF_MAP_LOOKUP_ELEM", e)),
        }
    }

    /// Stores `value` under `key`, creating or replacing it (BPF_MAP_UPDATE_ELEM, BPF_ANY).
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
        self.check("map key", self.key_size(), key.len())?;
        self.check("map value", self.value_size(), value.len())?;
        self.handle.update(key, value, 0).map_err(|e| KernelError::os("BPF_MAP_UPDATE_ELEM", e))
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
    /// Average run time per repetition, in nanoseconds.
    pub duration_ns: u32,
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
        if prog_type == ProgType::Unspec {
            return Err(KernelError::Unsupported {
                what: "program type Unspec (the kernel has no raw mode)".into(),
            });
        }
        let license = CString::new(license).map_err(|_| KernelError::Unsupported {
            what: "a license string containing a NUL byte".into(),
        })?;
        let bytes = encode_bytes(insns);
        let name = obj_name(name);
        let load = |log: Option<(u32, &mut [u8])>| {
            sys::prog_load(prog_type.id(), &bytes, &license, name, log)
        };
        let first = match load(None) {
            Ok(fd) => return Ok(KernelProgram { fd, prog_type }),
            Err(e) => e,
        };
        if first.errno == libc::EPERM {
            // Not the verifier's doing (no privilege): a log would stay empty.
            return Err(KernelError::os("BPF_PROG_LOAD", first));
        }
        let mut size = LOG_START;
        loop {
            let mut buf = vec![0u8; size];
            let err = match load(Some((1, &mut buf))) {
                Ok(fd) => return Ok(KernelProgram { fd, prog_type }),
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
                log.insert_str(0, &format!("[verifier log truncated to its last {size} bytes]\n"));
            }
            if log.trim().is_empty() {
                return Err(KernelError::os("BPF_PROG_LOAD", err));
            }
            return Err(KernelError::Rejected { log });
        }
    }

    /// The program type it was loaded as.
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// Runs the program `repeat` times (0 counts as 1) on `data`, with context `ctx` if given
    /// (BPF_PROG_TEST_RUN).
    pub fn test_run(
        &self,
        data: &[u8],
        ctx: Option<&[u8]>,
        repeat: u32,
    ) -> Result<TestRun, KernelError> {
        let mut out = vec![0u8; data.len() + 256];
        loop {
            match sys::prog_test_run(self.fd.as_fd(), data, &mut out, ctx, repeat) {
                Ok(run) => {
                    out.truncate(run.data_size_out as usize);
                    return Ok(TestRun {
                        retval: run.retval,
                        data_out: out,
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

impl Loaded for KernelProgram {
    fn run(&mut self, input: &RunInput) -> Result<RunOutcome, EngineError> {
        let run = self.test_run(&input.data, input.ctx.as_deref(), 1).map_err(backend)?;
        let mut outcome = RunOutcome::default();
        outcome.r0 = u64::from(run.retval);
        outcome.data = run.data_out;
        Ok(outcome)
    }
}

/// Wraps a kernel error for the [`Engine`] interface.
fn backend(e: KernelError) -> EngineError {
    EngineError::Backend { engine: "kernel", source: Box::new(e) }
}

/// The running kernel as an [`Engine`]: loads with `BPF_PROG_LOAD`, runs with
/// `BPF_PROG_TEST_RUN`. Only the low 32 bits of r0 come back, and no instruction count.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelEngine;

impl Engine for KernelEngine {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn load(&self, program: &Program) -> Result<Box<dyn Loaded>, EngineError> {
        if program.prog_type == ProgType::Unspec {
            return Err(EngineError::Unsupported {
                engine: "kernel",
                what: "raw mode (program type Unspec); the kernel needs a program type".into(),
            });
        }
        let prog = KernelProgram::load_named(
            &program.name,
            program.prog_type,
            &program.insns,
            &program.license,
        )
        .map_err(backend)?;
        Ok(Box::new(prog))
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::LruHash => "lru_hash",
        })
    }
}

#[cfg(test)]
mod tests;
