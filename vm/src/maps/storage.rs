//! Local storage maps (kernel/bpf/bpf_local_storage.c): `BPF_MAP_TYPE_TASK_STORAGE`,
//! `SK_STORAGE`, `INODE_STORAGE` and `CGRP_STORAGE`. A value belongs to an owner object (a
//! task, socket, inode or cgroup) instead of a key: programs reach it with the
//! `bpf_{task,sk,inode,cgrp}_storage_get/delete` helpers, passing the owner's pointer.
//!
//! bpflab keys the values by the owner's address in the program's address space. User space
//! names an owner by a file descriptor in the kernel (a pidfd, socket or cgroup fd), which a
//! simulation has no table of: the user-side key here is the 4-byte owner handle the map
//! assigned when the owner's storage was created, which is the pid for a task that is the
//! simulated current task ([`crate::kobj::Kernel::current`]) and otherwise the owner's index
//! in creation order (1, 2, ...).

use std::collections::BTreeMap;

use super::common::BPF_F_NO_PREALLOC;
use super::{Map, MapError, check_len};
use crate::engine::ProgType;
use crate::helpers::{Allowed, ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};
use crate::kobj::View;
use crate::memory::{Memory, Perm, RegionId, RegionKind};
use crate::spec::{MapSpec, MapType};

/// `BPF_F_CLONE`: the storage is cloned with its socket.
const BPF_F_CLONE: u32 = 1 << 9;
/// `BPF_LOCAL_STORAGE_GET_F_CREATE`.
pub(crate) const BPF_LOCAL_STORAGE_GET_F_CREATE: u64 = 1;

/// Whether maps of this type are local storage (task, socket, inode, cgroup).
pub(crate) fn is_local_storage(t: MapType) -> bool {
    matches!(
        t,
        MapType::TaskStorage | MapType::SkStorage | MapType::InodeStorage | MapType::CgrpStorage
    )
}

#[derive(Debug)]
struct Element {
    /// The user-side key.
    handle: u32,
    region: RegionId,
}

/// A local storage map: one value per owner object.
#[derive(Debug)]
pub struct LocalStorage {
    spec: MapSpec,
    /// By owner address.
    elems: BTreeMap<u64, Element>,
    next_handle: u32,
}

impl LocalStorage {
    /// Creates an empty map, with `bpf_local_storage_map_alloc_check`'s rules.
    pub fn new(spec: &MapSpec) -> Result<LocalStorage, MapError> {
        if spec.flags & !(BPF_F_NO_PREALLOC | BPF_F_CLONE) != 0
            || spec.flags & BPF_F_NO_PREALLOC == 0
        {
            return Err(MapError::Invalid(
                "local storage maps need BPF_F_NO_PREALLOC and take only BPF_F_CLONE besides",
            ));
        }
        if spec.max_entries != 0 || spec.key_size != 4 || spec.value_size == 0 {
            return Err(MapError::Invalid(
                "local storage maps need max_entries 0, key_size 4 and a value",
            ));
        }
        if spec.btf_key_type_id.is_none() || spec.btf_value_type_id.is_none() {
            return Err(MapError::Invalid("local storage maps need BTF key and value types"));
        }
        if spec.flags & BPF_F_CLONE != 0 && spec.map_type != MapType::SkStorage {
            return Err(MapError::Invalid("BPF_F_CLONE is for sk_storage maps only"));
        }
        Ok(LocalStorage { spec: spec.clone(), elems: BTreeMap::new(), next_handle: 1 })
    }

    /// Program side (`bpf_*_storage_get`): the value of `owner`, created (zeroed, or a copy
    /// of `init`) when absent and `create` is set.
    pub fn get(
        &mut self,
        mem: &mut Memory,
        owner: u64,
        pid: Option<u32>,
        create: Option<Option<&[u8]>>,
    ) -> Result<Option<u64>, MapError> {
        if let Some(e) = self.elems.get(&owner) {
            return Ok(Some(e.region.base()));
        }
        let Some(init) = create else { return Ok(None) };
        let size = self.spec.value_size as usize;
        let value = match init {
            Some(v) => v[..size].to_vec(),
            None => vec![0; size],
        };
        let region = mem.alloc(RegionKind::MapValue, value, Perm::ReadWrite)?;
        let handle = match pid {
            Some(pid) if !self.elems.values().any(|e| e.handle == pid) => pid,
            _ => {
                let h = self.next_handle;
                self.next_handle = self.next_handle.wrapping_add(1);
                h
            }
        };
        self.elems.insert(owner, Element { handle, region });
        Ok(Some(region.base()))
    }

