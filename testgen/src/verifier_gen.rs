//! Proptest generators of random programs for the verifier: valid ones and deliberately broken
//! ones, for `socket_filter`, `xdp` and `sched_cls` programs with an array, a hash and a ring
//! buffer map.
//!
//! A program is a prologue (`r6` = the context, `r7` = `bpf_get_prandom_u32()`, `r8` = a
//! constant, `r9` = a scalar context field), a sequence of *snippets* and `r0 = K; exit`.
//! Snippets keep `r6`..`r9` as they are (scalars in `r7`..`r9`) and use `r0`..`r5` as
//! temporaries; each uses its own stack area, so none initialises another's stack by
//! accident. A snippet is ALU on the scalars (also on pointers), stack stores and loads (also
//! at variable offsets), a map lookup with a null check and a value access (also at a bounded
//! variable offset, also through a spill and fill of the pointer), a map update, a packet
//! access proven against `data_end` (also from a pointer moved by a bounded scalar), a
//! `bpf_sk_lookup_tcp` with its `bpf_sk_release`, a ring buffer record reserved, written and
//! submitted or discarded, a loop (constant trip count, or a count bounded by a mask), or a
//! branch (JMP or JMP32, against a constant or another scalar) around other snippets.
//!
//! Each snippet may be broken in one of the ways its [`Defect`] names: an uninitialised
//! register or stack read, an access out of the stack, a map value or a packet, a missing null
//! check, a reference never released, a bad helper argument, a context access the type does
//! not allow, pointer arithmetic the kernel refuses, an infinite loop. The defects are what
//! the generator *intends*; whether a program is really rejected is for the verifiers to say.
//!
//! Programs are written as assembly text (labels for jumps), which is what a failing test
//! prints as the reproducer; [`VerifierProgram::collection`] assembles it with the maps.

use std::fmt::{self, Write as _};

use bpflab_vm::{Collection, MapSpec, MapType, ProgType, Program};
use proptest::prelude::*;

/// The program types programs are generated for.
pub const PROG_TYPES: [ProgType; 3] = [ProgType::SocketFilter, ProgType::Xdp, ProgType::SchedCls];

/// Value size of the array (map 0) and hash (map 1) maps.
pub const VALUE_SIZE: u32 = 16;
/// Entries of the array map (map 0); keys `0..ARRAY_ENTRIES` hit.
pub const ARRAY_ENTRIES: u32 = 4;
/// Entries of the hash map (map 1).
pub const HASH_ENTRIES: u32 = 8;
/// Bytes of the ring buffer (map 2).
pub const RINGBUF_BYTES: u32 = 4096;
/// The IPv4 address and port (host order) the socket lookups ask for, as the destination
/// (the local end): a test may listen there so that lookups find a socket.
pub const LOOKUP_DST: ([u8; 4], u16) = ([127, 0, 0, 1], 80);

/// The maps every generated program may use: `map[idx:0]` an array (`u32` key, 16-byte
/// value, 4 entries), `map[idx:1]` a hash (`u32` key, 16-byte value, 8 entries),
/// `map[idx:2]` a 4096-byte ring buffer.
pub fn maps() -> Vec<MapSpec> {
    vec![
        MapSpec::new("arr", MapType::Array, 4, VALUE_SIZE, ARRAY_ENTRIES),
        MapSpec::new("hash", MapType::Hash, 4, VALUE_SIZE, HASH_ENTRIES),
        MapSpec::new("rb", MapType::Ringbuf, 0, 0, RINGBUF_BYTES),
    ]
}

/// A way a snippet is deliberately broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// A read of a register no path initialised (clobbered by a call).
    UninitReg,
    /// A read of stack never written.
    UninitStack,
    /// A stack access outside the 512-byte frame.
    StackOob,
    /// A stack access at an unbounded variable offset.
    StackVarOob,
    /// A map value access past the value's end (or before its start).
    MapOob,
    /// A map value access at an unbounded variable offset.
    MapVarOob,
    /// A dereference of `bpf_map_lookup_elem`'s result without a null check.
    MissingNullCheck,
    /// A packet access past the range proven against `data_end`, or with no check at all.
    PacketOob,
    /// A context field the program type may not access that way.
    CtxAccess,
    /// A socket or ring buffer record acquired and never released.
    LeakRef,
    /// A socket or record used (or released) without a null check, or used after release.
    RefMisuse,
    /// A helper argument of the wrong kind or size.
    BadHelperArg,
    /// Arithmetic on a pointer the kernel refuses.
    PtrArith,
    /// A loop that never ends.
    InfiniteLoop,
}

