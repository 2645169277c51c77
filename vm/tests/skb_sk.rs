//! `__sk_buff.sk` in skb test runs: the run's own socket (`bpf_prog_test_run_skb`'s dummy),
//! its `struct bpf_sock` fields, the socket helpers on it, and its storage, which does not
//! outlive the run.

use bpflab_vm::asm::assemble;
use bpflab_vm::engine::{EngineError, ProgType, RunInput};
use bpflab_vm::interp::Instance;
use bpflab_vm::memory::MemError;
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Interpreter, Program, VmErrorKind};

use ProgType::{CgroupSkb, LwtIn, LwtXmit, SchedAct, SchedCls, SkSkb, SocketFilter};

fn instance(t: ProgType, src: &str) -> Instance {
    let insns = assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let mut c = Collection::single(Program::raw("t", insns).with_type(t));
    let mut st = MapSpec::new("st", MapType::SkStorage, 4, 8, 0);
    st.flags = 1; // BPF_F_NO_PREALLOC
    st.btf_key_type_id = Some(1);
    st.btf_value_type_id = Some(2);
    c.maps.push(st);
    Interpreter::default().instantiate(&c).expect("instantiate")
}

/// IPv4 TCP 10.0.0.1:40000 -> 10.1.2.3:80 (54 bytes).
fn tcp4() -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    p.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 1, 2, 3]);
    p.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0]);
    p
}

/// IPv6 (no payload) 2001:db8::1 -> ::2 (54 bytes).
fn ip6() -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    p.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, 59, 64]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p
}

fn r0(t: ProgType, src: &str, pkt: &[u8]) -> u64 {
    instance(t, src).run(0, &RunInput::data(pkt.to_vec())).unwrap_or_else(|e| panic!("{e}")).r0
}

/// Loads `size` at `off` of `struct bpf_sock` through `skb->sk`.
fn sock_field(off: usize, size: &str) -> String {
    format!("r1 = *(u64 *)(r1 + 168)\nr0 = *({size} *)(r1 + {off})\nexit")
}

#[test]
fn every_skb_type_sees_the_run_socket_fields() {
    let v4 = tcp4();
    for t in [SocketFilter, SchedCls, SchedAct, CgroupSkb, LwtIn, LwtXmit] {
        let get = |off, size| r0(t, &sock_field(off, size), &v4);
        assert_eq!(get(0, "u32"), 0, "{t:?} bound_dev_if");
        assert_eq!(get(4, "u32"), 2, "{t:?} family AF_INET");
        assert_eq!(get(8, "u32"), 0, "{t:?} type: sock_init_data(NULL) sets none");
        assert_eq!(get(12, "u32"), 0, "{t:?} protocol");
        assert_eq!(get(16, "u32"), 0, "{t:?} mark");
        assert_eq!(get(20, "u32"), 0, "{t:?} priority");
        assert_eq!(get(24, "u32"), u64::from(u32::from_le_bytes([10, 0, 0, 1])), "{t:?} src");
        assert_eq!(get(52, "u32"), u64::from(u32::from_le_bytes([10, 1, 2, 3])), "{t:?} dst");
        assert_eq!(get(28, "u32"), 0, "{t:?} src_ip6 of an IPv4 socket");
        assert_eq!(get(44, "u32"), 0, "{t:?} src_port");
        assert_eq!(get(48, "u16"), 0, "{t:?} dst_port");
        assert_eq!(get(72, "u32"), 7, "{t:?} state TCP_CLOSE");
        assert_eq!(get(76, "u32"), 0xffff_ffff, "{t:?} rx_queue_mapping -1");
    }
    let v6 = ip6();
    let get = |off, size| r0(CgroupSkb, &sock_field(off, size), &v6);
    assert_eq!(get(4, "u32"), 10, "AF_INET6");
    assert_eq!(get(24, "u32"), 0, "no IPv4 source for an IPv6 socket");
    assert_eq!(get(28, "u32"), u64::from(u32::from_le_bytes([0x20, 0x01, 0x0d, 0xb8])));
    assert_eq!(get(40, "u32"), u64::from(u32::from_le_bytes([0, 0, 0, 1])));
    assert_eq!(get(68, "u32"), u64::from(u32::from_le_bytes([0, 0, 0, 2])));
    // An ARP frame: family 0, no addresses, still a socket.
    let mut arp = vec![0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x06];
    arp.extend_from_slice(&[0; 28]);
    assert_eq!(r0(SchedCls, &sock_field(4, "u32"), &arp), 0);
    assert_eq!(r0(SchedCls, &sock_field(72, "u32"), &arp), 7);
    // sk_skb without a socket of the world: the same kind of socket.
    assert_eq!(r0(SkSkb, &sock_field(72, "u32"), &v4), 7);
}

#[test]
fn the_socket_is_read_only() {
    let src = "r1 = *(u64 *)(r1 + 168)\nr2 = 5\n*(u32 *)(r1 + 16) = r2\nr0 = 0\nexit";
    let insns = assemble(src).unwrap();
    let mut inst = Interpreter::default()
        .instantiate(&Collection::single(Program::raw("t", insns).with_type(CgroupSkb)))
        .unwrap();
    match inst.run(0, &RunInput::data(tcp4())) {
        Err(EngineError::Fault(e)) => {
            assert!(matches!(e.kind(), VmErrorKind::Memory(MemError::ReadOnly { .. })), "{e}")
        }
        other => panic!("a store to the socket must fault: {other:?}"),
    }
}

