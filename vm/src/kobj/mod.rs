//! The simulated kernel: the current task and other kernel objects programs read with
//! `bpf_probe_read_kernel` (or, through BTF pointers, directly), user-space memory for
//! `bpf_probe_read_user`, and the network configuration `bpf_fib_lookup` consults ([`fib`]).
//!
//! # Address model
//!
//! bpflab's addresses (see [`crate::memory`]) are all numerically below the x86_64 user/kernel
//! split, so the probe helpers classify an address by what it points to ([`Kernel::classify`]):
//! - a region mapped with [`Kernel::map_user`] is **user** memory;
//! - every other region (stacks, map values, the context, packets, kernel objects) is
//!   **kernel** memory, as it is in the kernel;
//! - an address in no region is **user** below [`TASK_SIZE_MAX`] + one page (NULL and small
//!   integers included), **non-canonical** in the x86_64 address hole (48-bit virtual
//!   addresses), the **vsyscall** page, or an unmapped **kernel** address otherwise.
//!
//! # Kernel objects
//!
//! Objects are regions of kind [`RegionKind::Kernel`] laid out per a BTF ([`Layout`]: by
//! default the running kernel's `/sys/kernel/btf/vmlinux`, else [`Layout::fallback`]). Each
//! object exists in one of two [`View`]s: [`View::Probe`] objects have no access permission,
//! so a direct load faults as the verifier would refuse it (the program must use
//! `bpf_probe_read_kernel`); [`View::Btf`] objects are read-only, for pointers the verifier
//! lets programs dereference (fentry/fexit/tp_btf/lsm arguments, `bpf_get_current_task_btf`).
//! The current task exists in both views (two copies whose pointers stay within their view),
//! so `bpf_get_current_task()` and `bpf_get_current_task_btf()` return different addresses.

pub mod fib;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bpflab_btf::{Btf, BtfKind, BtfType};

use crate::memory::{MemError, Memory, Perm, RegionId, RegionKind};

pub use fib::Fib;

/// Size of a page on x86_64.
pub const PAGE_SIZE: u64 = 4096;
/// x86_64 `TASK_SIZE_MAX` with 4-level paging: user addresses are below it.
pub const TASK_SIZE_MAX: u64 = (1 << 47) - PAGE_SIZE;
/// The x86_64 vsyscall page, a user address above `TASK_SIZE_MAX`.
pub const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;
/// Length of `task_struct::comm` (`TASK_COMM_LEN`).
pub const TASK_COMM_LEN: usize = 16;
/// Most ancestors of the current task that get simulated (deeper parents are dropped).
pub const MAX_TASK_DEPTH: usize = 16;
/// Largest kernel object or user mapping [`Kernel`] creates.
pub const MAX_OBJECT_SIZE: usize = 1 << 24;

/// How the probe helpers see an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrClass {
    /// User memory (or an unmapped user address).
    User,
    /// Kernel memory (or an unmapped, canonical kernel address).
    Kernel,
    /// Neither: in the x86_64 non-canonical hole.
    NonCanonical,
    /// The x86_64 vsyscall page: refused by kernel reads (-ERANGE) and user reads (-EFAULT).
    Vsyscall,
}

/// Which way programs may reach a kernel object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    /// Only through `bpf_probe_read_kernel` (direct loads fault).
    Probe,
    /// Also by direct loads, read-only (BTF pointers).
    Btf,
}

impl View {
    fn perm(self) -> Perm {
        match self {
            View::Probe => Perm::None,
            View::Btf => Perm::ReadOnly,
        }
    }
}

