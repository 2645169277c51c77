//! What the kfunc tests share: kfunc BTF ids from this kernel's vmlinux, assembled programs
//! naming the kfuncs they call, bpflab's outcome as a comparable value, and the case type.

#![allow(dead_code)] // each test binary uses part of this module

use bpflab_verifier::{ErrorKind, Report, Verdict};
use bpflab_vm::asm::assemble;
use bpflab_vm::spec::KfuncRef;
use bpflab_vm::{Collection, ProgType, Program};

/// This kernel's BTF id of function `name`.
pub(crate) fn vmlinux_func(name: &str) -> Option<u32> {
    static BTF: std::sync::OnceLock<Option<bpflab_btf::Btf>> = std::sync::OnceLock::new();
    let btf = BTF.get_or_init(|| bpflab_btf::Btf::from_vmlinux().ok()).as_ref()?;
    btf.find_by_name(name, bpflab_btf::BtfKind::Func)
}

/// Assembles `asm`, where `{name}` stands for kfunc `name`'s BTF id, into a GPL program of
/// type `ty` whose collection names the kfuncs it calls; `None` without vmlinux BTF.
pub(crate) fn program(name: &str, ty: ProgType, asm: &str) -> Option<Collection> {
    let mut text = asm.to_string();
    let mut kfuncs = Vec::new();
    while let Some(start) = text.find('{') {
        let end = start + text[start..].find('}').expect("closing brace");
        let kname = text[start + 1..end].to_string();
        let id = vmlinux_func(&kname)?;
        text.replace_range(start..=end, &id.to_string());
        if !kfuncs.iter().any(|k: &KfuncRef| k.btf_id == id) {
            kfuncs.push(KfuncRef { btf_id: id, name: kname });
        }
    }
    let insns = assemble(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut p = Program::raw(name, insns);
    p.prog_type = ty;
    p.license = "GPL".into();
    let mut c = Collection::single(p);
    c.kfuncs = kfuncs;
    Some(c)
}

/// bpflab's outcome: `Ok(None)` accepted, `Ok(Some((class, message)))` rejected, `Err`
/// unsupported.
pub(crate) fn outcome(r: &Report) -> Result<Option<(ErrorKind, String)>, String> {
    match &r.verdict {
        Verdict::Accepted => Ok(None),
        Verdict::Rejected(e) => Ok(Some((e.kind, e.message.clone()))),
        Verdict::Unsupported(u) => Err(u.feature.clone()),
    }
}

/// One assembled case and bpflab's expected message (`None`: accepted).
pub(crate) struct Case {
    /// The case's name.
    pub name: &'static str,
    /// The program type.
    pub ty: ProgType,
    /// The assembly (`{kfunc}` placeholders allowed).
    pub asm: &'static str,
    /// bpflab's expected message (`None`: accepted).
    pub expect: Option<&'static str>,
}
