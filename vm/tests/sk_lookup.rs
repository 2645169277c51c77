//! `sk_lookup` programs: the lookup's fields, `bpf_sk_assign` with the kernel's rules, and the
//! selected socket's cookie in `ctx_out`.

use std::net::SocketAddr;

use bpflab_vm::asm::assemble;
use bpflab_vm::ctx::CtxError;
use bpflab_vm::engine::{EngineError, RunInput};
use bpflab_vm::interp::Instance;
use bpflab_vm::maps::BPF_ANY;
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Interpreter, ProgType, Program};

/// A `struct bpf_sk_lookup` for `proto` from 10.0.0.1:40000 to 10.1.2.3:`port`.
fn lookup(proto: u32, port: u32) -> Vec<u8> {
    let mut c = vec![0u8; 72];
    c[8..12].copy_from_slice(&2u32.to_le_bytes());
    c[12..16].copy_from_slice(&proto.to_le_bytes());
    c[16..20].copy_from_slice(&[10, 0, 0, 1]);
    c[36..38].copy_from_slice(&40000u16.to_be_bytes());
    c[40..44].copy_from_slice(&[10, 1, 2, 3]);
    c[60..64].copy_from_slice(&port.to_le_bytes());
    c
}

fn input(ctx: Vec<u8>) -> RunInput {
    let mut i = RunInput::default();
    i.ctx = Some(ctx);
    i
}

/// sockmap slot 0 holds socket `sock` (if any); the program assigns it with `flags`, twice
/// when `twice`, and returns the last result.
fn setup(src: &str) -> Instance {
    let prog = Program::raw("l", assemble(src).expect("assemble")).with_type(ProgType::SkLookup);
    let maps = vec![MapSpec::new("socks", MapType::Sockmap, 4, 8, 2)];
    Interpreter::default()
        .instantiate(&Collection { maps, programs: vec![prog], ..Collection::default() })
        .expect("load")
}

const ASSIGN: &str = "
    r6 = r1
    *(u32 *)(r10 - 4) = 0
    r1 = map[idx:0] ll
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem
    if r0 == 0 goto none
    r7 = r0
    r1 = r6
    r2 = r7
    r3 = FLAGS
    call bpf_sk_assign
    r8 = r0
    r1 = r7
    call bpf_sk_release
    r0 = r8
    exit
none:
    r0 = 99
    exit";

#[test]
fn fields_read_as_the_kernel_presents_them() {
    // family | protocol << 8 ... packed: return remote_port (as loaded, 4 bytes) + local_port.
    let src = "r2 = *(u32 *)(r1 + 36)\nr3 = *(u32 *)(r1 + 60)\nr0 = r2\nr0 <<= 16\nr0 |= r3\nr4 = *(u8 *)(r1 + 16)\nr4 <<= 32\nr0 |= r4\nexit";
    let mut inst = setup(src);
    let out = inst.run(0, &input(lookup(6, 80))).unwrap();
    assert_eq!(out.r0, (10 << 32) | (u64::from(40000u16.to_be()) << 16) | 80);
    // Read-only, and a bad width is refused.
    let mut inst = setup("*(u32 *)(r1 + 8) = 1\nr0 = 1\nexit");
    assert!(inst.run(0, &input(lookup(6, 80))).unwrap_err().to_string().contains("read-only"));
    let mut inst = setup("r0 = *(u32 *)(r1 + 0)\nexit");
    assert!(
        inst.run(0, &input(lookup(6, 80)))
            .unwrap_err()
            .to_string()
            .contains("not a readable bpf_sk_lookup field")
    );
}

#[test]
fn ctx_in_is_checked_like_the_kernel() {
    let mut inst = setup("r0 = 1\nexit");
    let mut bad = lookup(6, 80);
    bad[0] = 1;
    assert!(matches!(inst.run(0, &input(bad)), Err(EngineError::Context(CtxError::BadCtx(_)))));
    let mut bad = lookup(6, 80);
    bad[64] = 1;
    assert!(matches!(inst.run(0, &input(bad)), Err(EngineError::Context(CtxError::BadCtx(_)))));
    assert!(matches!(
        inst.run(0, &input(lookup(6, 70000))),
        Err(EngineError::Context(CtxError::BadCtx(_)))
    ));
    let mut bad = lookup(6, 80);
    bad[8] = 1;
    assert!(matches!(inst.run(0, &input(bad)), Err(EngineError::Context(CtxError::BadCtx(_)))));
}

#[test]
fn assign_selects_a_listener_and_reports_its_cookie() {
    let mut inst = setup(&ASSIGN.replace("FLAGS", "0"));
    // Empty slot: no socket to assign.
    assert_eq!(inst.run(0, &input(lookup(6, 80))).unwrap().r0, 99);
    let listener = inst.world.tcp_listen("10.1.2.3:8080".parse::<SocketAddr>().unwrap()).unwrap();
    inst.world
        .update(0, &0u32.to_le_bytes(), &u64::from(listener.fd()).to_le_bytes(), BPF_ANY)
        .unwrap();
    let out = inst.run(0, &input(lookup(6, 80))).unwrap();
    assert_eq!(out.r0, 0);
    let cookie = inst.world.socks.get(listener).unwrap().cookie;
    assert_eq!(&out.ctx.unwrap()[..8], &cookie.to_le_bytes());
    // A UDP lookup cannot take a TCP socket: -EPROTOTYPE.
    assert_eq!(inst.run(0, &input(lookup(17, 53))).unwrap().r0, -91i64 as u64);
    // Unknown flags: -EINVAL.
    let mut inst2 = setup(&ASSIGN.replace("FLAGS", "4"));
    let l2 = inst2.world.tcp_listen("10.1.2.3:8080".parse::<SocketAddr>().unwrap()).unwrap();
    inst2.world.update(0, &0u32.to_le_bytes(), &u64::from(l2.fd()).to_le_bytes(), BPF_ANY).unwrap();
    assert_eq!(inst2.run(0, &input(lookup(6, 80))).unwrap().r0, -22i64 as u64);
}

#[test]
fn a_second_assign_needs_replace() {
    let twice = |flags: &str| {
        let src = ASSIGN.replace(
            "    r8 = r0\n",
            &format!(
                "    r1 = r6\n    r2 = r7\n    r3 = {flags}\n    call bpf_sk_assign\n    r8 = r0\n"
            ),
        );
        let mut inst = setup(&src.replace("FLAGS", "0"));
        let l = inst.world.tcp_listen("10.1.2.3:8080".parse::<SocketAddr>().unwrap()).unwrap();
        inst.world
            .update(0, &0u32.to_le_bytes(), &u64::from(l.fd()).to_le_bytes(), BPF_ANY)
            .unwrap();
        inst.run(0, &input(lookup(6, 80))).unwrap().r0
    };
    assert_eq!(twice("0"), -17i64 as u64);
    assert_eq!(twice("1"), 0);
}