/// Why a kernel object could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KobjError {
    /// The BTF could not be read or is inconsistent.
    #[error("BTF: {0}")]
    Btf(String),
    /// The layout has no struct of this name.
    #[error("no struct {0} in the layout")]
    NoStruct(String),
    /// The struct has no field at this path.
    #[error("struct {strct} has no field {path:?}")]
    NoField {
        /// The struct.
        strct: String,
        /// The dotted field path.
        path: String,
    },
    /// The field is a bitfield, which cannot be set as bytes.
    #[error("field {path:?} of struct {strct} is a bitfield")]
    Bitfield {
        /// The struct.
        strct: String,
        /// The dotted field path.
        path: String,
    },
    /// A value is longer than its field.
    #[error("value of {len} bytes does not fit field {path:?} ({size} bytes)")]
    ValueTooLong {
        /// The dotted field path.
        path: String,
        /// The value's length.
        len: usize,
        /// The field's size.
        size: usize,
    },
    /// An object larger than [`MAX_OBJECT_SIZE`].
    #[error("object of {0} bytes is too large")]
    TooLarge(usize),
    /// The address is not the start of a mapping made by [`Kernel`].
    #[error("{0:#x} is not a mapping of the simulated kernel")]
    NotMapped(u64),
    /// The address space is full.
    #[error(transparent)]
    Memory(#[from] MemError),
}

/// Offsets of the `task_struct` fields the helpers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskLayout {
    /// `sizeof(struct task_struct)`.
    pub size: usize,
    /// `pid`.
    pub pid: usize,
    /// `tgid`.
    pub tgid: usize,
    /// `real_parent`.
    pub real_parent: usize,
    /// `parent`.
    pub parent: usize,
    /// `group_leader`.
    pub group_leader: usize,
    /// `real_cred`.
    pub real_cred: usize,
    /// `cred`.
    pub cred: usize,
    /// `comm`.
    pub comm: usize,
}

/// Offsets of the `struct cred` fields the helpers use (each a 4-byte id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredLayout {
    /// `sizeof(struct cred)`.
    pub size: usize,
    /// `uid`.
    pub uid: usize,
    /// `gid`.
    pub gid: usize,
    /// `suid`.
    pub suid: usize,
    /// `sgid`.
    pub sgid: usize,
    /// `euid`.
    pub euid: usize,
    /// `egid`.
    pub egid: usize,
    /// `fsuid`.
    pub fsuid: usize,
    /// `fsgid`.
    pub fsgid: usize,
}

/// Where a field lives in its struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLoc {
    /// Byte offset from the start of the struct.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// Layout of the simulated kernel structs: from a BTF, or the documented fallback.
#[derive(Clone)]
pub struct Layout {
    btf: Option<Btf>,
    /// `struct task_struct`.
    pub task: TaskLayout,
    /// `struct cred`.
    pub cred: CredLayout,
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layout")
            .field("from_btf", &self.btf.is_some())
            .field("task", &self.task)
            .field("cred", &self.cred)
            .finish()
    }
}

/// The fallback `task_struct` layout: Linux 6.18 x86_64 as built for bpflab's reference host.
const FALLBACK_TASK: TaskLayout = TaskLayout {
    size: 3264,
    pid: 1264,
    tgid: 1268,
    real_parent: 1280,
    parent: 1288,
    group_leader: 1328,
    real_cred: 1728,
    cred: 1736,
    comm: 1752,
};

/// The fallback `struct cred` layout (stable across recent kernels).
const FALLBACK_CRED: CredLayout = CredLayout {
    size: 184,
    uid: 8,
    gid: 12,
    suid: 16,
    sgid: 20,
    euid: 24,
    egid: 28,
    fsuid: 32,
    fsgid: 36,
};

/// Deepest nesting of anonymous members searched for a field name.
const MAX_ANON_DEPTH: usize = 8;
/// Most components of a dotted field path.
const MAX_PATH_LEN: usize = 16;

impl Layout {
    /// The running kernel's layout (from `/sys/kernel/btf/vmlinux`), or [`Layout::fallback`]
    /// when that BTF is unavailable; read once per process.
    pub fn running_kernel() -> Arc<Layout> {
        static RUNNING: OnceLock<Arc<Layout>> = OnceLock::new();
        Arc::clone(RUNNING.get_or_init(|| {
            let layout = Btf::from_vmlinux()
                .map_err(|e| KobjError::Btf(e.to_string()))
                .and_then(Layout::from_btf);
            Arc::new(layout.unwrap_or_else(|_| Layout::fallback()))
        }))
    }

