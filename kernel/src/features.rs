//! The running kernel's features, probed as `bpftool feature probe` (libbpf's
//! `libbpf_probe_bpf_prog_type`, `_map_type` and `_helper`) does: each program type by loading
//! `r0 = 0; exit`, each map type by creating a one-entry map, each helper per program type by
//! loading `call helper; exit` and reading the verifier's reason, each type's test run by asking
//! `BPF_PROG_TEST_RUN` (`ENOTSUPP` means it does not serve the type), kprobe attachment by the
//! kprobe PMU, fentry by loading an fentry program on `bpf_fentry_test1`.
//!
//! [`features`] probes once per process. Tests can make the kernel look poorer than it is
//! (to show what happens on a kernel without some helper) with the environment variable
//! `BPFLAB_KERNEL_FEATURES=FILE`: the probe is restricted to the profile in FILE.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use bpflab_vm::helper_names::KERNEL_HELPER_NAMES;
use bpflab_vm::isa::{AluOp, CallKind, Insn, Operand, Reg, Width};
use bpflab_vm::profile::{AttachSupport, KernelProfile, kernel_version_of_release, system_kconfig};
use bpflab_vm::{MapSpec, MapType, ProgType};

use crate::{KernelBtf, KernelError, KernelMap, KernelProgram, ProgLoadOptions, sys};

/// `BPF_F_NO_PREALLOC`.
const NO_PREALLOC: u32 = 1;
/// `BPF_F_MMAPABLE`.
const MMAPABLE: u32 = 1 << 10;
/// `BPF_F_SLEEPABLE`.
const SLEEPABLE: u32 = 1 << 4;
/// `ENOTSUPP` (kernel-internal 524): no test run for the type, struct_ops without a target.
const ENOTSUPP: i32 = 524;

/// `enum bpf_attach_type` ids the probes need.
mod attach {
    pub(super) const CGROUP_INET4_CONNECT: u32 = 10;
    pub(super) const LIRC_MODE2: u32 = 16;
    pub(super) const CGROUP_GETSOCKOPT: u32 = 21;
    pub(super) const TRACE_FENTRY: u32 = 24;
    pub(super) const MODIFY_RETURN: u32 = 26;
    pub(super) const LSM_MAC: u32 = 27;
    pub(super) const SK_LOOKUP: u32 = 36;
    pub(super) const NETFILTER: u32 = 45;
}

/// The environment variable naming a profile that restricts the probe (tests' simulated
/// kernels).
pub const RESTRICT_ENV: &str = "BPFLAB_KERNEL_FEATURES";

/// The running kernel's features, probed once per process (and restricted by
/// [`RESTRICT_ENV`]'s profile when set). The error says why bpf(2) cannot be probed here.
pub fn features() -> Result<&'static KernelProfile, String> {
    static FEATURES: OnceLock<Result<KernelProfile, String>> = OnceLock::new();
    FEATURES
        .get_or_init(|| {
            let probed = probe_features().map_err(|e| e.to_string())?;
            match std::env::var_os(RESTRICT_ENV) {
                None => Ok(probed),
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{RESTRICT_ENV}={}: {e}", path.display()))?;
                    let v: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| format!("{RESTRICT_ENV}={}: {e}", path.display()))?;
                    let limit = KernelProfile::from_json(&v, &path.to_string_lossy())
                        .map_err(|e| format!("{RESTRICT_ENV}={}: {e}", path.display()))?;
                    Ok(probed.restricted_by(&limit))
                }
            }
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Probes the running kernel now (see the module docs); fails only if bpf(2) itself does
/// not work.
pub fn probe_features() -> Result<KernelProfile, KernelError> {
    crate::probe()?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let version_code = kernel_version_of_release(&release).unwrap_or(0);
    let mut prog_types = BTreeMap::new();
    let mut test_run = BTreeMap::new();
    let mut helpers = BTreeMap::new();
    for &t in ProgType::ALL {
        if t == ProgType::Unspec {
            continue;
        }
        let loads = prog_type_loads(t, version_code);
        prog_types.insert(t, loads);
        test_run.insert(t, loads && test_run_served(t, version_code));
        if loads && helpers_probeable(t) {
            helpers.insert(t, probe_helpers(t, version_code));
        }
    }
    let map_types = MapType::ALL
        .iter()
        .map(|&t| {
            let ok = if t == MapType::StructOps {
                // Needs a struct_ops BTF type of the kernel: available with the program type.
                prog_types.get(&ProgType::StructOps).copied().unwrap_or(false)
            } else {
                map_type_creates(t)
            };
            (t, ok)
        })
        .collect();
    let attach = AttachSupport {
        kprobe: std::path::Path::new("/sys/bus/event_source/devices/kprobe/type").exists(),
        fentry: fentry_loads(),
        lsm: lsm_loads(),
    };
    Ok(KernelProfile {
        source: "running".into(),
        release,
        version_code,
        prog_types,
        map_types,
        helpers,
        test_run,
        attach,
        kconfig: system_kconfig().unwrap_or_default(),
    })
}

