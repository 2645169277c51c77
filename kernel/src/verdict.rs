//! The kernel verifier's verdict on one program of a collection: accepted or rejected, the
//! errno, the full log (level 1 plus `BPF_LOG_STATS`, so an accepted program's log ends with
//! its statistics too), the error line and the statistics parsed from it. This is the oracle
//! bpflab's verifier is compared with.
//!
//! The program is loaded the way [`KernelEngine`](crate::KernelEngine) loads it (the
//! collection's BTF, its maps typed by that BTF, map references rewritten to the maps' fds,
//! func and line info, trampoline targets by their kernel BTF id), on its own: its sibling
//! programs are not loaded, as the selftests' `test_loader` loads one program per test. Where
//! the kernel refuses the object's BTF, the program is loaded without it, as libbpf does.
//!
//! Unprivileged loads (the selftests' `__failure_unpriv`) are not offered: they need the
//! capabilities dropped around the load and `kernel.unprivileged_bpf_disabled` at 0, which
//! distributions set to 2 (see [`unprivileged_bpf_disabled`]).

use bpflab_vm::isa::encode_bytes;
use bpflab_vm::{Collection, ProgType};

use crate::sys::{self, FuncInfoRec, LineInfoRec};
use crate::{KernelEngine, KernelError, obj_name};

/// `BPF_LOG_LEVEL1`: the verifier's instruction and state log.
pub const BPF_LOG_LEVEL1: u32 = 1;
/// `BPF_LOG_LEVEL2`: the log of every instruction's state.
pub const BPF_LOG_LEVEL2: u32 = 2;
/// `BPF_LOG_STATS`: verification time, stack depth and the processed-instructions line.
pub const BPF_LOG_STATS: u32 = 4;

/// `prog_flags` bits of `BPF_PROG_LOAD` (include/uapi/linux/bpf.h).
pub mod prog_flags {
    /// `BPF_F_STRICT_ALIGNMENT`.
    pub const STRICT_ALIGNMENT: u32 = 1 << 0;
    /// `BPF_F_ANY_ALIGNMENT`.
    pub const ANY_ALIGNMENT: u32 = 1 << 1;
    /// `BPF_F_TEST_RND_HI32`: the verifier poisons the upper halves of 32-bit results.
    pub const TEST_RND_HI32: u32 = 1 << 2;
    /// `BPF_F_TEST_STATE_FREQ`: a checkpoint at every jump target and after every call.
    pub const TEST_STATE_FREQ: u32 = 1 << 3;
    /// `BPF_F_SLEEPABLE`.
    pub const SLEEPABLE: u32 = 1 << 4;
    /// `BPF_F_XDP_HAS_FRAGS`.
    pub const XDP_HAS_FRAGS: u32 = 1 << 5;
    /// `BPF_F_XDP_DEV_BOUND_ONLY`.
    pub const XDP_DEV_BOUND_ONLY: u32 = 1 << 6;
    /// `BPF_F_TEST_REG_INVARIANTS`: a register whose bounds contradict each other is an
    /// error instead of a warning.
    pub const TEST_REG_INVARIANTS: u32 = 1 << 7;

    /// The flag named as the selftests' `__flag()` spells it (`BPF_F_TEST_STATE_FREQ`), or a
    /// number; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<u32> {
        Some(match name {
            "BPF_F_STRICT_ALIGNMENT" => STRICT_ALIGNMENT,
            "BPF_F_ANY_ALIGNMENT" => ANY_ALIGNMENT,
            "BPF_F_TEST_RND_HI32" => TEST_RND_HI32,
            "BPF_F_TEST_STATE_FREQ" => TEST_STATE_FREQ,
            "BPF_F_SLEEPABLE" => SLEEPABLE,
            "BPF_F_XDP_HAS_FRAGS" => XDP_HAS_FRAGS,
            "BPF_F_XDP_DEV_BOUND_ONLY" => XDP_DEV_BOUND_ONLY,
            "BPF_F_TEST_REG_INVARIANTS" => TEST_REG_INVARIANTS,
            n => match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => n.parse().ok()?,
            },
        })
    }
}

