//! Sockets, sockmaps and the socket program types: sockops programs filling a sockhash,
//! sk_msg programs redirecting by the peer's 4-tuple (the sockmap proxy pattern), the message
//! helpers' effect on the scatterlist, socket lookups and references, cookies and options.

use std::net::SocketAddr;

use bpflab_vm::asm::assemble;
use bpflab_vm::ctx::sk_msg::MAX_MSG_FRAGS;
use bpflab_vm::ctx::sock_ops::{
    BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, BPF_SOCK_OPS_STATE_CB,
    BPF_SOCK_OPS_TCP_CONNECT_CB, BPF_SOCK_OPS_TIMEOUT_INIT, BPF_SOCK_OPS_TSTAMP_SCHED_CB,
};
use bpflab_vm::engine::{EngineError, RunInput};
use bpflab_vm::env::{MsgBytes, Redirect, RedirectTarget};
use bpflab_vm::helpers::HelperError;
use bpflab_vm::interp::Instance;
use bpflab_vm::maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST, MapError, SockMap};
use bpflab_vm::memory::{Access, MemError};
use bpflab_vm::sock::{
    BPF_F_INGRESS, INIT_NET_COOKIE, MsgVerdict, SK_DROP, SK_PASS, SockId, SockView, TcpState,
};
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::{Collection, Interpreter, ProgType, Program, VmErrorKind};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn instance(maps: Vec<MapSpec>, progs: &[(ProgType, &str)]) -> Instance {
    let programs = progs
        .iter()
        .enumerate()
        .map(|(i, (t, src))| {
            let insns = assemble(src).unwrap_or_else(|e| panic!("program {i}: {e}"));
            Program::raw(format!("p{i}"), insns).with_type(*t)
        })
        .collect();
    Interpreter::default()
        .instantiate(&Collection { maps, programs, ..Collection::default() })
        .expect("instantiate")
}

fn fd(id: SockId) -> Vec<u8> {
    u64::from(id.fd()).to_le_bytes().to_vec()
}

fn k(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

const EINVAL: u64 = -22i64 as u64;
const EOPNOTSUPP: u64 = -95i64 as u64;

/// The error a run stopped with inside a helper.
fn helper_error(e: EngineError) -> HelperError {
    let EngineError::Fault(f) = e else { panic!("not a fault: {e}") };
    match f.kind() {
        VmErrorKind::Helper { error, .. } => error.clone(),
        other => panic!("not a helper error: {other}"),
    }
}

#[test]
fn sockets_have_a_bpf_sock_and_a_cookie() {
    let mut inst = instance(vec![], &[]);
    let w = &mut inst.world;
    let (c, s) = w.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    let l = w.tcp_listen(sa("[::]:443")).unwrap();
    assert_ne!(c, s);
    let (cs, ss) = (w.socks.get(c).unwrap(), w.socks.get(s).unwrap());
    assert_eq!((cs.cookie, ss.cookie, w.socks.get(l).unwrap().cookie), (1, 2, 3));
    assert_eq!(
        (cs.local, cs.remote, cs.state),
        (sa("10.0.0.1:40000"), sa("10.0.0.2:80"), TcpState::Established)
    );
    assert_eq!((ss.local, ss.remote), (sa("10.0.0.2:80"), sa("10.0.0.1:40000")));
    // struct bpf_sock of the client, as programs read it.
    let b = cs.bpf_sock();
    let u = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!((u(4), u(8), u(12)), (2, 1, 6)); // AF_INET, SOCK_STREAM, IPPROTO_TCP
    assert_eq!(&b[24..28], &[10, 0, 0, 1]); // src_ip4
    assert_eq!(u(44), 40000); // src_port, host order
    assert_eq!(&b[48..52], &[0, 80, 0, 0]); // dst_port, network order, zero padding
    assert_eq!(&b[52..56], &[10, 0, 0, 2]); // dst_ip4
    assert_eq!((u(72), u(76)), (1, u32::MAX)); // TCP_ESTABLISHED, rx_queue_mapping -1
    let lb = w.socks.get(l).unwrap().bpf_sock();
    assert_eq!((lb[4], lb[72]), (10, 10)); // AF_INET6, TCP_LISTEN
    let view = SockView::read(&w.mem, c).unwrap();
    assert_eq!((view.cookie, view.netns_cookie, view.bpf_sock), (1, INIT_NET_COOKIE, b));
    assert_eq!(w.sock_at(c.addr()), Some(c));
    assert_eq!(w.sock_at(c.addr() + 4), None);
    // The same 4-tuple cannot be used twice; the same listening port neither.
    assert!(w.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).is_err());
    assert!(w.tcp_listen(sa("[::1]:443")).is_err());
    assert!(w.tcp_connect(sa("10.0.0.1:1"), sa("[::1]:80")).is_err());
}

#[test]
fn sockmap_user_side_takes_fds_and_returns_cookies() {
    let maps = vec![
        MapSpec::new("map", MapType::Sockmap, 4, 8, 4),
        MapSpec::new("hash", MapType::Sockhash, 6, 4, 2),
    ];
    let mut inst = instance(maps, &[]);
    let w = &mut inst.world;
    let (c, s) = w.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    let l = w.tcp_listen(sa("0.0.0.0:8080")).unwrap();
    w.update(0, &k(1), &fd(c), BPF_ANY).unwrap();
    w.update(0, &k(3), &fd(l), BPF_NOEXIST).unwrap();
    assert_eq!(w.lookup(0, &k(1)).unwrap(), Some(1u64.to_le_bytes().to_vec()));
    assert_eq!(w.lookup(0, &k(3)).unwrap(), Some(3u64.to_le_bytes().to_vec()));
    assert_eq!(w.lookup(0, &k(0)).unwrap(), None);
    assert_eq!(w.update(0, &k(1), &fd(s), BPF_NOEXIST), Err(MapError::Exists));
    assert_eq!(w.update(0, &k(2), &fd(s), BPF_EXIST), Err(MapError::NotFound));
    assert_eq!(w.update(0, &k(4), &fd(s), BPF_ANY), Err(MapError::Full)); // E2BIG
    assert_eq!(w.update(0, &k(2), &fd(s), 4), Err(MapError::Invalid("unknown flags")));
    assert_eq!(w.update(0, &k(2), &7u64.to_le_bytes(), BPF_ANY), Err(MapError::BadFd));
    assert_eq!(MapError::BadFd.errno(), -9);
    assert!(matches!(
        w.update(0, &k(2), &(1u64 << 31).to_le_bytes(), BPF_ANY),
        Err(MapError::Invalid(_))
    ));
    // Every index is a key of a sockmap, empty or not.
    assert_eq!(w.keys(0).unwrap(), vec![k(0), k(1), k(2), k(3)]);
    assert_eq!(w.delete(0, &k(2)).map_err(|e| e.errno()), Err(-22));
    assert_eq!(w.delete(0, &k(9)).map_err(|e| e.errno()), Err(-22));
    w.delete(0, &k(3)).unwrap();
    // A 4-byte-value sockhash: u32 fds in, no lookups out (-ENOSPC).
    let key = [1, 2, 3, 4, 5, 6];
    w.update(1, &key, &s.fd().to_le_bytes(), BPF_ANY).unwrap();
    assert_eq!(w.lookup(1, &key).map_err(|e| e.errno()), Err(-28));
    assert_eq!(w.delete(1, &[0; 6]), Err(MapError::NotFound));
    assert_eq!(w.sock_links(s), vec![(1, key.to_vec())]);
    // Only established or listening TCP sockets go in; closing one takes it out of every map.
    w.update(1, &[9; 6], &c.fd().to_le_bytes(), BPF_ANY).unwrap();
    assert_eq!(w.update(1, &[8; 6], &l.fd().to_le_bytes(), BPF_ANY), Err(MapError::Full));
    w.sock_set_state(s, TcpState::FinWait1).unwrap();
    assert_eq!(w.update(0, &k(2), &fd(s), BPF_ANY).map_err(|e| e.errno()), Err(-95));
    w.sock_close(c).unwrap();
    assert_eq!(w.lookup(0, &k(1)).unwrap(), None);
    assert_eq!(w.sock_links(c), vec![]);
    let sm = w.map(1).unwrap().as_any().downcast_ref::<SockMap>().unwrap();
    assert_eq!(sm.entries().collect::<Vec<_>>(), vec![(&key[..], s)]);
    // Bad specs, as sock_map_alloc and sock_hash_alloc refuse them.
    for spec in [
        MapSpec::new("m", MapType::Sockmap, 8, 8, 1),
        MapSpec::new("m", MapType::Sockmap, 4, 2, 1),
        MapSpec::new("m", MapType::Sockhash, 0, 8, 1),
        MapSpec::new("m", MapType::Sockhash, 4, 8, 0),
    ] {
        assert!(bpflab_vm::world::World::new(&[spec], 1).is_err());
    }
}