impl Defect {
    /// The defect's name in reports (`uninit_reg`, `map_oob`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Defect::UninitReg => "uninit_reg",
            Defect::UninitStack => "uninit_stack",
            Defect::StackOob => "stack_oob",
            Defect::StackVarOob => "stack_var_oob",
            Defect::MapOob => "map_oob",
            Defect::MapVarOob => "map_var_oob",
            Defect::MissingNullCheck => "missing_null_check",
            Defect::PacketOob => "packet_oob",
            Defect::CtxAccess => "ctx_access",
            Defect::LeakRef => "leak_ref",
            Defect::RefMisuse => "ref_misuse",
            Defect::BadHelperArg => "bad_helper_arg",
            Defect::PtrArith => "ptr_arith",
            Defect::InfiniteLoop => "infinite_loop",
        }
    }
}

/// One scalar register of the snippets (`r7`, `r8`, `r9`).
fn sreg() -> impl Strategy<Value = u8> {
    7u8..=9
}

/// Access sizes with their assembly names and byte counts.
const SIZES: [(&str, i32); 4] = [("u8", 1), ("u16", 2), ("u32", 4), ("u64", 8)];

/// A generated snippet; see the module documentation.
#[derive(Clone, Debug)]
enum Snippet {
    /// `rD op= rS|imm` (64 or 32 bits); broken: an operand clobbered by a call, or a pointer
    /// operation the kernel refuses.
    Alu { w32: bool, op: usize, dst: u8, src: Result<u8, i32>, defect: Option<Defect> },
    /// A store to an 8-byte-aligned slot and a load back, or a store at a bounded variable
    /// offset.
    Stack { slot: i32, size: usize, reg: u8, var: bool, defect: Option<Defect> },
    /// `bpf_map_lookup_elem(map, &key)`, null check, a load or store in the value.
    MapLookup {
        map: u8,
        key: i32,
        size: usize,
        off: i32,
        var: bool,
        write: bool,
        spill: bool,
        defect: Option<Defect>,
    },
    /// `bpf_map_update_elem(map, &key, &value, flags)`.
    MapUpdate { map: u8, key: i32, flags: i32, defect: Option<Defect> },
    /// A packet access of `size` bytes at `off` after proving `len` bytes against `data_end`
    /// (from a packet pointer moved by a bounded scalar when `var`).
    Packet { len: i32, off: i32, size: usize, write: bool, var: bool, defect: Option<Defect> },
    /// `bpf_sk_lookup_tcp` of a tuple, null check, a field read, `bpf_sk_release`.
    SkLookup { sport: u16, read: bool, defect: Option<Defect> },
    /// `bpf_ringbuf_reserve`, null check, a store, submit or discard.
    Ringbuf { size: i32, off: i32, discard: bool, defect: Option<Defect> },
    /// A loop on `r9`: a constant trip count, or one bounded by a mask of `r7`.
    Loop { trips: i32, masked: bool, body: Vec<Snippet>, defect: Option<Defect> },
    /// `if rX cond K|rY goto end; body...; end:` (JMP or JMP32).
    Branch { reg: u8, cond: usize, imm: i32, src: Option<u8>, w32: bool, body: Vec<Snippet> },
}

const ALU_OPS: [&str; 11] = ["+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", "<<=", ">>=", "s>>="];
const CONDS: [&str; 10] = ["==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<="];

/// Context offsets of one program type.
struct CtxOffsets {
    /// A readable 4-byte scalar field.
    scalar: i32,
    /// `data` and `data_end`, where direct packet access is allowed.
    packet: Option<(i32, i32)>,
    /// A field the type may not write (or read) this way, with the access.
    refused: &'static str,
}