    /// The layout `btf` describes (it must have `task_struct` and `cred`).
    pub fn from_btf(btf: Btf) -> Result<Layout, KobjError> {
        let t = |path: &str| field_in(&btf, "task_struct", path).map(|f| f.offset);
        let c = |path: &str| field_in(&btf, "cred", path).map(|f| f.offset);
        let task = TaskLayout {
            size: struct_size(&btf, "task_struct")?,
            pid: t("pid")?,
            tgid: t("tgid")?,
            real_parent: t("real_parent")?,
            parent: t("parent")?,
            group_leader: t("group_leader")?,
            real_cred: t("real_cred")?,
            cred: t("cred")?,
            comm: t("comm")?,
        };
        let cred = CredLayout {
            size: struct_size(&btf, "cred")?,
            uid: c("uid")?,
            gid: c("gid")?,
            suid: c("suid")?,
            sgid: c("sgid")?,
            euid: c("euid")?,
            egid: c("egid")?,
            fsuid: c("fsuid")?,
            fsgid: c("fsgid")?,
        };
        let fits =
            |off: usize, len: usize, size: usize| off.checked_add(len).is_some_and(|e| e <= size);
        let task_ok = [task.pid, task.tgid].iter().all(|&o| fits(o, 4, task.size))
            && [task.real_parent, task.parent, task.group_leader, task.real_cred, task.cred]
                .iter()
                .all(|&o| fits(o, 8, task.size))
            && fits(task.comm, TASK_COMM_LEN, task.size);
        let cred_ok = [cred.uid, cred.gid, cred.suid, cred.sgid, cred.euid, cred.egid]
            .iter()
            .chain(&[cred.fsuid, cred.fsgid])
            .all(|&o| fits(o, 4, cred.size));
        if !task_ok || !cred_ok || task.size > MAX_OBJECT_SIZE || cred.size > MAX_OBJECT_SIZE {
            return Err(KobjError::Btf("task_struct or cred fields out of bounds".into()));
        }
        Ok(Layout { btf: Some(btf), task, cred })
    }

    /// The fixed layout used without BTF: `task_struct` of 3264 bytes with `pid` at 1264,
    /// `tgid` 1268, `real_parent` 1280, `parent` 1288, `group_leader` 1328, `real_cred` 1728,
    /// `cred` 1736, `comm` 1752; `cred` of 184 bytes with `uid` 8, `gid` 12, `suid` 16,
    /// `sgid` 20, `euid` 24, `egid` 28, `fsuid` 32, `fsgid` 36 (Linux 6.18, x86_64).
    pub fn fallback() -> Layout {
        Layout { btf: None, task: FALLBACK_TASK, cred: FALLBACK_CRED }
    }

    /// Whether the layout comes from a BTF.
    pub fn has_btf(&self) -> bool {
        self.btf.is_some()
    }

    /// Size of struct `name`.
    pub fn struct_size(&self, name: &str) -> Result<usize, KobjError> {
        match &self.btf {
            Some(btf) => struct_size(btf, name),
            None => match name {
                "task_struct" => Ok(self.task.size),
                "cred" => Ok(self.cred.size),
                _ => Err(KobjError::NoStruct(name.into())),
            },
        }
    }

