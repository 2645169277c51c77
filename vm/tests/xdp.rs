//! XDP programs on a simulated frame: pointer fields, bounds, adjust helpers, output packet.

use bpflab_vm::asm::assemble;
use bpflab_vm::ctx::{CtxError, verdict_name};
use bpflab_vm::engine::{EngineError, ProgType, RunInput};
use bpflab_vm::memory::{Access, MemError};
use bpflab_vm::{Collection, Interpreter, Program, VmErrorKind};

fn run(src: &str, packet: &[u8]) -> Result<bpflab_vm::RunOutcome, EngineError> {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}"));
    let prog = Program::raw("x", insns).with_type(ProgType::Xdp);
    let mut inst = Interpreter::default().instantiate(&Collection::single(prog)).unwrap();
    inst.run(0, &RunInput::data(packet.to_vec()))
}

fn packet() -> Vec<u8> {
    (0u8..60).collect()
}

#[test]
fn data_and_data_end_are_packet_pointers() {
    // return data_end - data
    let out =
        run("r2 = *(u32 *)(r1 + 4)\nr3 = *(u32 *)(r1 + 0)\nr0 = r2\nr0 -= r3\nexit", &packet())
            .unwrap();
    assert_eq!(out.r0, 60);
    assert_eq!(out.data, packet());
    assert_eq!(verdict_name(ProgType::Xdp, 2), Some("XDP_PASS"));
}

#[test]
fn reading_past_data_end_faults_and_writes_land_in_the_output() {
    let src = "r2 = *(u32 *)(r1 + 0)\nr0 = *(u8 *)(r2 + 60)\nexit";
    let e = run(src, &packet()).unwrap_err();
    let EngineError::Fault(e) = e else { panic!("{e}") };
    assert_eq!(e.pc(), 1);
    assert!(matches!(e.kind(), VmErrorKind::Memory(MemError::OutOfBounds { off: 316, .. })), "{e}");
    let src = "r2 = *(u32 *)(r1 + 0)\n*(u8 *)(r2 + 0) = 0xff\nr0 = 2\nexit";
    let out = run(src, &packet()).unwrap();
    assert_eq!(out.r0, 2);
    assert_eq!(out.data[0], 0xff);
    assert_eq!(&out.data[1..], &packet()[1..]);
}

#[test]
fn context_rules() {
    let e = run("*(u32 *)(r1 + 12) = 1\nr0 = 2\nexit", &packet()).unwrap_err();
    let EngineError::Fault(e) = e else { panic!("{e}") };
    assert!(matches!(
        e.kind(),
        VmErrorKind::Memory(MemError::Context { access: Access::Write, off: 12, .. })
    ));
    let e = run("r0 = *(u64 *)(r1 + 0)\nexit", &packet()).unwrap_err();
    assert!(e.to_string().contains("xdp_md fields are read as u32"), "{e}");
    let e = run("r0 = *(u32 *)(r1 + 20)\nexit", &packet()).unwrap_err();
    assert!(e.to_string().contains("egress_ifindex needs a devmap program"), "{e}");
    assert!(matches!(
        run("r0 = 2\nexit", &[0; 10]),
        Err(EngineError::Context(CtxError::PacketTooShort { len: 10, min: 14 }))
    ));
}

#[test]
fn adjust_head_pops_and_pushes_bytes() {
    // Pop 14 bytes, then return the new first byte.
    let src = "r6 = r1\nr2 = 14\ncall bpf_xdp_adjust_head\nif r0 != 0 goto fail\nr2 = *(u32 *)(r6 + 0)\nr3 = *(u32 *)(r6 + 4)\nr4 = r2\nr4 += 1\nif r4 > r3 goto fail\nr0 = *(u8 *)(r2 + 0)\nexit\nfail:\nr0 = 99\nexit";
    let out = run(src, &packet()).unwrap();
    assert_eq!(out.r0, 14);
    assert_eq!(out.data, packet()[14..].to_vec());
    // Push 4 bytes in front: they read as zeros and the packet grows.
    let src = "r2 = -4\ncall bpf_xdp_adjust_head\nexit";
    let out = run(src, &packet()).unwrap();
    assert_eq!(out.r0, 0);
    assert_eq!(out.data.len(), 64);
    // Leaving less than an Ethernet header, or eating into the xdp_frame, is -EINVAL.
    assert_eq!(
        run("r2 = 47\ncall bpf_xdp_adjust_head\nexit", &packet()).unwrap().r0,
        -22i64 as u64
    );
    assert_eq!(
        run("r2 = -217\ncall bpf_xdp_adjust_head\nexit", &packet()).unwrap().r0,
        -22i64 as u64
    );
    assert_eq!(run("r2 = -216\ncall bpf_xdp_adjust_head\nexit", &packet()).unwrap().r0, 0);
}