/// sockops: on ACTIVE/PASSIVE_ESTABLISHED, add the socket to the sockhash (map 0) under
/// {local_ip4, remote_ip4, local port, remote port}, ports in network order; returns the
/// helper's result (1 for other callbacks).
const SOCKOPS: &str = "
    r6 = r1
    r2 = *(u32 *)(r6 + 0)
    if r2 == 4 goto est
    if r2 == 5 goto est
    r0 = 1
    exit
est:
    r2 = *(u32 *)(r6 + 20)
    if r2 != 2 goto out
    r2 = *(u32 *)(r6 + 28)
    *(u32 *)(r10 - 16) = r2
    r2 = *(u32 *)(r6 + 24)
    *(u32 *)(r10 - 12) = r2
    r2 = *(u32 *)(r6 + 68)
    r2 = be32 r2
    r2 >>= 16
    *(u32 *)(r10 - 8) = r2
    r2 = *(u32 *)(r6 + 64)
    r2 >>= 16
    *(u32 *)(r10 - 4) = r2
    r1 = r6
    r2 = map[idx:0] ll
    r3 = r10
    r3 += -16
    r4 = 1
    call bpf_sock_hash_update
    exit
out:
    r0 = 1
    exit";

/// sk_msg: redirect to the peer, the socket whose sockops key is this one's 4-tuple seen from
/// the other end, with BPF_F_INGRESS (the message lands in the peer's receive queue).
const SK_MSG_PROXY: &str = "
    r6 = r1
    r2 = *(u32 *)(r6 + 20)
    *(u32 *)(r10 - 16) = r2
    r2 = *(u32 *)(r6 + 24)
    *(u32 *)(r10 - 12) = r2
    r2 = *(u32 *)(r6 + 60)
    r2 >>= 16
    *(u32 *)(r10 - 8) = r2
    r2 = *(u32 *)(r6 + 64)
    r2 = be32 r2
    r2 >>= 16
    *(u32 *)(r10 - 4) = r2
    r1 = r6
    r2 = map[idx:0] ll
    r3 = r10
    r3 += -16
    r4 = 1
    call bpf_msg_redirect_hash
    exit";

#[test]
fn sockops_fill_a_sockhash_and_sk_msg_redirects_to_the_peer() {
    let maps = vec![MapSpec::new("sock_ops_map", MapType::Sockhash, 16, 4, 64)];
    let mut inst = instance(maps, &[(ProgType::SockOps, SOCKOPS), (ProgType::SkMsg, SK_MSG_PROXY)]);
    let (c, s) = inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    // TCP_CONNECT_CB adds nothing; the established callbacks add both ends.
    let r = inst.run_sock_ops(0, c, BPF_SOCK_OPS_TCP_CONNECT_CB, [0; 4]).unwrap();
    assert_eq!((r.outcome.r0, r.result), (1, 0));
    assert!(inst.world.sock_links(c).is_empty());
    assert_eq!(
        inst.run_sock_ops(0, c, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, [0; 4]).unwrap().outcome.r0,
        0
    );
    assert_eq!(
        inst.run_sock_ops(0, s, BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB, [0; 4]).unwrap().outcome.r0,
        0
    );
    let client_key = vec![10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40, 0, 0, 0, 80, 0, 0];
    let server_key = vec![10, 0, 0, 2, 10, 0, 0, 1, 0, 80, 0, 0, 0x9c, 0x40, 0, 0];
    assert_eq!(inst.world.sock_links(c), vec![(0, client_key.clone())]);
    assert_eq!(inst.world.sock_links(s), vec![(0, server_key.clone())]);
    // BPF_NOEXIST: a second established callback fails with -EEXIST.
    assert_eq!(
        inst.run_sock_ops(0, c, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, [0; 4]).unwrap().outcome.r0,
        -17i64 as u64
    );

    // The client sends: redirected to the server socket's receive queue.
    let run = inst.run_sk_msg(1, c, b"GET / HTTP/1.1\r\n").unwrap();
    assert_eq!(run.outcome.r0, SK_PASS);
    assert_eq!(run.verdict, MsgVerdict::Redirect { to: s, ingress: true });
    assert_eq!((run.size, run.tosend, run.corked), (16, 16, false));
    assert_eq!(run.outcome.data, b"GET / HTTP/1.1\r\n");
    assert_eq!(
        inst.world.env.redirect,
        Some(Redirect {
            helper: "bpf_msg_redirect_hash",
            map: Some(0),
            key: server_key,
            flags: BPF_F_INGRESS,
            target: RedirectTarget::Socket { id: s, cookie: 2 },
        })
    );
    // The server answers: redirected to the client.
    let run = inst.run_sk_msg(1, s, b"HTTP/1.1 200 OK\r\n").unwrap();
    assert_eq!(run.verdict, MsgVerdict::Redirect { to: c, ingress: true });
    // Once the client is closed it leaves the sockhash: the server's messages are dropped.
    inst.world.sock_close(c).unwrap();
    let run = inst.run_sk_msg(1, s, b"bye").unwrap();
    assert_eq!((run.outcome.r0, run.verdict), (SK_DROP, MsgVerdict::Drop));
    assert_eq!(inst.world.env.redirect, None);
}