fn ctx_offsets(t: ProgType) -> CtxOffsets {
    match t {
        // __sk_buff: len at 0, data 76, data_end 80.
        ProgType::SchedCls => {
            CtxOffsets { scalar: 0, packet: Some((76, 80)), refused: "*(u32 *)(r6 +0) = r7" }
        }
        // xdp_md: data 0, data_end 4, rx_queue_index 16.
        ProgType::Xdp => {
            CtxOffsets { scalar: 16, packet: Some((0, 4)), refused: "*(u32 *)(r6 +16) = r7" }
        }
        // A socket filter may not read skb->data.
        _ => CtxOffsets { scalar: 0, packet: None, refused: "r2 = *(u32 *)(r6 +76)" },
    }
}

/// A random generated program for the verifier; see the module documentation.
#[derive(Clone)]
pub struct VerifierProgram {
    prog_type: ProgType,
    r8: i32,
    snippets: Vec<Snippet>,
    ret: i32,
}

/// Writes assembly, numbering labels.
struct Writer<'a> {
    out: String,
    labels: usize,
    ctx: &'a CtxOffsets,
    prog_type: ProgType,
}

impl Writer<'_> {
    fn line(&mut self, s: impl AsRef<str>) {
        self.out.push_str(s.as_ref());
        self.out.push('\n');
    }

    fn label(&mut self) -> String {
        self.labels += 1;
        format!("l{}", self.labels)
    }

    fn snippet(&mut self, s: &Snippet) {
        match *s {
            Snippet::Alu { w32, op, dst, src, defect } => {
                let r = if w32 { 'w' } else { 'r' };
                let op = ALU_OPS[op % ALU_OPS.len()];
                match defect {
                    Some(Defect::UninitReg) => {
                        self.line("call bpf_get_prandom_u32");
                        self.line(format!("{r}{dst} {op} {r}3"));
                    }
                    Some(Defect::PtrArith) => {
                        // Multiplying or or-ing a pointer is refused; so is a 32-bit ALU op.
                        self.line("r2 = r10");
                        self.line(format!("{r}2 {} {r}{dst}", if w32 { "+=" } else { op }));
                        self.line("r0 = *(u64 *)(r2 -8)");
                    }
                    _ => match src {
                        Ok(s) => self.line(format!("{r}{dst} {op} {r}{s}")),
                        Err(imm) => {
                            let bits = if w32 { 32 } else { 64 };
                            let imm = match op {
                                "<<=" | ">>=" | "s>>=" => imm.rem_euclid(bits),
                                "/=" | "%=" if imm == 0 => 3,
                                _ => imm,
                            };
                            self.line(format!("{r}{dst} {op} {imm}"));
                        }
                    },
                }
            }
            Snippet::Stack { slot, size, reg, var, defect } => {
                let (ty, bytes) = SIZES[size % SIZES.len()];
                // Slots 8..16 below r10: -72 .. -128.
                let off = -64 - 8 * slot;
                match defect {
                    Some(Defect::UninitStack) => self.line(format!("r{reg} = *({ty} *)(r10 -400)")),
                    Some(Defect::StackOob) => {
                        let bad = if slot % 2 == 0 { -512 - bytes } else { 8 * (slot % 3) };
                        self.line(format!("*({ty} *)(r10 {bad:+}) = r{reg}"));
                    }
                    Some(Defect::StackVarOob) => {
                        self.line("r2 = r10");
                        self.line("r2 += r7");
                        self.line(format!("*({ty} *)(r2 -8) = r{reg}"));
                    }
                    _ if var => {
                        self.line(format!("r3 = r{reg}"));
                        self.line("r3 &= 7");
                        self.line("r2 = r10");
                        self.line(format!("r2 += {}", off - 8));
                        self.line("r2 += r3");
                        self.line(format!("*(u8 *)(r2 +0) = r{reg}"));
                    }
                    _ => {
                        self.line(format!("*({ty} *)(r10 {off}) = r{reg}"));
                        self.line(format!("r{reg} = *({ty} *)(r10 {off})"));
                    }
                }
            }
            Snippet::MapLookup { map, key, size, off, var, write, spill, defect } => {
                let (ty, bytes) = SIZES[size % SIZES.len()];
                let end = self.label();
                if defect == Some(Defect::UninitStack) {
                    // The key slot is never written: a key of uninitialised stack.
                    self.line("r2 = r10");
                    self.line("r2 += -300");
                } else {
                    self.line(format!("*(u32 *)(r10 -4) = {key}"));
                    self.line("r2 = r10");
                    self.line("r2 += -4");
                }
                if defect == Some(Defect::BadHelperArg) {
                    self.line("r2 = r7");
                }
                self.line(format!("r1 = map[idx:{map}]"));
                self.line("call bpf_map_lookup_elem");
                if defect != Some(Defect::MissingNullCheck) {
                    self.line(format!("if r0 == 0 goto {end}"));
                }
                if spill {
                    // The value pointer spilled to the stack and filled back.
                    self.line("*(u64 *)(r10 -32) = r0");
                    self.line("r0 = 0");
                    self.line("r0 = *(u64 *)(r10 -32)");
                }
                let span = VALUE_SIZE as i32 - bytes;
                let mut off = off.rem_euclid(span + 1);
                if defect == Some(Defect::MapOob) {
                    off = if key % 2 == 0 { span + 1 + off % 8 } else { -bytes };
                }
                if var || defect == Some(Defect::MapVarOob) {
                    self.line("r1 = r7");
                    if defect != Some(Defect::MapVarOob) {
                        self.line("r1 &= 7");
                        off = off.min(span - 7).max(0);
                        if span < 7 {
                            self.line("r1 &= 0");
                        }
                    }
                    self.line("r0 += r1");
                }
                if write {
                    self.line(format!("*({ty} *)(r0 {off:+}) = r8"));
                } else {
                    self.line(format!("r8 = *({ty} *)(r0 {off:+})"));
                }
                self.line(format!("{end}:"));
            }
            Snippet::MapUpdate { map, key, flags, defect } => {
                self.line(format!("*(u32 *)(r10 -4) = {key}"));
                if defect != Some(Defect::UninitStack) {
                    self.line("*(u64 *)(r10 -24) = r7");
                    self.line("*(u64 *)(r10 -16) = r8");
                }
                self.line("r2 = r10");
                self.line("r2 += -4");
                self.line("r3 = r10");
                self.line(if defect == Some(Defect::UninitStack) {
                    "r3 += -200"
                } else {
                    "r3 += -24"
                });
                if defect == Some(Defect::BadHelperArg) {
                    // The value pointer 8 bytes short of the value's size.
                    self.line("r3 += 16");
                }
                self.line(format!("r4 = {}", flags.rem_euclid(3)));
                self.line(format!("r1 = map[idx:{map}]"));
                self.line("call bpf_map_update_elem");
            }
            Snippet::Packet { len, off, size, write, var, defect } => {
                let (ty, bytes) = SIZES[size % SIZES.len()];
                let Some((data, data_end)) = self.ctx.packet else {
                    // Socket filters have no direct packet access: a broken snippet tries it
                    // (refused), a valid one reads a scalar field instead.
                    if defect.is_some() {
                        self.line(self.ctx.refused);
                    } else {
                        self.line(format!("r8 = *(u32 *)(r6 +{})", self.ctx.scalar));
                    }
                    return;
                };
                if defect == Some(Defect::CtxAccess) {
                    self.line(self.ctx.refused);
                    return;
                }
                let end = self.label();
                let len = len.max(bytes);
                let mut off = off.rem_euclid(len - bytes + 1);
                if defect == Some(Defect::PacketOob) && len % 2 == 0 {
                    off = len - bytes + 1 + off % 4;
                }
                self.line(format!("r2 = *(u32 *)(r6 +{data})"));
                self.line(format!("r3 = *(u32 *)(r6 +{data_end})"));
                if var {
                    self.line("r5 = r7");
                    self.line("r5 &= 15");
                    self.line("r2 += r5");
                }
                if !(defect == Some(Defect::PacketOob) && len % 2 == 1) {
                    self.line("r4 = r2");
                    self.line(format!("r4 += {len}"));
                    self.line(format!("if r4 > r3 goto {end}"));
                }
                if write {
                    self.line(format!("*({ty} *)(r2 +{off}) = r7"));
                } else {
                    self.line(format!("r8 = *({ty} *)(r2 +{off})"));
                }
                self.line(format!("{end}:"));
            }
            Snippet::SkLookup { sport, read, defect } => {
                if self.prog_type == ProgType::SocketFilter && defect.is_none() {
                    // Socket filters may not call bpf_sk_lookup_tcp: a valid snippet reads a
                    // scalar field instead (a broken one calls it anyway).
                    self.line(format!("r8 = *(u32 *)(r6 +{})", self.ctx.scalar));
                    return;
                }
                let end = self.label();
                let (ip, port) = LOOKUP_DST;
                self.line("*(u32 *)(r10 -48) = 0x0100000a");
                self.line(format!("*(u32 *)(r10 -44) = {:#x}", u32::from_le_bytes(ip)));
                self.line(format!("*(u16 *)(r10 -40) = {}", sport.to_be()));
                self.line(format!("*(u16 *)(r10 -38) = {}", port.to_be()));
                self.line("r2 = r10");
                self.line("r2 += -48");
                self.line(if defect == Some(Defect::BadHelperArg) { "r3 = r7" } else { "r3 = 12" });
                self.line("r4 = -1");
                self.line("r5 = 0");
                self.line("r1 = r6");
                self.line("call bpf_sk_lookup_tcp");
                if defect != Some(Defect::RefMisuse) || read {
                    self.line(format!("if r0 == 0 goto {end}"));
                }
                if read || defect == Some(Defect::RefMisuse) {
                    // bpf_sock's family.
                    self.line("r8 = *(u32 *)(r0 +4)");
                }
                if defect != Some(Defect::LeakRef) {
                    self.line("r1 = r0");
                    if defect == Some(Defect::RefMisuse) && read {
                        self.line("r3 = r0");
                    }
                    self.line("call bpf_sk_release");
                    if defect == Some(Defect::RefMisuse) && read {
                        // Use after release.
                        self.line("r8 = *(u32 *)(r3 +4)");
                    }
                }
                self.line(format!("{end}:"));
            }
            Snippet::Ringbuf { size, off, discard, defect } => {
                let end = self.label();
                let size = 8 * (1 + size.rem_euclid(8));
                self.line("r1 = map[idx:2]");
                self.line(if defect == Some(Defect::BadHelperArg) {
                    "r2 = r7".to_string()
                } else {
                    format!("r2 = {size}")
                });
                self.line("r3 = 0");
                self.line("call bpf_ringbuf_reserve");
                if defect != Some(Defect::RefMisuse) {
                    self.line(format!("if r0 == 0 goto {end}"));
                }
                let off = if defect == Some(Defect::MapOob) {
                    size + 8 * off.rem_euclid(2)
                } else {
                    8 * off.rem_euclid(size / 8)
                };
                self.line(format!("*(u64 *)(r0 +{off}) = r7"));
                if defect != Some(Defect::LeakRef) {
                    self.line("r1 = r0");
                    self.line("r2 = 0");
                    self.line(if discard {
                        "call bpf_ringbuf_discard"
                    } else {
                        "call bpf_ringbuf_submit"
                    });
                }
                self.line(format!("{end}:"));
            }
            Snippet::Loop { trips, masked, ref body, defect } => {
                let head = self.label();
                if defect == Some(Defect::InfiniteLoop) {
                    self.line(format!("{head}:"));
                    self.line("r9 = 1");
                    // Mostly a loop whose state repeats ("infinite loop detected"); one in
                    // eight changes the scalars on every trip, which the kernel walks until
                    // its 1,000,000-instruction limit (slow, so rarer).
                    if trips % 8 == 0 {
                        for s in body {
                            self.snippet(s);
                        }
                    }
                    self.line(format!("if r9 != 0 goto {head}"));
                    return;
                }
                if masked {
                    self.line("r9 = r7");
                    self.line(format!("r9 &= {}", trips.rem_euclid(16)));
                } else {
                    self.line(format!("r9 = {}", 1 + trips.rem_euclid(24)));
                }
                self.line(format!("{head}:"));
                for s in body {
                    self.snippet(s);
                }
                self.line("r9 -= 1");
                self.line(format!("if r9 s> 0 goto {head}"));
            }
            Snippet::Branch { reg, cond, imm, src, w32, ref body } => {
                let end = self.label();
                let r = if w32 { 'w' } else { 'r' };
                let rhs = src.map_or(imm.to_string(), |s| format!("{r}{s}"));
                self.line(format!("if {r}{reg} {} {rhs} goto {end}", CONDS[cond % CONDS.len()]));
                for s in body {
                    self.snippet(s);
                }
                self.line(format!("{end}:"));
            }
        }
    }
}