#[test]
fn helpers_on_the_run_socket() {
    let p = tcp4();
    // bpf_sk_fullsock returns the pointer itself.
    let src = "r6 = *(u64 *)(r1 + 168)\nr1 = r6\ncall bpf_sk_fullsock\nr0 -= r6\nexit";
    assert_eq!(r0(CgroupSkb, src, &p), 0);
    // bpf_tcp_sock and bpf_get_listener_sock: NULL (protocol 0, state TCP_CLOSE).
    let src = "r1 = *(u64 *)(r1 + 168)\ncall bpf_tcp_sock\nexit";
    assert_eq!(r0(SchedCls, src, &p), 0);
    let src = "r1 = *(u64 *)(r1 + 168)\ncall bpf_get_listener_sock\nexit";
    assert_eq!(r0(CgroupSkb, src, &p), 0);
    // The cookie of the run's socket, and uid 0.
    assert_eq!(r0(SchedCls, "call bpf_get_socket_cookie\nexit", &p), 0x1000);
    assert_eq!(r0(CgroupSkb, "call bpf_get_socket_uid\nexit", &p), 0);
}

/// get(F_CREATE), ++, return the new value.
const COUNT: &str = "r2 = *(u64 *)(r1 + 168)\nr1 = map[idx:0] ll\nr3 = 0\nr4 = 1\n\
                     call bpf_sk_storage_get\nif r0 == 0 goto +4\nr1 = *(u64 *)(r0 + 0)\n\
                     r1 += 1\n*(u64 *)(r0 + 0) = r1\nr0 = r1\nexit";

#[test]
fn storage_lives_as_long_as_the_run_socket() {
    let mut inst = instance(CgroupSkb, COUNT);
    let input = RunInput::data(tcp4());
    // Each run has a fresh socket: its storage starts at 0, and none is left after the run.
    for run in 0..3 {
        assert_eq!(inst.run(0, &input).unwrap().r0, 1, "run {run}");
        assert_eq!(inst.world.lookup(0, &1u32.to_le_bytes()), Ok(None), "run {run}");
    }
    // The socket regions are reused, not piled up.
    let before = inst.world.mem.next_id();
    for _ in 0..5 {
        inst.run(0, &input).unwrap();
    }
    assert_eq!(inst.world.mem.next_id(), before, "no region is leaked per run");
}

#[test]
fn sk_skb_given_a_socket_sees_that_socket() {
    let src = "r0 = *(u64 *)(r1 + 168)\nexit";
    let mut inst = instance(SkSkb, src);
    let (client, _) = inst
        .world
        .tcp_connect("10.0.0.1:1000".parse().unwrap(), "10.0.0.2:80".parse().unwrap())
        .unwrap();
    let mut input = RunInput::data(b"hello".to_vec());
    input.sock = Some(client);
    assert_eq!(inst.run(0, &input).unwrap().r0, client.addr());
    // Its fields: a TCP socket, established; and its cookie is the socket's.
    let mut inst = instance(SkSkb, &sock_field(72, "u32"));
    let (client, _) = inst
        .world
        .tcp_connect("10.0.0.1:1000".parse().unwrap(), "10.0.0.2:80".parse().unwrap())
        .unwrap();
    input.sock = Some(client);
    assert_eq!(inst.run(0, &input).unwrap().r0, 1, "TCP_ESTABLISHED");
    let mut inst = instance(SkSkb, "call bpf_get_socket_cookie\nexit");
    let (client, _) = inst
        .world
        .tcp_connect("10.0.0.1:1000".parse().unwrap(), "10.0.0.2:80".parse().unwrap())
        .unwrap();
    input.sock = Some(client);
    let cookie = inst.world.socks.get(client).unwrap().cookie;
    assert_eq!(inst.run(0, &input).unwrap().r0, cookie);
    assert_ne!(cookie, 0x1000);
}

#[test]
fn alloc_adjacent_reuses_adjacent_free_handles_only() {
    use bpflab_vm::memory::{Memory, Perm, RegionKind};
    let mut mem = Memory::new();
    let r = |mem: &mut Memory| mem.map(RegionKind::Kernel, vec![0; 8], true).unwrap();
    let ids: Vec<_> = (0..5).map(|_| r(&mut mem)).collect();
    let pair = |n: u8| {
        vec![
            (RegionKind::Kernel, vec![n; 4], Perm::ReadOnly),
            (RegionKind::Kernel, vec![n + 1; 2], Perm::ReadOnly),
        ]
    };
    // 1 and 3 are free but not adjacent: the pair is appended.
    mem.free(ids[1]);
    mem.free(ids[3]);
    let first = mem.alloc_adjacent(pair(7)).unwrap();
    assert_eq!(first.index(), 5);
    assert_eq!(mem.bytes(first), [7; 4]);
    assert_eq!(mem.bytes(bpflab_vm::memory::RegionId::from_index(6)), [8; 2]);
    // Free 2 as well: 1..=3 hold an adjacent pair, the lowest is taken.
    mem.free(ids[2]);
    let first = mem.alloc_adjacent(pair(1)).unwrap();
    assert_eq!(first.index(), 1);
    assert_eq!(mem.bytes(ids[2]), [2; 2]);
    // 3 is still free for a plain alloc.
    assert_eq!(mem.alloc(RegionKind::Kernel, vec![9], Perm::ReadWrite).unwrap(), ids[3]);
    assert_eq!(mem.next_id().index(), 7);
}
