//! Kernel profiles: the facts that differ between kernels (version, program and map types,
//! which helpers each program type may call, which types `BPF_PROG_TEST_RUN` serves, what
//! attaches, the kernel configuration), as data.
//!
//! bpflab models one kernel by default ([`KernelProfile::bpflab`], derived from the helper
//! prototypes, so it can never disagree with them). `bpflab kernel features --json` writes the
//! profile probed on a machine; [`KernelProfile::from_json`] reads it back, so a program can be
//! checked in CI against the kernel it will meet in production. The simulator asks the profile
//! whether a helper exists for a program type ([`KernelProfile::helper_available`]; the
//! registry applies it through [`crate::helpers::HelperRegistry::with_profile`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Value, json};

use crate::engine::ProgType;
use crate::helper_names::{KERNEL_HELPER_NAMES, helper_id, helper_name};
use crate::helpers::HelperRegistry;
use crate::spec::{Collection, MapType};

/// The kernel version bpflab models by default (6.18.0).
pub const MODELED_VERSION: (u32, u32, u32) = (6, 18, 0);

/// Program types whose test runs the modeled kernel serves (`BPF_PROG_TEST_RUN`; the others
/// fail with `ENOTSUPP`).
const MODELED_TEST_RUN: &[ProgType] = &[
    ProgType::SocketFilter,
    ProgType::SchedCls,
    ProgType::SchedAct,
    ProgType::Xdp,
    ProgType::CgroupSkb,
    ProgType::LwtIn,
    ProgType::LwtOut,
    ProgType::LwtXmit,
    ProgType::LwtSeg6local,
    ProgType::FlowDissector,
    ProgType::SkLookup,
    ProgType::RawTracepoint,
    ProgType::Tracing,
    ProgType::StructOps,
    ProgType::Syscall,
    ProgType::Netfilter,
];

/// `KERNEL_VERSION(a, b, c)` as the kernel's headers compute it (`c` saturates at 255).
pub const fn kernel_version_code(a: u32, b: u32, c: u32) -> u32 {
    (a << 16) + (b << 8) + if c > 255 { 255 } else { c }
}

/// How program attachment that needs more than `BPF_PROG_LOAD` fares on the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttachSupport {
    /// kprobe/uprobe programs can attach (the kernel has a kprobe PMU: `CONFIG_KPROBES`).
    pub kprobe: bool,
    /// fentry/fexit programs load (BTF trampolines are allowed for this user).
    pub fentry: bool,
    /// BPF LSM programs load (`CONFIG_BPF_LSM` with `bpf` among the active LSMs).
    pub lsm: bool,
}

/// A fact a program needs that a profile's kernel lacks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Missing {
    /// The program type does not load.
    ProgType(ProgType),
    /// The map type cannot be created.
    MapType(MapType),
    /// The helper is not available to the program type.
    Helper {
        /// The calling program's type.
        prog_type: ProgType,
        /// The helper id.
        id: u32,
    },
    /// `BPF_PROG_TEST_RUN` does not serve the program type.
    TestRun(ProgType),
    /// kprobes cannot attach.
    KprobeAttach,
    /// fentry/fexit programs do not load.
    Fentry,
    /// BPF LSM programs do not load.
    Lsm,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::ProgType(t) => write!(f, "program type {}", t.name()),
            Missing::MapType(t) => write!(f, "map type {}", t.name()),
            Missing::Helper { prog_type, id } => write!(
                f,
                "helper {}#{id} in {} programs",
                helper_name(i64::from(*id)).unwrap_or("unknown"),
                prog_type.name()
            ),
            Missing::TestRun(t) => write!(f, "BPF_PROG_TEST_RUN for {} programs", t.name()),
            Missing::KprobeAttach => f.write_str("kprobe attachment (CONFIG_KPROBES)"),
            Missing::Fentry => f.write_str("fentry/fexit programs (BTF trampolines)"),
            Missing::Lsm => f.write_str("BPF LSM programs (CONFIG_BPF_LSM, lsm=bpf)"),
        }
    }
}