    /// Where field `path` (dotted through nested structs, e.g. `"se.vruntime"`, anonymous
    /// members searched) lives in struct `strct`. Without BTF only the fields of
    /// [`TaskLayout`] and [`CredLayout`] are known.
    pub fn field(&self, strct: &str, path: &str) -> Result<FieldLoc, KobjError> {
        if let Some(btf) = &self.btf {
            return field_in(btf, strct, path);
        }
        let (t, c) = (&self.task, &self.cred);
        let loc = |offset, size| Ok(FieldLoc { offset, size });
        match (strct, path) {
            ("task_struct", "pid") => loc(t.pid, 4),
            ("task_struct", "tgid") => loc(t.tgid, 4),
            ("task_struct", "real_parent") => loc(t.real_parent, 8),
            ("task_struct", "parent") => loc(t.parent, 8),
            ("task_struct", "group_leader") => loc(t.group_leader, 8),
            ("task_struct", "real_cred") => loc(t.real_cred, 8),
            ("task_struct", "cred") => loc(t.cred, 8),
            ("task_struct", "comm") => loc(t.comm, TASK_COMM_LEN),
            ("cred", f) => {
                let off = match f.strip_suffix(".val").unwrap_or(f) {
                    "uid" => c.uid,
                    "gid" => c.gid,
                    "suid" => c.suid,
                    "sgid" => c.sgid,
                    "euid" => c.euid,
                    "egid" => c.egid,
                    "fsuid" => c.fsuid,
                    "fsgid" => c.fsgid,
                    _ => return Err(KobjError::NoField { strct: strct.into(), path: path.into() }),
                };
                loc(off, 4)
            }
            ("task_struct", _) => {
                Err(KobjError::NoField { strct: strct.into(), path: path.into() })
            }
            _ => Err(KobjError::NoStruct(strct.into())),
        }
    }
}

fn btf_err(e: impl fmt::Display) -> KobjError {
    KobjError::Btf(e.to_string())
}

fn struct_id(btf: &Btf, name: &str) -> Result<u32, KobjError> {
    btf.find_by_name(name, BtfKind::Struct)
        .or_else(|| btf.find_by_name(name, BtfKind::Union))
        .ok_or_else(|| KobjError::NoStruct(name.into()))
}

fn struct_size(btf: &Btf, name: &str) -> Result<usize, KobjError> {
    Ok(btf.size_of(struct_id(btf, name)?).map_err(btf_err)? as usize)
}

/// Resolves a dotted field path in struct `strct` of `btf`.
fn field_in(btf: &Btf, strct: &str, path: &str) -> Result<FieldLoc, KobjError> {
    let no_field = || KobjError::NoField { strct: strct.into(), path: path.into() };
    let mut ty = struct_id(btf, strct)?;
    let mut bits: u64 = 0;
    if path.split('.').count() > MAX_PATH_LEN {
        return Err(no_field());
    }
    for name in path.split('.') {
        let (id, t) = btf.resolve_mods(ty).map_err(btf_err)?;
        if !t.is_composite() || name.is_empty() {
            return Err(no_field());
        }
        let (member_ty, off, bitfield) = find_member(btf, id, name, 0)?.ok_or_else(no_field)?;
        if bitfield {
            return Err(KobjError::Bitfield { strct: strct.into(), path: path.into() });
        }
        bits += off;
        ty = member_ty;
    }
    if !bits.is_multiple_of(8) {
        return Err(KobjError::Bitfield { strct: strct.into(), path: path.into() });
    }
    let size = btf.size_of(ty).map_err(btf_err)? as usize;
    Ok(FieldLoc { offset: (bits / 8) as usize, size })
}

/// Finds member `name` of composite `id`, looking into anonymous members; returns its type,
/// bit offset from the start of `id`, and whether it is a bitfield.
fn find_member(
    btf: &Btf,
    id: u32,
    name: &str,
    depth: usize,
) -> Result<Option<(u32, u64, bool)>, KobjError> {
    if depth > MAX_ANON_DEPTH {
        return Ok(None);
    }
    let Some(c) = btf.type_by_id(id).map_err(btf_err)?.as_composite() else {
        return Ok(None);
    };
    for m in &c.members {
        if m.name_off != 0 {
            if btf.string_at(m.name_off).map_err(btf_err)? == name {
                return Ok(Some((m.type_id, u64::from(m.bit_offset), m.bitfield_size != 0)));
            }
            continue;
        }
        let (inner, t) = btf.resolve_mods(m.type_id).map_err(btf_err)?;
        if matches!(t, BtfType::Struct(_) | BtfType::Union(_))
            && let Some((ty, off, bf)) = find_member(btf, inner, name, depth + 1)?
        {
            return Ok(Some((ty, u64::from(m.bit_offset) + off, bf)));
        }
    }
    Ok(None)
}

