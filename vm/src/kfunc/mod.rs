//! Kernel functions (kfuncs): programs call them by BTF id (`call` with the kfunc source,
//! `BPF_PSEUDO_KFUNC_CALL`), which depends on the kernel the object was loaded for, so bpflab
//! keys its implementations by NAME. The loader records each call's name and BTF id in
//! [`Collection::kfuncs`](crate::spec::Collection::kfuncs); [`KfuncTable::resolve`] turns
//! that into a table by BTF id that both engines dispatch through ([`KfuncTable::call`]).
//!
//! Each kfunc also carries the program types that may call it: the kfunc id sets the kernel
//! registers per program type with `register_btf_kfunc_id_set` (the common set for every
//! type, the generic set for tracing/tc/XDP/struct_ops/syscall/cgroup_skb, the skb set, the
//! XDP set, ...).

mod cpumask;
pub mod dynptr;
mod iter;
mod task;

use std::collections::HashMap;

use crate::engine::ProgType;
use crate::helpers::{Allowed, HelperCtx, HelperError, HelperFn};
use crate::interp::VmErrorKind;
use crate::spec::KfuncRef;

/// A kfunc implementation: takes r1..r5, returns r0 (the same shape as a helper).
pub type KfuncFn = HelperFn;

/// A kfunc bpflab implements: its name, implementation and the program types that may call it.
#[derive(Clone, Copy)]
pub struct Kfunc {
    /// The kernel function's name.
    pub name: &'static str,
    /// The implementation.
    pub func: KfuncFn,
    /// The program types whose kfunc id sets hold it (raw mode may call every kfunc).
    pub prog_types: Allowed,
}

impl Kfunc {
    /// Whether a program of `prog_type` may call this kfunc (the verifier's refusal otherwise).
    pub fn allowed(&self, prog_type: ProgType) -> bool {
        prog_type == ProgType::Unspec || self.prog_types.contains(prog_type)
    }
}

impl std::fmt::Debug for Kfunc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kfunc")
            .field("name", &self.name)
            .field("prog_types", &self.prog_types)
            .finish_non_exhaustive()
    }
}

/// The common kfunc set (`common_kfunc_set`, registered for `BPF_PROG_TYPE_UNSPEC`): every
/// program type.
pub(crate) const COMMON: Allowed = Allowed::All;

/// The generic kfunc set (`generic_kfunc_set` in kernel/bpf/helpers.c).
pub(crate) const GENERIC: Allowed = Allowed::Only(&[
    ProgType::Tracing,
    ProgType::SchedCls,
    ProgType::Xdp,
    ProgType::StructOps,
    ProgType::Syscall,
    ProgType::CgroupSkb,
]);

/// Every kfunc bpflab implements, by name.
pub fn registry() -> &'static [Kfunc] {
    KFUNCS
}