/// `r0 = 0; exit`.
fn return_zero() -> [Insn; 2] {
    [
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: Reg::R0, src: Operand::Imm(0) },
        Insn::Exit,
    ]
}

/// The load options libbpf's probe gives `t`, or `None` for types probed differently.
fn probe_options(t: ProgType, version_code: u32) -> ProgLoadOptions<'static> {
    let mut o = ProgLoadOptions { name: "probe", ..ProgLoadOptions::default() };
    match t {
        ProgType::CgroupSockAddr => o.expected_attach_type = Some(attach::CGROUP_INET4_CONNECT),
        ProgType::CgroupSockopt => o.expected_attach_type = Some(attach::CGROUP_GETSOCKOPT),
        ProgType::SkLookup => o.expected_attach_type = Some(attach::SK_LOOKUP),
        ProgType::LircMode2 => o.expected_attach_type = Some(attach::LIRC_MODE2),
        ProgType::Netfilter => o.expected_attach_type = Some(attach::NETFILTER),
        ProgType::Kprobe => o.kern_version = version_code,
        ProgType::Syscall => o.flags = SLEEPABLE,
        ProgType::Tracing => {
            o.expected_attach_type = Some(attach::TRACE_FENTRY);
            o.attach_btf_id = Some(1);
        }
        ProgType::Lsm => {
            o.expected_attach_type = Some(attach::MODIFY_RETURN);
            o.attach_btf_id = Some(1);
        }
        ProgType::Ext => o.attach_btf_id = Some(1),
        _ => {}
    }
    o
}

/// What one probe load did: loaded, or failed with an errno and the verifier log.
enum ProbeLoad {
    Loaded(KernelProgram),
    Failed { errno: i32, log: String },
}

/// Loads `insns` as `t` with a 4 KiB level-1 log (enough for the probes' messages).
fn probe_load(t: ProgType, insns: &[Insn], version_code: u32) -> ProbeLoad {
    let opts = probe_options(t, version_code);
    let bytes = bpflab_vm::isa::encode_bytes(insns);
    let license = c"GPL";
    let params = sys::ProgParams {
        prog_type: t.id(),
        expected_attach_type: opts.expected_attach_type.unwrap_or(0),
        flags: opts.flags,
        insns: &bytes,
        license,
        name: crate::obj_name(opts.name),
        btf: None,
        attach_btf_id: opts.attach_btf_id.unwrap_or(0),
        kern_version: opts.kern_version,
    };
    let mut buf = vec![0u8; 4096];
    match sys::prog_load(&params, Some((1, &mut buf))) {
        Ok(fd) => ProbeLoad::Loaded(KernelProgram { fd, prog_type: t }),
        Err(e) => {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            ProbeLoad::Failed { errno: e.errno, log: String::from_utf8_lossy(&buf[..end]).into() }
        }
    }
}

/// Whether the kernel loads programs of type `t` (libbpf's `probe_prog_load` verdicts: the
/// types that need an attach target count as present when refused for the dummy target).
fn prog_type_loads(t: ProgType, version_code: u32) -> bool {
    let r = probe_load(t, &return_zero(), version_code);
    match (t, r) {
        (ProgType::Tracing | ProgType::Lsm, ProbeLoad::Failed { errno, log }) => {
            errno == libc::EINVAL && log.contains("attach_btf_id 1 is not a function")
        }
        (ProgType::Ext, ProbeLoad::Failed { errno, log }) => {
            errno == libc::EINVAL && log.contains("Cannot replace kernel functions")
        }
        (ProgType::StructOps, ProbeLoad::Failed { errno, .. }) => errno == ENOTSUPP,
        (ProgType::Tracing | ProgType::Lsm | ProgType::Ext | ProgType::StructOps, _) => false,
        (_, r) => matches!(r, ProbeLoad::Loaded(_)),
    }
}

/// Program types whose helpers can be probed with a dummy program (libbpf: not tracing,
/// ext, lsm, struct_ops, which need a real attach target).
fn helpers_probeable(t: ProgType) -> bool {
    !matches!(t, ProgType::Tracing | ProgType::Ext | ProgType::Lsm | ProgType::StructOps)
}