#[test]
fn sock_map_update_checks_the_callback_map_and_flags() {
    // Always update sockmap[args[0]] with flags args[1]; return the helper's result.
    let update_map = "
        r6 = r1
        r2 = *(u32 *)(r6 + 4)
        *(u32 *)(r10 - 4) = r2
        r4 = *(u32 *)(r6 + 8)
        r1 = r6
        r2 = map[idx:0] ll
        r3 = r10
        r3 += -4
        call bpf_sock_map_update
        exit";
    let wrong_map = "
        *(u32 *)(r10 - 4) = 0
        r2 = map[idx:1] ll
        r3 = r10
        r3 += -4
        r4 = 0
        call bpf_sock_map_update
        exit";
    let maps = vec![
        MapSpec::new("map", MapType::Sockmap, 4, 8, 2),
        MapSpec::new("hash", MapType::Sockhash, 4, 8, 2),
    ];
    let mut inst = instance(
        maps,
        &[
            (ProgType::SockOps, update_map),
            (ProgType::SockOps, wrong_map),
            (ProgType::SkMsg, wrong_map),
        ],
    );
    let (c, _) = inst.world.tcp_connect(sa("10.1.1.1:1000"), sa("10.1.1.2:2000")).unwrap();
    let l = inst.world.tcp_listen(sa("10.1.1.2:2001")).unwrap();
    let r0 = |inst: &mut Instance, sock, op, args| {
        inst.run_sock_ops(0, sock, op, args).unwrap().outcome.r0
    };
    assert_eq!(r0(&mut inst, c, BPF_SOCK_OPS_STATE_CB, [0, 0, 0, 0]), EOPNOTSUPP);
    assert_eq!(r0(&mut inst, c, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, [2, 0, 0, 0]), -7i64 as u64);
    assert_eq!(r0(&mut inst, c, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, [1, 3, 0, 0]), EINVAL);
    assert_eq!(r0(&mut inst, c, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, [1, 2, 0, 0]), -2i64 as u64);
    assert_eq!(r0(&mut inst, c, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, [1, 0, 0, 0]), 0);
    assert_eq!(r0(&mut inst, l, 11, [0, 0, 0, 0]), 0); // BPF_SOCK_OPS_TCP_LISTEN_CB
    assert_eq!(inst.world.lookup(0, &k(0)).unwrap(), Some(3u64.to_le_bytes().to_vec()));
    assert_eq!(inst.world.lookup(0, &k(1)).unwrap(), Some(1u64.to_le_bytes().to_vec()));
    let e = inst.run_sock_ops(1, c, BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB, [0; 4]).unwrap_err();
    assert_eq!(helper_error(e), HelperError::BadArg { arg: 2, reason: "map is not a sockmap" });
    let e = inst.run_sk_msg(2, c, b"x").unwrap_err();
    assert_eq!(helper_error(e), HelperError::NotAllowed { prog_type: ProgType::SkMsg });
}

#[test]
fn msg_redirect_fails_closed() {
    // msg_redirect_map(msg, map, key = args from the message's first byte, flags = second byte)
    let src = "
        r6 = r1
        r2 = *(u64 *)(r6 + 0)
        r3 = *(u64 *)(r6 + 8)
        r4 = r2
        r4 += 2
        if r4 > r3 goto bad
        r7 = *(u8 *)(r2 + 0)
        r8 = *(u8 *)(r2 + 1)
        r1 = r6
        r2 = map[idx:0] ll
        r3 = r7
        r4 = r8
        call bpf_msg_redirect_map
        exit
    bad:
        r0 = 77
        exit";
    let maps = vec![MapSpec::new("map", MapType::Sockmap, 4, 8, 8)];
    let mut inst = instance(maps, &[(ProgType::SkMsg, src)]);
    let w = &mut inst.world;
    let (c, s) = w.tcp_connect(sa("192.168.0.1:5000"), sa("192.168.0.2:6000")).unwrap();
    let l = w.tcp_listen(sa("192.168.0.2:7000")).unwrap();
    let u = w.udp_connect(sa("192.168.0.1:53"), sa("192.168.0.9:53")).unwrap();
    for (key, sock) in [(1, s), (2, l), (3, u)] {
        w.update(0, &k(key), &fd(sock), BPF_ANY).unwrap();
    }
    let mut go = |key: u8, flags: u8| {
        let run = inst.run_sk_msg(0, c, &[key, flags, 0xaa]).unwrap();
        (run.outcome.r0, run.verdict)
    };
    let to_s = MsgVerdict::Redirect { to: s, ingress: false };
    assert_eq!(go(1, 0), (SK_PASS, to_s)); // egress to an established TCP socket
    assert_eq!(go(0, 0), (SK_DROP, MsgVerdict::Drop)); // empty slot
    assert_eq!(go(9, 0), (SK_DROP, MsgVerdict::Drop)); // past max_entries
    assert_eq!(go(1, 2), (SK_DROP, MsgVerdict::Drop)); // unknown flag
    assert_eq!(go(2, 1), (SK_DROP, MsgVerdict::Drop)); // a listener cannot take redirects
    assert_eq!(go(3, 0), (SK_DROP, MsgVerdict::Drop)); // egress to UDP
    assert_eq!(go(3, 1), (SK_PASS, MsgVerdict::Redirect { to: u, ingress: true }));
}

#[test]
fn sk_msg_context_fields_and_rules() {
    // Returns the field at offset OFF with width W.
    let field = |w: &str, off: u32| format!("r0 = *({w} *)(r1 + {off})\nexit");
    let deref_sk = "r1 = *(u64 *)(r1 + 72)\nr0 = *(u32 *)(r1 + 44)\nexit";
    let progs = [
        field("u32", 16),
        field("u32", 20),
        field("u32", 24),
        field("u32", 60),
        field("u32", 64),
        field("u32", 68),
        deref_sk.to_string(),
        field("u32", 0),
        field("u16", 16),
        field("u64", 80),
        "*(u32 *)(r1 + 68) = 1\nr0 = 1\nexit".to_string(),
        field("u32", 28),
        field("u32", 40),
    ];
    let list: Vec<(ProgType, &str)> = progs.iter().map(|p| (ProgType::SkMsg, p.as_str())).collect();
    let mut inst = instance(vec![], &list);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    let (c6, _) = inst.world.tcp_connect(sa("[fd00::1]:1234"), sa("[fd00::2]:443")).unwrap();
    let mut r0 = |p: usize, sock| inst.run_sk_msg(p, sock, b"0123456789").map(|r| r.outcome.r0);
    assert_eq!(r0(0, c).unwrap(), 2); // family
    assert_eq!(r0(1, c).unwrap(), u64::from(u32::from_le_bytes([10, 0, 0, 2]))); // remote_ip4
    assert_eq!(r0(2, c).unwrap(), u64::from(u32::from_le_bytes([10, 0, 0, 1]))); // local_ip4
    assert_eq!(r0(3, c).unwrap(), u64::from(u32::from_le_bytes([0, 0, 0, 80]))); // remote_port
    assert_eq!(r0(4, c).unwrap(), 40000); // local_port, host order
    assert_eq!(r0(5, c).unwrap(), 10); // size
    assert_eq!(r0(6, c).unwrap(), 40000); // sk->src_port
    assert_eq!(r0(0, c6).unwrap(), 10);
    assert_eq!(r0(11, c6).unwrap(), u64::from(u32::from_le_bytes([0xfd, 0, 0, 0]))); // remote_ip6[0]
    assert_eq!(r0(12, c6).unwrap(), u64::from(u32::from_le_bytes([0, 0, 0, 2]))); // remote_ip6[3]
    let Err(EngineError::Fault(f)) = r0(9, c) else { panic!("program 9 ran") };
    assert!(
        matches!(f.kind(), VmErrorKind::Memory(MemError::OutOfBounds { off: 80, len: 8, .. })),
        "{f}"
    );
    for (p, access, off, len) in
        [(7, Access::Read, 0, 4), (8, Access::Read, 16, 2), (10, Access::Write, 68, 4)]
    {
        let Err(EngineError::Fault(f)) = r0(p, c) else { panic!("program {p} ran") };
        assert!(
            matches!(f.kind(), VmErrorKind::Memory(MemError::Context { access: a, off: o, len: l, .. }) if *a == access && *o == off && *l == len),
            "program {p}: {f}"
        );
    }
}

