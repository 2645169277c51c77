//! `bpflab helpers`: which kernel helpers bpflab implements and which program types may call
//! each, as Markdown (the text of docs/HELPERS.md) or JSON.

use bpflab_vm::helper_names::KERNEL_HELPER_NAMES;
use bpflab_vm::helpers::{Allowed, MatrixRow, Support, support_matrix, support_matrix_markdown};
use serde_json::{Value, json};

use super::{CmdResult, emit};

/// One helper as JSON: the prototype fields are null for helpers bpflab does not implement,
/// whose `reason` says why where known (null otherwise);
/// `prog_types` lists every type when `all_prog_types` (raw-mode `Unspec` programs, which have
/// no kernel counterpart, may call every implemented helper and are never listed).
fn row_json(r: &MatrixRow) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "implemented": r.status == Support::Implemented,
        "all_prog_types": r.prog_types.map(|p| p == Allowed::All),
        "prog_types": r.prog_types.map(|p| p.types().map(|t| format!("{t:?}")).collect::<Vec<_>>()),
        "gpl_only": r.gpl_only,
        "args": r.args.map(|a| a.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>()),
        "ret": r.ret.map(|t| format!("{t:?}")),
        "reason": r.reason,
    })
}

/// Prints the support matrix of the interpreter's helpers.
pub(crate) fn helpers(json: bool) -> CmdResult {
    let rows = support_matrix(&bpflab_vm::standard_helpers());
    if json {
        let implemented = rows.iter().filter(|r| r.status == Support::Implemented).count();
        let doc = json!({
            "kernel_helpers": KERNEL_HELPER_NAMES.len() - 1,
            "implemented": implemented,
            "helpers": rows.iter().map(row_json).collect::<Vec<_>>(),
        });
        return Ok(emit(&(serde_json::to_string_pretty(&doc)? + "\n"))?);
    }
    Ok(emit(&support_matrix_markdown(&rows))?)
}