/// How to ask for a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerdictOptions {
    /// `prog_flags` added to the program's own (its section's `BPF_F_SLEEPABLE`, ...).
    pub prog_flags: u32,
    /// `prog_flags` removed from the program's own (the selftests' `__flag(!FLAG)`).
    pub clear_flags: u32,
    /// `log_level`; [`BPF_LOG_STATS`] is always added.
    pub log_level: u32,
}

impl Default for VerdictOptions {
    fn default() -> VerdictOptions {
        VerdictOptions { prog_flags: 0, clear_flags: 0, log_level: BPF_LOG_LEVEL1 }
    }
}

/// What the kernel verifier decided about one program.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelVerdict {
    /// Whether `BPF_PROG_LOAD` succeeded.
    pub accepted: bool,
    /// The load's errno (0 when accepted).
    pub errno: i32,
    /// The verifier log (level 1 with statistics, unless other levels were asked for).
    pub log: String,
    /// A rejection's message: the last non-blank line before the statistics (`verification
    /// time`, `stack depth`, `processed N insns`), or of the log when it has none.
    pub error_line: Option<String>,
    /// `processed N insns`.
    pub processed_insns: Option<u64>,
    /// `total_states N`.
    pub total_states: Option<u64>,
    /// `peak_states N`.
    pub peak_states: Option<u64>,
    /// `max_states_per_insn N`.
    pub max_states_per_insn: Option<u64>,
    /// `verification time N usec`.
    pub verification_usec: Option<u64>,
    /// The BTF checker's error when the kernel refused the object's BTF: the program was then
    /// loaded without BTF, func and line info, as libbpf loads it.
    pub btf_refused: Option<String>,
}

/// First log buffer size; grown to what the kernel asks for (`log_true_size`) when too small.
const LOG_START: usize = 1 << 20;
/// The largest log buffer; beyond it the log keeps its last part only (the kernel's rotating
/// log), which still ends with the error and the statistics.
const LOG_CAP: usize = 256 << 20;

/// Loads program `index` of `collection` into the kernel on its own and returns the
/// verifier's verdict. The program is unloaded again at once. Errors are what keeps the
/// verifier from deciding: the BTF or a map refused, an index out of range, a program
/// without a type.
pub fn kernel_verdict(
    collection: &Collection,
    index: usize,
    opts: &VerdictOptions,
) -> Result<KernelVerdict, KernelError> {
    let p = collection.programs.get(index).ok_or_else(|| KernelError::Unsupported {
        what: format!("program index {index} (the collection has {})", collection.programs.len()),
    })?;
    if p.prog_type == ProgType::Unspec {
        return Err(KernelError::Unsupported {
            what: format!("program {:?} has no program type (the kernel has no raw mode)", p.name),
        });
    }
    // The engine's load path for the BTF and the maps (no programs). A refused BTF is left
    // out, with the func and line info that refer to it, as libbpf does ("BTF is optional,
    // ignoring"), so the program meets the verifier as it does under libbpf.
    let mut setup = Collection {
        maps: collection.maps.clone(),
        btf: collection.btf.clone(),
        ..Collection::default()
    };
    let (loaded, btf_refused) = match KernelEngine.load_collection(&setup) {
        Ok(l) => (l, None),
        Err(KernelError::BtfRejected { log }) => {
            setup.btf = None;
            let line = error_line(&log).unwrap_or_else(|| "(no log)".into());
            (KernelEngine.load_collection(&setup)?, Some(line))
        }
        Err(e) => return Err(e),
    };
    let insns = crate::engine::with_map_fds(&p.insns, loaded.maps())?;
    let attach_btf_id = match (p.prog_type, p.attach_to.as_deref()) {
        (ProgType::Tracing | ProgType::Lsm, Some(target)) => {
            crate::features::attach_btf_id(p.prog_type, p.expected_attach_type, target)
        }
        _ => None,
    };
    let license = std::ffi::CString::new(p.license.as_str()).map_err(|_| {
        KernelError::Unsupported { what: "a license string containing a NUL byte".into() }
    })?;
    let bytes = encode_bytes(&insns);
    let func_info: Vec<FuncInfoRec> =
        p.func_info.iter().map(|&(insn_off, type_id)| FuncInfoRec { insn_off, type_id }).collect();
    let line_info: Vec<LineInfoRec> = p
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
        prog_type: p.prog_type.id(),
        expected_attach_type: p.expected_attach_type.unwrap_or(0),
        flags: (p.flags | opts.prog_flags) & !opts.clear_flags,
        insns: &bytes,
        license: &license,
        name: obj_name(&p.name),
        btf: loaded.btf().map(|b| sys::ProgBtf {
            fd: std::os::fd::AsFd::as_fd(b),
            func_info: &func_info,
            line_info: &line_info,
        }),
        attach_btf_id: attach_btf_id.unwrap_or(0),
        kern_version: 0,
    };
    let level = opts.log_level | BPF_LOG_STATS;
    let mut size = LOG_START;
    loop {
        let mut buf = vec![0u8; size];
        let result = sys::prog_load(&params, Some((level, &mut buf)));
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let log = String::from_utf8_lossy(&buf[..end]).into_owned();
        let errno = match result {
            Ok(_fd) => 0,
            // The log did not fit (the load fails then even if verification passed).
            Err(e) if e.errno == libc::ENOSPC && size < LOG_CAP => {
                size = (e.size_hint as usize).max(size.saturating_mul(2)).min(LOG_CAP);
                continue;
            }
            Err(e) => e.errno,
        };
        return Ok(KernelVerdict {
            btf_refused,
            ..KernelVerdict::from_log(errno == 0, errno, log)
        });
    }
}