/// A simulated task: what `bpf_get_current_pid_tgid`, `_uid_gid`, `_comm` and the
/// `task_struct` objects report. Build one with [`Task::new`] and the setters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Thread id (`task_struct::pid`).
    pub pid: u32,
    /// Process id (`task_struct::tgid`).
    pub tgid: u32,
    /// `task_struct::comm`: NUL-terminated, zero-padded.
    pub comm: [u8; TASK_COMM_LEN],
    /// Real user id (`cred->uid`, also `suid`).
    pub uid: u32,
    /// Real group id (`cred->gid`, also `sgid`).
    pub gid: u32,
    /// Effective user id (`cred->euid`, also `fsuid`).
    pub euid: u32,
    /// Effective group id (`cred->egid`, also `fsgid`).
    pub egid: u32,
    /// The parent (`real_parent` and `parent`); without one the task is its own parent, like
    /// `init_task`.
    pub parent: Option<Box<Task>>,
    /// Further `task_struct` fields by dotted path, as raw little-endian bytes.
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Default for Task {
    /// pid = tgid = 1000, comm `bpflab`, root, child of `init` (pid 1).
    fn default() -> Task {
        Task::new(1000).comm("bpflab").parent(Task::new(1).comm("init"))
    }
}

impl Task {
    /// A single-threaded root task with this pid (tgid = pid), comm `task`, no parent.
    pub fn new(pid: u32) -> Task {
        Task {
            pid,
            tgid: pid,
            comm: comm_bytes("task"),
            uid: 0,
            gid: 0,
            euid: 0,
            egid: 0,
            parent: None,
            fields: Vec::new(),
        }
    }

    /// Sets the thread-group id (the process id).
    pub fn tgid(mut self, tgid: u32) -> Task {
        self.tgid = tgid;
        self
    }

    /// Sets the command name (truncated to 15 bytes, as the kernel does).
    pub fn comm(mut self, comm: &str) -> Task {
        self.comm = comm_bytes(comm);
        self
    }

    /// Sets the real and effective user id.
    pub fn uid(mut self, uid: u32) -> Task {
        self.uid = uid;
        self.euid = uid;
        self
    }

    /// Sets the real and effective group id.
    pub fn gid(mut self, gid: u32) -> Task {
        self.gid = gid;
        self.egid = gid;
        self
    }

    /// Sets the effective user id only.
    pub fn euid(mut self, euid: u32) -> Task {
        self.euid = euid;
        self
    }

    /// Sets the effective group id only.
    pub fn egid(mut self, egid: u32) -> Task {
        self.egid = egid;
        self
    }

    /// Sets the parent task.
    pub fn parent(mut self, parent: Task) -> Task {
        self.parent = Some(Box::new(parent));
        self
    }

    /// Sets another `task_struct` field (dotted path) to `bytes`.
    pub fn field(mut self, path: &str, bytes: &[u8]) -> Task {
        self.fields.push((path.into(), bytes.to_vec()));
        self
    }

    /// The command name up to its NUL.
    pub fn comm_str(&self) -> &[u8] {
        let n = self.comm.iter().position(|&b| b == 0).unwrap_or(TASK_COMM_LEN);
        &self.comm[..n]
    }

    /// `bpf_get_current_pid_tgid()`: tgid in the upper 32 bits, pid in the lower.
    pub fn pid_tgid(&self) -> u64 {
        u64::from(self.tgid) << 32 | u64::from(self.pid)
    }