/// Calls HELPER(msg, A, B, FLAGS); returns its error, or (data_end - data) << 8 | first byte.
fn msg_edit(helper: &str, a: u32, b: u32, flags: u32) -> String {
    format!(
        "
        r6 = r1
        r2 = {a}
        r3 = {b}
        r4 = {flags}
        call {helper}
        if r0 != 0 goto out
        r2 = *(u64 *)(r6 + 0)
        r3 = *(u64 *)(r6 + 8)
        r0 = r3
        r0 -= r2
        r0 <<= 8
        r4 = r2
        r4 += 1
        if r4 > r3 goto out
        r5 = *(u8 *)(r2 + 0)
        r0 |= r5
    out:
        exit"
    )
}

/// Runs one message edit on `msg`: the program's result and the message afterwards.
fn edit(helper: &str, a: u32, b: u32, flags: u32, msg: &[u8]) -> (u64, Vec<u8>) {
    let src = msg_edit(helper, a, b, flags);
    let mut inst = instance(vec![], &[(ProgType::SkMsg, &src)]);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:1"), sa("10.0.0.2:2")).unwrap();
    let run = inst.run_sk_msg(0, c, msg).unwrap();
    assert_eq!(run.size as usize, run.outcome.data.len());
    (run.outcome.r0, run.outcome.data)
}

#[test]
fn msg_pull_data_narrows_the_window() {
    let m: Vec<u8> = (0..10).collect();
    assert_eq!(edit("bpf_msg_pull_data", 2, 6, 0, &m), (4 << 8 | 2, m.clone()));
    assert_eq!(edit("bpf_msg_pull_data", 0, 10, 0, &m), (10 << 8, m.clone()));
    assert_eq!(edit("bpf_msg_pull_data", 6, 6, 0, &m).0, EINVAL); // end <= start
    assert_eq!(edit("bpf_msg_pull_data", 10, 11, 0, &m).0, EINVAL); // start past the end
    assert_eq!(edit("bpf_msg_pull_data", 2, 11, 0, &m).0, EINVAL); // end past the end
    assert_eq!(edit("bpf_msg_pull_data", 2, 6, 1, &m).0, EINVAL); // flags
    // A 40000-byte message is two elements (32768 + 7232): the window starts as the first;
    // pulling across the boundary linearizes both.
    let big: Vec<u8> = (0..40000u32).map(|i| (i % 251) as u8).collect();
    let (r0, out) = edit("bpf_msg_pull_data", 0, 1, 0, &big);
    assert_eq!((r0, out.len()), (1 << 8, 40000));
    let (r0, _) = edit("bpf_msg_pull_data", 32760, 32780, 0, &big);
    assert_eq!(r0, 20 << 8 | u64::from(big[32760]));
    let (r0, _) = edit("bpf_msg_pull_data", 32768, 32769, 0, &big);
    assert_eq!(r0, 1 << 8 | u64::from(big[32768]));
    // Without pulling, data..data_end is the first element only.
    let src = "r2 = *(u64 *)(r1 + 0)\nr0 = *(u64 *)(r1 + 8)\nr0 -= r2\nexit";
    let mut inst = instance(vec![], &[(ProgType::SkMsg, src)]);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:1"), sa("10.0.0.2:2")).unwrap();
    assert_eq!(inst.run_sk_msg(0, c, &big).unwrap().outcome.r0, 32768);
    let max = MAX_MSG_FRAGS * 32768;
    assert!(matches!(
        inst.run_sk_msg(0, c, &vec![0; max + 1]),
        Err(EngineError::Context(bpflab_vm::ctx::CtxError::PacketTooLong { len, max: m })) if len == max + 1 && m == max
    ));
}

#[test]
fn msg_push_data_inserts_elements() {
    let m: Vec<u8> = (1..=10).collect();
    let with = |at: usize, n: usize| {
        let mut v = m.clone();
        v.splice(at..at, std::iter::repeat_n(0, n));
        v
    };
    // At the start: a new first element of the pushed bytes only.
    assert_eq!(edit("bpf_msg_push_data", 0, 4, 0, &m), (4 << 8, with(0, 4)));
    // Inside the element: split, the window is the part before `start`.
    assert_eq!(edit("bpf_msg_push_data", 3, 2, 0, &m), (3 << 8 | 1, with(3, 2)));
    // At the end: appended as a new element, the window is unchanged.
    assert_eq!(edit("bpf_msg_push_data", 10, 3, 0, &m), (10 << 8 | 1, with(10, 3)));
    assert_eq!(edit("bpf_msg_push_data", 11, 3, 0, &m), (EINVAL, m.clone()));
    assert_eq!(edit("bpf_msg_push_data", 2, 3, 1, &m), (EINVAL, m.clone()));
    assert_eq!(edit("bpf_msg_push_data", 2, 0, 0, &m), (10 << 8 | 1, m.clone()));
    assert_eq!(edit("bpf_msg_push_data", 2, 5 << 20, 0, &m), (-12i64 as u64, m.clone()));
}

#[test]
fn msg_pop_data_removes_bytes() {
    let m: Vec<u8> = (1..=10).collect();
    let without = |at: usize, n: usize| {
        let mut v = m.clone();
        v.drain(at..at + n);
        v
    };
    // Inside the element: it splits into the parts before and after.
    assert_eq!(edit("bpf_msg_pop_data", 2, 3, 0, &m), (2 << 8 | 1, without(2, 3)));
    // From the start: the element is trimmed.
    assert_eq!(edit("bpf_msg_pop_data", 0, 3, 0, &m), (7 << 8 | 4, without(0, 3)));
    // Up to the end.
    assert_eq!(edit("bpf_msg_pop_data", 4, 6, 0, &m), (4 << 8 | 1, without(4, 6)));
    assert_eq!(edit("bpf_msg_pop_data", 0, 10, 0, &m), (0, vec![]));
    assert_eq!(edit("bpf_msg_pop_data", 10, 1, 0, &m), (EINVAL, m.clone()));
    assert_eq!(edit("bpf_msg_pop_data", 4, 7, 0, &m), (EINVAL, m.clone()));
    assert_eq!(edit("bpf_msg_pop_data", 4, 1, 8, &m), (EINVAL, m.clone()));
    // Across the two elements of a large message.
    let big: Vec<u8> = (0..40000u32).map(|i| (i % 251) as u8).collect();
    let (r0, out) = edit("bpf_msg_pop_data", 32760, 100, 0, &big);
    assert_eq!(r0, 32760 << 8 | u64::from(big[0]));
    let mut expect = big.clone();
    expect.drain(32760..32860);
    assert_eq!(out, expect);
}

#[test]
fn msg_edits_compose() {
    // push 4 bytes at 0, write them through data, pop 2 bytes at 6, then pull [0, 8).
    let src = "
        r6 = r1
        r1 = r6
        r2 = 0
        r3 = 4
        r4 = 0
        call bpf_msg_push_data
        r2 = *(u64 *)(r6 + 0)
        r3 = *(u64 *)(r6 + 8)
        r4 = r2
        r4 += 4
        if r4 > r3 goto bad
        r5 = 0x64636261
        *(u32 *)(r2 + 0) = r5
        r1 = r6
        r2 = 6
        r3 = 2
        r4 = 0
        call bpf_msg_pop_data
        r1 = r6
        r2 = 0
        r3 = 8
        r4 = 0
        call bpf_msg_pull_data
        if r0 != 0 goto bad
        r2 = *(u64 *)(r6 + 0)
        r0 = *(u64 *)(r6 + 8)
        r0 -= r2
        exit
    bad:
        r0 = 99
        exit";
    let mut inst = instance(vec![], &[(ProgType::SkMsg, src)]);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:1"), sa("10.0.0.2:2")).unwrap();
    let run = inst.run_sk_msg(0, c, b"0123456789").unwrap();
    assert_eq!(run.outcome.r0, 8);
    assert_eq!(run.outcome.data, b"abcd01456789");
    assert_eq!(run.size, 12);
}