/// The helper ids programs of type `t` may call, by libbpf's reading of the verifier's reason.
fn probe_helpers(t: ProgType, version_code: u32) -> BTreeSet<u32> {
    (1..KERNEL_HELPER_NAMES.len() as u32)
        .filter(|&id| {
            let call = Insn::Call { kind: CallKind::Helper, imm: id as i32, off: 0 };
            match probe_load(t, &[call, Insn::Exit], version_code) {
                ProbeLoad::Loaded(_) => true,
                ProbeLoad::Failed { log, .. } => {
                    // libbpf's three reasons, and the verifier's refusal of a helper whose
                    // prototype the type has but cannot use ("func bpf_get_func_ip#173 not
                    // supported for program type 5").
                    !(log.contains("invalid func ")
                        || log.contains("unknown func ")
                        || log.contains("program of this type cannot use helper ")
                        || log.contains(" not supported for program type "))
                }
            }
        })
        .collect()
}

/// Whether `BPF_PROG_TEST_RUN` serves type `t`: everything but `ENOTSUPP` (a refusal of the
/// dummy input still means the type has a test run).
fn test_run_served(t: ProgType, version_code: u32) -> bool {
    let prog = match t {
        // No dummy program of these types runs; what their test runs need is known from the
        // kernel's sources: tracing (bpf_prog_test_run_tracing) runs fentry/fexit programs,
        // which must load; struct_ops programs run (bpf_struct_ops_test_run) once the type
        // loads; LSM and freplace programs have no test run.
        ProgType::Tracing => return fentry_loads(),
        ProgType::StructOps => return true,
        ProgType::Lsm | ProgType::Ext => return false,
        _ => probe_load(t, &return_zero(), version_code),
    };
    let ProbeLoad::Loaded(prog) = prog else { return false };
    let ctx_only =
        matches!(t, ProgType::RawTracepoint | ProgType::RawTracepointWritable | ProgType::Syscall);
    let data = if ctx_only { Vec::new() } else { vec![0u8; 64] };
    let ctx = ctx_only.then(|| vec![0u8; 8]);
    match prog.test_run(&data, ctx.as_deref(), 1) {
        Ok(_) => true,
        Err(e) => e.errno() != Some(ENOTSUPP),
    }
}

/// Whether a map of type `t` is created (libbpf's `probe_map_create` parameters).
fn map_type_creates(t: MapType) -> bool {
    let (mut key, mut value, mut max, mut flags) = (4, 4, 1, 0);
    let mut btf = None;
    match t {
        MapType::StackTrace => value = 8,
        MapType::LpmTrie => (key, value, flags) = (8, 8, NO_PREALLOC),
        MapType::CgroupStorage | MapType::PercpuCgroupStorage => (key, value, max) = (16, 8, 0),
        MapType::Queue | MapType::Stack | MapType::BloomFilter => key = 0,
        MapType::SkStorage
        | MapType::InodeStorage
        | MapType::TaskStorage
        | MapType::CgrpStorage => {
            (value, max, flags) = (8, 0, NO_PREALLOC);
            match KernelBtf::load(&local_storage_btf()) {
                Ok(b) => btf = Some(b),
                Err(_) => return false,
            }
        }
        MapType::Ringbuf | MapType::UserRingbuf => (key, value, max) = (0, 0, 4096),
        MapType::Arena => (key, value, max, flags) = (0, 0, 1, MMAPABLE),
        _ => {}
    }
    let inner = match t {
        MapType::ArrayOfMaps | MapType::HashOfMaps => {
            match KernelMap::create(MapType::Hash, 4, 4, 1) {
                Ok(m) => Some(m),
                Err(_) => return false,
            }
        }
        _ => None,
    };
    let mut spec = MapSpec::new("probe", t, key, value, max);
    spec.flags = flags;
    if btf.is_some() {
        (spec.btf_key_type_id, spec.btf_value_type_id) = (Some(1), Some(3));
    }
    KernelMap::from_spec_with_btf(&spec, inner.as_ref(), btf.as_ref()).is_ok()
}