impl KernelVerdict {
    /// A verdict from a load's outcome and its log: the error line and statistics parsed.
    pub fn from_log(accepted: bool, errno: i32, log: String) -> KernelVerdict {
        // Some kernel messages lack their newline ("insn 3 cannot call exception cb
        // directly"), so the statistics may start in the middle of the error's line.
        let lines = log.replace("verification time ", "\nverification time ");
        let stats = parse_stats(&lines);
        let error_line = if accepted { None } else { error_line(&lines) };
        KernelVerdict {
            accepted,
            errno,
            error_line,
            processed_insns: stats.processed_insns,
            total_states: stats.total_states,
            peak_states: stats.peak_states,
            max_states_per_insn: stats.max_states_per_insn,
            verification_usec: stats.verification_usec,
            btf_refused: None,
            log,
        }
    }
}

/// Whether a line is one of the statistics `BPF_LOG_STATS` appends.
fn is_stats_line(line: &str) -> bool {
    line.starts_with("verification time ")
        || line.starts_with("stack depth ")
        || (line.starts_with("processed ") && line.contains(" insns (limit "))
}

/// Whether a line is a state dump the verifier prints after some errors (`infinite loop
/// detected` is followed by `cur state:` and `old state:` lines).
fn is_state_dump(line: &str) -> bool {
    line.starts_with("cur state:") || line.starts_with("old state:")
}

/// The error message of a rejected load's log: the last non-blank line before the first
/// statistics line (or of the whole log), not counting state dumps.
pub fn error_line(log: &str) -> Option<String> {
    log.lines()
        .take_while(|l| !is_stats_line(l))
        .filter(|l| !l.trim().is_empty() && !is_state_dump(l))
        .last()
        .map(|l| l.trim_end().to_string())
}

/// The counters `BPF_LOG_STATS` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LogStats {
    processed_insns: Option<u64>,
    total_states: Option<u64>,
    peak_states: Option<u64>,
    max_states_per_insn: Option<u64>,
    verification_usec: Option<u64>,
}

