#!/usr/bin/env python3
"""Check the fixtures' documented results (FIXTURES.md) against the running kernel.

Needs root, bpftool and a mounted bpffs (mounted here if missing). For every object:
`bpftool prog loadall X.bpf.o /sys/fs/bpf/bpflab_X [type T] pinmaps /sys/fs/bpf/bpflab_X_maps`
(so the verifier must accept every program), then BPF_PROG_TEST_RUN of each runnable program
(testrun.py) with the packets/ctx files, comparing retval, data_out (packets/expected/) and
map contents (bpftool map dump) with the expectations below; objects this kernel refuses are
checked to fail the way FIXTURES.md says. Pins are removed afterwards.

    sudo ./kernel_check.py            # all objects
    sudo ./kernel_check.py xdp csum   # only these objects
"""
import json
import mmap
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, str(HERE))
import testrun  # noqa: E402

PK = HERE / "packets"
EXP = PK / "expected"
BPFFS = Path("/sys/fs/bpf")
TRACE = Path("/sys/kernel/tracing/trace")
ENOTSUPP = 524  # kernel-internal "operation not supported" returned by test_run

SYN, UDP, V6, ARP, VLAN, ETHONLY, RUNT = ("ipv4_tcp_syn.bin", "ipv4_udp.bin", "ipv6_tcp_syn.bin",
                                          "arp_request.bin", "vlan_ipv4_udp.bin",
                                          "eth_only_ipv4.bin", "runt_10.bin")
RAWTP = "ctx_raw_tp_sys_enter.bin"


def run(prog, data=None, ctx=None, ret=None, out=None, errno=0, same=False, note="",
        ctx_out=None):
    """One test run. out: file name under packets/expected/; same: data_out == data_in;
    ctx: a file name, or bytes; ctx_out: (offset, size, value) checked in the returned ctx."""
    return dict(prog=prog, data=data, ctx=ctx, ret=ret, out=out, errno=errno, same=same,
                note=note, ctx_out=ctx_out)


SKB_CTX = bytes(192)  # an all-zero struct __sk_buff (ctx_in for tc test runs)


def u32s(*vals):
    return {i: v for i, v in enumerate(vals)}