#[test]
fn msg_apply_and_cork_bytes() {
    let src = "
        r6 = r1
        r2 = 5
        call bpf_msg_apply_bytes
        r1 = r6
        r2 = 100
        call bpf_msg_cork_bytes
        r0 = 1
        exit";
    let mut inst = instance(vec![], &[(ProgType::SkMsg, src)]);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:1"), sa("10.0.0.2:2")).unwrap();
    let run = inst.run_sk_msg(0, c, b"0123456789").unwrap();
    assert_eq!((run.apply_bytes, run.cork_bytes, run.size), (5, 100, 10));
    assert_eq!((run.corked, run.tosend, run.verdict), (true, 5, MsgVerdict::Pass));
    assert_eq!(inst.world.env.msg_bytes, MsgBytes { apply: 5, cork: 100 });
    let run = inst.run_sk_msg(0, c, &[7; 200]).unwrap();
    assert_eq!((run.corked, run.tosend), (false, 5));
}

/// An XDP program looking up the TCP (or UDP) socket for a packet from 10.0.0.1:40000 to
/// 10.0.0.2:80 with tuple size SIZE, netns NETNS and flags FLAGS; returns src_port |
/// state << 16 of the socket found (releasing it unless LEAK), or 0.
fn lookup_prog(helper: &str, size: u32, netns: i32, flags: u32, leak: bool) -> String {
    let release = if leak { "" } else { "r1 = r0\ncall bpf_sk_release" };
    format!(
        "
        r6 = r1
        r2 = 0x0100000a
        *(u32 *)(r10 - 40) = r2
        r2 = 0x0200000a
        *(u32 *)(r10 - 36) = r2
        r2 = 0x409c
        *(u16 *)(r10 - 32) = r2
        r2 = 0x5000
        *(u16 *)(r10 - 30) = r2
        r1 = r6
        r2 = r10
        r2 += -40
        r3 = {size}
        r4 = {netns}
        r5 = {flags}
        call {helper}
        if r0 == 0 goto none
        r7 = *(u32 *)(r0 + 44)
        r8 = *(u32 *)(r0 + 72)
        {release}
        r8 <<= 16
        r0 = r7
        r0 |= r8
        exit
    none:
        r0 = 0
        exit"
    )
}

#[test]
fn sk_lookup_finds_listeners_and_connections_and_tracks_references() {
    let progs = [
        lookup_prog("bpf_sk_lookup_tcp", 12, -1, 0, false),
        lookup_prog("bpf_sk_lookup_tcp", 12, -1, 0, true),
        lookup_prog("bpf_sk_lookup_tcp", 10, -1, 0, false),
        lookup_prog("bpf_sk_lookup_tcp", 12, -1, 1, false),
        lookup_prog("bpf_sk_lookup_tcp", 12, 0, 0, false),
        lookup_prog("bpf_sk_lookup_udp", 12, -1, 0, false),
        lookup_prog("bpf_skc_lookup_tcp", 12, -1, 0, false),
    ];
    let list: Vec<(ProgType, &str)> = progs.iter().map(|p| (ProgType::Xdp, p.as_str())).collect();
    let mut inst = instance(vec![], &list);
    let packet = RunInput::data(vec![0u8; 64]);
    let r0 = |inst: &mut Instance, p: usize| inst.run(p, &packet).unwrap().r0;
    assert_eq!(r0(&mut inst, 0), 0); // nothing there yet
    let l = inst.world.tcp_listen(sa("0.0.0.0:80")).unwrap();
    assert_eq!(r0(&mut inst, 0), 80 | 10 << 16); // the wildcard listener, TCP_LISTEN
    assert_eq!(r0(&mut inst, 6), 80 | 10 << 16);
    // An established socket wins over the listener.
    let (_, server) = inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    assert_eq!(r0(&mut inst, 0), 80 | 1 << 16);
    assert_eq!(inst.world.sock_refs_held(), 0);
    // A leaked reference is counted (the verifier would reject this program).
    assert_eq!(r0(&mut inst, 1), 80 | 1 << 16);
    assert_eq!((inst.world.sock_refs(server), inst.world.sock_refs(l)), (1, 0));
    inst.world.sock_refs_clear();
    assert_eq!(inst.world.sock_refs_held(), 0);
    // Bad tuple size, flags or another namespace: NULL.
    assert_eq!((r0(&mut inst, 2), r0(&mut inst, 3), r0(&mut inst, 4)), (0, 0, 0));
    // Sockets of another namespace are not found from the caller's; closed ones neither.
    inst.world.sock_update(server, |s| s.netns_cookie = 7).unwrap();
    inst.world.sock_close(l).unwrap();
    assert_eq!(r0(&mut inst, 0), 0);
    inst.world.tcp_listen(sa("10.0.0.2:80")).unwrap();
    assert_eq!(r0(&mut inst, 0), 80 | 10 << 16);
    // UDP: the best-scoring socket, a connected one over a bound one.
    assert_eq!(r0(&mut inst, 5), 0);
    inst.world.udp_bind(sa("0.0.0.0:80")).unwrap();
    assert_eq!(r0(&mut inst, 5), 80 | 7 << 16); // unconnected: TCP_CLOSE
    inst.world.udp_connect(sa("10.0.0.2:80"), sa("10.0.0.1:40000")).unwrap();
    assert_eq!(r0(&mut inst, 5), 80 | 1 << 16);
    assert_eq!(inst.world.sock_refs_held(), 0);
}

#[test]
fn sk_release_and_sockmap_lookups_follow_the_reference_rules() {
    // sockmap[0] from a program: a referenced struct bpf_sock; release it (or twice).
    let lookup = |releases: usize| {
        format!(
            "
            *(u32 *)(r10 - 4) = 0
            r1 = map[idx:0] ll
            r2 = r10
            r2 += -4
            call bpf_map_lookup_elem
            if r0 == 0 goto none
            r6 = r0
            r7 = *(u32 *)(r6 + 4)
            {}
            r0 = r7
            exit
        none:
            r0 = 0
            exit",
            "r1 = r6\ncall bpf_sk_release\n".repeat(releases)
        )
    };
    let (once, twice, never) = (lookup(1), lookup(2), lookup(0));
    let maps = vec![MapSpec::new("map", MapType::Sockmap, 4, 8, 1)];
    let mut inst = instance(
        maps,
        &[
            (ProgType::Xdp, &once),
            (ProgType::Xdp, &twice),
            (ProgType::Xdp, &never),
            (ProgType::SkMsg, &once),
        ],
    );
    let (c, s) = inst.world.tcp_connect(sa("[::1]:5000"), sa("[::1]:6000")).unwrap();
    inst.world.update(0, &k(0), &fd(s), BPF_ANY).unwrap();
    let packet = RunInput::data(vec![0u8; 64]);
    assert_eq!(inst.run(0, &packet).unwrap().r0, 10);
    assert_eq!(inst.world.sock_refs_held(), 0);
    let e = inst.run(1, &packet).unwrap_err();
    assert_eq!(
        helper_error(e),
        HelperError::BadArg { arg: 1, reason: "the program holds no reference on this socket" }
    );
    assert_eq!(inst.run(2, &packet).unwrap().r0, 10);
    assert_eq!(inst.world.sock_refs(s), 1);
    inst.world.sock_refs_clear();
    // sk_msg programs have no bpf_sk_release.
    let e = inst.run_sk_msg(3, c, b"x").unwrap_err();
    assert_eq!(helper_error(e), HelperError::NotAllowed { prog_type: ProgType::SkMsg });
    // Releasing something that is not a socket.
    let src = "r1 = r10\nr1 += -8\ncall bpf_sk_release\nexit";
    let mut inst = instance(vec![], &[(ProgType::Xdp, src)]);
    let e = inst.run(0, &packet).unwrap_err();
    assert_eq!(helper_error(e), HelperError::BadArg { arg: 1, reason: "not a socket pointer" });
}

