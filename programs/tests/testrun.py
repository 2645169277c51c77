#!/usr/bin/env python3
"""Minimal BPF_PROG_TEST_RUN client (ctypes, no dependencies) for the fixture checks.

    testrun.py PINNED_PROG [--data FILE] [--ctx FILE] [--ctx-out] [--repeat N] [--data-out FILE]

Prints a JSON object: retval, errno (0 on success), data_out / ctx_out as hex. Unlike
`bpftool prog run`, it leaves repeat at 0 and passes no data buffers unless asked, which
raw_tp and sk_lookup test runs require.
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import struct
import sys

BPF_OBJ_GET = 7
BPF_PROG_TEST_RUN = 10
NR_BPF = 321  # x86_64

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    ret = _libc.syscall(NR_BPF, cmd, attr, len(attr))
    if ret < 0:
        return -ctypes.get_errno()
    return ret


def obj_get(path: str) -> int:
    p = ctypes.create_string_buffer(path.encode())
    attr = ctypes.create_string_buffer(struct.pack("<QII", ctypes.addressof(p), 0, 0), 128)
    fd = _bpf(BPF_OBJ_GET, attr)
    if fd < 0:
        raise OSError(-fd, os.strerror(-fd), path)
    return fd


def test_run(prog_fd: int, data: bytes = None, ctx: bytes = None, ctx_out: bool = False,
             repeat: int = 0, data_out_size: int = 65536, flags: int = 0, cpu: int = 0) -> dict:
    din = ctypes.create_string_buffer(data, len(data)) if data is not None else None
    dout = ctypes.create_string_buffer(data_out_size) if data is not None else None
    cin = ctypes.create_string_buffer(ctx, len(ctx)) if ctx is not None else None
    cout = ctypes.create_string_buffer(max(len(ctx), 256)) if (ctx is not None and ctx_out) else None

    def addr(b):
        return ctypes.addressof(b) if b is not None else 0

    attr = struct.pack(
        "<IIIIQQIIIIQQIII",
        prog_fd, 0,
        len(data) if data is not None else 0, len(dout) if dout is not None else 0,
        addr(din), addr(dout),
        repeat, 0,
        len(ctx) if ctx is not None else 0, len(cout) if cout is not None else 0,
        addr(cin), addr(cout),
        flags, cpu, 0)
    buf = ctypes.create_string_buffer(attr, 80)
    err = _bpf(BPF_PROG_TEST_RUN, buf)
    raw = buf.raw
    retval, = struct.unpack_from("<I", raw, 4)
    data_size_out, = struct.unpack_from("<I", raw, 12)
    ctx_size_out, = struct.unpack_from("<I", raw, 44)
    out = {"errno": -err if err < 0 else 0, "retval": retval}
    if err >= 0 and dout is not None:
        out["data_out"] = dout.raw[:data_size_out].hex()
    if err >= 0 and cout is not None:
        out["ctx_out"] = cout.raw[:ctx_size_out].hex()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("prog")
    ap.add_argument("--data")
    ap.add_argument("--ctx")
    ap.add_argument("--ctx-out", action="store_true")
    ap.add_argument("--repeat", type=int, default=0)
    ap.add_argument("--data-out")
    a = ap.parse_args()
    fd = obj_get(a.prog)
    data = open(a.data, "rb").read() if a.data else None
    ctx = open(a.ctx, "rb").read() if a.ctx else None
    r = test_run(fd, data, ctx, a.ctx_out, a.repeat)
    if a.data_out and "data_out" in r:
        open(a.data_out, "wb").write(bytes.fromhex(r["data_out"]))
    print(json.dumps(r))
    return 0 if r["errno"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
