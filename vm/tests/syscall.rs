//! `SEC("syscall")` programs: the argument buffer is readable and writable context memory.

use bpflab_vm::asm::assemble;
use bpflab_vm::ctx::CtxError;
use bpflab_vm::engine::{EngineError, ProgType, RunInput};
use bpflab_vm::memory::{Access, MemError, RegionKind};
use bpflab_vm::{Collection, Interpreter, Program, VmErrorKind};

fn run(src: &str, ctx: Vec<u8>, data: Vec<u8>) -> Result<bpflab_vm::RunOutcome, EngineError> {
    let prog = Program::raw("s", assemble(src).expect("assemble")).with_type(ProgType::Syscall);
    let mut inst = Interpreter::default().instantiate(&Collection::single(prog)).expect("load");
    let mut input = RunInput::data(data);
    input.ctx = Some(ctx);
    inst.run(0, &input)
}

#[test]
fn arguments_are_read_and_written_back() {
    // return a + 2b; args->b = a
    let src = "r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\n*(u32 *)(r1 + 4) = r2\nr0 = r3\nr0 *= 2\nr0 += r2\nexit";
    let out = run(src, vec![6, 0, 0, 0, 7, 0, 0, 0], Vec::new()).unwrap();
    assert_eq!(out.r0, 20);
    assert_eq!(out.ctx, Some(vec![6, 0, 0, 0, 6, 0, 0, 0]));
}

#[test]
fn access_past_the_buffer_and_packet_data_are_refused() {
    let e = run("r0 = *(u32 *)(r1 + 8)\nexit", vec![0; 8], Vec::new()).unwrap_err();
    let EngineError::Fault(e) = e else { panic!("{e}") };
    assert_eq!(e.pc(), 0);
    assert_eq!(
        *e.kind(),
        VmErrorKind::Memory(MemError::OutOfBounds {
            access: Access::Read,
            kind: RegionKind::Context,
            off: 8,
            len: 4,
            size: 8
        })
    );
    let e = run("r0 = 0\nexit", vec![0; 8], vec![1]).unwrap_err();
    assert!(matches!(e, EngineError::Context(CtxError::BadCtx(_))), "{e}");
}