    /// Program side (`bpf_*_storage_delete`): removes `owner`'s value.
    pub fn remove(&mut self, mem: &mut Memory, owner: u64) -> Result<(), MapError> {
        let e = self.elems.remove(&owner).ok_or(MapError::NotFound)?;
        mem.free(e.region);
        Ok(())
    }

    fn by_handle(&self, key: &[u8]) -> Result<Option<(u64, &Element)>, MapError> {
        check_len("key", 4, key.len())?;
        let h = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
        Ok(self.elems.iter().find(|(_, e)| e.handle == h).map(|(&o, e)| (o, e)))
    }
}

impl Map for LocalStorage {
    fn spec(&self) -> &MapSpec {
        &self.spec
    }

    fn delete(&mut self, mem: &mut Memory, key: &[u8]) -> Result<(), MapError> {
        let owner = self.by_handle(key)?.map(|(o, _)| o).ok_or(MapError::NotFound)?;
        self.remove(mem, owner)
    }

    fn next_key(&self, _mem: &Memory, _key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        // The kernel has no get_next_key for local storage (EOPNOTSUPP).
        Err(self.unsupported())
    }

    fn read(&self, mem: &Memory, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self.by_handle(key)?.map(|(_, e)| mem.bytes(e.region).to_vec()))
    }

    fn write(
        &mut self,
        mem: &mut Memory,
        key: &[u8],
        value: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        check_len("value", self.spec.value_size as usize, value.len())?;
        if flags & !3 != 0 {
            return Err(MapError::Invalid("bad update flags"));
        }
        // User space can only update the storage of an owner it names: one that has storage.
        let region = match self.by_handle(key)? {
            Some(_) if flags == super::BPF_NOEXIST => return Err(MapError::Exists),
            Some((_, e)) => e.region,
            None => return Err(MapError::NotFound),
        };
        mem.contents_mut(region).copy_from_slice(value);
        Ok(())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The storage helpers.
pub(crate) const HELPERS: &[Helper] = &[
    Helper { proto: SK_GET, func: sk_storage_get },
    Helper { proto: SK_DELETE, func: sk_storage_delete },
    Helper { proto: INODE_GET, func: inode_storage_get },
    Helper { proto: INODE_DELETE, func: inode_storage_delete },
    Helper { proto: TASK_GET, func: task_storage_get },
    Helper { proto: TASK_DELETE, func: task_storage_delete },
    Helper { proto: CGRP_GET, func: cgrp_storage_get },
    Helper { proto: CGRP_DELETE, func: cgrp_storage_delete },
];

use ProgType::{
    CgroupSkb, CgroupSock, CgroupSockAddr, CgroupSockopt, Lsm, SchedAct, SchedCls, SkMsg, SockOps,
    Syscall, Tracing,
};

/// Program types whose `*_func_proto` returns `bpf_sk_storage_get` (net/core/filter.c:
/// cgroup sock/sock_addr/skb, tc, sock_ops, sk_msg; kernel/bpf/cgroup.c: sockopt; bpf_lsm.c;
/// bpf_trace.c's tracing_prog_func_proto, which syscall programs fall back to).
const SK_TYPES: Allowed = Allowed::Only(&[
    SchedCls,
    SchedAct,
    CgroupSkb,
    CgroupSock,
    CgroupSockAddr,
    CgroupSockopt,
    SockOps,
    SkMsg,
    Lsm,
    Tracing,
    Syscall,
]);
/// Program types whose `*_func_proto` returns `bpf_sk_storage_delete`: those of `get` but
/// cgroup_sock (`sock_filter_func_proto` has only the getter).
const SK_DELETE_TYPES: Allowed = Allowed::Only(&[
    SchedCls,
    SchedAct,
    CgroupSkb,
    CgroupSockAddr,
    CgroupSockopt,
    SockOps,
    SkMsg,
    Lsm,
    Tracing,
    Syscall,
]);
/// Inode storage: LSM programs only.
const LSM: Allowed = Allowed::Only(&[Lsm]);

const fn get_proto(id: u32, name: &'static str, prog_types: Allowed) -> HelperProto {
    HelperProto {
        id,
        name,
        ret: RetType::PtrToMapValueOrNull,
        args: &[
            ArgType::ConstMapPtr,
            ArgType::Anything,
            ArgType::PtrToMemOrNull,
            ArgType::Anything,
        ],
        gpl_only: false,
        prog_types,
    }
}
const fn delete_proto(id: u32, name: &'static str, prog_types: Allowed) -> HelperProto {
    HelperProto {
        id,
        name,
        ret: RetType::Integer,
        args: &[ArgType::ConstMapPtr, ArgType::Anything],
        gpl_only: false,
        prog_types,
    }
}

const SK_GET: HelperProto = get_proto(107, "bpf_sk_storage_get", SK_TYPES);
const SK_DELETE: HelperProto = delete_proto(108, "bpf_sk_storage_delete", SK_DELETE_TYPES);
const INODE_GET: HelperProto = get_proto(145, "bpf_inode_storage_get", LSM);
const INODE_DELETE: HelperProto = delete_proto(146, "bpf_inode_storage_delete", LSM);
// Linux 6.18 offers task storage to every program type (the probe of a 6.18 kernel finds
// it in every type's helpers; 6.12 had it for tracing types only).
const TASK_GET: HelperProto = get_proto(156, "bpf_task_storage_get", Allowed::All);
const TASK_DELETE: HelperProto = delete_proto(157, "bpf_task_storage_delete", Allowed::All);
const CGRP_GET: HelperProto = get_proto(210, "bpf_cgrp_storage_get", Allowed::All);
const CGRP_DELETE: HelperProto = delete_proto(211, "bpf_cgrp_storage_delete", Allowed::All);

const ENOENT: u64 = -2i64 as u64;
const EINVAL: u64 = -22i64 as u64;

/// The storage map argument: its index, checked to be of `map_type` (the verifier's rule).
fn storage_arg(ctx: &HelperCtx<'_>, addr: u64, map_type: MapType) -> Result<usize, HelperError> {
    let idx = crate::builtin::maps::map_arg(ctx, 1, addr)?;
    match ctx.world.map(idx) {
        Some(m) if m.spec().map_type == map_type => Ok(idx),
        _ => Err(HelperError::BadArg { arg: 1, reason: "map is not of this storage type" }),
    }
}

fn storage_get(
    ctx: &mut HelperCtx<'_>,
    a: [u64; 5],
    map_type: MapType,
) -> Result<u64, HelperError> {
    let idx = storage_arg(ctx, a[0], map_type)?;
    let (owner, value, flags) = (a[1], a[2], a[3]);
    if flags & !BPF_LOCAL_STORAGE_GET_F_CREATE != 0 || owner == 0 {
        return Ok(0);
    }
    let size = ctx.world.map(idx).map_or(0, |m| m.spec().value_size);
    let init = if value != 0 { Some(ctx.arg_bytes(3, value, u64::from(size))?) } else { None };
    let create = (flags & BPF_LOCAL_STORAGE_GET_F_CREATE != 0).then_some(init.as_deref());
    // A task that is the simulated current task is named by its pid on the user side.
    let pid = if map_type == MapType::TaskStorage {
        let world = &mut *ctx.world;
        let current = world.kernel.current_task(&mut world.mem, View::Btf).ok();
        (current == Some(owner)).then(|| world.kernel.current().pid)
    } else {
        None
    };
    let (map, mem) = crate::builtin::maps::map_and_mem(ctx, idx);
    let storage = map
        .as_any_mut()
        .downcast_mut::<LocalStorage>()
        .ok_or(HelperError::BadArg { arg: 1, reason: "not a local storage map" })?;
    match storage.get(mem, owner, pid, create) {
        Ok(v) => Ok(v.unwrap_or(0)),
        Err(_) => Ok(0),
    }
}

fn storage_delete(
    ctx: &mut HelperCtx<'_>,
    a: [u64; 5],
    map_type: MapType,
) -> Result<u64, HelperError> {
    let idx = storage_arg(ctx, a[0], map_type)?;
    if a[1] == 0 {
        return Ok(EINVAL);
    }
    let (map, mem) = crate::builtin::maps::map_and_mem(ctx, idx);
    let storage = map
        .as_any_mut()
        .downcast_mut::<LocalStorage>()
        .ok_or(HelperError::BadArg { arg: 1, reason: "not a local storage map" })?;
    Ok(match storage.remove(mem, a[1]) {
        Ok(()) => 0,
        Err(_) => ENOENT,
    })
}

/// `void *bpf_sk_storage_get(map, struct bpf_sock *sk, void *value, u64 flags)`.
fn sk_storage_get(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_get(ctx, a, MapType::SkStorage)
}
/// `long bpf_sk_storage_delete(map, struct bpf_sock *sk)`.
fn sk_storage_delete(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_delete(ctx, a, MapType::SkStorage)
}
/// `void *bpf_inode_storage_get(map, void *inode, void *value, u64 flags)`.
fn inode_storage_get(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_get(ctx, a, MapType::InodeStorage)
}
/// `int bpf_inode_storage_delete(map, void *inode)`.
fn inode_storage_delete(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_delete(ctx, a, MapType::InodeStorage)
}
/// `void *bpf_task_storage_get(map, struct task_struct *task, void *value, u64 flags)`.
fn task_storage_get(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_get(ctx, a, MapType::TaskStorage)
}
/// `long bpf_task_storage_delete(map, struct task_struct *task)`.
fn task_storage_delete(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_delete(ctx, a, MapType::TaskStorage)
}
/// `void *bpf_cgrp_storage_get(map, struct cgroup *cgroup, void *value, u64 flags)`.
fn cgrp_storage_get(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_get(ctx, a, MapType::CgrpStorage)
}
/// `long bpf_cgrp_storage_delete(map, struct cgroup *cgroup)`.
fn cgrp_storage_delete(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    storage_delete(ctx, a, MapType::CgrpStorage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MapSpec {
        let mut s = MapSpec::new("st", MapType::TaskStorage, 4, 8, 0);
        s.flags = BPF_F_NO_PREALLOC;
        s.btf_key_type_id = Some(1);
        s.btf_value_type_id = Some(2);
        s
    }

    #[test]
    fn creation_rules() {
        assert!(LocalStorage::new(&spec()).is_ok());
        let mut s = spec();
        s.flags = 0;
        assert!(matches!(LocalStorage::new(&s), Err(MapError::Invalid(_))));
        let mut s = spec();
        s.max_entries = 1;
        assert!(matches!(LocalStorage::new(&s), Err(MapError::Invalid(_))));
        let mut s = spec();
        s.btf_value_type_id = None;
        assert!(matches!(LocalStorage::new(&s), Err(MapError::Invalid(_))));
        let mut s = spec();
        s.flags |= BPF_F_CLONE;
        assert!(matches!(LocalStorage::new(&s), Err(MapError::Invalid(_))));
    }

    #[test]
    fn get_create_delete_and_user_side() {
        let mut mem = Memory::new();
        let mut m = LocalStorage::new(&spec()).unwrap();
        assert_eq!(m.get(&mut mem, 0x1000, None, None).unwrap(), None);
        let init = 7u64.to_le_bytes();
        let a = m.get(&mut mem, 0x1000, Some(42), Some(Some(&init))).unwrap().unwrap();
        // Same owner: same value, no re-initialisation.
        assert_eq!(m.get(&mut mem, 0x1000, Some(42), Some(None)).unwrap(), Some(a));
        let b = m.get(&mut mem, 0x2000, None, Some(None)).unwrap().unwrap();
        assert_ne!(a, b);
        assert_eq!(m.read(&mem, &42u32.to_le_bytes()).unwrap(), Some(init.to_vec()));
        assert_eq!(m.read(&mem, &1u32.to_le_bytes()).unwrap(), Some(vec![0; 8]));
        assert_eq!(
            m.next_key(&mem, None),
            Err(MapError::NotSupported { map_type: "task_storage" })
        );
        m.write(&mut mem, &42u32.to_le_bytes(), &9u64.to_le_bytes(), 0).unwrap();
        assert_eq!(mem.load(a, 8).unwrap(), 9);
        assert_eq!(m.write(&mut mem, &5u32.to_le_bytes(), &[0; 8], 0), Err(MapError::NotFound));
        m.remove(&mut mem, 0x1000).unwrap();
        assert_eq!(m.remove(&mut mem, 0x1000), Err(MapError::NotFound));
        assert!(mem.load(a, 8).is_err(), "the value's memory is gone");
    }
}