/// A profile file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("kernel profile: {field}: {reason}")]
pub struct ProfileError {
    /// The JSON field (path) that is wrong.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

fn perr(field: impl Into<String>, reason: impl Into<String>) -> ProfileError {
    ProfileError { field: field.into(), reason: reason.into() }
}

/// The facts that differ between kernels. Absent facts (a program type whose helpers were not
/// probed, say) mean "as bpflab models it".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelProfile {
    /// Where the facts come from: `bpflab` (the modeled kernel), `running` (probed on this
    /// machine) or the file it was read from.
    pub source: String,
    /// The kernel release (`uname -r`).
    pub release: String,
    /// `LINUX_VERSION_CODE` (what `LINUX_KERNEL_VERSION` kconfig externs read).
    pub version_code: u32,
    /// Program types and whether the kernel loads them.
    pub prog_types: BTreeMap<ProgType, bool>,
    /// Map types and whether the kernel creates them.
    pub map_types: BTreeMap<MapType, bool>,
    /// For each probed program type, the helper ids it may call.
    pub helpers: BTreeMap<ProgType, BTreeSet<u32>>,
    /// Program types and whether `BPF_PROG_TEST_RUN` serves them.
    pub test_run: BTreeMap<ProgType, bool>,
    /// What attaches beyond loading.
    pub attach: AttachSupport,
    /// The kernel configuration (`CONFIG_FOO` → `y`, `m`, `123`, `"text"`), where known.
    pub kconfig: BTreeMap<String, String>,
}

impl KernelProfile {
    /// The kernel bpflab models: every program and map type, the helpers the prototypes in
    /// `registry` allow per program type (implemented or prototype-only: the modelled kernel
    /// has them all), the test-run types of a 6.18 kernel, kprobes and fentry attaching.
    pub fn bpflab(registry: &HelperRegistry) -> KernelProfile {
        let (a, b, c) = MODELED_VERSION;
        let types = ProgType::ALL.iter().copied().filter(|&t| t != ProgType::Unspec);
        let helpers = types
            .clone()
            .map(|t| {
                let ids = registry.protos().filter(|p| p.prog_types.contains(t));
                (t, ids.map(|p| p.id).collect())
            })
            .collect();
        KernelProfile {
            source: "bpflab".into(),
            release: format!("{a}.{b}.{c}"),
            version_code: kernel_version_code(a, b, c),
            prog_types: types.clone().map(|t| (t, true)).collect(),
            map_types: MapType::ALL.iter().map(|&t| (t, true)).collect(),
            helpers,
            test_run: types.map(|t| (t, MODELED_TEST_RUN.contains(&t))).collect(),
            attach: AttachSupport { kprobe: true, fentry: true, lsm: true },
            kconfig: BTreeMap::new(),
        }
    }

    /// Whether a program of `prog_type` may call helper `id` on this kernel (true where the
    /// profile does not know: raw mode, unprobed types).
    pub fn helper_available(&self, prog_type: ProgType, id: u32) -> bool {
        self.helpers.get(&prog_type).is_none_or(|ids| ids.contains(&id))
    }

    /// Whether the kernel loads programs of `prog_type` (true where unknown).
    pub fn prog_type_available(&self, prog_type: ProgType) -> bool {
        self.prog_types.get(&prog_type).copied().unwrap_or(true)
    }

    /// Whether the kernel creates maps of `map_type` (true where unknown).
    pub fn map_type_available(&self, map_type: MapType) -> bool {
        self.map_types.get(&map_type).copied().unwrap_or(true)
    }

    /// Whether `BPF_PROG_TEST_RUN` serves `prog_type` (false where unknown).
    pub fn test_run_available(&self, prog_type: ProgType) -> bool {
        self.test_run.get(&prog_type).copied().unwrap_or(false)
    }

    /// What loading all of `collection` needs that this kernel lacks: program types, map
    /// types, helpers, fentry (sorted, each once).
    pub fn missing_for_load(&self, collection: &Collection) -> Vec<Missing> {
        let mut out = BTreeSet::new();
        for m in &collection.maps {
            for t in std::iter::once(m.map_type).chain(m.inner.as_ref().map(|i| i.map_type)) {
                if !self.map_type_available(t) {
                    out.insert(Missing::MapType(t));
                }
            }
        }
        for p in 0..collection.programs.len() {
            out.extend(self.missing_for_program(collection, p));
        }
        out.into_iter().collect()
    }