impl VerifierProgram {
    /// The program's type.
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// The defects the generator put in, in order of appearance (empty for a program meant
    /// to be valid).
    pub fn defects(&self) -> Vec<Defect> {
        fn walk(s: &[Snippet], out: &mut Vec<Defect>) {
            for s in s {
                match s {
                    Snippet::Alu { defect, .. }
                    | Snippet::Stack { defect, .. }
                    | Snippet::MapLookup { defect, .. }
                    | Snippet::MapUpdate { defect, .. }
                    | Snippet::Packet { defect, .. }
                    | Snippet::SkLookup { defect, .. }
                    | Snippet::Ringbuf { defect, .. } => out.extend(*defect),
                    Snippet::Loop { defect, body, .. } => {
                        out.extend(*defect);
                        walk(body, out);
                    }
                    Snippet::Branch { body, .. } => walk(body, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.snippets, &mut out);
        out
    }

    /// Whether the generator meant the program to be valid (no defect put in).
    pub fn intended_valid(&self) -> bool {
        self.defects().is_empty()
    }

    /// The program as assembly text (labels `lN:`).
    pub fn asm(&self) -> String {
        let ctx = ctx_offsets(self.prog_type);
        let mut w = Writer { out: String::new(), labels: 0, ctx: &ctx, prog_type: self.prog_type };
        w.line("r6 = r1");
        w.line("call bpf_get_prandom_u32");
        w.line("r7 = r0");
        w.line(format!("r8 = {}", self.r8));
        w.line(format!("r9 = *(u32 *)(r6 +{})", ctx.scalar));
        for s in &self.snippets {
            w.snippet(s);
        }
        let _ = write!(w.out, "r0 = {}\nexit\n", self.ret);
        w.out
    }

    /// The program and its maps ([`maps`]), assembled, named `gen`, licensed GPL.
    pub fn collection(&self) -> Collection {
        let insns = bpflab_vm::asm::assemble(&self.asm())
            .unwrap_or_else(|e| panic!("generated assembly does not assemble: {e}\n{self}"));
        let mut p = Program::raw("gen", insns).with_type(self.prog_type);
        p.license = "GPL".into();
        Collection { maps: maps(), ..Collection::single(p) }
    }
}

impl fmt::Display for VerifierProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "; {} program, defects: {:?}", self.prog_type.name(), self.defects())?;
        f.write_str(&self.asm())
    }
}