# Each case: object (without .bpf.o), optional bpftool `type`, runs in order on one fresh
# load, then map expectations {map: {key: value}} (value int = little-endian of the map's
# value size, negative = two's complement; bytes = exact; ("sum", n) = per-CPU sum;
# ("pop", [..]) = queue/stack pops in order; None = no entries).
CASES = [
    dict(obj="xdp", runs=[
        run("xdp_classify", SYN, ret=2, same=True),
        run("xdp_classify", UDP, ret=3, out="xdp_classify__ipv4_udp.bin"),
        run("xdp_classify", V6, ret=2, same=True),
        run("xdp_classify", ARP, ret=2, same=True),
        run("xdp_classify", VLAN, ret=2, same=True),
        run("xdp_classify", ETHONLY, ret=1, same=True),
        run("xdp_classify", RUNT, errno=22, note="test run needs >= 14 bytes"),
        run("xdp_ethertype", VLAN, ret=1),
        run("xdp_ethertype", UDP, ret=2),
        run("xdp_frags_len", SYN, ret=2),
        run("xdp_vlan_push", UDP, ret=2, out="xdp_vlan_push__ipv4_udp.bin"),
        run("xdp_trim", UDP, ret=2, out="xdp_trim__ipv4_udp.bin"),
        run("xdp_trim", ETHONLY, ret=1, same=True),
        run("xdp_meta", UDP, ret=2, out="xdp_meta__ipv4_udp.bin"),
    ], maps={
        "xdp_stats": {0: 0, 1: 1, 2: 4, 3: 1, 4: 0},
        "xdp_last": {0: 0x0800, 1: 54, 2: 54, 3: 46},
    }),
    dict(obj="calls", runs=[
        run("calls_xdp", SYN, ret=206), run("calls_xdp", UDP, ret=194),
        run("calls_xdp", V6, ret=1181), run("calls_xdp", ARP, ret=2465),
        run("calls_xdp", ETHONLY, ret=86),
        run("calls_tc", SYN, ret=88), run("calls_tc", UDP, ret=84),
        run("calls_tc", V6, ret=1023), run("calls_tc", ARP, ret=2371),
        run("calls_tc", VLAN, ret=330),
        run("calls_syscall", ctx="ctx_syscall_args.bin", ret=74),
    ]),
    dict(obj="tc_sections", runs=[
        run("tc_drop_http", SYN, ret=2, same=True), run("tc_drop_http", UDP, ret=0),
        run("tc_drop_http", ETHONLY, errno=22, note="skb test run: IPv4 frame < 34 bytes"),
        run("cls_arp_only", ARP, ret=0), run("cls_arp_only", SYN, ret=0xffffffff),
        run("act_ipv6_pipe", V6, ret=3), run("act_ipv6_pipe", SYN, ret=0),
    ]),
    dict(obj="tcx_sections", type="tc", runs=[
        run("tc_ingress_mark", SYN, ret=0),
        run("tc_ingress_mark", SYN, ctx=SKB_CTX, ret=0, ctx_out=(8, 4, 0x42),
            note="__sk_buff.mark"),
        run("tcx_ingress_dns", UDP, ret=2), run("tcx_ingress_dns", SYN, ret=0xffffffff),
        run("tcx_egress_count", SYN, ret=0), run("tcx_egress_count", UDP, ret=0),
    ], maps={"tc_bytes": {0: 104, 1: 0}}),
    dict(obj="socket_filter", runs=[
        run("sock_dns_only", UDP, ret=36, out="sock_dns_only__ipv4_udp.bin"),
        run("sock_dns_only", SYN, ret=0), run("sock_dns_only", ARP, ret=0),
        run("sock_ldabs", SYN, ret=20), run("sock_ldabs", UDP, ret=36),
        run("sock_ldabs", V6, ret=0),
    ], maps={"sock_res": {0: -14}}),
    dict(obj="sockmap", runs=[
        run("sockops_track", SYN, errno=ENOTSUPP), run("skb_parser", SYN, errno=ENOTSUPP),
        run("skb_verdict", SYN, errno=ENOTSUPP), run("msg_verdict", SYN, errno=ENOTSUPP),
    ], maps={"sock_map": None, "sock_hash": None}),
    dict(obj="tracing", runs=[
        run("raw_sys_enter", ctx=RAWTP, ret=0x1ff),
        run("kprobe_openat2", SYN, errno=ENOTSUPP),
        run("kretprobe_openat2", SYN, errno=ENOTSUPP),
        run("tp_enter_openat", SYN, errno=ENOTSUPP),
    ], maps={"trace_res": {0: -34, 1: -14, 2: -14, 3: -14, 6: 257, 7: 1}}),
    dict(obj="fentry", load_fails="EPERM"),
    dict(obj="lsm", load_fails="EPERM"),
    dict(obj="cgroup", runs=[
        run("cg_ingress", UDP, ret=0, out="cg_ingress__ipv4_udp.bin"),
        run("cg_ingress", SYN, ret=1),
        run("cg_egress", SYN, ret=1), run("cg_egress", V6, ret=1),
        run("cg_connect4", SYN, errno=ENOTSUPP), run("cg_sock_create", SYN, errno=ENOTSUPP),
    ], maps={"cg_stats": {0: 2, 1: 76, 2: 2, 3: 100, 4: 0, 5: 0, 6: 0}}),
    dict(obj="sk_lookup", runs=[
        run("sk_lookup_http", ctx="ctx_sk_lookup_tcp80.bin", ret=0),
    ], maps={"lookup_seen": u32s(2, 6, 0x0100000a, 0x409c, 0x0302010a, 80, 0, 0xffffffff)}),
    dict(obj="sk_lookup", runs=[
        run("sk_lookup_http", ctx="ctx_sk_lookup_udp53.bin", ret=1),
    ], maps={"lookup_seen": u32s(2, 17, 0x0100000a, 0xe914, 0x0302010a, 53, 0, 0xffffffff)}),
    dict(obj="maps_basic", runs=[
        run("map_array", SYN, ret=2), run("map_hash", SYN, ret=2),
        run("map_percpu", SYN, ret=2), run("map_queue_stack", SYN, ret=2),
    ], maps={
        "arr": {0: 0, 1: 5, 2: 0x2222, 3: 0},
        "array_res": u32s(5, 0, -7, -17, 0, -22, 1, 0x2222),
        "hash": {1: 101, 3: 3, 4: 4},
        "hash_res": u32s(0, -17, -2, 0, -2, 0, 0, 0, -7, 0, 101, 1),
        "pcpu_arr": {0: ("sum", 7), 1: ("sum", 0)},
        "pcpu_hash": {9: ("sum", 40)},
        "percpu_res": u32s(7, 0, 40, -17),
        "qs_res": u32s(-2, 0, -7, 0, 0, 20, 0, 20, 30, -2, 0, 0, 3, 3, 2, -22),
        "queue": ("pop", [40, 50]),
        "stack": ("pop", [1]),
    }),
    dict(obj="maps_lru", runs=[
        run("lru_fill", SYN, ret=2), run("lru_percpu_fill", SYN, ret=2),
    ], maps={
        # survivor sets and the NOEXIST outcome are what Linux 6.18 did (documentation only)
        "lru_res": u32s(0, 0xf0, 4, 0, 0, 0xc, 2, 4, 4, 801),
        "lru": {5: 500, 6: 600, 7: 700, 8: 801},
        "lru_pcpu": {3: ("sum", 3), 4: ("sum", 4)},
    }),
    dict(obj="lpm_trie", runs=[run("lpm_lookup", SYN, ret=2)],
         maps={"lpm_res": u32s(32, 24, 16, 8, 0, 32, 0, 24, -2, -22),
               # key = struct { u32 prefixlen; u8 addr[4]; } read as a little-endian u64
               "routes": {8 | (0x0000000a << 32): 8, 16 | (0x0000010a << 32): 16,
                          24 | (0x0002010a << 32): 24}}),
    dict(obj="lpm_trie", runs=[run("lpm_lookup", UDP, ret=2)],
         maps={"lpm_res": u32s(32, 24, 16, 8, 0, 0, 0, 24, -2, -22)}),
    dict(obj="tailcall", runs=[
        run("tail_entry", SYN, ret=3), run("tail_fallthrough", SYN, ret=1),
        run("tail_stage1", SYN, ret=3), run("tail_stage2", SYN, ret=3),
    ], maps={"tail_trace": {0: 0xf, 1: 2}}),
    dict(obj="events", runs=[
        run("events_perf", SYN, ret=2), run("events_ringbuf", SYN, ret=2),
    ], maps={
        "ev_res": u32s(-2, 0, 1, 1, 0, 1, 64, 4096, 0, 64),
        "rb": ("ringbuf", [struct.pack("<IIII", 54, 0x0800, 0xfeedf00d, 0),
                           struct.pack("<II", 54, 0x0800)]),
    }),
    dict(obj="redirect", runs=[
        run("redir_devmap", SYN, ret=2), run("redir_devmap_hash", SYN, ret=1),
        run("redir_cpumap", SYN, ret=3), run("redir_xskmap", SYN, ret=2),
        run("redir_ifindex", SYN, ret=4, same=True), run("tc_redir_ingress", SYN, ret=7),
        # user space fills tx_devmap[0] = 1 (lo) and cpu_map[0] = {qsize 128}
        dict(setup=[("tx_devmap", "0 0 0 0", "1 0 0 0"),
                    ("cpu_map", "0 0 0 0", "0x80 0 0 0 0 0 0 0")]),
        run("redir_devmap", SYN, ret=4), run("redir_cpumap", SYN, ret=4),
    ]),
    dict(obj="map_in_map", runs=[run("mim_inner", SYN, ret=2)], maps={
        "inner_a": {0: 1}, "inner_b": {0: 0xb0b}, "mim_res": u32s(1, 1, 1, 0xb0b)}),
    dict(obj="legacy_maps", load_fails="libbpf"),
    dict(obj="legacy_maps", variant="-DBPFLAB_BTF_MAPS", runs=[
        run("legacy_count", SYN, ret=2)], maps={
        "legacy_stats": {0: 1, 1: 54}, "legacy_seen": {0x0800: 54}}),
    dict(obj="globals", runs=[run("globals_rw", SYN, ret=2), run("globals_rw", SYN, ret=1)],
         maps={
        "globals_data": {0: struct.pack("<IIQQ", 0x11111111, 0x22222224,
                                        0x3333333333333333, 0x4444444444444448)},
        "globals_rodata": {0: struct.pack("<IIQ", 0xa1, 0xb2, 0xc3c3c3c3c3c3c3c3)},
        "globals_bss": {0: struct.pack("<IxxxxQI", 0, 54, 0xc0ffee)[:20]},
        "_data_custom": {0: struct.pack("<II", 0x5a5a, 0xb2 + 0x5a5a)},
        "_rodata_str1_1": {0: b"bpflab-literal!\0"},
        "strs": {0: b"bpflab-literal!\0"},
    }),
    dict(obj="callbacks", runs=[run("cb_loop", SYN, ret=2), run("cb_for_each", SYN, ret=2)],
         maps={"cb_res": u32s(10, 45, 6, 5, 0, -22, 4, 10, 6, 3, 3, 60, 600),
               "cb_arr": {0: 2, 1: 4, 2: 6, 3: 8},
               "cb_hash": {10: 100, 20: 200, 30: 300}}),
    dict(obj="helpers_misc", runs=[
        run("misc_time", SYN, ret=0x1f), run("misc_random_cpu", SYN, ret=2),
        run("misc_print", SYN, ret=2), run("misc_spin_lock", SYN, ret=2),
    ], maps={
        "misc_res": {1: 7, 2: 30, 3: 34, 4: 23},
        "misc_str": {0: b"len=54 proto=800 dst=10.1.2.3".ljust(64, b"\0")},
        "locked": {0: struct.pack("<IIQ", 0, 1, 54)},
    }, trace=["bpf_trace_printk: bpflab: len=54 proto=0x800 first=2",
              "bpf_trace_printk: bpflab: vprintk 1 2 3 4"]),
    dict(obj="core", runs=[
        run("core_xdp", SYN, ret=2), run("core_xdp", UDP, ret=0),
        run("core_task", ctx=RAWTP, ret=0xf), run("core_kprobe", SYN, errno=ENOTSUPP),
    ], maps={"core_res": u32s(4, 5, 5, 1, 0, 1, 0, 2, 4, 16, 1, 0, 20, 3, 1, 27, 0)}),
    dict(obj="skb_helpers", runs=[
        run("skb_swap_macs", UDP, ret=0, out="skb_swap_macs__ipv4_udp.bin"),
        run("skb_pull_bcast", UDP, ret=0, out="skb_pull_bcast__ipv4_udp.bin"),
        run("skb_grow_tail", UDP, ret=0, out="skb_grow_tail__ipv4_udp.bin"),
        run("skb_shrink_tail", UDP, ret=0, out="skb_shrink_tail__ipv4_udp.bin"),
        run("skb_room_net", UDP, ret=0, out="skb_room_net__ipv4_udp.bin"),
        run("skb_room_mac", UDP, ret=0, out="skb_room_mac__ipv4_udp.bin"),
        run("skb_to_ipv6", UDP, ret=0, out="skb_to_ipv6__ipv4_udp.bin"),
        run("skb_vlan", VLAN, ret=0, out="skb_vlan__vlan_ipv4_udp.bin"),
    ], maps={"skb_res": u32s(0xdd86, 0, 1, 200, 8, 0, 0, 0, 0, 0, 0, 0, 0)}),
    dict(obj="csum", runs=[
        run("csum_nat", SYN, ret=0, out="csum_nat__ipv4_tcp_syn.bin"),
        run("csum_nat_diff", SYN, ret=0, out="csum_nat_diff__ipv4_tcp_syn.bin"),
        run("csum_verify", SYN, ret=0, same=True),
    ], maps={"csum_res": u32s(0xffff, 0xffff, 3078, 3078)}),
    dict(obj="net_lookup", runs=[run("net_lookups", SYN, ret=0)],
         maps={"net_res": {1: -19, 2: 0, 3: 0, 4: 1}}, fib_slot0=(4, 5)),
    # Its arrays hold 50 million elements: `bpftool map dump` is out of reach, so only the
    # verdicts here; tests/huge_maps.rs compares the elements the runs touch.
    dict(obj="huge_maps", runs=[
        run("balancer_ingress", UDP, ret=3, same=True),
        run("balancer_ingress", SYN, ret=3, same=True),
        run("balancer_ingress", V6, ret=2, same=True),
        run("balancer_ingress", ARP, ret=2, same=True),
        run("balancer_ingress", RUNT, errno=22),
    ]),
]