#[test]
fn sock_ops_context_fields_and_rules() {
    let field = |w: &str, off: u32| format!("r0 = *({w} *)(r1 + {off})\nexit");
    let progs = [
        field("u32", 0),                                                // 0 op
        field("u32", 8),                                                // 1 args[1]
        field("u32", 20),                                               // 2 family
        field("u32", 64),                                               // 3 remote_port
        field("u32", 68),                                               // 4 local_port
        field("u32", 76),                                               // 5 snd_cwnd
        field("u32", 88),                                               // 6 state
        "r1 = *(u64 *)(r1 + 184)\nr0 = *(u32 *)(r1 + 44)\nexit".into(), // 7 sk->src_port
        "*(u32 *)(r1 + 4) = 17\nr0 = 1\nexit".into(),                   // 8 reply
        "r2 = 0xabcd\n*(u32 *)(r1 + 164) = r2\nr0 = 1\nexit".into(),    // 9 sk_txhash
        field("u64", 0),                                                // 10 denied
        "*(u32 *)(r1 + 76) = 1\nr0 = 1\nexit".into(),                   // 11 denied
        field("u64", 176),                                              // 12 bytes_acked
        field("u32", 176),                                              // 13 denied
        field("u8", 212),                                               // 14 skb_tcp_flags
        field("u8", 213),                                               // 15 denied
        field("u64", 192),                                              // 16 skb_data (no skb)
        "*(u32 *)(r1 + 4) = 5\nr0 = 0\nexit".into(),                    // 17 reply, but returns 0
    ];
    let list: Vec<(ProgType, &str)> =
        progs.iter().map(|p| (ProgType::SockOps, p.as_str())).collect();
    let mut inst = instance(vec![], &list);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    inst.world.sock_update(c, |s| s.tcp.bytes_acked = 1 << 40).unwrap();
    let mut run = |p: usize, op: u32| inst.run_sock_ops(p, c, op, [0, 6, 0, 0]);
    let r0 = |r: Result<bpflab_vm::sock::SockOpsRun, EngineError>| r.unwrap().outcome.r0;
    assert_eq!(r0(run(0, BPF_SOCK_OPS_STATE_CB)), 10);
    assert_eq!(r0(run(1, BPF_SOCK_OPS_STATE_CB)), 6);
    assert_eq!(r0(run(2, BPF_SOCK_OPS_STATE_CB)), 2);
    assert_eq!(r0(run(3, BPF_SOCK_OPS_STATE_CB)), u64::from(u32::from_le_bytes([0, 0, 0, 80])));
    assert_eq!(r0(run(4, BPF_SOCK_OPS_STATE_CB)), 40000);
    assert_eq!(r0(run(5, BPF_SOCK_OPS_STATE_CB)), 10); // initial cwnd
    assert_eq!(r0(run(5, BPF_SOCK_OPS_TSTAMP_SCHED_CB)), 0); // not a locked socket: 0
    assert_eq!(r0(run(6, BPF_SOCK_OPS_TSTAMP_SCHED_CB)), 1); // state is always readable
    assert_eq!(r0(run(7, BPF_SOCK_OPS_STATE_CB)), 40000);
    let r = run(8, BPF_SOCK_OPS_TIMEOUT_INIT).unwrap();
    assert_eq!((r.reply, r.result), (17, 17));
    let r = run(17, BPF_SOCK_OPS_TIMEOUT_INIT).unwrap();
    assert_eq!((r.reply, r.result), (5, -1));
    run(9, BPF_SOCK_OPS_STATE_CB).unwrap();
    assert_eq!(inst.world.socks.get(c).unwrap().txhash, 0xabcd);
    assert_eq!(r0(inst.run_sock_ops(12, c, BPF_SOCK_OPS_STATE_CB, [0; 4])), 1 << 40);
    assert_eq!(r0(inst.run_sock_ops(14, c, BPF_SOCK_OPS_STATE_CB, [0; 4])), 0);
    assert_eq!(r0(inst.run_sock_ops(16, c, BPF_SOCK_OPS_STATE_CB, [0; 4])), 0);
    for p in [10, 11, 13, 15] {
        let Err(EngineError::Fault(f)) = inst.run_sock_ops(p, c, BPF_SOCK_OPS_STATE_CB, [0; 4])
        else {
            panic!("program {p} ran")
        };
        assert!(matches!(f.kind(), VmErrorKind::Memory(MemError::Context { .. })), "{f}");
    }
    // The header-option callbacks see their packet through skb_data..skb_data_end (read-only).
    let src = "r2 = *(u64 *)(r1 + 192)\nr3 = *(u64 *)(r1 + 200)\nr0 = *(u32 *)(r1 + 208)\nr4 = *(u8 *)(r2 + 1)\nr0 <<= 8\nr0 |= r4\nexit";
    let mut inst = instance(vec![], &[(ProgType::SockOps, src)]);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    let mut input = inst.world.socks.sock_ops_input(c, 13, [0; 4]).unwrap();
    input.data = vec![0x9c, 0x40, 0, 80];
    assert_eq!(inst.run(0, &input).unwrap().r0, 4 << 8 | 0x40);
}