    /// What loading program `prog` of `collection` needs that this kernel lacks (its type,
    /// the helpers it calls, fentry for trampoline attach types), sorted.
    pub fn missing_for_program(&self, collection: &Collection, prog: usize) -> Vec<Missing> {
        let Some(p) = collection.programs.get(prog) else { return Vec::new() };
        let mut out = BTreeSet::new();
        if p.prog_type != ProgType::Unspec && !self.prog_type_available(p.prog_type) {
            out.insert(Missing::ProgType(p.prog_type));
        }
        if p.prog_type == ProgType::Tracing && !self.attach.fentry {
            out.insert(Missing::Fentry);
        }
        if p.prog_type == ProgType::Lsm && !self.attach.lsm {
            out.insert(Missing::Lsm);
        }
        for insn in &p.insns {
            if let crate::isa::Insn::Call { kind: crate::isa::CallKind::Helper, imm, .. } = *insn
                && p.prog_type != ProgType::Unspec
                && let Ok(id) = u32::try_from(imm)
                // Only the kernel's helper ids: libbpf poisons calls to absent weak kfuncs
                // with ids from 2,002,000,000 on, in code the verifier finds dead.
                && (id as usize) < KERNEL_HELPER_NAMES.len()
                && !self.helper_available(p.prog_type, id)
            {
                out.insert(Missing::Helper { prog_type: p.prog_type, id });
            }
        }
        out.into_iter().collect()
    }

    /// What test-running program `prog` of `collection` needs that this kernel lacks: what
    /// loading it needs, and the test run of its type.
    pub fn missing_for_test_run(&self, collection: &Collection, prog: usize) -> Vec<Missing> {
        let mut out = self.missing_for_program(collection, prog);
        if let Some(p) = collection.programs.get(prog)
            && !self.test_run_available(p.prog_type)
        {
            out.push(Missing::TestRun(p.prog_type));
        }
        out
    }

    /// The facts both profiles have (the intersection), keeping `self`'s version and source:
    /// how a simulated kernel restricts the probed one in tests.
    pub fn restricted_by(&self, other: &KernelProfile) -> KernelProfile {
        let mut out = self.clone();
        for (t, ok) in &mut out.prog_types {
            *ok &= other.prog_type_available(*t);
        }
        for (t, ok) in &mut out.map_types {
            *ok &= other.map_type_available(*t);
        }
        for (t, ids) in &other.helpers {
            let mine = out.helpers.entry(*t).or_insert_with(|| ids.clone());
            mine.retain(|id| ids.contains(id));
        }
        for (t, ok) in &mut out.test_run {
            *ok &= other.test_run.get(t).copied().unwrap_or(true);
        }
        out.attach.kprobe &= other.attach.kprobe;
        out.attach.fentry &= other.attach.fentry;
        out.attach.lsm &= other.attach.lsm;
        out
    }

    /// The profile as JSON, in the shape `bpflab kernel features --json` prints (bpftool's
    /// names: `program_types`, `map_types`, `helpers` as `<type>_available_helpers`).
    pub fn to_json(&self) -> Value {
        let helpers: serde_json::Map<String, Value> = self
            .helpers
            .iter()
            .map(|(t, ids)| {
                let names: Vec<&str> =
                    ids.iter().filter_map(|&id| helper_name(i64::from(id))).collect();
                (format!("{}_available_helpers", t.name()), json!(names))
            })
            .collect();
        let flags = |m: Vec<(&'static str, bool)>| -> Value {
            Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
        };
        json!({
            "source": self.source,
            "kernel": {
                "release": self.release,
                "version_code": self.version_code,
            },
            "program_types": flags(self.prog_types.iter().map(|(t, v)| (t.name(), *v)).collect()),
            "map_types": flags(self.map_types.iter().map(|(t, v)| (t.name(), *v)).collect()),
            "helpers": helpers,
            "test_run": flags(self.test_run.iter().map(|(t, v)| (t.name(), *v)).collect()),
            "attach": {
                "kprobe": self.attach.kprobe,
                "fentry": self.attach.fentry,
                "lsm": self.attach.lsm,
            },
            "kconfig": self.kconfig,
        })
    }