    /// `bpf_get_current_uid_gid()`: real gid in the upper 32 bits, real uid in the lower.
    pub fn uid_gid(&self) -> u64 {
        u64::from(self.gid) << 32 | u64::from(self.uid)
    }

    /// The task and its ancestors, at most [`MAX_TASK_DEPTH`].
    fn chain(&self) -> Vec<&Task> {
        let mut chain = Vec::new();
        let mut cur = Some(self);
        while let Some(t) = cur {
            if chain.len() == MAX_TASK_DEPTH {
                break;
            }
            chain.push(t);
            cur = t.parent.as_deref();
        }
        chain
    }
}

/// `comm` bytes for `name`: at most 15 bytes, NUL-padded.
fn comm_bytes(name: &str) -> [u8; TASK_COMM_LEN] {
    let mut c = [0u8; TASK_COMM_LEN];
    let n = name.len().min(TASK_COMM_LEN - 1);
    c[..n].copy_from_slice(&name.as_bytes()[..n]);
    c
}

/// The materialized current task: its regions and addresses in both views.
#[derive(Clone, Debug)]
struct TaskObjects {
    spec: Task,
    layout: Arc<Layout>,
    regions: Vec<RegionId>,
    probe: u64,
    btf: u64,
}

/// The simulated kernel of a [`World`](crate::world::World): the current task, kernel
/// objects and user memory in the world's address space, and the network configuration.
#[derive(Debug, Default)]
pub struct Kernel {
    current: Task,
    layout: Option<Arc<Layout>>,
    user: BTreeSet<u32>,
    objects: BTreeSet<u32>,
    tasks: Option<TaskObjects>,
    /// Devices, routes and neighbours (`bpf_fib_lookup`).
    pub fib: Fib,
}

impl Kernel {
    /// The current task.
    pub fn current(&self) -> &Task {
        &self.current
    }

    /// Makes `task` the current task, checking its extra fields against the layout; its
    /// objects are rebuilt the next time a program asks for them.
    pub fn set_current(&mut self, task: Task) -> Result<(), KobjError> {
        let layout = self.layout();
        for t in task.chain() {
            for (path, bytes) in &t.fields {
                let f = layout.field("task_struct", path)?;
                if bytes.len() > f.size {
                    return Err(KobjError::ValueTooLong {
                        path: path.clone(),
                        len: bytes.len(),
                        size: f.size,
                    });
                }
            }
        }
        self.current = task;
        Ok(())
    }

    /// The struct layout in use (the running kernel's unless [`Kernel::set_layout`] was called).
    pub fn layout(&mut self) -> Arc<Layout> {
        Arc::clone(self.layout.get_or_insert_with(Layout::running_kernel))
    }

    /// Uses `layout` for the objects built from now on.
    pub fn set_layout(&mut self, layout: Arc<Layout>) {
        self.layout = Some(layout);
    }

    /// The address of the current `task_struct` in `view`, building the task objects (the
    /// task, its ancestors, their creds) when the current task changed.
    pub fn current_task(&mut self, mem: &mut Memory, view: View) -> Result<u64, KobjError> {
        let layout = self.layout();
        let fresh = self
            .tasks
            .as_ref()
            .is_some_and(|t| t.spec == self.current && Arc::ptr_eq(&t.layout, &layout));
        if !fresh {
            if let Some(old) = self.tasks.take() {
                for r in old.regions {
                    self.objects.remove(&r.index());
                    mem.free(r);
                }
            }
            let objs = build_tasks(&self.current, &layout, mem)?;
            self.objects.extend(objs.regions.iter().map(|r| r.index()));
            self.tasks = Some(objs);
        }
        let t = self.tasks.as_ref().ok_or(KobjError::NotMapped(0))?;
        Ok(match view {
            View::Probe => t.probe,
            View::Btf => t.btf,
        })
    }