impl fmt::Debug for VerifierProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `None` most of the time, else one of `defects`.
fn maybe(defects: &'static [Defect], broken: u32) -> BoxedStrategy<Option<Defect>> {
    let pick = proptest::sample::select(defects).prop_map(Some);
    prop_oneof![100 - broken => Just(None), broken => pick].boxed()
}

/// How often (percent) a snippet is broken.
const BROKEN: u32 = 6;

fn leaf() -> BoxedStrategy<Snippet> {
    let alu = (
        any::<bool>(),
        0..ALU_OPS.len(),
        sreg(),
        prop_oneof![sreg().prop_map(Ok), any::<i32>().prop_map(Err)],
    )
        .prop_flat_map(|(w32, op, dst, src)| {
            maybe(&[Defect::UninitReg, Defect::PtrArith], BROKEN)
                .prop_map(move |defect| Snippet::Alu { w32, op, dst, src, defect })
        });
    let stack = (
        0i32..8,
        0..4usize,
        sreg(),
        any::<bool>(),
        maybe(&[Defect::UninitStack, Defect::StackOob, Defect::StackVarOob], BROKEN),
    )
        .prop_map(|(slot, size, reg, var, defect)| Snippet::Stack {
            slot,
            size,
            reg,
            var,
            defect,
        });
    let lookup = (
        0u8..2,
        0i32..10,
        0..4usize,
        0i32..16,
        any::<bool>(),
        any::<bool>(),
        maybe(
            &[
                Defect::MissingNullCheck,
                Defect::MapOob,
                Defect::MapVarOob,
                Defect::UninitStack,
                Defect::BadHelperArg,
            ],
            2 * BROKEN,
        ),
    )
        .prop_flat_map(|(map, key, size, off, var, write, defect)| {
            any::<bool>().prop_map(move |spill| Snippet::MapLookup {
                map,
                key,
                size,
                off,
                var,
                write,
                spill,
                defect,
            })
        });
    let update = (
        0u8..2,
        0i32..10,
        any::<i32>(),
        maybe(&[Defect::UninitStack, Defect::BadHelperArg], BROKEN),
    )
        .prop_map(|(map, key, flags, defect)| Snippet::MapUpdate { map, key, flags, defect });
    let packet = (
        1i32..64,
        any::<i32>(),
        0..4usize,
        any::<bool>(),
        any::<bool>(),
        maybe(&[Defect::PacketOob, Defect::CtxAccess], 2 * BROKEN),
    )
        .prop_map(|(len, off, size, write, var, defect)| Snippet::Packet {
            len,
            off,
            size,
            write,
            var,
            defect,
        });
    let sk = (
        any::<u16>(),
        any::<bool>(),
        maybe(&[Defect::LeakRef, Defect::RefMisuse, Defect::BadHelperArg], 2 * BROKEN),
    )
        .prop_map(|(sport, read, defect)| Snippet::SkLookup { sport, read, defect });
    let rb = (
        any::<i32>(),
        any::<i32>(),
        any::<bool>(),
        maybe(
            &[Defect::LeakRef, Defect::RefMisuse, Defect::BadHelperArg, Defect::MapOob],
            2 * BROKEN,
        ),
    )
        .prop_map(|(size, off, discard, defect)| Snippet::Ringbuf {
            size,
            off,
            discard,
            defect,
        });
    prop_oneof![
        4 => alu,
        2 => stack,
        3 => lookup,
        1 => update,
        3 => packet,
        1 => sk,
        1 => rb,
    ]
    .boxed()
}