class Failure(Exception):
    pass


def sh(*args, check=True):
    p = subprocess.run(args, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise Failure("%s failed: %s" % (" ".join(args), (p.stderr or p.stdout)[-2000:]))
    return p


def le(v: int, size: int) -> bytes:
    return (v & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def dump_map(path: Path):
    out = sh("bpftool", "-j", "map", "dump", "pinned", str(path)).stdout
    entries = {}
    for e in json.loads(out):
        if not isinstance(e.get("value", e.get("values")), list):
            continue  # e.g. sockmap slots dump as {"key": .., "value": "<no entry>"}
        kb = bytes(int(b, 16) for b in e["key"])
        key = int.from_bytes(kb, "little") if len(kb) <= 8 else kb
        if "values" in e:
            entries[key] = [bytes(int(b, 16) for b in c["value"]) for c in e["values"]]
        else:
            entries[key] = bytes(int(b, 16) for b in e["value"])
    return entries


def read_ringbuf(path: Path):
    fd = testrun.obj_get(str(path))
    try:
        page = mmap.PAGESIZE
        cons = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        size = 4096
        prod = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        cons_pos, = struct.unpack_from("<Q", cons, 0)
        prod_pos, = struct.unpack_from("<Q", prod, 0)
        recs = []
        pos = cons_pos
        while pos < prod_pos:
            hdr_len, _pgoff = struct.unpack_from("<II", prod, page + (pos & (size - 1)))
            busy, discard, n = hdr_len >> 31, (hdr_len >> 30) & 1, hdr_len & 0x3fffffff
            if busy:
                raise Failure("ringbuf record still busy")
            if not discard:
                off = page + (pos & (size - 1)) + 8
                recs.append(bytes(prod[off:off + n]))
            pos += (8 + n + 7) & ~7
        return recs
    finally:
        os.close(fd)


def check_maps(case, mapdir: Path, log):
    for name, want in case.get("maps", {}).items():
        path = mapdir / name
        if isinstance(want, tuple) and want[0] == "pop":
            got = []
            while True:
                p = sh("bpftool", "-j", "map", "pop", "pinned", str(path), check=False)
                if p.returncode != 0 or p.stdout.strip() in ("", "null"):
                    break
                got.append(int.from_bytes(bytes(int(b, 16) for b in json.loads(p.stdout)["value"]),
                                          "little"))
            if got != want[1]:
                raise Failure("map %s pops %s, want %s" % (name, got, want[1]))
            log.append("    map %-16s pops %s" % (name, got))
            continue
        if isinstance(want, tuple) and want[0] == "ringbuf":
            got = read_ringbuf(path)
            if got != want[1]:
                raise Failure("ringbuf %s records %s, want %s" % (
                    name, [g.hex() for g in got], [w.hex() for w in want[1]]))
            log.append("    map %-16s %d records %s" % (name, len(got), [g.hex() for g in got]))
            continue
        got = dump_map(path)
        if want is None:
            if got:
                raise Failure("map %s should be empty, has %s" % (name, got))
            log.append("    map %-16s empty" % name)
            continue
        for key, w in want.items():
            if key not in got:
                raise Failure("map %s: key %s missing (have %s)" % (name, key, sorted(got)))
            g = got[key]
            if isinstance(w, tuple) and w[0] == "sum":
                total = sum(int.from_bytes(c, "little") for c in g)
                ok = total == w[1]
                shown = "sum %d over cpus %s" % (total, [int.from_bytes(c, "little") for c in g])
            elif isinstance(w, bytes):
                ok = g == w
                shown = g.hex()
            else:
                ok = g == le(w, len(g))
                shown = str(int.from_bytes(g, "little", signed=w < 0))
            if not ok:
                raise Failure("map %s[%s] = %s, want %s" % (name, key, shown, w))
        if name in ("hash", "lru", "lru_pcpu", "cb_hash", "legacy_seen", "routes") and set(got) != set(want):
            raise Failure("map %s has keys %s, want %s" % (name, sorted(got), sorted(want)))
        log.append("    map %-16s ok %s" % (name, {k: (v.hex() if isinstance(v, bytes) else
                                                     [c.hex() for c in v])
                                                 for k, v in sorted(got.items(), key=str)}
                                             if len(str(got)) < 400 else "(%d entries)" % len(got)))


def build_variant(obj: str, flag: str, tmp: Path) -> Path:
    out = tmp / ("%s_variant.bpf.o" % obj)
    sh("clang-19", "-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86",
       "-I/usr/include/x86_64-linux-gnu", flag, "-c", str(HERE / ("%s.bpf.c" % obj)), "-o",
       str(out))
    return out


def run_case(case, tmp: Path, log) -> None:
    obj = case["obj"]
    objfile = HERE / ("%s.bpf.o" % obj)
    if "variant" in case:
        objfile = build_variant(obj, case["variant"], tmp)
    pin = BPFFS / ("bpflab_" + obj)
    mapdir = BPFFS / ("bpflab_%s_maps" % obj)
    cleanup(pin, mapdir)
    mapdir.mkdir()
    args = ["bpftool", "prog", "loadall", str(objfile), str(pin)]
    if case.get("type"):
        args += ["type", case["type"]]
    args += ["pinmaps", str(mapdir)]
    p = sh(*args, check=False)
    try:
        if case.get("load_fails"):
            if p.returncode == 0:
                raise Failure("%s loaded, but this kernel was expected to refuse it" % obj)
            why = "Operation not permitted" if case["load_fails"] == "EPERM" else \
                "legacy map definitions"
            if why not in p.stderr:
                raise Failure("%s failed to load for another reason:\n%s" % (obj, p.stderr[-1500:]))
            log.append("  %s: load refused as expected (%s)" % (obj, why))
            return
        if p.returncode != 0:
            raise Failure("%s: verifier/loader rejected it:\n%s" % (obj, p.stderr[-3000:]))
        progs = sorted(os.listdir(pin))
        log.append("  %s%s: loaded %s" % (obj, " " + case["variant"] if "variant" in case else "",
                                         ", ".join(progs)))
        if case.get("trace") and TRACE.exists():
            TRACE.write_text("")
        for r in case.get("runs", []):
            if "setup" in r:
                for m, k, v in r["setup"]:
                    sh("bpftool", "map", "update", "pinned", str(mapdir / m), "key", *k.split(),
                       "value", *v.split())
                    log.append("    setup: %s[%s] = %s" % (m, k, v))
                continue
            fd = testrun.obj_get(str(pin / r["prog"]))
            data = (PK / r["data"]).read_bytes() if r["data"] else None
            ctx = r["ctx"]
            if isinstance(ctx, str):
                ctx = (PK / ctx).read_bytes()
            res = testrun.test_run(fd, data, ctx, ctx_out=r["ctx_out"] is not None)
            os.close(fd)
            what = "%s(%s)" % (r["prog"], r["data"] or r["ctx"])
            if r["data"] and r["ctx"] is not None:
                what = "%s(%s, ctx)" % (r["prog"], r["data"])
            if res["errno"] != r["errno"]:
                raise Failure("%s: errno %d, want %d" % (what, res["errno"], r["errno"]))
            if r["errno"]:
                log.append("    %-44s errno %d%s" % (what, res["errno"],
                                                     " (%s)" % r["note"] if r["note"] else ""))
                continue
            if res["retval"] != r["ret"]:
                raise Failure("%s: retval %d, want %d" % (what, res["retval"], r["ret"]))
            line = "    %-44s retval %d" % (what, res["retval"])
            if r["ctx_out"]:
                off, size, val = r["ctx_out"]
                got_ctx = bytes.fromhex(res.get("ctx_out", ""))
                v = int.from_bytes(got_ctx[off:off + size], "little")
                if v != val:
                    raise Failure("%s: ctx_out[%d:%d] = %#x, want %#x" % (what, off, off + size,
                                                                         v, val))
                line += ", ctx_out %s = %#x" % (r["note"] or "@%d" % off, v)
            got = bytes.fromhex(res.get("data_out", ""))
            if r["out"]:
                want = (EXP / r["out"]).read_bytes()
                if got != want:
                    raise Failure("%s: data_out\n  %s\nwant\n  %s" % (what, got.hex(), want.hex()))
                line += ", data_out == expected/%s" % r["out"]
            elif r["same"]:
                if got != data:
                    raise Failure("%s: data_out changed: %s" % (what, got.hex()))
                line += ", data_out unchanged"
            log.append(line)
        check_maps(case, mapdir, log)
        if "fib_slot0" in case:
            v = int.from_bytes(dump_map(mapdir / "net_res")[0], "little", signed=True)
            if v not in case["fib_slot0"]:
                raise Failure("net_res[0] = %d, want one of %s" % (v, case["fib_slot0"]))
            log.append("    net_res[0] (fib_lookup lo) = %d (lo forwarding=%s)" % (
                v, Path("/proc/sys/net/ipv4/conf/lo/forwarding").read_text().strip()))
        if case.get("trace") and TRACE.exists():
            text = TRACE.read_text()
            for line in case["trace"]:
                if line not in text:
                    raise Failure("trace line missing: %r\n%s" % (line, text[-1500:]))
                log.append("    trace: %s" % line)
    finally:
        cleanup(pin, mapdir)


def cleanup(*paths):
    for p in paths:
        if p.exists():
            subprocess.run(["rm", "-rf", str(p)], check=True)


def main() -> int:
    if os.geteuid() != 0:
        print("kernel_check.py needs root", file=sys.stderr)
        return 2
    if not os.path.ismount(BPFFS):
        sh("mount", "-t", "bpf", "bpf", str(BPFFS))
    if not TRACE.exists() and os.path.isdir("/sys/kernel/tracing"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"])
    only = set(sys.argv[1:])
    failed = 0
    if subprocess.run([sys.executable, str(PK / "make_packets.py"), "--check"]).returncode:
        print("packets/ differ from make_packets.py: run `make packets`")
        failed += 1
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if only and case["obj"] not in only:
                continue
            log = []
            try:
                run_case(case, Path(tmp), log)
                print("\n".join(log))
            except Failure as e:
                failed += 1
                print("\n".join(log))
                print("  FAIL %s: %s" % (case["obj"], e))
    print("kernel_check: %s" % ("all expectations hold" if not failed else
                                "%d case(s) FAILED" % failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