#[test]
fn cb_flags_cookies_and_socket_options() {
    let progs = [
        // 0: cb_flags_set(args[0]); return the result
        "r2 = *(u32 *)(r1 + 4)\ncall bpf_sock_ops_cb_flags_set\nexit",
        // 1: cb_flags_set(4) then read bpf_sock_ops_cb_flags
        "r6 = r1\nr2 = 4\ncall bpf_sock_ops_cb_flags_set\nr0 = *(u32 *)(r6 + 84)\nexit",
        // 2: socket cookie
        "call bpf_get_socket_cookie\nexit",
        // 3: netns cookie, of the context and of NULL
        "r6 = r1\ncall bpf_get_netns_cookie\nr7 = r0\nr1 = 0\ncall bpf_get_netns_cookie\nr0 <<= 8\nr0 |= r7\nexit",
        // 4: setsockopt(SOL_TCP, TCP_NODELAY, 1) then getsockopt: set << 32 | value
        "r6 = r1\n*(u32 *)(r10 - 4) = 1\nr2 = 6\nr3 = 1\nr4 = r10\nr4 += -4\nr5 = 4\ncall bpf_setsockopt\nr7 = r0\n*(u32 *)(r10 - 8) = 77\nr1 = r6\nr2 = 6\nr3 = 1\nr4 = r10\nr4 += -8\nr5 = 4\ncall bpf_getsockopt\nr0 = *(u32 *)(r10 - 8)\nr7 <<= 32\nr0 |= r7\nexit",
        // 5: setsockopt(SOL_SOCKET, SO_SNDBUF, args[0]); returns the result
        "r2 = *(u32 *)(r1 + 4)\n*(u32 *)(r10 - 4) = r2\nr2 = 1\nr3 = 7\nr4 = r10\nr4 += -4\nr5 = 4\ncall bpf_setsockopt\nexit",
        // 6: getsockopt(SOL_SOCKET, SO_SNDBUF) into an 8-byte buffer: -EINVAL, zeroed
        "*(u64 *)(r10 - 8) = -1\nr2 = 1\nr3 = 7\nr4 = r10\nr4 += -8\nr5 = 8\ncall bpf_getsockopt\nr1 = *(u64 *)(r10 - 8)\nr0 += r1\nexit",
        // 7: setsockopt(42, 1) bad level
        "*(u32 *)(r10 - 4) = 1\nr2 = 42\nr3 = 1\nr4 = r10\nr4 += -4\nr5 = 4\ncall bpf_setsockopt\nexit",
        // 8: setsockopt(SOL_TCP, TCP_CONGESTION, \"reno\") then getsockopt into 8 bytes
        "r6 = r1\nr2 = 0x6f6e6572\n*(u32 *)(r10 - 8) = r2\n*(u32 *)(r10 - 4) = 0\nr2 = 6\nr3 = 13\nr4 = r10\nr4 += -8\nr5 = 8\ncall bpf_setsockopt\nr1 = r6\nr2 = 6\nr3 = 13\nr4 = r10\nr4 += -16\nr5 = 8\ncall bpf_getsockopt\nr0 = *(u64 *)(r10 - 16)\nexit",
    ];
    let list: Vec<(ProgType, &str)> = progs.iter().map(|p| (ProgType::SockOps, *p)).collect();
    let mut inst = instance(vec![], &list);
    let (c, s) = inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    let r0 = |inst: &mut Instance, p: usize, sock, op, a0| {
        inst.run_sock_ops(p, sock, op, [a0, 0, 0, 0]).unwrap().outcome.r0
    };
    assert_eq!(r0(&mut inst, 0, c, BPF_SOCK_OPS_STATE_CB, 0x85), 0x80);
    assert_eq!(inst.world.socks.get(c).unwrap().cb_flags, 0x05);
    assert_eq!(r0(&mut inst, 0, c, BPF_SOCK_OPS_STATE_CB, u32::MAX), -128i64 as u64);
    assert_eq!(r0(&mut inst, 0, c, BPF_SOCK_OPS_TSTAMP_SCHED_CB, 1), EOPNOTSUPP);
    assert_eq!(inst.world.socks.get(c).unwrap().cb_flags, 0x7f);
    assert_eq!(r0(&mut inst, 1, c, BPF_SOCK_OPS_STATE_CB, 0), 4);
    assert_eq!((r0(&mut inst, 2, c, 10, 0), r0(&mut inst, 2, s, 10, 0)), (1, 2));
    assert_eq!(r0(&mut inst, 3, c, 10, 0), 1 << 8 | 1);
    inst.world.sock_update(c, |s| s.netns_cookie = 9).unwrap();
    assert_eq!(r0(&mut inst, 3, c, 10, 0), 1 << 8 | 9);
    assert_eq!(r0(&mut inst, 4, c, 10, 0), 1);
    assert_eq!(
        inst.world.socks.get(c).unwrap().getsockopt(6, 1, 4),
        Ok(1i32.to_le_bytes().to_vec())
    );
    assert_eq!(r0(&mut inst, 4, c, BPF_SOCK_OPS_TSTAMP_SCHED_CB, 0), EOPNOTSUPP << 32 | 77);
    assert_eq!(r0(&mut inst, 5, c, 10, 10000), 0);
    assert_eq!(inst.world.socks.get(c).unwrap().sndbuf, 20000);
    assert_eq!(r0(&mut inst, 5, c, 10, 1), 0);
    assert_eq!(inst.world.socks.get(c).unwrap().sndbuf, 4608);
    assert_eq!(r0(&mut inst, 5, c, 10, 1 << 30), 0);
    assert_eq!(inst.world.socks.get(c).unwrap().sndbuf, 425_984);
    assert_eq!(r0(&mut inst, 6, c, 10, 0), EINVAL);
    assert_eq!(r0(&mut inst, 7, c, 10, 0), EINVAL);
    assert_eq!(r0(&mut inst, 8, c, 10, 0), u64::from_le_bytes(*b"reno\0\0\0\0"));
    assert_eq!(inst.world.socks.get(c).unwrap().congestion, "reno");
    // bpf_get_socket_cookie has no sk_msg prototype; bpf_sock_ops_cb_flags_set is sockops only.
    let mut inst = instance(
        vec![],
        &[
            (ProgType::SkMsg, "call bpf_get_socket_cookie\nexit"),
            (ProgType::SkMsg, "call bpf_get_netns_cookie\nexit"),
            (ProgType::SkMsg, "r2 = 1\ncall bpf_sock_ops_cb_flags_set\nexit"),
        ],
    );
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:40000"), sa("10.0.0.2:80")).unwrap();
    let e = inst.run_sk_msg(0, c, b"x").unwrap_err();
    assert_eq!(helper_error(e), HelperError::NotAllowed { prog_type: ProgType::SkMsg });
    assert_eq!(inst.run_sk_msg(1, c, b"x").unwrap().outcome.r0, INIT_NET_COOKIE);
    let e = inst.run_sk_msg(2, c, b"x").unwrap_err();
    assert_eq!(helper_error(e), HelperError::NotAllowed { prog_type: ProgType::SkMsg });
}

/// Appends APPENDS one-byte elements to a 10-byte message (each push at the current size adds
/// an element), then calls HELPER(msg, A, B, 0); returns its error or data_end - data.
fn on_full_list(appends: usize, helper: &str, a: u32, b: u32) -> (u64, usize) {
    let mut src = String::from("r6 = r1\n");
    for _ in 0..appends {
        src += "r1 = r6\nr2 = *(u32 *)(r6 + 68)\nr3 = 1\nr4 = 0\ncall bpf_msg_push_data\n";
    }
    src += &format!(
        "r1 = r6\nr2 = {a}\nr3 = {b}\nr4 = 0\ncall {helper}\nif r0 != 0 goto out\n\
         r2 = *(u64 *)(r6 + 0)\nr0 = *(u64 *)(r6 + 8)\nr0 -= r2\nout:\nexit"
    );
    let mut inst = instance(vec![], &[(ProgType::SkMsg, &src)]);
    let (c, _) = inst.world.tcp_connect(sa("10.0.0.1:1"), sa("10.0.0.2:2")).unwrap();
    let run = inst.run_sk_msg(0, c, b"0123456789").unwrap();
    (run.outcome.r0, run.outcome.data.len())
}

#[test]
fn msg_edits_on_a_full_scatterlist() {
    // 10 + 16 one-byte elements: MAX_MSG_FRAGS (17) used. Pushing inside the first element
    // cannot split it: the element is copied with the new bytes (window 12, not 3).
    assert_eq!(on_full_list(16, "bpf_msg_push_data", 3, 2), (12, 28));
    // One free element: splitting needs two, so it copies too; at an element boundary it
    // inserts a new element.
    assert_eq!(on_full_list(15, "bpf_msg_push_data", 3, 2), (12, 27));
    assert_eq!(on_full_list(15, "bpf_msg_push_data", 0, 2), (2, 27));
    assert_eq!(on_full_list(14, "bpf_msg_push_data", 3, 2), (3, 26));
    // Popping from inside the first element with no free element compacts what is left.
    assert_eq!(on_full_list(16, "bpf_msg_pop_data", 2, 3), (7, 23));
    assert_eq!(on_full_list(15, "bpf_msg_pop_data", 2, 3), (2, 22));
    // Pulling across elements linearizes them; within one element it does not.
    assert_eq!(on_full_list(16, "bpf_msg_pull_data", 8, 14), (6, 26));
    assert_eq!(on_full_list(16, "bpf_msg_pull_data", 12, 13), (1, 26));
    assert_eq!(on_full_list(16, "bpf_msg_pull_data", 25, 27), (EINVAL, 26));
}