/// The BTF libbpf's probe gives local-storage maps: `int`, `struct bpf_spin_lock { int val; }`,
/// `struct val { int cnt; struct bpf_spin_lock l; }`.
fn local_storage_btf() -> Vec<u8> {
    let strs = b"\0bpf_spin_lock\0val\0cnt\0l\0";
    let info = |kind: u32, vlen: u32| (kind << 24) | vlen;
    let types: [u32; 14] = [
        // [1] int: name 0, INT, size 4, encoding signed, 32 bits.
        0,
        info(1, 0),
        4,
        (1 << 24) | 32,
        // [2] struct bpf_spin_lock { int val; } (name "bpf_spin_lock" at 1, member "val" at 15)
        1,
        info(4, 1),
        4,
        15,
        1,
        0,
        // [3] struct val { int cnt; struct bpf_spin_lock l; } (names at 15, 19, 23)
        15,
        info(4, 2),
        8,
        19,
    ];
    let tail: [u32; 5] = [1, 0, 23, 2, 32];
    let type_bytes: Vec<u8> =
        types.iter().chain(tail.iter()).flat_map(|w| w.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9f_u16.to_le_bytes()); // magic
    out.push(1); // version
    out.push(0); // flags
    out.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
    out.extend_from_slice(&0u32.to_le_bytes()); // type_off
    out.extend_from_slice(&(type_bytes.len() as u32).to_le_bytes()); // type_len
    out.extend_from_slice(&(type_bytes.len() as u32).to_le_bytes()); // str_off
    out.extend_from_slice(&(strs.len() as u32).to_le_bytes()); // str_len
    out.extend_from_slice(&type_bytes);
    out.extend_from_slice(strs);
    out
}

/// Whether an fentry program on `bpf_fentry_test1` (the kernel's own test target) loads.
fn fentry_loads() -> bool {
    static FENTRY: OnceLock<bool> = OnceLock::new();
    *FENTRY.get_or_init(|| {
        btf_target_loads(ProgType::Tracing, attach::TRACE_FENTRY, "bpf_fentry_test1")
    })
}

/// Whether an LSM program on `file_open` loads (BPF LSM built in and active).
fn lsm_loads() -> bool {
    btf_target_loads(ProgType::Lsm, attach::LSM_MAC, "bpf_lsm_file_open")
}

/// Whether `r0 = 0; exit` of type `t` attached (by BTF id) to kernel function `func` loads.
fn btf_target_loads(t: ProgType, attach_type: u32, func: &str) -> bool {
    let Some(id) = vmlinux_func_id(func) else { return false };
    let opts = ProgLoadOptions {
        name: "probe_btf",
        expected_attach_type: Some(attach_type),
        attach_btf_id: Some(id),
        ..ProgLoadOptions::default()
    };
    KernelProgram::load_with_options(t, &return_zero(), "GPL", &opts).is_ok()
}

/// The running kernel's BTF, read once.
fn vmlinux() -> Option<&'static bpflab_btf::Btf> {
    static VMLINUX: OnceLock<Option<bpflab_btf::Btf>> = OnceLock::new();
    VMLINUX.get_or_init(|| bpflab_btf::Btf::from_vmlinux().ok()).as_ref()
}

/// The BTF id of kernel function `name` in the running kernel's BTF.
fn vmlinux_func_id(name: &str) -> Option<u32> {
    vmlinux()?.find_by_name(name, bpflab_btf::BtfKind::Func)
}

/// The kernel BTF id a trampoline program of `prog_type` with `expected_attach_type` attaching
/// to `target` names, found as libbpf's `find_attach_btf_id` does: a function for fentry,
/// fexit, fmod_ret; `btf_trace_<target>` for tp_btf; `bpf_iter_<target>` for iterators;
/// `bpf_lsm_<target>` for LSM hooks.
pub(crate) fn attach_btf_id(
    prog_type: ProgType,
    expected_attach_type: Option<u32>,
    target: &str,
) -> Option<u32> {
    const TRACE_RAW_TP: u32 = 23;
    const TRACE_ITER: u32 = 28;
    match (prog_type, expected_attach_type) {
        (ProgType::Lsm, _) => vmlinux_func_id(&format!("bpf_lsm_{target}")),
        (_, Some(TRACE_RAW_TP)) => {
            vmlinux()?.find_by_name(&format!("btf_trace_{target}"), bpflab_btf::BtfKind::Typedef)
        }
        (_, Some(TRACE_ITER)) => vmlinux_func_id(&format!("bpf_iter_{target}")),
        _ => vmlinux_func_id(target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_storage_btf_is_well_formed() {
        let btf = bpflab_btf::Btf::parse(&local_storage_btf()).expect("parses");
        assert_eq!(btf.type_name(2).unwrap(), "bpf_spin_lock");
        assert_eq!(btf.type_name(3).unwrap(), "val");
        assert_eq!(btf.size_of(3).unwrap(), 8);
    }
}