const KFUNCS: &[Kfunc] = &[
    // kernel/bpf/helpers.c, common set.
    Kfunc { name: "bpf_rcu_read_lock", func: task::nothing, prog_types: COMMON },
    Kfunc { name: "bpf_rcu_read_unlock", func: task::nothing, prog_types: COMMON },
    Kfunc { name: "bpf_preempt_disable", func: task::nothing, prog_types: COMMON },
    Kfunc { name: "bpf_preempt_enable", func: task::nothing, prog_types: COMMON },
    Kfunc { name: "bpf_iter_num_new", func: iter::num_new, prog_types: COMMON },
    Kfunc { name: "bpf_iter_num_next", func: iter::num_next, prog_types: COMMON },
    Kfunc { name: "bpf_iter_num_destroy", func: iter::num_destroy, prog_types: COMMON },
    Kfunc { name: "bpf_dynptr_slice", func: dynptr::slice, prog_types: COMMON },
    Kfunc { name: "bpf_dynptr_slice_rdwr", func: dynptr::slice_rdwr, prog_types: COMMON },
    Kfunc { name: "bpf_dynptr_adjust", func: dynptr::adjust, prog_types: COMMON },
    Kfunc { name: "bpf_dynptr_is_null", func: dynptr::is_null, prog_types: COMMON },
    Kfunc { name: "bpf_dynptr_is_rdonly", func: dynptr::is_rdonly, prog_types: COMMON },
    Kfunc { name: "bpf_dynptr_size", func: dynptr::size, prog_types: COMMON },
    Kfunc { name: "bpf_dynptr_clone", func: dynptr::clone, prog_types: COMMON },
    // kernel/bpf/arena.c (common set): arena pages are not simulated.
    Kfunc { name: "bpf_arena_alloc_pages", func: task::arena_unsupported, prog_types: COMMON },
    Kfunc { name: "bpf_arena_free_pages", func: task::arena_unsupported, prog_types: COMMON },
    // kernel/bpf/helpers.c, generic set.
    Kfunc { name: "bpf_task_from_pid", func: task::from_pid, prog_types: GENERIC },
    Kfunc { name: "bpf_task_acquire", func: task::acquire, prog_types: GENERIC },
    Kfunc { name: "bpf_task_release", func: task::nothing, prog_types: GENERIC },
    // kernel/bpf/cpumask.c.
    Kfunc { name: "bpf_cpumask_create", func: cpumask::create, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_acquire", func: cpumask::acquire, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_release", func: cpumask::release, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_first", func: cpumask::first, prog_types: cpumask::CPUMASK_SET },
    Kfunc {
        name: "bpf_cpumask_first_zero",
        func: cpumask::first_zero,
        prog_types: cpumask::CPUMASK_SET,
    },
    Kfunc { name: "bpf_cpumask_set_cpu", func: cpumask::set_cpu, prog_types: cpumask::CPUMASK_SET },
    Kfunc {
        name: "bpf_cpumask_clear_cpu",
        func: cpumask::clear_cpu,
        prog_types: cpumask::CPUMASK_SET,
    },
    Kfunc {
        name: "bpf_cpumask_test_cpu",
        func: cpumask::test_cpu,
        prog_types: cpumask::CPUMASK_SET,
    },
    Kfunc {
        name: "bpf_cpumask_test_and_set_cpu",
        func: cpumask::test_and_set_cpu,
        prog_types: cpumask::CPUMASK_SET,
    },
    Kfunc {
        name: "bpf_cpumask_test_and_clear_cpu",
        func: cpumask::test_and_clear_cpu,
        prog_types: cpumask::CPUMASK_SET,
    },
    Kfunc { name: "bpf_cpumask_setall", func: cpumask::setall, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_clear", func: cpumask::clear, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_and", func: cpumask::and, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_or", func: cpumask::or, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_xor", func: cpumask::xor, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_equal", func: cpumask::equal, prog_types: cpumask::CPUMASK_SET },
    Kfunc {
        name: "bpf_cpumask_intersects",
        func: cpumask::intersects,
        prog_types: cpumask::CPUMASK_SET,
    },
    Kfunc { name: "bpf_cpumask_subset", func: cpumask::subset, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_empty", func: cpumask::empty, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_full", func: cpumask::full, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_copy", func: cpumask::copy, prog_types: cpumask::CPUMASK_SET },
    Kfunc { name: "bpf_cpumask_weight", func: cpumask::weight, prog_types: cpumask::CPUMASK_SET },
    // net/core/filter.c, the skb and XDP sets.
    Kfunc { name: "bpf_dynptr_from_skb", func: dynptr::from_skb, prog_types: dynptr::SKB_SET },
    Kfunc { name: "bpf_dynptr_from_xdp", func: dynptr::from_xdp, prog_types: dynptr::XDP_SET },
];

/// The kfunc of this name, if bpflab implements it.
pub fn find(name: &str) -> Option<&'static Kfunc> {
    KFUNCS.iter().find(|k| k.name == name)
}

/// The kfuncs of a collection, by the BTF id their calls carry.
#[derive(Clone, Debug, Default)]
pub struct KfuncTable {
    by_id: HashMap<u32, Entry>,
}

#[derive(Clone, Debug)]
enum Entry {
    Known(&'static Kfunc),
    Unknown(String),
}

impl KfuncTable {
    /// Resolves the collection's kfunc references against the kfuncs bpflab implements.
    pub fn resolve(refs: &[KfuncRef]) -> KfuncTable {
        let by_id = refs
            .iter()
            .map(|r| {
                let e = find(&r.name).map_or_else(|| Entry::Unknown(r.name.clone()), Entry::Known);
                (r.btf_id, e)
            })
            .collect();
        KfuncTable { by_id }
    }

    /// The name of the kfunc with this BTF id, if the collection named it.
    pub fn name(&self, btf_id: i64) -> Option<&str> {
        match self.by_id.get(&u32::try_from(btf_id).ok()?)? {
            Entry::Known(k) => Some(k.name),
            Entry::Unknown(n) => Some(n),
        }
    }

    /// Calls the kfunc with BTF id `btf_id` (the call's immediate) with r1..r5 = `args`, for
    /// a program whose license is `gpl_compatible` or not. Faults name the kfunc: unknown to
    /// the collection (raw programs), not implemented, not allowed in the program's type,
    /// called from a non-GPL program (the verifier allows kfuncs to GPL programs only), or
    /// refused arguments.
    pub fn call(
        &self,
        btf_id: i64,
        ctx: &mut HelperCtx<'_>,
        args: [u64; 5],
        gpl_compatible: bool,
    ) -> Result<u64, VmErrorKind> {
        let entry = u32::try_from(btf_id).ok().and_then(|id| self.by_id.get(&id));
        let k = match entry {
            None => return Err(VmErrorKind::Kfunc { btf_id }),
            Some(Entry::Unknown(name)) => {
                return Err(VmErrorKind::UnknownKfunc { name: name.clone(), btf_id });
            }
            Some(Entry::Known(k)) => k,
        };
        if !k.allowed(ctx.prog_type) {
            let error = HelperError::NotAllowed { prog_type: ctx.prog_type };
            return Err(VmErrorKind::KfuncFailed { name: k.name, error });
        }
        if !gpl_compatible {
            return Err(VmErrorKind::KfuncFailed { name: k.name, error: HelperError::GplOnly });
        }
        (k.func)(ctx, args).map_err(|error| VmErrorKind::KfuncFailed { name: k.name, error })
    }
}

/// `-EINVAL`.
pub(crate) const EINVAL: u64 = -22i64 as u64;
/// `-E2BIG`.
pub(crate) const E2BIG: u64 = -7i64 as u64;
/// `-ERANGE`.
pub(crate) const ERANGE: u64 = -34i64 as u64;
/// `-EFAULT`.
pub(crate) const EFAULT: u64 = -14i64 as u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, k) in KFUNCS.iter().enumerate() {
            assert!(KFUNCS[..i].iter().all(|o| o.name != k.name), "{} twice", k.name);
            assert_eq!(find(k.name).map(|f| f.name), Some(k.name));
        }
        assert!(find("bpf_no_such_kfunc").is_none());
    }

    #[test]
    fn table_resolves_by_btf_id() {
        let refs = [
            KfuncRef { btf_id: 7, name: "bpf_iter_num_new".into() },
            KfuncRef { btf_id: 9, name: "bpf_foo".into() },
        ];
        let t = KfuncTable::resolve(&refs);
        assert_eq!(t.name(7), Some("bpf_iter_num_new"));
        assert_eq!(t.name(9), Some("bpf_foo"));
        assert_eq!(t.name(8), None);
        assert_eq!(t.name(-1), None);
    }
}