    /// Maps `data` as user memory; returns its address (for `bpf_probe_read_user`, pointer
    /// arguments of syscalls, ...). Direct loads from it fault.
    pub fn map_user(&mut self, mem: &mut Memory, data: Vec<u8>) -> Result<u64, KobjError> {
        if data.len() > MAX_OBJECT_SIZE {
            return Err(KobjError::TooLarge(data.len()));
        }
        let id = mem.alloc(RegionKind::Kernel, data, Perm::None)?;
        self.user.insert(id.index());
        Ok(id.base())
    }

    /// Maps `data` as a kernel object seen through `view`; returns its address.
    pub fn map_object(
        &mut self,
        mem: &mut Memory,
        data: Vec<u8>,
        view: View,
    ) -> Result<u64, KobjError> {
        if data.len() > MAX_OBJECT_SIZE {
            return Err(KobjError::TooLarge(data.len()));
        }
        let id = mem.alloc(RegionKind::Kernel, data, view.perm())?;
        self.objects.insert(id.index());
        Ok(id.base())
    }

    /// Builds a zeroed `struct strct` per the layout with `fields` (dotted path, little-endian
    /// bytes) set, and maps it in `view`; returns its address.
    pub fn build_object(
        &mut self,
        mem: &mut Memory,
        strct: &str,
        fields: &[(&str, &[u8])],
        view: View,
    ) -> Result<u64, KobjError> {
        let layout = self.layout();
        let size = layout.struct_size(strct)?;
        if size > MAX_OBJECT_SIZE {
            return Err(KobjError::TooLarge(size));
        }
        let mut data = vec![0u8; size];
        for (path, bytes) in fields {
            let f = layout.field(strct, path)?;
            if bytes.len() > f.size || f.offset + bytes.len() > size {
                return Err(KobjError::ValueTooLong {
                    path: (*path).into(),
                    len: bytes.len(),
                    size: f.size,
                });
            }
            data[f.offset..f.offset + bytes.len()].copy_from_slice(bytes);
        }
        self.map_object(mem, data, view)
    }

    /// Removes a mapping made by [`Kernel::map_user`], [`Kernel::map_object`] or
    /// [`Kernel::build_object`]; its addresses fault from now on.
    pub fn unmap(&mut self, mem: &mut Memory, addr: u64) -> Result<(), KobjError> {
        let Some((id, RegionKind::Kernel, 0)) = mem.resolve(addr) else {
            return Err(KobjError::NotMapped(addr));
        };
        let task_region = self.tasks.as_ref().is_some_and(|t| t.regions.contains(&id));
        if task_region || !(self.user.remove(&id.index()) || self.objects.remove(&id.index())) {
            return Err(KobjError::NotMapped(addr));
        }
        mem.free(id);
        Ok(())
    }

    /// How the probe helpers see `addr` (see the module documentation).
    pub fn classify(&self, mem: &Memory, addr: u64) -> AddrClass {
        if let Some((id, _, _)) = mem.resolve(addr) {
            return if self.user.contains(&id.index()) {
                AddrClass::User
            } else {
                AddrClass::Kernel
            };
        }
        if addr < TASK_SIZE_MAX + PAGE_SIZE {
            AddrClass::User
        } else if addr & !(PAGE_SIZE - 1) == VSYSCALL_ADDR {
            AddrClass::Vsyscall
        } else if addr >> 47 != 0x1_ffff {
            AddrClass::NonCanonical
        } else {
            AddrClass::Kernel
        }
    }

    /// Whether `addr` falls in user memory mapped with [`Kernel::map_user`].
    pub fn is_user_region(&self, mem: &Memory, addr: u64) -> bool {
        mem.resolve(addr).is_some_and(|(id, _, _)| self.user.contains(&id.index()))
    }
}

/// One `task_struct` to build: a task of the chain, or the group leader of a thread.
struct Node<'a> {
    task: &'a Task,
    pid: u32,
    parent: usize,
    leader: usize,
    fields: bool,
}