/// The number after `key ` in `line`.
fn number_after(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    line[at..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The statistics of a log: `verification time N usec` and `processed N insns (limit L)
/// max_states_per_insn M total_states T peak_states P mark_read R` (the last ones if the log
/// has several).
fn parse_stats(log: &str) -> LogStats {
    let mut s = LogStats::default();
    for line in log.lines() {
        if line.starts_with("verification time ") {
            s.verification_usec = number_after(line, "verification time");
        } else if line.starts_with("processed ") && line.contains(" insns (limit ") {
            s.processed_insns = number_after(line, "processed");
            s.max_states_per_insn = number_after(line, "max_states_per_insn");
            s.total_states = number_after(line, "total_states");
            s.peak_states = number_after(line, "peak_states");
        }
    }
    s
}

/// `kernel.unprivileged_bpf_disabled` (0: unprivileged loads allowed; 1 or 2: refused), or
/// `None` where it cannot be read.
pub fn unprivileged_bpf_disabled() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled").ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REJECTED: &str = "func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 0\n\
        1: (61) r2 = *(u32 *)(r0 +0)\nR0 invalid mem access 'scalar'\n\n\
        verification time 17 usec\nstack depth 0\n\
        processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 \
        peak_states 0 mark_read 0\n";

    #[test]
    fn error_line_is_the_last_line_before_the_stats() {
        let v = KernelVerdict::from_log(false, libc::EACCES, REJECTED.into());
        assert_eq!(v.error_line.as_deref(), Some("R0 invalid mem access 'scalar'"));
        assert_eq!(v.processed_insns, Some(2));
        assert_eq!(v.total_states, Some(0));
        assert_eq!(v.peak_states, Some(0));
        assert_eq!(v.max_states_per_insn, Some(0));
        assert_eq!(v.verification_usec, Some(17));
    }

    #[test]
    fn an_error_without_its_newline_is_cut_at_the_stats() {
        let log = "insn 3 cannot call exception cb directlyverification time 61 usec\n\
                   stack depth 0\nprocessed 4 insns (limit 1000000) max_states_per_insn 0 \
                   total_states 0 peak_states 0 mark_read 0\n";
        let v = KernelVerdict::from_log(false, libc::EINVAL, log.into());
        assert_eq!(v.error_line.as_deref(), Some("insn 3 cannot call exception cb directly"));
        assert_eq!((v.verification_usec, v.processed_insns), (Some(61), Some(4)));
        assert_eq!(v.log, log);
    }

    #[test]
    fn state_dumps_after_an_infinite_loop_are_not_the_error() {
        let log = "2: (05) goto pc-2\ninfinite loop detected at insn 2\ncur state: R0=1 R10=fp0\n\
                   old state: R0=1 R10=fp0\nverification time 9 usec\n";
        assert_eq!(error_line(log).as_deref(), Some("infinite loop detected at insn 2"));
    }

    #[test]
    fn a_log_without_stats_ends_with_its_error() {
        assert_eq!(
            error_line("back-edge from insn 1 to 0\n\n").as_deref(),
            Some("back-edge from insn 1 to 0")
        );
        assert_eq!(error_line(""), None);
    }

    #[test]
    fn accepted_loads_have_no_error_line() {
        let log = "processed 7 insns (limit 1000000) max_states_per_insn 1 total_states 3 \
                   peak_states 3 mark_read 1\n";
        let v = KernelVerdict::from_log(true, 0, log.into());
        assert_eq!(v.error_line, None);
        assert_eq!((v.processed_insns, v.total_states, v.peak_states), (Some(7), Some(3), Some(3)));
        assert_eq!(v.max_states_per_insn, Some(1));
        assert_eq!(v.verification_usec, None);
    }

    #[test]
    fn flags_parse_by_name_and_number() {
        assert_eq!(prog_flags::parse("BPF_F_TEST_STATE_FREQ"), Some(8));
        assert_eq!(prog_flags::parse("BPF_F_ANY_ALIGNMENT"), Some(2));
        assert_eq!(prog_flags::parse("0x10"), Some(16));
        assert_eq!(prog_flags::parse("32"), Some(32));
        assert_eq!(prog_flags::parse("BPF_F_NOPE"), None);
    }
}
