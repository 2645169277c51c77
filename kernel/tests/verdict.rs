//! The kernel verifier's verdicts (`bpflab_kernel::verdict`): an accepted program comes with
//! its statistics, a rejected one with its errno, its error line and the statistics of the
//! paths the verifier walked, and load flags reach the verifier. Each test prints one `SKIP:`
//! line when bpf(2) is unavailable.

use std::path::Path;

use bpflab_kernel::probe;
use bpflab_kernel::verdict::{KernelVerdict, VerdictOptions, kernel_verdict, prog_flags};
use bpflab_loader::LoadOptions;
use bpflab_vm::isa::{AluOp, Insn, MemSize, Operand, Reg, Width};
use bpflab_vm::{Collection, ProgType, Program};

/// True if the kernel can be used; otherwise prints the one `SKIP:` line.
fn kernel_available() -> bool {
    match probe() {
        Ok(()) => true,
        Err(e) => {
            println!("SKIP: bpf(2) unavailable: {e}");
            false
        }
    }
}

fn mov(dst: Reg, imm: i32) -> Insn {
    Insn::Alu { width: Width::W64, op: AluOp::Mov, dst, src: Operand::Imm(imm) }
}

fn socket_filter(insns: Vec<Insn>) -> Collection {
    Collection::single(Program::raw("verdict_test", insns).with_type(ProgType::SocketFilter))
}

fn verdict(c: &Collection, opts: &VerdictOptions) -> KernelVerdict {
    kernel_verdict(c, 0, opts).expect("the kernel decides")
}

#[test]
fn accepted_program_has_stats() {
    if !kernel_available() {
        return;
    }
    let v = verdict(&socket_filter(vec![mov(Reg::R0, 0), Insn::Exit]), &VerdictOptions::default());
    assert!(v.accepted, "{}", v.log);
    assert_eq!(v.errno, 0);
    assert_eq!(v.error_line, None);
    assert_eq!(v.processed_insns, Some(2), "{}", v.log);
    assert_eq!(v.total_states, Some(0));
    assert_eq!(v.peak_states, Some(0));
    assert_eq!(v.max_states_per_insn, Some(0));
    assert!(v.verification_usec.is_some(), "{}", v.log);
}

#[test]
fn rejected_program_has_its_error_line() {
    if !kernel_available() {
        return;
    }
    // r0 = 0; r2 = *(u32 *)(r0 + 0): a scalar dereferenced.
    let load = Insn::Load { size: MemSize::W, signed: false, dst: Reg::R2, src: Reg::R0, off: 0 };
    let v = verdict(
        &socket_filter(vec![mov(Reg::R0, 0), load, Insn::Exit]),
        &VerdictOptions::default(),
    );
    assert!(!v.accepted);
    assert_eq!(v.errno, libc::EACCES);
    assert_eq!(v.error_line.as_deref(), Some("R0 invalid mem access 'scalar'"), "{}", v.log);
    assert_eq!(v.processed_insns, Some(2), "{}", v.log);
    // An uninitialised register read: r0 never set.
    let v = verdict(&socket_filter(vec![Insn::Exit]), &VerdictOptions::default());
    assert!(!v.accepted);
    assert_eq!(v.error_line.as_deref(), Some("R0 !read_ok"), "{}", v.log);
}

#[test]
fn load_flags_reach_the_verifier() {
    if !kernel_available() {
        return;
    }
    let c = socket_filter(vec![mov(Reg::R0, 0), Insn::Exit]);
    // An unknown prog_flags bit is refused before verification: no log.
    let v = verdict(&c, &VerdictOptions { prog_flags: 1 << 30, ..VerdictOptions::default() });
    assert!(!v.accepted);
    assert_eq!(v.errno, libc::EINVAL);
    assert_eq!(v.error_line, None);
    // A real one is taken.
    let freq =
        VerdictOptions { prog_flags: prog_flags::TEST_STATE_FREQ, ..VerdictOptions::default() };
    assert!(verdict(&c, &freq).accepted);
}

#[test]
fn object_programs_load_with_their_maps_and_btf() {
    if !kernel_available() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/tests/calls.bpf.o");
    let bytes = std::fs::read(&path).expect("fixture");
    let obj = bpflab_loader::load(&bytes, &LoadOptions::for_path(&path)).expect("loads");
    assert!(!obj.collection.programs.is_empty());
    for i in 0..obj.collection.programs.len() {
        let v = kernel_verdict(&obj.collection, i, &VerdictOptions::default()).expect("decides");
        let name = &obj.collection.programs[i].name;
        assert!(v.accepted, "{name}: {}", v.log);
        assert!(v.processed_insns.is_some_and(|n| n > 0), "{name}: {}", v.log);
        // An accepted program's level-1 log is its statistics (the kernel drops the rest).
        assert!(v.log.starts_with("verification time "), "{name}: {}", v.log);
    }
    let past = kernel_verdict(&obj.collection, obj.collection.programs.len(), &Default::default());
    assert!(past.is_err());
}

#[test]
fn a_refused_btf_is_left_out_as_libbpf_does() {
    if !kernel_available() {
        return;
    }
    // A BTF header with a bad magic: the kernel refuses it, the program loads without it.
    let mut c = socket_filter(vec![mov(Reg::R0, 0), Insn::Exit]);
    let mut btf = vec![0u8; 24];
    btf[..2].copy_from_slice(&0x1234u16.to_le_bytes());
    c.btf = Some(btf);
    let v = verdict(&c, &VerdictOptions::default());
    assert!(v.accepted, "{}", v.log);
    assert!(v.btf_refused.is_some(), "{v:?}");
    // A collection with acceptable BTF (or none) keeps it.
    let plain = verdict(&socket_filter(vec![mov(Reg::R0, 0), Insn::Exit]), &Default::default());
    assert_eq!(plain.btf_refused, None);
}