/// Builds the current task, its ancestors (and the group leaders of those that are not
/// thread-group leaders: same ids, comm and creds, pid = tgid) and their creds in both views.
fn build_tasks(
    current: &Task,
    layout: &Arc<Layout>,
    mem: &mut Memory,
) -> Result<TaskObjects, KobjError> {
    let chain = current.chain();
    let n = chain.len();
    let mut nodes: Vec<Node<'_>> = chain
        .iter()
        .enumerate()
        .map(|(i, &task)| Node {
            task,
            pid: task.pid,
            parent: if i + 1 < n { i + 1 } else { i },
            leader: i,
            fields: true,
        })
        .collect();
    for (i, &task) in chain.iter().enumerate() {
        if task.pid != task.tgid {
            let j = nodes.len();
            let parent = nodes[i].parent;
            nodes.push(Node { task, pid: task.tgid, parent, leader: j, fields: false });
            nodes[i].leader = j;
        }
    }
    let (tl, cl) = (layout.task, layout.cred);
    let mut regions = Vec::with_capacity(nodes.len() * 4);
    let mut addrs = [0u64; 2];
    for (v, view) in [View::Probe, View::Btf].into_iter().enumerate() {
        let mut ids = Vec::with_capacity(nodes.len());
        for _ in &nodes {
            let mut pair = [None, None];
            for (slot, size) in pair.iter_mut().zip([tl.size, cl.size]) {
                match mem.alloc(RegionKind::Kernel, vec![0u8; size], view.perm()) {
                    Ok(id) => {
                        regions.push(id);
                        *slot = Some(id);
                    }
                    Err(e) => return Err(free_all(mem, regions, e)),
                }
            }
            let [Some(task), Some(cred)] = pair else { return Err(KobjError::NotMapped(0)) };
            ids.push((task, cred));
        }
        for (node, &(tid, cid)) in nodes.iter().zip(&ids) {
            let t = node.task;
            let parent = ids[node.parent].0.base();
            let leader = ids[node.leader].0.base();
            let bytes = mem.contents_mut(tid);
            put(bytes, tl.pid, &node.pid.to_le_bytes());
            put(bytes, tl.tgid, &t.tgid.to_le_bytes());
            put(bytes, tl.real_parent, &parent.to_le_bytes());
            put(bytes, tl.parent, &parent.to_le_bytes());
            put(bytes, tl.group_leader, &leader.to_le_bytes());
            put(bytes, tl.real_cred, &cid.base().to_le_bytes());
            put(bytes, tl.cred, &cid.base().to_le_bytes());
            put(bytes, tl.comm, &t.comm);
            for (path, value) in t.fields.iter().filter(|_| node.fields) {
                if let Ok(f) = layout.field("task_struct", path)
                    && value.len() <= f.size
                {
                    put(bytes, f.offset, value);
                }
            }
            let cred = mem.contents_mut(cid);
            for (off, id) in [
                (cl.uid, t.uid),
                (cl.gid, t.gid),
                (cl.suid, t.uid),
                (cl.sgid, t.gid),
                (cl.euid, t.euid),
                (cl.egid, t.egid),
                (cl.fsuid, t.euid),
                (cl.fsgid, t.egid),
            ] {
                put(cred, off, &id.to_le_bytes());
            }
            // `usage`: one reference.
            put(cred, 0, &1u64.to_le_bytes());
        }
        addrs[v] = ids[0].0.base();
    }
    Ok(TaskObjects {
        spec: current.clone(),
        layout: Arc::clone(layout),
        regions,
        probe: addrs[0],
        btf: addrs[1],
    })
}

fn free_all(mem: &mut Memory, regions: Vec<RegionId>, e: MemError) -> KobjError {
    for r in regions {
        mem.free(r);
    }
    e.into()
}

/// Copies `value` to `bytes[off..]`, ignoring what does not fit.
fn put(bytes: &mut [u8], off: usize, value: &[u8]) {
    if let Some(dst) = off.checked_add(value.len()).and_then(|end| bytes.get_mut(off..end)) {
        dst.copy_from_slice(value);
    }
}