    /// Reads a profile written by [`KernelProfile::to_json`]; `source` names where it came
    /// from. Unknown program, map or helper names are errors naming the field.
    pub fn from_json(v: &Value, source: &str) -> Result<KernelProfile, ProfileError> {
        let obj = |field: &str| -> Result<&serde_json::Map<String, Value>, ProfileError> {
            match v.get(field) {
                Some(Value::Object(m)) => Ok(m),
                Some(_) => Err(perr(field, "expected an object")),
                None => Err(perr(field, "missing")),
            }
        };
        let boolean = |field: String, v: &Value| -> Result<bool, ProfileError> {
            v.as_bool().ok_or_else(|| perr(field, "expected true or false"))
        };
        let prog_type = |field: &str, name: &str| {
            ProgType::from_name(name)
                .ok_or_else(|| perr(field, format!("unknown program type {name:?}")))
        };
        let kernel = obj("kernel")?;
        let release = kernel
            .get("release")
            .and_then(Value::as_str)
            .ok_or_else(|| perr("kernel.release", "expected a string"))?
            .to_string();
        let version_code = kernel
            .get("version_code")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| perr("kernel.version_code", "expected a 32-bit number"))?;
        let mut prog_types = BTreeMap::new();
        for (name, ok) in obj("program_types")? {
            let field = format!("program_types.{name}");
            prog_types.insert(prog_type(&field, name)?, boolean(field, ok)?);
        }
        let mut map_types = BTreeMap::new();
        for (name, ok) in obj("map_types")? {
            let field = format!("map_types.{name}");
            let t = MapType::ALL
                .iter()
                .copied()
                .find(|t| t.name() == name)
                .ok_or_else(|| perr(&field, format!("unknown map type {name:?}")))?;
            map_types.insert(t, boolean(field, ok)?);
        }
        let mut helpers = BTreeMap::new();
        for (key, names) in obj("helpers")? {
            let field = format!("helpers.{key}");
            let tname = key
                .strip_suffix("_available_helpers")
                .ok_or_else(|| perr(&field, "expected <program type>_available_helpers"))?;
            let t = prog_type(&field, tname)?;
            let list = names.as_array().ok_or_else(|| perr(&field, "expected a list"))?;
            let mut ids = BTreeSet::new();
            for n in list {
                let n = n.as_str().ok_or_else(|| perr(&field, "expected helper names"))?;
                let id =
                    helper_id(n).ok_or_else(|| perr(&field, format!("unknown helper {n:?}")))?;
                ids.insert(id);
            }
            helpers.insert(t, ids);
        }
        let mut test_run = BTreeMap::new();
        for (name, ok) in obj("test_run")? {
            let field = format!("test_run.{name}");
            test_run.insert(prog_type(&field, name)?, boolean(field, ok)?);
        }
        let attach = obj("attach")?;
        let flag = |name: &str| -> Result<bool, ProfileError> {
            let field = format!("attach.{name}");
            boolean(field.clone(), attach.get(name).ok_or_else(|| perr(field, "missing"))?)
        };
        let attach =
            AttachSupport { kprobe: flag("kprobe")?, fentry: flag("fentry")?, lsm: flag("lsm")? };
        let mut kconfig = BTreeMap::new();
        if let Some(k) = v.get("kconfig") {
            let k = k.as_object().ok_or_else(|| perr("kconfig", "expected an object"))?;
            for (name, value) in k {
                let value = value
                    .as_str()
                    .ok_or_else(|| perr(format!("kconfig.{name}"), "expected a string"))?;
                kconfig.insert(name.clone(), value.to_string());
            }
        }
        Ok(KernelProfile {
            source: source.to_string(),
            release,
            version_code,
            prog_types,
            map_types,
            helpers,
            test_run,
            attach,
            kconfig,
        })
    }

    /// The number of helper ids the kernel's uapi header defines (for reports).
    pub fn kernel_helper_count() -> usize {
        KERNEL_HELPER_NAMES.len() - 1
    }
}

/// Why a kernel configuration could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("kconfig line {line}: {reason}")]
pub struct KconfigError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses a kernel configuration in the `.config` / `/proc/config.gz` format: `CONFIG_X=y`,
/// `=m`, `=123`, `=0x10`, `="text"`; `# CONFIG_X is not set` (as `n`), other comments and blank
/// lines are skipped. The values keep their spelling (quotes included), as libbpf takes them.
pub fn parse_kconfig(text: &str) -> Result<BTreeMap<String, String>, KconfigError> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set")
                && name.starts_with("CONFIG_")
            {
                out.insert(name.to_owned(), "n".to_owned());
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: &str| KconfigError { line: i + 1, reason: reason.to_owned() };
        let (name, value) = line.split_once('=').ok_or_else(|| err("no '=' separator"))?;
        if !name.starts_with("CONFIG_") && !name.starts_with("LINUX_") {
            return Err(err("names start with CONFIG_ (or LINUX_ for libbpf's own externs)"));
        }
        if value.is_empty() {
            return Err(err("no value"));
        }
        out.insert(name.to_owned(), value.to_owned());
    }
    Ok(out)
}

