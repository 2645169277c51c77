//! The encoding, the `Display` text and the assembler agree on every valid instruction, labels
//! resolve to the right offsets, and no input makes the assembler or the decoder panic.

use bpflab_vm::asm::{AsmError, AsmErrorKind, assemble, disassemble};
use bpflab_vm::isa::{
    AluOp, AtomicOp, ByteOrder, CallKind, Insn, JmpCond, MemSize, Operand, PseudoSrc, Reg, Width,
    decode_bytes, decode_program, encode_bytes, encode_program,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// A config running `cases` cases and writing no regression files.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Strategies

/// `v` itself, or (chosen by `k`) a small value or an edge of the `i32` range derived from it.
fn shaped32(v: i32, k: u8) -> i32 {
    const EDGES: [i32; 7] = [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
    match k % 4 {
        0 => v % 64,
        1 => EDGES[(v as u32 % 7) as usize],
        _ => v,
    }
}

/// `v` itself, or (chosen by `k`) a small value or an edge of the `i16` range derived from it.
fn shaped16(v: i16, k: u8) -> i16 {
    const EDGES: [i16; 7] = [i16::MIN, i16::MIN + 1, -1, 0, 1, i16::MAX - 1, i16::MAX];
    match k % 4 {
        0 => v % 64,
        1 => EDGES[(v as u16 % 7) as usize],
        _ => v,
    }
}

/// The raw choices an instruction is built from: variant, dst, src, two selectors, the shapes
/// of the numbers, two immediates and an offset.
type Fields = (u8, u8, u8, u8, u8, u8, i32, i32, i16);

/// Every valid instruction, covering every variant and every table row. (A flat tuple mapped by
/// [`build`] generates far faster in debug builds than nested unions.)
fn insn() -> impl Strategy<Value = Insn> {
    let selectors = (any::<u8>(), any::<u8>(), any::<u8>());
    (0..20u8, 0..=10u8, 0..=10u8, selectors, any::<i32>(), any::<i32>(), any::<i16>())
        .prop_map(|(v, d, s, (a, b, k), imm, imm2, off)| build((v, d, s, a, b, k, imm, imm2, off)))
}

/// Row `at` (modulo the length) of a table.
fn pick<T: Copy>(all: &[T], at: u8) -> T {
    all[usize::from(at) % all.len()]
}

/// The valid instruction `fields` choose: sign-extending moves only from registers and
/// `(s32)` only 64-bit, call offsets only for kfuncs, no `next_imm` where the decoder forbids
/// one, no sign-extending 64-bit load, atomics only on u32/u64.
fn build((variant, d, s, a, b, k, imm, imm2, off): Fields) -> Insn {
    use MemSize::{B, Dw, H, W};
    let (imm, imm2, off) = (shaped32(imm, k), shaped32(imm2, k >> 2), shaped16(off, k >> 4));
    let (dst, src) = (r(d), r(s));
    let width = if a & 1 == 0 { Width::W32 } else { Width::W64 };
    let operand = if a & 2 == 0 { Operand::Reg(src) } else { Operand::Imm(imm) };
    match variant {
        0..=2 => match pick(AluOp::ALL, b) {
            AluOp::Movsx32 => {
                Insn::Alu { width: Width::W64, op: AluOp::Movsx32, dst, src: Operand::Reg(src) }
            }
            op if op.is_movsx() => Insn::Alu { width, op, dst, src: Operand::Reg(src) },
            op => Insn::Alu { width, op, dst, src: operand },
        },
        3 => Insn::Neg { width, dst },
        4 => Insn::Endian {
            order: pick(&[ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap], b),
            bits: pick(&[16, 32, 64], a >> 2),
            dst,
        },
        5 | 6 => Insn::Jump { width, cond: pick(JmpCond::ALL, b), dst, src: operand, off },
        7 => Insn::Ja { off },
        8 => Insn::JaLong { imm },
        9 => {
            let kind = pick(CallKind::ALL, b);
            Insn::Call { kind, imm, off: if kind == CallKind::Kfunc { off } else { 0 } }
        }
        10 => Insn::Exit,
        11 | 12 => {
            let src = pick(PseudoSrc::ALL, b);
            let plain_tail = matches!(src, PseudoSrc::MapFd | PseudoSrc::MapIdx | PseudoSrc::Func);
            Insn::LdImm64 { dst, src, imm, next_imm: if plain_tail { 0 } else { imm2 } }
        }
        13 => Insn::LdAbs { size: pick(&[B, H, W], b), imm },
        14 => Insn::LdInd { size: pick(&[B, H, W], b), src, imm },
        15 | 16 => {
            let size = pick(MemSize::ALL, b);
            Insn::Load { size, signed: a & 2 != 0 && size != Dw, dst, src, off }
        }
        17 | 18 => Insn::Store { size: pick(MemSize::ALL, b), dst, off, src: operand },
        _ => {
            Insn::Atomic { size: pick(&[W, Dw], a >> 2), op: pick(AtomicOp::ALL, b), dst, src, off }
        }
    }
}

/// Programs of up to 64 instructions.
fn program() -> impl Strategy<Value = Vec<Insn>> {
    prop::collection::vec(insn(), 0..=64)
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The first slot of each instruction, plus the slot count at the end.
fn slot_starts(prog: &[Insn]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(prog.len() + 1);
    let mut slot = 0;
    for insn in prog {
        starts.push(slot);
        slot += insn.slots();
    }
    starts.push(slot);
    starts
}

/// True for the instructions whose offset a label can give.
fn is_branch(insn: &Insn) -> bool {
    insn.branch_offset().is_some()
}

/// `insn` with its branch offset replaced.
fn set_offset(insn: Insn, offset: i64) -> Insn {
    match insn {
        Insn::Jump { width, cond, dst, src, .. } => {
            Insn::Jump { width, cond, dst, src, off: offset.try_into().expect("small") }
        }
        Insn::Ja { .. } => Insn::Ja { off: offset.try_into().expect("small") },
        Insn::JaLong { .. } => Insn::JaLong { imm: offset.try_into().expect("small") },
        Insn::Call { kind, off, .. } => {
            Insn::Call { kind, imm: offset.try_into().expect("small"), off }
        }
        Insn::LdImm64 { dst, src, next_imm, .. } => {
            Insn::LdImm64 { dst, src, imm: offset.try_into().expect("small"), next_imm }
        }
        other => other,
    }
}

/// The text of a branch with its relative target replaced by `label`.
fn with_label(insn: &Insn, label: &str) -> String {
    let text = insn.to_string();
    let (body, ll) = match text.strip_suffix(" ll") {
        Some(body) => (body, " ll"),
        None => (text.as_str(), ""),
    };
    let (head, _rel) = body.rsplit_once(' ').expect("a branch has operands");
    format!("{head} {label}{ll}")
}

/// The label of instruction index `i`, in a few styles.
fn label_name(i: usize) -> String {
    match i % 3 {
        0 => format!(".LBB0_{i}"),
        1 => format!("loop_{i}"),
        _ => format!("L{i}"),
    }
}

/// Kernel verifier / bpftool listing style: `N: (op) text`, `(r10 -8)`, `goto pc+3`, no `ll`.
fn kernel_listing(prog: &[Insn]) -> String {
    let mut out = String::new();
    for (insn, slot) in prog.iter().zip(slot_starts(prog)) {
        let text = insn.to_string().replace(" + ", " +").replace(" - ", " -");
        let text = text.replace("goto +", "goto pc+").replace("goto -", "goto pc-");
        let text = text.replace("gotol +", "gotol pc+").replace("gotol -", "gotol pc-");
        let text = text.strip_suffix(" ll").unwrap_or(&text).to_owned();
        out.push_str(&format!("{slot:>4}: ({:02x}) {text}\n", insn.encode().0.code));
    }
    out
}

/// Applies `(position, deleted, inserted)` edits to the characters of `text`.
fn mutate(text: &str, edits: &[(Index, usize, String)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, del, ins) in edits {
        let at = at.index(chars.len() + 1);
        let end = (at + del).min(chars.len());
        chars.splice(at..end, ins.chars());
    }
    chars.into_iter().collect()
}

/// Pieces of assembly syntax for the token-soup inputs.
const SOUP: &[&str] = &[
    "r0",
    "r1",
    "w2",
    "r10",
    "r11",
    "w15",
    "=",
    "+=",
    "s/=",
    "s>>=",
    "-",
    "+",
    "*",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "#",
    "u8",
    "u32",
    "u64",
    "s16",
    "s64",
    "goto",
    "gotol",
    "if",
    "call",
    "exit",
    "lock",
    "pc",
    "kfunc",
    "ll",
    "map",
    "fd",
    "idx",
    "btf_id",
    "func",
    "skb",
    "be16",
    "bswap64",
    "le8",
    "atomic_fetch_add",
    "atomic64_cmpxchg",
    "atomic_add",
    "L1",
    "L1:",
    "3:",
    "(b7)",
    "0",
    "-1",
    "+3",
    "0x",
    "0xffffffff",
    "0x1ffffffff",
    "99999999999999999999999999999999999999999",
    "32768",
    "-32769",
    "s>=",
    "&",
    "==",
    "\n",
    ";",
    "#x",
    "//",
    "bpf_ktime_get_ns",
    "é",
    "\t",
];

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(2000))]

    /// (a) Decoding an encoding gives the instruction back.
    #[test]
    fn encode_decode_roundtrip(x in insn()) {
        prop_assert_eq!(decode_program(&encode_program(&[x])), Ok(vec![x]));
        prop_assert_eq!(decode_bytes(&encode_bytes(&[x])), Ok(vec![x]));
    }

    /// (b) Assembling an instruction's text gives the instruction back.
    #[test]
    fn display_assemble_roundtrip(x in insn()) {
        prop_assert_eq!(assemble(&x.to_string()), Ok(vec![x]), "text: {}", x);
    }

    /// (c) Assembling a disassembly gives the program back.
    #[test]
    fn disassemble_assemble_roundtrip(prog in program()) {
        let text = disassemble(&prog);
        prop_assert_eq!(assemble(&text), Ok(prog), "text:\n{}", text);
    }
}