#[test]
fn adjust_tail_and_meta() {
    let out = run("r2 = -10\ncall bpf_xdp_adjust_tail\nexit", &packet()).unwrap();
    assert_eq!((out.r0, out.data.len()), (0, 50));
    let out = run("r2 = 8\ncall bpf_xdp_adjust_tail\nexit", &packet()).unwrap();
    assert_eq!((out.r0, out.data.len()), (0, 68));
    assert_eq!(&out.data[60..], &[0; 8]);
    assert_eq!(
        run("r2 = 4000\ncall bpf_xdp_adjust_tail\nexit", &packet()).unwrap().r0,
        -22i64 as u64
    );
    // Metadata: 8 bytes in front of data, readable between data_meta and data.
    let src = "r6 = r1\nr2 = -8\ncall bpf_xdp_adjust_meta\nif r0 != 0 goto out\nr2 = *(u32 *)(r6 + 8)\nr3 = *(u32 *)(r6 + 0)\nr0 = r3\nr0 -= r2\n*(u64 *)(r2 + 0) = 7\nout:\nexit";
    let out = run(src, &packet()).unwrap();
    assert_eq!(out.r0, 8);
    assert_eq!(
        run("r2 = -6\ncall bpf_xdp_adjust_meta\nexit", &packet()).unwrap().r0,
        -13i64 as u64
    );
    assert_eq!(
        run("r2 = -36\ncall bpf_xdp_adjust_meta\nexit", &packet()).unwrap().r0,
        -13i64 as u64
    );
}

fn jumbo() -> Vec<u8> {
    (0..9000u32).map(|i| (i * 7 + (i >> 8)) as u8).collect()
}

#[test]
fn a_jumbo_frame_has_a_linear_part_and_fragments_the_program_cannot_point_into() {
    // data_end - data is the linear part; bpf_xdp_get_buff_len counts the fragments.
    let src = "r6 = r1\nr2 = *(u32 *)(r1 + 4)\nr3 = *(u32 *)(r1 + 0)\nr7 = r2\nr7 -= r3\n\
               r1 = r6\ncall bpf_xdp_get_buff_len\nr0 <<= 16\nr0 |= r7\nexit";
    let out = run(src, &jumbo()).unwrap();
    assert_eq!(out.r0, (9000 << 16) | 3520);
    assert_eq!(out.data, jumbo());
    // One byte past data_end is out of the frame's bounds: the fragments are other regions.
    let src = "r2 = *(u32 *)(r1 + 0)\nr0 = *(u8 *)(r2 + 3520)\nexit";
    let EngineError::Fault(e) = run(src, &jumbo()).unwrap_err() else { panic!("not a fault") };
    assert!(
        matches!(e.kind(), VmErrorKind::Memory(MemError::OutOfBounds { off: 3776, .. })),
        "{e}"
    );
}

#[test]
fn adjust_tail_with_fragments_resizes_the_last_ones() {
    // 3520 + 4096 + 1384: shrinking by 1400 releases the last fragment and takes 16 bytes
    // off the first; growing by 4096 - 4080 = 16 fills its page, one more byte does not fit.
    let src = "r6 = r1\nr2 = -1400\ncall bpf_xdp_adjust_tail\nif r0 != 0 goto out\n\
               r1 = r6\nr2 = 16\ncall bpf_xdp_adjust_tail\nif r0 != 0 goto out\n\
               r1 = r6\nr2 = 1\ncall bpf_xdp_adjust_tail\nout:\nexit";
    let out = run(src, &jumbo()).unwrap();
    assert_eq!(out.r0 as i64, -22);
    let mut want = jumbo()[..7600].to_vec();
    want.resize(7616, 0);
    assert_eq!(out.data, want);
    // Shrinking to less than an Ethernet header is refused.
    let out = run("r2 = -8990\ncall bpf_xdp_adjust_tail\nexit", &jumbo()).unwrap();
    assert_eq!(out.r0 as i64, -22);
    assert_eq!(out.data, jumbo());
}