/// Reads a kernel configuration file, plain (`.config`, `/boot/config-*`) or gzip-compressed
/// (`/proc/config.gz`), and parses it with [`parse_kconfig`]; the error says what failed.
pub fn read_kconfig_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| format!("gzip: {e}"))?;
        out
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    parse_kconfig(&text).map_err(|e| e.to_string())
}

/// The running system's kernel configuration where libbpf looks for it
/// (`/boot/config-$(uname -r)`, then `/proc/config.gz`); `None` when neither is readable.
pub fn system_kconfig() -> Option<BTreeMap<String, String>> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let boot = std::path::PathBuf::from(format!("/boot/config-{}", release.trim()));
    [boot, std::path::PathBuf::from("/proc/config.gz")]
        .iter()
        .filter(|p| p.exists())
        .find_map(|p| read_kconfig_file(p).ok())
}

/// `KERNEL_VERSION(a, b, c)` of a release string like `6.18.0-1-amd64` (libbpf's
/// `get_kernel_version`: the patch level is capped at 255).
pub fn kernel_version_of_release(release: &str) -> Option<u32> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    let patch: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major << 16) | (minor.min(255) << 8) | patch.min(255))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_every_fact() {
        let mut p = KernelProfile::bpflab(&HelperRegistry::standard());
        p.helpers.get_mut(&ProgType::Xdp).unwrap().remove(&54);
        p.attach.kprobe = false;
        p.kconfig.insert("CONFIG_HZ".into(), "250".into());
        let back = KernelProfile::from_json(&p.to_json(), "bpflab").unwrap();
        assert_eq!(back, p);
        assert!(!back.helper_available(ProgType::Xdp, 54));
        assert!(back.helper_available(ProgType::SchedCls, 1));
    }

    #[test]
    fn bad_profiles_name_the_field() {
        let mut v = KernelProfile::bpflab(&HelperRegistry::standard()).to_json();
        v["program_types"]["xdpp"] = json!(true);
        let e = KernelProfile::from_json(&v, "f").unwrap_err();
        assert_eq!(e.field, "program_types.xdpp");
        let mut v = KernelProfile::bpflab(&HelperRegistry::standard()).to_json();
        v["helpers"]["xdp_available_helpers"] = json!(["bpf_nonexistent"]);
        let e = KernelProfile::from_json(&v, "f").unwrap_err();
        assert_eq!(e.field, "helpers.xdp_available_helpers");
        assert!(e.reason.contains("bpf_nonexistent"), "{e}");
        let e = KernelProfile::from_json(&json!({}), "f").unwrap_err();
        assert_eq!(e.field, "kernel");
    }

    #[test]
    fn kconfig_lines() {
        let text = "# comment\nCONFIG_BPF=y\nCONFIG_HZ=250\n# CONFIG_KPROBES is not set\nCONFIG_S=\"a b\"\n";
        let k = parse_kconfig(text).unwrap();
        assert_eq!(k["CONFIG_BPF"], "y");
        assert_eq!(k["CONFIG_HZ"], "250");
        assert_eq!(k["CONFIG_KPROBES"], "n");
        assert_eq!(k["CONFIG_S"], "\"a b\"");
        assert_eq!(parse_kconfig("CONFIG_A=y\ngarbage\n").unwrap_err().line, 2);
        assert_eq!(parse_kconfig("\nCONFIG_A=\n").unwrap_err().line, 2);
        assert!(parse_kconfig("FOO=1").is_err());
    }

    #[test]
    fn version_codes() {
        assert_eq!(kernel_version_code(6, 18, 44), 0x06122c);
        assert_eq!(kernel_version_code(4, 9, 300), (4 << 16) + (9 << 8) + 255);
        assert_eq!(kernel_version_of_release("6.18.0-1-amd64"), Some(0x061200));
        assert_eq!(
            kernel_version_of_release("6.18.44-fc-v1272"),
            Some(kernel_version_code(6, 18, 44))
        );
        assert_eq!(kernel_version_of_release("5.15.300"), Some(0x050fff));
        assert_eq!(kernel_version_of_release("6.1"), Some(0x060100));
        assert_eq!(kernel_version_of_release("x"), None);
    }
}