proptest! {
    #![proptest_config(config(500))]

    /// Kernel-style listings (`N: (op)` prefixes, `(r10 -8)`, `goto pc+N`, no `ll`) assemble
    /// to the same program.
    #[test]
    fn kernel_listing_assembles(prog in program()) {
        let text = kernel_listing(&prog);
        prop_assert_eq!(assemble(&text), Ok(prog), "text:\n{}", text);
    }

    /// (d) Labels resolve to slot offsets relative to the next slot, `ld_imm64` counting two.
    #[test]
    fn labels_resolve(
        items in prop::collection::vec((insn(), any::<Index>(), any::<bool>()), 1..40),
        end_label_inline in any::<bool>(),
    ) {
        let n = items.len();
        let starts = slot_starts(&items.iter().map(|(insn, ..)| *insn).collect::<Vec<_>>());
        let mut expected = Vec::with_capacity(n);
        let mut text = String::new();
        for (i, (insn, target, own_line)) in items.iter().enumerate() {
            let sep = if *own_line { "\n" } else { " " };
            text.push_str(&format!("{}:{sep}", label_name(i)));
            if is_branch(insn) {
                let t = target.index(n + 1);
                let offset = starts[t] as i64 - (starts[i] as i64 + 1);
                let resolved = set_offset(*insn, offset);
                text.push_str(&with_label(insn, &label_name(t)));
                expected.push(resolved);
            } else {
                text.push_str(&insn.to_string());
                expected.push(*insn);
            }
            text.push_str("  // comment\n");
        }
        text.push_str(&format!("{}:{}", label_name(n), if end_label_inline { "" } else { "\n" }));
        let got = assemble(&text);
        prop_assert_eq!(&got, &Ok(expected.clone()), "text:\n{}", text);
        let decoded = decode_bytes(&encode_bytes(&expected));
        prop_assert_eq!(decoded, Ok(expected));
    }

    /// Arbitrary strings never make the assembler panic.
    #[test]
    fn assemble_never_panics_on_strings(s in any::<String>(), t in "[ -~\t\n]{0,200}") {
        let _ = assemble(&s);
        let _ = assemble(&t);
    }

    /// Soups of assembly tokens never make the assembler panic, and errors point into the text.
    #[test]
    fn assemble_never_panics_on_token_soup(
        toks in prop::collection::vec((select(SOUP), any::<bool>()), 0..40),
    ) {
        let text: String =
            toks.iter().map(|(t, space)| format!("{t}{}", if *space { " " } else { "" })).collect();
        if let Err(AsmError { line, column, .. }) = assemble(&text) {
            let lines: Vec<&str> = text.lines().collect();
            prop_assert!(line >= 1 && line <= lines.len().max(1), "line {} of {:?}", line, text);
            let len = lines.get(line - 1).map_or(0, |l| l.chars().count());
            prop_assert!(column >= 1 && column <= len + 1, "column {} of {:?}", column, text);
        }
    }

    /// Mutated disassembly never makes the assembler panic.
    #[test]
    fn assemble_never_panics_on_mutations(
        prog in prop::collection::vec(insn(), 1..12),
        edits in prop::collection::vec((any::<Index>(), 0..4usize, "[ -~é\n]{0,4}"), 1..6),
    ) {
        let _ = assemble(&mutate(&disassemble(&prog), &edits));
    }

    /// Random bytes never make the decoder panic.
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_bytes(&bytes);
    }

    /// Corrupted valid programs either fail to decode or re-encode to the same bytes (every
    /// accepted encoding is canonical).
    #[test]
    fn decoded_bytes_reencode_exactly(
        prog in prop::collection::vec(insn(), 1..16),
        flips in prop::collection::vec((any::<Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = encode_bytes(&prog);
        for (at, xor) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor;
        }
        if let Ok(insns) = decode_bytes(&bytes) {
            prop_assert_eq!(encode_bytes(&insns), bytes);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Examples

/// The assembler's result for `src`, which must succeed.
fn asm(src: &str) -> Vec<Insn> {
    match assemble(src) {
        Ok(insns) => insns,
        Err(e) => panic!("{src:?}: {e}"),
    }
}

/// The assembler's error for `src`, which must fail.
fn asm_err(src: &str) -> AsmError {
    match assemble(src) {
        Ok(insns) => panic!("{src:?} assembled to {insns:?}"),
        Err(e) => e,
    }
}

/// `rN` for a small N.
fn r(n: u8) -> Reg {
    Reg::new(n).expect("register")
}

#[test]
fn disassemble_format() {
    let prog = [
        Insn::ld_imm64(r(1), 0x1122_3344_5566_7788),
        Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: r(0), src: Operand::Imm(0) },
        Insn::Exit,
    ];
    assert_eq!(
        disassemble(&prog),
        "    0: r1 = 0x1122334455667788 ll\n    2: r0 = 0\n    3: exit\n"
    );
    assert_eq!(disassemble(&[]), "");
}

#[test]
fn tolerant_syntax() {
    let load = Insn::Load { size: MemSize::W, signed: false, dst: r(0), src: r(1), off: 4 };
    for text in [
        "r0 = *(u32 *)(r1 + 4)",
        "r0 = *(u32 *)(r1 +4)",
        "r0=*(u32*)(r1+0x4)",
        "  7: (61) r0 = *(u32 *)(r1 +4)",
        "(61) r0 = *(u32 *)(r1 + 4) ; comment",
        "r0 = *(u32 *)(r1 + 4) # comment",
        "r0 = *(u32 *)(r1 + 4) // comment",
        "w0 = *(u32 *)(r1 + 4)",
        "r0 = *(u32 *)(r1 - -4)",
    ] {
        assert_eq!(asm(text), vec![load], "{text}");
    }
    let store = Insn::Store { size: MemSize::Dw, dst: r(10), off: -8, src: Operand::Reg(r(1)) };
    assert_eq!(asm("*(u64 *)(r10 -8) = r1"), vec![store]);
    assert_eq!(asm("*(u64 *)(r10 - 8) = w1"), vec![store]);
    let zero = Insn::Load { size: MemSize::B, signed: false, dst: r(2), src: r(3), off: 0 };
    assert_eq!(asm("r2 = *(u8 *)(r3)"), vec![zero]);
    for text in ["goto +3", "goto pc+3", "goto 3", "goto 0x3"] {
        assert_eq!(asm(text), vec![Insn::Ja { off: 3 }], "{text}");
    }
    assert_eq!(asm("gotol pc-5"), vec![Insn::JaLong { imm: -5 }]);
    let minus_one = Operand::Imm(-1);
    let and = Insn::Alu { width: Width::W64, op: AluOp::And, dst: r(1), src: minus_one };
    assert_eq!(asm("r1 &= 0xffffffff"), vec![and]);
    assert_eq!(asm("r1 &= -1"), vec![and]);
    let jeq =
        Insn::Jump { width: Width::W32, cond: JmpCond::Eq, dst: r(1), src: minus_one, off: 1 };
    assert_eq!(asm("(16) if w1 == 0xffffffff goto pc+1"), vec![jeq]);
    let lock = Insn::Atomic { size: MemSize::W, op: AtomicOp::Add, dst: r(1), src: r(2), off: 0 };
    assert_eq!(asm("lock *(u32 *)(r1 + 0) += w2"), vec![lock]);
    let fetch =
        Insn::Atomic { size: MemSize::W, op: AtomicOp::FetchOr, dst: r(1), src: r(2), off: 0 };
    assert_eq!(asm("w2 = atomic_fetch_or((u32 *)(r1 +0), w2)"), vec![fetch]);
    // Blank lines, comment-only lines and listing-only lines are skipped.
    assert_eq!(asm("\n  ; x\n# y\n// z\n\t\n  5:\n"), vec![]);
    // Windows line endings.
    assert_eq!(asm("r0 = 1\r\nexit\r\n").len(), 2);
}

#[test]
fn kernel_ld_imm64_without_ll() {
    let text = "   0: (18) r1 = 0xffff888100000000\n   2: (18) r2 = map[fd:3]\n   4: (95) exit";
    assert_eq!(
        asm(text),
        vec![
            Insn::ld_imm64(r(1), 0xffff_8881_0000_0000),
            Insn::LdImm64 { dst: r(2), src: PseudoSrc::MapFd, imm: 3, next_imm: 0 },
            Insn::Exit,
        ]
    );
    assert_eq!(asm("r1 = -1 ll"), vec![Insn::ld_imm64(r(1), u64::MAX)]);
    assert_eq!(asm("r1 = 0xffffffffffffffff ll"), vec![Insn::ld_imm64(r(1), u64::MAX)]);
}

#[test]
fn calls() {
    let helper = |imm| Insn::Call { kind: CallKind::Helper, imm, off: 0 };
    assert_eq!(asm("call 5"), vec![helper(5)]);
    assert_eq!(asm("call bpf_ktime_get_ns"), vec![helper(5)]);
    assert_eq!(asm("(85) call bpf_ktime_get_ns#123456"), vec![helper(5)]);
    assert_eq!(asm("call -1"), vec![helper(-1)]);
    let kfunc = Insn::Call { kind: CallKind::Kfunc, imm: 77, off: -2 };
    assert_eq!(asm("call kfunc 77, -2"), vec![kfunc]);
    let local = |imm| Insn::Call { kind: CallKind::Local, imm, off: 0 };
    assert_eq!(asm("call pc-4"), vec![local(-4)]);
    assert_eq!(
        asm("call f\nexit\nf: r0 = 0\nexit"),
        vec![
            local(1),
            Insn::Exit,
            Insn::Alu { width: Width::W64, op: AluOp::Mov, dst: r(0), src: Operand::Imm(0) },
            Insn::Exit,
        ]
    );
    // A label wins over a helper of the same name.
    assert_eq!(asm("call bpf_ktime_get_ns\nbpf_ktime_get_ns:\nexit")[0], local(0));
    // A label named `kfunc` or `pc`.
    assert_eq!(asm("call kfunc\nkfunc: exit")[0], local(0));
    assert_eq!(asm("goto pc\npc: exit")[0], Insn::Ja { off: 0 });
    let e = asm_err("call bpf_obj_new_impl#12345");
    assert_eq!((e.line, e.column), (1, 6));
    assert_eq!(e.kind, AsmErrorKind::UnknownHelper("bpf_obj_new_impl".into()));
}

#[test]
fn func_and_label_offsets() {
    let text = "start:\n  r1 = func cb ll\n  r2 = 0x100000000 ll\n  goto start\ncb:\n  exit\n";
    assert_eq!(
        asm(text),
        vec![
            Insn::LdImm64 { dst: r(1), src: PseudoSrc::Func, imm: 4, next_imm: 0 },
            Insn::ld_imm64(r(2), 1 << 32),
            Insn::Ja { off: -5 },
            Insn::Exit,
        ]
    );
    // Several labels on one slot, and a label past the last instruction.
    let text = "a: b:\n c: if r1 s>= 7 goto end\n goto a\nend:";
    assert_eq!(
        asm(text),
        vec![
            Insn::Jump {
                width: Width::W64,
                cond: JmpCond::Sge,
                dst: r(1),
                src: Operand::Imm(7),
                off: 1,
            },
            Insn::Ja { off: -2 },
        ]
    );
}

#[test]
fn label_offset_out_of_range() {
    let mut text = String::from("goto far\n");
    text.push_str(&"r0 = 0\n".repeat(40_000));
    text.push_str("far: exit\n");
    let e = asm_err(&text);
    assert_eq!((e.line, e.column), (1, 6));
    assert_eq!(
        e.kind,
        AsmErrorKind::LabelOutOfRange { label: "far".into(), offset: 40_000, bits: 16 }
    );
    let long = text.replacen("goto far", "gotol far", 1);
    assert_eq!(asm(&long)[0], Insn::JaLong { imm: 40_000 });
}

#[test]
fn errors_name_line_column_and_kind() {
    use AsmErrorKind as K;
    let cases: Vec<(&str, usize, usize, AsmErrorKind)> = vec![
        ("r0 = 1\nfoo r1", 2, 1, K::UnknownMnemonic("foo".into())),
        ("r11 = 1", 1, 1, K::BadRegister("r11".into())),
        ("r01 = 1", 1, 1, K::BadRegister("r01".into())),
        ("r1 += w2", 1, 7, K::RegisterWidth { reg: "w2".into(), expected: "64-bit (rN)" }),
        ("w1 = 0x1 ll", 1, 1, K::RegisterWidth { reg: "w1".into(), expected: "64-bit (rN)" }),
        ("r1 = 0x100000000", 1, 6, K::ImmOutOfRange { value: "0x100000000".into(), bits: 32 }),
        ("r1 += -2147483649", 1, 7, K::ImmOutOfRange { value: "-2147483649".into(), bits: 32 }),
        (
            "r1 = 0x10000000000000000 ll",
            1,
            6,
            K::ImmOutOfRange { value: "0x10000000000000000".into(), bits: 64 },
        ),
        (
            "r0 = *(u8 *)(r1 + 32768)",
            1,
            17,
            K::OffsetOutOfRange { value: "32768".into(), bits: 16 },
        ),
        ("goto -32769", 1, 6, K::OffsetOutOfRange { value: "-32769".into(), bits: 16 }),
        ("goto nowhere", 1, 6, K::UndefinedLabel("nowhere".into())),
        ("x: exit\n  x:", 2, 3, K::DuplicateLabel { name: "x".into(), first_line: 1 }),
        ("exit exit", 1, 6, K::TrailingInput("exit".into())),
        ("r1 = 0x", 1, 6, K::BadNumber("0x".into())),
        ("r1 = 12ab", 1, 6, K::BadNumber("12ab".into())),
        ("r1 ~= 2", 1, 4, K::UnexpectedChar('~')),
        ("r1 == 2", 1, 4, K::UnknownOperator("==".into())),
        ("if r1 += 2 goto +1", 1, 7, K::UnknownOperator("+=".into())),
        ("r0 = -r1", 1, 7, K::RegisterMismatch { expected: "r0".into(), found: "r1".into() }),
        ("r0 = be16 r1", 1, 11, K::RegisterMismatch { expected: "r0".into(), found: "r1".into() }),
        ("r0 = *(s64 *)(r1 + 0)", 1, 7, K::Invalid("there is no sign-extending 64-bit load")),
        ("*(s8 *)(r1 + 0) = 1", 1, 2, K::BadType("s8".into())),
        ("r0 = *(i32 *)(r1 + 0)", 1, 8, K::BadType("i32".into())),
        (
            "r1 = *(u8 *)skb[0]",
            1,
            1,
            K::RegisterMismatch { expected: "r0".into(), found: "r1".into() },
        ),
        ("r0 = *(u64 *)skb[0]", 1, 7, K::Invalid("legacy packet loads take u8, u16 or u32")),
        ("w0 = (s32)w1", 1, 7, K::Invalid("`(s32)` sign extension needs 64-bit registers")),
        ("lock *(u8 *)(r1 + 0) += r2", 1, 7, K::Invalid("atomic operations take u32 or u64")),
        (
            "r2 = atomic64_fetch_add((u32 *)(r1 + 0), r2)",
            1,
            25,
            K::Invalid("`atomic64_*` operations take u64, `atomic_*` operations u32"),
        ),
        (
            "r2 = atomic_fetch_add((u32 *)(r1 + 0), r3)",
            1,
            40,
            K::RegisterMismatch { expected: "r2".into(), found: "r3".into() },
        ),
        (
            "r1 = atomic_cmpxchg((u32 *)(r1 + 0), r0, r3)",
            1,
            1,
            K::RegisterMismatch { expected: "r0".into(), found: "r1".into() },
        ),
        (
            "r1 = map[id:3]",
            1,
            10,
            K::Expected { expected: "`fd` or `idx`".into(), found: "`id`".into() },
        ),
        ("r1 = map[fd:3][1]+8", 1, 16, K::Invalid("a map value address is written `[0]+OFF`")),
        (
            "r0 = *(u32 *)(r1 + 4",
            1,
            21,
            K::Expected { expected: "`)`".into(), found: "end of line".into() },
        ),
    ];
    for (text, line, column, kind) in cases {
        let e = asm_err(text);
        assert_eq!(e, AsmError { line, column, kind }, "{text}");
    }
    // Display names the line and column.
    let e = asm_err("exit\n  r1 = r12");
    assert_eq!(
        e.to_string(),
        "line 2, column 8: invalid register `r12` (registers are r0..r10, w0..w10)"
    );
}