/// Snippets inside loops: ALU and stack only, so loops stay cheap to verify.
fn loop_body() -> BoxedStrategy<Vec<Snippet>> {
    let alu = (
        any::<bool>(),
        0..ALU_OPS.len(),
        7u8..=8,
        prop_oneof![(7u8..=8).prop_map(Ok), any::<i32>().prop_map(Err)],
    )
        .prop_map(|(w32, op, dst, src)| Snippet::Alu { w32, op, dst, src, defect: None });
    let stack = (0i32..8, 0..4usize, 7u8..=8, any::<bool>())
        .prop_map(|(slot, size, reg, var)| Snippet::Stack { slot, size, reg, var, defect: None });
    proptest::collection::vec(prop_oneof![3 => alu, 1 => stack], 1..4).boxed()
}

fn snippet() -> BoxedStrategy<Snippet> {
    let lp = (any::<i32>(), any::<bool>(), loop_body(), maybe(&[Defect::InfiniteLoop], BROKEN))
        .prop_map(|(trips, masked, body, defect)| Snippet::Loop { trips, masked, body, defect });
    let branch = (
        sreg(),
        0..CONDS.len(),
        prop_oneof![0i32..64, any::<i32>()],
        prop_oneof![3 => Just(None), 1 => sreg().prop_map(Some)],
        any::<bool>(),
        proptest::collection::vec(leaf(), 1..4),
    )
        .prop_map(|(reg, cond, imm, src, w32, body)| Snippet::Branch {
            reg,
            cond,
            imm,
            src,
            w32,
            body,
        });
    prop_oneof![8 => leaf(), 1 => lp, 2 => branch].boxed()
}

