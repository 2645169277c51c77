//! Calls: helpers (against their prototypes), kfuncs, bpf-to-bpf calls and callbacks, and
//! program exit (return value, references, locks).

use crate::check::Verifier;
use crate::error::Stop;
use crate::state::State;

/// Checks a helper call and applies its effect (r0, clobbered r1-r5, references).
pub(crate) fn check_helper_call(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    id: i32,
) -> Result<(), Stop> {
    let _ = (v, st);
    Err(Stop::unsupported(insn, format!("helper calls (being built): helper #{id}")))
}

/// Checks a kfunc call.
pub(crate) fn check_kfunc_call(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    btf_id: i32,
) -> Result<(), Stop> {
    let _ = (st, btf_id);
    let name = v
        .coll
        .kfuncs
        .iter()
        .find(|k| i64::from(k.btf_id) == i64::from(btf_id))
        .map(|k| k.name.clone())
        .unwrap_or_else(|| format!("#{btf_id}"));
    Err(Stop::unsupported(insn, format!("kfunc {name}")))
}

/// Checks a bpf-to-bpf call to the subprogram at slot `target` and pushes its frame; returns
/// the slot where verification continues.
pub(crate) fn check_func_call(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
    target: usize,
) -> Result<usize, Stop> {
    let _ = (v, st, target);
    Err(Stop::unsupported(insn, "bpf-to-bpf calls (being built)"))
}

/// Returns from a subprogram or callback frame; gives the slot where the caller continues.
pub(crate) fn return_from_func(
    v: &mut Verifier<'_>,
    st: &mut State,
    insn: usize,
) -> Result<usize, Stop> {
    let _ = (v, st);
    Err(Stop::unsupported(insn, "returns from subprograms (being built)"))
}

/// Checks the main program's exit: r0 initialised and in the program type's range, no
/// reference or lock held.
pub(crate) fn check_exit(v: &mut Verifier<'_>, st: &mut State, insn: usize) -> Result<(), Stop> {
    let _ = v;
    if !st.reg(0).is_init() {
        return Err(Stop::reject(crate::error::ErrorKind::UninitRegister, insn, "R0 !read_ok"));
    }
    Ok(())
}