#[test]
fn sk_skb_verdicts_redirect_through_sockmaps_and_sockhashes() {
    // sk_redirect_map(skb, map 0, key = first byte, flags = second byte)
    let by_index = "
        r6 = r1
        r2 = *(u32 *)(r6 + 76)
        r3 = *(u32 *)(r6 + 80)
        r4 = r2
        r4 += 2
        if r4 > r3 goto bad
        r7 = *(u8 *)(r2 + 0)
        r8 = *(u8 *)(r2 + 1)
        r1 = r6
        r2 = map[idx:0] ll
        r3 = r7
        r4 = r8
        call bpf_sk_redirect_map
        exit
    bad:
        r0 = 77
        exit";
    // sk_redirect_hash(skb, map 1, &key = the first 4 bytes, BPF_F_INGRESS)
    let by_key = "
        r6 = r1
        r2 = *(u32 *)(r6 + 76)
        r3 = *(u32 *)(r6 + 80)
        r4 = r2
        r4 += 4
        if r4 > r3 goto bad
        r7 = *(u32 *)(r2 + 0)
        *(u32 *)(r10 - 4) = r7
        r1 = r6
        r2 = map[idx:1] ll
        r3 = r10
        r3 += -4
        r4 = 1
        call bpf_sk_redirect_hash
        exit
    bad:
        r0 = 77
        exit";
    let maps = vec![
        MapSpec::new("map", MapType::Sockmap, 4, 8, 4),
        MapSpec::new("hash", MapType::Sockhash, 4, 8, 4),
    ];
    let mut inst = instance(
        maps,
        &[
            (ProgType::SkSkb, by_index),
            (ProgType::SkSkb, by_key),
            (ProgType::SkMsg, "r2 = map[idx:0] ll\nr3 = 0\nr4 = 0\ncall bpf_sk_redirect_map\nexit"),
        ],
    );
    let w = &mut inst.world;
    let (c, s) = w.tcp_connect(sa("10.9.0.1:1111"), sa("10.9.0.2:2222")).unwrap();
    let l = w.tcp_listen(sa("10.9.0.2:3333")).unwrap();
    let u = w.udp_connect(sa("10.9.0.1:53"), sa("10.9.0.3:53")).unwrap();
    w.update(0, &k(0), &fd(c), BPF_ANY).unwrap();
    w.update(0, &k(1), &fd(l), BPF_ANY).unwrap();
    w.update(0, &k(2), &fd(u), BPF_ANY).unwrap();
    w.update(1, b"abcd", &fd(s), BPF_ANY).unwrap();
    let run = |inst: &mut Instance, p: usize, data: &[u8]| {
        inst.world.env.redirect = None;
        let mut input = RunInput::data(data.to_vec());
        input.sock = Some(s);
        let r0 = inst.run(p, &input).unwrap().r0;
        (r0, inst.world.env.redirect.clone())
    };
    let to = |helper, map, key: &[u8], flags, id: SockId, cookie| Redirect {
        helper,
        map: Some(map),
        key: key.to_vec(),
        flags,
        target: RedirectTarget::Socket { id, cookie },
    };
    assert_eq!(
        run(&mut inst, 0, &[0, 1, 9, 9]),
        (SK_PASS, Some(to("bpf_sk_redirect_map", 0, &k(0), BPF_F_INGRESS, c, 1)))
    );
    assert_eq!(run(&mut inst, 0, &[0, 0, 9, 9]).1.unwrap().flags, 0);
    // UDP: allowed both ways for skbs (only sk_msg egress needs TCP).
    assert_eq!(run(&mut inst, 0, &[2, 0]).0, SK_PASS);
    for bad in [[1u8, 0], [3, 0], [7, 0], [0, 2]] {
        assert_eq!(run(&mut inst, 0, &bad), (SK_DROP, None), "{bad:?}");
    }
    assert_eq!(
        run(&mut inst, 1, b"abcd"),
        (SK_PASS, Some(to("bpf_sk_redirect_hash", 1, b"abcd", BPF_F_INGRESS, s, 2)))
    );
    assert_eq!(run(&mut inst, 1, b"abce"), (SK_DROP, None));
    // The skb helpers are not sk_msg helpers.
    let e = inst.run_sk_msg(2, c, &[0, 0]).unwrap_err();
    assert_eq!(helper_error(e), HelperError::NotAllowed { prog_type: ProgType::SkMsg });
}

#[test]
fn bpf_sock_access_rules() {
    use bpflab_vm::sock::{bpf_sock_common_is_valid_access, bpf_sock_is_valid_access};
    let ok = |off, size| bpf_sock_is_valid_access(off, size);
    // Whole u32 fields; narrow loads only where the kernel allows them.
    assert!(ok(0, 4) && ok(16, 4) && ok(20, 4) && ok(72, 4) && ok(76, 4));
    assert!(!ok(0, 2) && !ok(16, 1) && !ok(0, 8) && !ok(80, 4) && !ok(2, 4));
    assert!(ok(4, 1) && ok(4, 2) && !ok(5, 1) && !ok(6, 2) && !ok(72, 8));
    assert!(ok(25, 1) && ok(26, 2) && ok(40, 4) && ok(60, 2) && !ok(24, 8));
    assert!(ok(48, 4) && ok(48, 2) && ok(49, 1) && !ok(50, 2) && !ok(51, 1) && !ok(48, 8));
    assert!(bpf_sock_common_is_valid_access(4, 4) && !bpf_sock_common_is_valid_access(8, 4));
    assert!(!bpf_sock_common_is_valid_access(20, 4) && bpf_sock_common_is_valid_access(24, 4));
}

#[test]
fn sk_msg_without_a_socket_takes_its_fields_from_ctx_in() {
    let mut md = vec![0u8; 80];
    md[16..20].copy_from_slice(&10u32.to_le_bytes());
    md[64..68].copy_from_slice(&8080u32.to_le_bytes());
    let src = "r2 = *(u32 *)(r1 + 16)\nr3 = *(u32 *)(r1 + 64)\nr4 = *(u64 *)(r1 + 72)\nr0 = r3\nr0 <<= 8\nr0 |= r2\nr0 += r4\nexit";
    let mut inst = instance(vec![], &[(ProgType::SkMsg, src)]);
    let mut input = RunInput::data(b"abc".to_vec());
    input.ctx = Some(md);
    let out = inst.run(0, &input).unwrap();
    assert_eq!(out.r0, 8080 << 8 | 10);
    let ctx = out.ctx.unwrap();
    assert_eq!(
        (&ctx[0..8], &ctx[8..16], &ctx[68..72]),
        (&[0u8; 8][..], &3u64.to_le_bytes()[..], &3u32.to_le_bytes()[..])
    );
    input.ctx = Some(vec![0; 79]);
    assert!(matches!(inst.run(0, &input), Err(EngineError::Context(_))));
    input.ctx = None;
    input.sock = Some(SockId::from_fd(3));
    assert!(matches!(inst.run(0, &input), Err(EngineError::Context(_))));
}