/// A random program (valid most of the time, otherwise with one or more [`Defect`]s) of one
/// of [`PROG_TYPES`], of 1 to 12 snippets.
pub fn verifier_program() -> impl Strategy<Value = VerifierProgram> {
    (
        proptest::sample::select(&PROG_TYPES[..]),
        any::<i32>(),
        proptest::collection::vec(snippet(), 1..12),
        0i32..4,
    )
        .prop_map(|(prog_type, r8, snippets, ret)| VerifierProgram {
            prog_type,
            r8,
            snippets,
            ret,
        })
}

/// Instructions one run of [`run_checked`] may take: accepted programs end well before.
pub const RUN_BUDGET: u64 = 2_000_000;

/// A small xorshift64* generator for [`run_checked`]'s inputs.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Runs program 0 of `coll` (with the generated programs' [`maps`]) `runs` times in the
/// checked interpreter on inputs derived from `seed`: packets of random lengths (the first
/// 14 bytes, the shortest Ethernet frame), random array contents and hash entries,
/// `bpf_get_prandom_u32` reseeded per run, a TCP listener at [`LOOKUP_DST`] for half the
/// seeds. Returns the number of runs, or what went wrong: a fault (memory error, a helper
/// refusing its arguments, the budget exhausted), or socket references still held after a
/// run. The simulator's own gaps (helpers or kfuncs it does not implement) and inputs that
/// make no context for the type are not faults.
pub fn run_checked(coll: &Collection, seed: u64, runs: usize) -> Result<usize, String> {
    use bpflab_vm::interp::Config as VmConfig;
    use bpflab_vm::{EngineError, Interpreter, RunInput, VmErrorKind};
    let mut rng = Xorshift(seed | 1);
    let interp = Interpreter::new(
        VmConfig { insn_budget: RUN_BUDGET, ..VmConfig::default() },
        bpflab_vm::standard_helpers(),
    );
    let mut inst =
        interp.instantiate(coll).map_err(|e| format!("the interpreter refuses it: {e}"))?;
    let has_maps = coll.maps.len() == 3;
    if rng.next().is_multiple_of(2) {
        let (ip, port) = LOOKUP_DST;
        let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::from(ip), port));
        inst.world.tcp_listen(addr).map_err(|e| format!("listener: {e}"))?;
    }
    let mut done = 0;
    for r in 0..runs {
        if has_maps {
            let world = &mut inst.world;
            for key in 0..ARRAY_ENTRIES {
                let v = rng.bytes(VALUE_SIZE as usize);
                world.update(0, &key.to_le_bytes(), &v, 0).map_err(|e| format!("array: {e}"))?;
            }
            for key in 0u32..10 {
                let _ = world.delete(1, &key.to_le_bytes());
                if rng.next().is_multiple_of(2) {
                    // The hash holds 8: the last inserts may find it full, which is fine.
                    let _ = world.update(1, &key.to_le_bytes(), &rng.bytes(VALUE_SIZE as usize), 0);
                }
            }
        }
        inst.world.env = bpflab_vm::env::Env::with_seed(rng.next());
        let len = if r == 0 { 14 } else { (rng.next() % 161) as usize };
        let data = rng.bytes(len);
        let result = inst.run(0, &RunInput::data(data.clone()));
        let refs = inst.world.sock_refs_held();
        let fault = match &result {
            Ok(_) if refs != 0 => Some(format!("{refs} socket references held after the run")),
            Ok(_) => None,
            Err(EngineError::Fault(e)) => match e.kind() {
                VmErrorKind::UnknownHelper { .. }
                | VmErrorKind::Kfunc { .. }
                | VmErrorKind::UnknownKfunc { .. } => None,
                _ => Some(format!("fault: {e}")),
            },
            Err(EngineError::Context(_)) => None,
            Err(e) => Some(format!("error: {e}")),
        };
        if let Some(what) = fault {
            return Err(format!("run {r} on a {len}-byte packet {data:02x?}: {what}"));
        }
        done += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn generated_programs_assemble_and_have_their_maps() {
        let mut runner = TestRunner::deterministic();
        let mut broken = 0;
        for _ in 0..500 {
            let p = verifier_program().new_tree(&mut runner).unwrap().current();
            let coll = p.collection();
            assert_eq!(coll.maps.len(), 3);
            assert_eq!(coll.programs[0].prog_type, p.prog_type());
            assert!(coll.programs[0].insns.len() >= 7, "{p}");
            if !p.intended_valid() {
                broken += 1;
            }
        }
        assert!((50..450).contains(&broken), "{broken} of 500 broken");
    }
}
