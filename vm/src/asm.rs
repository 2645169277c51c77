//! Assembler for the text [`Insn`]'s `Display` writes (kernel / bpftool syntax), with labels
//! and comments, and [`disassemble`], whose listings it reads back.
//!
//! One instruction per line. Besides the exact `Display` text it accepts:
//! - labels `name:` on their own line or before an instruction, as targets of `goto name`,
//!   `if ... goto name`, `gotol name`, `call name` (a local call) and `rN = func name ll`;
//! - comments from `;`, `//` or a free-standing `#` to the end of the line;
//! - listing prefixes: a slot number `12:` and an opcode `(b7)`, as printed by [`disassemble`],
//!   the kernel verifier and `bpftool prog dump xlated` (an `(18)` prefix implies `ll`);
//! - free spacing (`(r1+0x4)`, `(r10 -8)`), `goto pc+3` and `goto +3`, hex and decimal
//!   numbers, 32-bit immediates written in the `u32` range (`0xffffffff` is `-1`), `w`
//!   registers wherever `Display` prints an `r` value register of a load, store or atomic;
//! - `call NAME` and `call NAME#ID` for the helpers bpflab implements (`call ID` for others).
//!
//! Jump, call and `func` offsets count 8-byte slots (`ld_imm64` takes two) from the slot after
//! the instruction's first one.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::isa::{
    AluOp, AtomicOp, ByteOrder, CallKind, Insn, JmpCond, MemSize, Operand, PseudoSrc, Reg, Width,
};

/// Where and why assembly failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct AsmError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters, of the offending token.
    pub column: usize,
    /// What is wrong.
    pub kind: AsmErrorKind,
}

/// What is wrong with a line of assembly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    /// A character that starts no token.
    #[error("unexpected character {0:?}")]
    UnexpectedChar(char),
    /// The syntax requires something else here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the syntax allows.
        expected: String,
        /// What is there (quoted) or `end of line`.
        found: String,
    },
    /// The instruction starts with a word that begins no instruction.
    #[error("unknown mnemonic `{0}`")]
    UnknownMnemonic(String),
    /// An operator or comparison this instruction does not have.
    #[error("unknown operator `{0}`")]
    UnknownOperator(String),
    /// `rN` / `wN` with N above 10.
    #[error("invalid register `{0}` (registers are r0..r10, w0..w10)")]
    BadRegister(String),
    /// A register of the wrong width (`w` where `r` is needed, or widths mixed).
    #[error("`{reg}` must be a {expected} register")]
    RegisterWidth {
        /// The register as written.
        reg: String,
        /// The width needed.
        expected: &'static str,
    },
    /// A register that must repeat an earlier one (or be r0) differs.
    #[error("expected register `{expected}`, found `{found}`")]
    RegisterMismatch {
        /// The register required.
        expected: String,
        /// The register written.
        found: String,
    },
    /// A malformed number.
    #[error("invalid number `{0}`")]
    BadNumber(String),
    /// An immediate outside the signed and unsigned range of its field.
    #[error("immediate {value} does not fit in {bits} bits")]
    ImmOutOfRange {
        /// The value as written.
        value: String,
        /// The field width.
        bits: u8,
    },
    /// A memory or jump offset outside the signed range of its field.
    #[error("offset {value} does not fit in the signed {bits}-bit offset field")]
    OffsetOutOfRange {
        /// The value as written.
        value: String,
        /// The field width.
        bits: u8,
    },
    /// A memory access type that is not `u8`..`u64` (or `s8`..`s32` for loads).
    #[error("invalid access type `{0}`")]
    BadType(String),
    /// A well-formed line that no instruction encodes.
    #[error("{0}")]
    Invalid(&'static str),
    /// `call NAME` / `call NAME#ID` naming neither a label nor a helper bpflab implements.
    #[error("unknown helper `{0}` (write `call ID` for helpers bpflab does not implement)")]
    UnknownHelper(String),
    /// A jump or call to a label that is never defined.
    #[error("undefined label `{0}`")]
    UndefinedLabel(String),
    /// A label defined twice.
    #[error("label `{name}` is already defined on line {first_line}")]
    DuplicateLabel {
        /// The label.
        name: String,
        /// Where it was first defined.
        first_line: usize,
    },
    /// A label too far away for the instruction's offset field.
    #[error("label `{label}` is {offset} slots away, beyond the signed {bits}-bit offset field")]
    LabelOutOfRange {
        /// The label.
        label: String,
        /// The offset it needs.
        offset: i64,
        /// The field width.
        bits: u8,
    },
    /// Text after a complete instruction.
    #[error("unexpected `{0}` after the instruction")]
    TrailingInput(String),
}

/// Lists instructions one per line as `{slot:>5}: {insn}`, numbering slots (`ld_imm64` takes two).
pub fn disassemble(insns: &[Insn]) -> String {
    let mut out = String::new();
    let mut slot = 0;
    for insn in insns {
        out += &disassemble_line(slot, insn);
        slot += insn.slots();
    }
    out
}

/// One line of [`disassemble`]'s output: `{slot:>5}: {insn}` and a newline.
pub fn disassemble_line(slot: usize, insn: &Insn) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{slot:>5}: {insn}");
    out
}

/// Assembles text (see the [module docs](self)) into instructions.
pub fn assemble(src: &str) -> Result<Vec<Insn>, AsmError> {
    let mut labels: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut pending = Vec::new();
    let mut slot = 0;
    for (i, text) in src.lines().enumerate() {
        let line = i + 1;
        let at = |(column, kind): Fail| AsmError { line, column, kind };
        let mut cur = Cursor::new(lex(text).map_err(at)?, text);
        let ld_imm64_hint = cur.skip_listing_prefix();
        while let Some((name, col)) = cur.label_def() {
            if let Some(&(_, first_line)) = labels.get(name) {
                let kind = AsmErrorKind::DuplicateLabel { name: name.to_owned(), first_line };
                return Err(at((col, kind)));
            }
            labels.insert(name, (slot, line));
        }
        if cur.peek().is_none() {
            continue;
        }
        let (insn, label) = parse_insn(&mut cur, ld_imm64_hint).map_err(at)?;
        pending.push(Pending { insn, slot, line, label });
        slot += insn.slots();
    }
    pending.into_iter().map(|p| p.resolve(&labels)).collect()
}

/// An error before its line is known: column and kind.
type Fail = (usize, AsmErrorKind);
/// Result of a parsing step.
type PResult<T> = Result<T, Fail>;

/// A reference to a label, with the column it appears at.
#[derive(Clone, Copy, Debug)]
struct LabelRef<'a> {
    /// The label name.
    name: &'a str,
    /// Where it is written.
    col: usize,
}

/// A parsed instruction, possibly waiting for a label's slot.
type Parsed<'a> = (Insn, Option<LabelRef<'a>>);

/// An instruction of the first pass.
struct Pending<'a> {
    /// The instruction, offset 0 while `label` is unresolved.
    insn: Insn,
    /// Its first slot.
    slot: usize,
    /// Its line.
    line: usize,
    /// The label its offset refers to.
    label: Option<LabelRef<'a>>,
}

impl Pending<'_> {
    /// Fills in the label's offset (or, for `call NAME`, a helper's id).
    fn resolve(self, labels: &HashMap<&str, (usize, usize)>) -> Result<Insn, AsmError> {
        let Some(label) = self.label else { return Ok(self.insn) };
        let fail = |kind| AsmError { line: self.line, column: label.col, kind };
        let Some(&(target, _)) = labels.get(label.name) else {
            if let (Insn::Call { .. }, Some(insn)) = (self.insn, helper_call(label.name)) {
                return Ok(insn);
            }
            return Err(fail(AsmErrorKind::UndefinedLabel(label.name.to_owned())));
        };
        // Slot indices come from a `Vec` of lines, far below `i64::MAX`.
        let offset = target as i64 - (self.slot as i64 + 1);
        with_offset(self.insn, offset).ok_or_else(|| {
            fail(AsmErrorKind::LabelOutOfRange {
                label: label.name.to_owned(),
                offset,
                bits: offset_bits(&self.insn),
            })
        })
    }
}

/// `insn` with its branch offset set to `offset`, if that fits its field.
fn with_offset(insn: Insn, offset: i64) -> Option<Insn> {
    let off16 = || i16::try_from(offset).ok();
    let imm32 = || i32::try_from(offset).ok();
    Some(match insn {
        Insn::Jump { width, cond, dst, src, .. } => {
            Insn::Jump { width, cond, dst, src, off: off16()? }
        }
        Insn::Ja { .. } => Insn::Ja { off: off16()? },
        Insn::JaLong { .. } => Insn::JaLong { imm: imm32()? },
        Insn::Call { kind, off, .. } => Insn::Call { kind, imm: imm32()?, off },
        Insn::LdImm64 { dst, src, next_imm, .. } => {
            Insn::LdImm64 { dst, src, imm: imm32()?, next_imm }
        }
        other => other,
    })
}

/// The width of the field holding `insn`'s branch offset.
fn offset_bits(insn: &Insn) -> u8 {
    match insn {
        Insn::Jump { .. } | Insn::Ja { .. } => 16,
        _ => 32,
    }
}

/// A call of the kernel helper named `name` (`bpf_map_lookup_elem`).
fn helper_call(name: &str) -> Option<Insn> {
    if !name.starts_with("bpf_") {
        return None;
    }
    let imm = i32::try_from(crate::helper_names::helper_id(name)?).ok()?;
    Some(Insn::Call { kind: CallKind::Helper, imm, off: 0 })
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// The kind of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A word: mnemonic, register, type, label.
    Ident,
    /// Digits, possibly `0x` hex (validated when used).
    Number,
    /// An operator or bracket.
    Punct,
}

/// One token of a line.
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    /// Its kind.
    kind: Kind,
    /// Its text.
    text: &'a str,
    /// Its 1-based character column.
    col: usize,
}

/// Operators and brackets, longest first so the first match is the longest.
const PUNCTS: &[&str] = &[
    "s>>=", "<<=", ">>=", "s/=", "s%=", "s>=", "s<=", "+=", "-=", "*=", "/=", "%=", "|=", "&=",
    "^=", "==", "!=", ">=", "<=", "s>", "s<", "=", ">", "<", "&", "+", "-", "*", "(", ")", "[",
    "]", ",", ":", "#",
];

/// True for characters that may start a word.
fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '.'
}

/// True for characters that may continue a word.
fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Splits a line into tokens, dropping the comment.
fn lex(line: &str) -> PResult<Vec<Token<'_>>> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(line.len(), |&(b, _)| b);
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&(start, c)) = chars.get(i) {
        let rest = &line[start..];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == ';' || rest.starts_with("//") {
            break;
        }
        // `#` glued to a word is `call NAME#ID`; anywhere else it starts a comment.
        if c == '#' && !(i > 0 && chars.get(i - 1).is_some_and(|&(_, p)| is_ident_char(p))) {
            break;
        }
        let (kind, end) = if c.is_ascii_digit() {
            let len = chars[i..].iter().take_while(|&&(_, d)| d.is_ascii_alphanumeric()).count();
            (Kind::Number, i + len)
        } else if let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            (Kind::Punct, i + p.len())
        } else if is_ident_start(c) {
            let len = chars[i..].iter().take_while(|&&(_, d)| is_ident_char(d)).count();
            (Kind::Ident, i + len)
        } else {
            return Err((i + 1, AsmErrorKind::UnexpectedChar(c)));
        };
        toks.push(Token { kind, text: &line[start..byte_at(end)], col: i + 1 });
        i = end;
    }
    Ok(toks)
}

/// The width and number text of a register-shaped word (`r` or `w` then digits).
fn reg_shape(text: &str) -> Option<(Width, &str)> {
    let width = match text.as_bytes().first()? {
        b'r' => Width::W64,
        b'w' => Width::W32,
        _ => return None,
    };
    let digits = &text[1..];
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some((width, digits))
}

/// The value of a decimal or `0x` hex number; values above `u64` saturate (and fit no field).
fn parse_number(text: &str) -> Option<i128> {
    let (radix, body) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (16, hex),
        None => (10, text),
    };
    if body.is_empty() {
        return None;
    }
    body.chars().try_fold(0i128, |acc, c| {
        let d = c.to_digit(radix)?;
        Some(acc.saturating_mul(i128::from(radix)).saturating_add(i128::from(d)))
    })
}

/// A register operand as written.
#[derive(Clone, Copy, Debug)]
struct RegTok<'a> {
    /// `r` (64-bit) or `w` (32-bit).
    width: Width,
    /// The register.
    reg: Reg,
    /// The text.
    text: &'a str,
    /// Its column.
    col: usize,
}

impl RegTok<'_> {
    /// The register, which must be written `rN`.
    fn r64(self) -> PResult<Reg> {
        self.of_width(Width::W64)
    }

    /// The register, which must have `width`.
    fn of_width(self, width: Width) -> PResult<Reg> {
        if self.width == width {
            return Ok(self.reg);
        }
        let expected = match width {
            Width::W64 => "64-bit (rN)",
            Width::W32 => "32-bit (wN)",
        };
        Err((self.col, AsmErrorKind::RegisterWidth { reg: self.text.to_owned(), expected }))
    }

    /// Checks that this is register `reg` (in either width).
    fn same_as(self, reg: Reg) -> PResult<()> {
        if self.reg == reg {
            return Ok(());
        }
        let kind = AsmErrorKind::RegisterMismatch {
            expected: reg.to_string(),
            found: self.text.to_owned(),
        };
        Err((self.col, kind))
    }
}

/// A signed number as written.
#[derive(Clone, Copy, Debug)]
struct Num<'a> {
    /// Its value (saturated beyond 128 bits).
    value: i128,
    /// Written with a minus sign.
    neg: bool,
    /// The digits.
    digits: &'a str,
    /// The column of the sign or first digit.
    col: usize,
}

impl Num<'_> {
    /// The number as written, for messages.
    fn text(&self) -> String {
        format!("{}{}", if self.neg { "-" } else { "" }, self.digits)
    }

    /// As a 32-bit immediate: the `i32` range, or the `u32` range reinterpreted.
    fn imm32(&self) -> PResult<i32> {
        i32::try_from(self.value)
            .or_else(|_| u32::try_from(self.value).map(|v| v as i32))
            .map_err(|_| (self.col, AsmErrorKind::ImmOutOfRange { value: self.text(), bits: 32 }))
    }

    /// As a 64-bit immediate: the `i64` range, or the `u64` range.
    fn imm64(&self) -> PResult<u64> {
        i64::try_from(self.value)
            .map(|v| v as u64)
            .or_else(|_| u64::try_from(self.value))
            .map_err(|_| (self.col, AsmErrorKind::ImmOutOfRange { value: self.text(), bits: 64 }))
    }

    /// As a signed 16-bit memory offset.
    fn off16(&self) -> PResult<i16> {
        i16::try_from(self.value).map_err(|_| {
            (self.col, AsmErrorKind::OffsetOutOfRange { value: self.text(), bits: 16 })
        })
    }
}

/// A jump target: a relative slot offset or a label.
enum Target<'a> {
    /// `+N`, `-N`, `pc+N`, `N`.
    Rel(Num<'a>),
    /// A label.
    Label(LabelRef<'a>),
}

/// `insn` with its branch offset taken from `target` (0 until a label resolves).
fn with_target(insn: Insn, target: Target<'_>) -> PResult<Parsed<'_>> {
    match target {
        Target::Label(label) => Ok((insn, Some(label))),
        Target::Rel(n) => {
            let bits = offset_bits(&insn);
            let insn = i64::try_from(n.value).ok().and_then(|off| with_offset(insn, off));
            let kind = || AsmErrorKind::OffsetOutOfRange { value: n.text(), bits };
            Ok((insn.ok_or_else(|| (n.col, kind()))?, None))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cursor

/// The tokens of one line and the parsing position.
struct Cursor<'a> {
    /// The tokens.
    toks: Vec<Token<'a>>,
    /// The next token.
    pos: usize,
    /// The column just past the end of the line.
    end_col: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first token of `line`.
    fn new(toks: Vec<Token<'a>>, line: &str) -> Self {
        Cursor { toks, pos: 0, end_col: line.chars().count() + 1 }
    }

    /// The token `n` ahead of the next one.
    fn peek_nth(&self, n: usize) -> Option<Token<'a>> {
        self.toks.get(self.pos + n).copied()
    }

    /// The next token.
    fn peek(&self) -> Option<Token<'a>> {
        self.peek_nth(0)
    }

    /// The column of the next token (or the end of the line).
    fn col(&self) -> usize {
        self.peek().map_or(self.end_col, |t| t.col)
    }

    /// An `Expected` error at the next token.
    fn expected<T>(&self, expected: &str) -> PResult<T> {
        let found = match self.peek() {
            Some(t) => format!("`{}`", t.text),
            None => "end of line".to_owned(),
        };
        Err((self.col(), AsmErrorKind::Expected { expected: expected.to_owned(), found }))
    }

    /// True if the token `n` ahead is the punctuation `p`.
    fn is_punct_at(&self, n: usize, p: &str) -> bool {
        self.peek_nth(n).is_some_and(|t| t.kind == Kind::Punct && t.text == p)
    }

    /// True if the next token is the punctuation `p`.
    fn is_punct(&self, p: &str) -> bool {
        self.is_punct_at(0, p)
    }

    /// True if the next token is the word `w`.
    fn is_ident(&self, w: &str) -> bool {
        self.peek().is_some_and(|t| t.kind == Kind::Ident && t.text == w)
    }

    /// True if a (possibly signed) number starts `n` tokens ahead.
    fn is_num_at(&self, n: usize) -> bool {
        let sign = usize::from(self.is_punct_at(n, "-") || self.is_punct_at(n, "+"));
        self.peek_nth(n + sign).is_some_and(|t| t.kind == Kind::Number)
    }

    /// True if a register-shaped word is next.
    fn is_reg(&self) -> bool {
        self.peek().is_some_and(|t| t.kind == Kind::Ident && reg_shape(t.text).is_some())
    }

    /// Skips the punctuation `p` if it is next.
    fn eat_punct(&mut self, p: &str) -> bool {
        let found = self.is_punct(p);
        self.pos += usize::from(found);
        found
    }

    /// Skips the word `w` if it is next.
    fn eat_ident(&mut self, w: &str) -> bool {
        let found = self.is_ident(w);
        self.pos += usize::from(found);
        found
    }

    /// Requires the punctuation `p`.
    fn punct(&mut self, p: &str) -> PResult<()> {
        if self.eat_punct(p) { Ok(()) } else { self.expected(&format!("`{p}`")) }
    }

    /// Requires the word `w`.
    fn keyword(&mut self, w: &str) -> PResult<()> {
        if self.eat_ident(w) { Ok(()) } else { self.expected(&format!("`{w}`")) }
    }

    /// Requires a word and returns it.
    fn ident(&mut self, what: &str) -> PResult<Token<'a>> {
        match self.peek() {
            Some(t) if t.kind == Kind::Ident => {
                self.pos += 1;
                Ok(t)
            }
            _ => self.expected(what),
        }
    }

    /// Requires the end of the line.
    fn end(&self) -> PResult<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err((t.col, AsmErrorKind::TrailingInput(t.text.to_owned()))),
        }
    }

    /// Skips a listing's `N:` slot number and `(xx)` opcode; true if the opcode is `18`
    /// (`ld_imm64`, which the kernel prints without `ll`).
    fn skip_listing_prefix(&mut self) -> bool {
        if self.peek().is_some_and(|t| t.kind == Kind::Number) && self.is_punct_at(1, ":") {
            self.pos += 2;
        }
        let opcode = self.peek_nth(1).filter(|t| {
            t.kind != Kind::Punct
                && t.text.len() == 2
                && t.text.bytes().all(|b| b.is_ascii_hexdigit())
        });
        match opcode {
            Some(t) if self.is_punct("(") && self.is_punct_at(2, ")") => {
                self.pos += 3;
                t.text == "18"
            }
            _ => false,
        }
    }

    /// Consumes a label definition `name:` if one is next.
    fn label_def(&mut self) -> Option<(&'a str, usize)> {
        let t = self.peek().filter(|t| t.kind == Kind::Ident)?;
        if !self.is_punct_at(1, ":") {
            return None;
        }
        self.pos += 2;
        Some((t.text, t.col))
    }

    /// Requires a register `rN` / `wN`.
    fn reg(&mut self) -> PResult<RegTok<'a>> {
        let Some((t, (width, digits))) = self
            .peek()
            .filter(|t| t.kind == Kind::Ident)
            .and_then(|t| Some((t, reg_shape(t.text)?)))
        else {
            return self.expected("a register");
        };
        let canonical = digits.len() == 1 || !digits.starts_with('0');
        let reg = digits.parse::<u8>().ok().filter(|_| canonical).and_then(Reg::new);
        let reg = reg.ok_or((t.col, AsmErrorKind::BadRegister(t.text.to_owned())))?;
        self.pos += 1;
        Ok(RegTok { width, reg, text: t.text, col: t.col })
    }

    /// Requires a number with an optional sign.
    fn num(&mut self) -> PResult<Num<'a>> {
        let col = self.col();
        let neg = self.eat_punct("-");
        if !neg {
            self.eat_punct("+");
        }
        let Some(t) = self.peek().filter(|t| t.kind == Kind::Number) else {
            return self.expected("a number");
        };
        let value =
            parse_number(t.text).ok_or((t.col, AsmErrorKind::BadNumber(t.text.to_owned())))?;
        self.pos += 1;
        Ok(Num { value: if neg { -value } else { value }, neg, digits: t.text, col })
    }

    /// Requires `+ N` or `- N` (N itself may be signed: `+ -4`).
    fn signed_tail(&mut self) -> PResult<Num<'a>> {
        let col = self.col();
        let neg = if self.eat_punct("-") {
            true
        } else if self.eat_punct("+") {
            false
        } else {
            return self.expected("`+` or `-`");
        };
        let n = self.num()?;
        let value = if neg { -n.value } else { n.value };
        Ok(Num { value, neg: value < 0, col, ..n })
    }

    /// Requires a 32-bit operand of `width`: a register of that width or an immediate.
    fn operand(&mut self, width: Width) -> PResult<Operand> {
        if self.is_reg() {
            Ok(Operand::Reg(self.reg()?.of_width(width)?))
        } else if self.is_num_at(0) {
            Ok(Operand::Imm(self.num()?.imm32()?))
        } else {
            self.expected("a register or a number")
        }
    }

    /// Requires a memory operand `(rN + off)`, `(rN - off)` or `(rN)`.
    fn addr(&mut self) -> PResult<(Reg, i16)> {
        self.punct("(")?;
        let base = self.reg()?.r64()?;
        let off = if self.is_punct(")") { 0 } else { self.signed_tail()?.off16()? };
        self.punct(")")?;
        Ok((base, off))
    }

    /// Requires an access type `(u32 *)`: the size and whether it is a signed (`sN`) type.
    fn access_type(&mut self) -> PResult<(MemSize, bool)> {
        self.punct("(")?;
        let t = self.ident("an access type (u8, u16, u32, u64)")?;
        let ty = MemSize::from_symbol(t.text)
            .map(|s| (s, false))
            .or_else(|| MemSize::ALL.iter().find(|s| s.signed_name() == t.text).map(|&s| (s, true)))
            .ok_or((t.col, AsmErrorKind::BadType(t.text.to_owned())))?;
        self.punct("*")?;
        self.punct(")")?;
        Ok(ty)
    }

    /// Requires an unsigned access type (`u8`..`u64`).
    fn unsigned_type(&mut self) -> PResult<MemSize> {
        let col = self.col();
        match self.access_type()? {
            (size, false) => Ok(size),
            (size, true) => Err((col, AsmErrorKind::BadType(size.signed_name().to_owned()))),
        }
    }

    /// Requires a jump target: `+N`, `-N`, `pc+N`, `pc-N`, `N` or a label.
    fn target(&mut self) -> PResult<Target<'a>> {
        if self.is_ident("pc") && (self.is_punct_at(1, "+") || self.is_punct_at(1, "-")) {
            self.pos += 1;
            return Ok(Target::Rel(self.num()?));
        }
        if self.is_num_at(0) {
            return Ok(Target::Rel(self.num()?));
        }
        match self.peek() {
            Some(t) if t.kind == Kind::Ident => {
                self.pos += 1;
                Ok(Target::Label(LabelRef { name: t.text, col: t.col }))
            }
            _ => self.expected("a jump target (`+N`, `pc+N` or a label)"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instructions

/// Parses one instruction, which must fill the rest of the line.
fn parse_insn<'a>(c: &mut Cursor<'a>, ld_imm64_hint: bool) -> PResult<Parsed<'a>> {
    let Some(first) = c.peek() else { return c.expected("an instruction") };
    let parsed = match (first.kind, first.text) {
        (Kind::Ident, "exit") => {
            c.pos += 1;
            (Insn::Exit, None)
        }
        (Kind::Ident, "goto") => {
            c.pos += 1;
            with_target(Insn::Ja { off: 0 }, c.target()?)?
        }
        (Kind::Ident, "gotol") => {
            c.pos += 1;
            with_target(Insn::JaLong { imm: 0 }, c.target()?)?
        }
        (Kind::Ident, "if") => jump(c)?,
        (Kind::Ident, "call") => call(c)?,
        (Kind::Ident, "lock") => lock(c)?,
        (Kind::Punct, "*") => store(c)?,
        (Kind::Ident, text) if reg_shape(text).is_some() => assign(c, ld_imm64_hint)?,
        _ => return Err((first.col, AsmErrorKind::UnknownMnemonic(first.text.to_owned()))),
    };
    c.end()?;
    Ok(parsed)
}

/// `if dst cond src goto target`.
fn jump<'a>(c: &mut Cursor<'a>) -> PResult<Parsed<'a>> {
    c.keyword("if")?;
    let dst = c.reg()?;
    let Some(t) = c.peek().filter(|t| t.kind == Kind::Punct) else {
        return c.expected("a comparison");
    };
    let cond = JmpCond::from_symbol(t.text)
        .ok_or((t.col, AsmErrorKind::UnknownOperator(t.text.to_owned())))?;
    c.pos += 1;
    let src = c.operand(dst.width)?;
    c.keyword("goto")?;
    let insn = Insn::Jump { width: dst.width, cond, dst: dst.reg, src, off: 0 };
    with_target(insn, c.target()?)
}

/// `call ID`, `call pc+N`, `call LABEL`, `call NAME[#ID]`, `call kfunc ID[, OFF]`.
fn call<'a>(c: &mut Cursor<'a>) -> PResult<Parsed<'a>> {
    c.keyword("call")?;
    if c.is_num_at(0) {
        let imm = c.num()?.imm32()?;
        return Ok((Insn::Call { kind: CallKind::Helper, imm, off: 0 }, None));
    }
    if c.is_ident("kfunc") && c.is_num_at(1) {
        c.pos += 1;
        let imm = c.num()?.imm32()?;
        let off = if c.eat_punct(",") { c.num()?.off16()? } else { 0 };
        return Ok((Insn::Call { kind: CallKind::Kfunc, imm, off }, None));
    }
    if c.is_punct_at(1, "#") {
        // The kernel's listing `call bpf_ktime_get_ns#5`; after fixups the number is no longer
        // the helper id, so the name decides.
        let name = c.ident("a helper name")?;
        c.pos += 1;
        c.num()?;
        let insn = helper_call(name.text)
            .ok_or((name.col, AsmErrorKind::UnknownHelper(name.text.to_owned())))?;
        return Ok((insn, None));
    }
    with_target(Insn::Call { kind: CallKind::Local, imm: 0, off: 0 }, c.target()?)
}

/// `lock *(size *)(dst + off) op= src`.
fn lock<'a>(c: &mut Cursor<'a>) -> PResult<Parsed<'a>> {
    c.keyword("lock")?;
    c.punct("*")?;
    let size = atomic_size(c, None)?;
    let (dst, off) = c.addr()?;
    let Some(t) = c.peek().filter(|t| t.kind == Kind::Punct) else {
        return c.expected("an atomic operator (`+=`, `|=`, `&=`, `^=`)");
    };
    let op = AtomicOp::from_symbol(t.text)
        .filter(|op| !op.fetches())
        .ok_or((t.col, AsmErrorKind::UnknownOperator(t.text.to_owned())))?;
    c.pos += 1;
    let src = c.reg()?.reg;
    Ok((Insn::Atomic { size, op, dst, src, off }, None))
}

/// The access type of an atomic operation: `u32` or `u64`, or exactly `want` if given.
fn atomic_size(c: &mut Cursor<'_>, want: Option<MemSize>) -> PResult<MemSize> {
    let col = c.col();
    let size = c.unsigned_type()?;
    match want {
        Some(w) if w != size => Err((
            col,
            AsmErrorKind::Invalid("`atomic64_*` operations take u64, `atomic_*` operations u32"),
        )),
        _ if matches!(size, MemSize::W | MemSize::Dw) => Ok(size),
        _ => Err((col, AsmErrorKind::Invalid("atomic operations take u32 or u64"))),
    }
}

/// `*(size *)(dst + off) = src`.
fn store<'a>(c: &mut Cursor<'a>) -> PResult<Parsed<'a>> {
    c.punct("*")?;
    let size = c.unsigned_type()?;
    let (dst, off) = c.addr()?;
    c.punct("=")?;
    let src = if c.is_reg() {
        Operand::Reg(c.reg()?.reg)
    } else if c.is_num_at(0) {
        Operand::Imm(c.num()?.imm32()?)
    } else {
        return c.expected("a register or a number");
    };
    Ok((Insn::Store { size, dst, off, src }, None))
}

/// Every instruction that starts with a register: ALU operations, moves, loads, byte swaps,
/// 64-bit immediates and fetching atomics.
fn assign<'a>(c: &mut Cursor<'a>, ld_imm64_hint: bool) -> PResult<Parsed<'a>> {
    let dst = c.reg()?;
    let Some(op) = c.peek().filter(|t| t.kind == Kind::Punct) else {
        return c.expected("an operator");
    };
    c.pos += 1;
    if op.text != "=" {
        let alu = AluOp::from_symbol(op.text)
            .ok_or((op.col, AsmErrorKind::UnknownOperator(op.text.to_owned())))?;
        let src = c.operand(dst.width)?;
        return Ok((Insn::Alu { width: dst.width, op: alu, dst: dst.reg, src }, None));
    }
    let insn = if c.is_punct("-") && c.peek_nth(1).is_some_and(|t| t.kind == Kind::Ident) {
        c.pos += 1;
        let src = c.reg()?;
        src.of_width(dst.width)?;
        src.same_as(dst.reg)?;
        Insn::Neg { width: dst.width, dst: dst.reg }
    } else if c.is_num_at(0) {
        let n = c.num()?;
        if c.eat_ident("ll") || ld_imm64_hint {
            Insn::ld_imm64(dst.r64()?, n.imm64()?)
        } else {
            Insn::Alu {
                width: dst.width,
                op: AluOp::Mov,
                dst: dst.reg,
                src: Operand::Imm(n.imm32()?),
            }
        }
    } else if c.is_punct("*") {
        load(c, dst)?
    } else if c.is_punct("(") {
        movsx(c, dst)?
    } else if c.is_reg() {
        let src = c.reg()?.of_width(dst.width)?;
        Insn::Alu { width: dst.width, op: AluOp::Mov, dst: dst.reg, src: Operand::Reg(src) }
    } else {
        let t = c.ident("an operand")?;
        match t.text {
            "map" => return map(c, dst),
            "addr_space_cast" => addr_space_cast(c, dst)?,
            "btf_id" => return btf_id(c, dst),
            "func" => {
                let insn =
                    Insn::LdImm64 { dst: dst.r64()?, src: PseudoSrc::Func, imm: 0, next_imm: 0 };
                let parsed = with_target(insn, c.target()?)?;
                c.eat_ident("ll");
                return Ok(parsed);
            }
            text if text.starts_with("atomic") => atomic_fetch(c, dst, t)?,
            text => match endian(text) {
                Some((order, bits)) => {
                    c.reg()?.same_as(dst.reg)?;
                    Insn::Endian { order, bits, dst: dst.reg }
                }
                None => return Err((t.col, AsmErrorKind::UnknownMnemonic(t.text.to_owned()))),
            },
        }
    };
    Ok((insn, None))
}

/// `dst = *(size *)(src + off)` and the legacy `r0 = *(size *)skb[...]`.
fn load(c: &mut Cursor<'_>, dst: RegTok<'_>) -> PResult<Insn> {
    c.punct("*")?;
    let col = c.col();
    let (size, signed) = c.access_type()?;
    if c.eat_ident("skb") {
        dst.r64()?;
        dst.same_as(Reg::R0)?;
        if signed || size == MemSize::Dw {
            return Err((col, AsmErrorKind::Invalid("legacy packet loads take u8, u16 or u32")));
        }
        c.punct("[")?;
        let insn = if c.is_reg() {
            let src = c.reg()?.r64()?;
            let imm = if c.is_punct("]") { 0 } else { c.signed_tail()?.imm32()? };
            Insn::LdInd { size, src, imm }
        } else {
            Insn::LdAbs { size, imm: c.num()?.imm32()? }
        };
        c.punct("]")?;
        return Ok(insn);
    }
    if signed && size == MemSize::Dw {
        return Err((col, AsmErrorKind::Invalid("there is no sign-extending 64-bit load")));
    }
    let (src, off) = c.addr()?;
    Ok(Insn::Load { size, signed, dst: dst.reg, src, off })
}

/// `dst = addr_space_cast(src, dst_as, src_as)`, between address spaces 0 and 1.
fn addr_space_cast(c: &mut Cursor<'_>, dst: RegTok<'_>) -> PResult<Insn> {
    let dst = dst.r64()?;
    c.punct("(")?;
    let src = c.reg()?.r64()?;
    c.punct(",")?;
    let col = c.col();
    let dst_as = c.num()?.imm32()?;
    c.punct(",")?;
    let src_as = c.num()?.imm32()?;
    c.punct(")")?;
    match (dst_as, src_as) {
        (0, 1) | (1, 0) => {
            Ok(Insn::AddrSpaceCast { dst, src, dst_as: dst_as as u16, src_as: src_as as u16 })
        }
        _ => Err((col, AsmErrorKind::Invalid("addr_space_cast converts between spaces 0 and 1"))),
    }
}

/// `dst = (sN)src`.
fn movsx(c: &mut Cursor<'_>, dst: RegTok<'_>) -> PResult<Insn> {
    c.punct("(")?;
    let t = c.ident("`s8`, `s16` or `s32`")?;
    let op = AluOp::from_symbol(&format!("({})", t.text))
        .filter(|op| op.is_movsx())
        .ok_or((t.col, AsmErrorKind::BadType(t.text.to_owned())))?;
    if op == AluOp::Movsx32 && dst.width == Width::W32 {
        return Err((
            t.col,
            AsmErrorKind::Invalid("`(s32)` sign extension needs 64-bit registers"),
        ));
    }
    c.punct(")")?;
    let src = c.reg()?.of_width(dst.width)?;
    Ok(Insn::Alu { width: dst.width, op, dst: dst.reg, src: Operand::Reg(src) })
}

/// `dst = map[fd:N] ll`, `map[idx:N]`, and the value forms `map[fd:N][0]+OFF`.
fn map<'a>(c: &mut Cursor<'a>, dst: RegTok<'_>) -> PResult<Parsed<'a>> {
    let dst = dst.r64()?;
    c.punct("[")?;
    let by_idx = if c.eat_ident("idx") {
        true
    } else if c.eat_ident("fd") {
        false
    } else {
        return c.expected("`fd` or `idx`");
    };
    c.punct(":")?;
    let imm = c.num()?.imm32()?;
    c.punct("]")?;
    let (src, next_imm) = if c.eat_punct("[") {
        let zero = c.num()?;
        if zero.value != 0 {
            return Err((
                zero.col,
                AsmErrorKind::Invalid("a map value address is written `[0]+OFF`"),
            ));
        }
        c.punct("]")?;
        let off = c.signed_tail()?.imm32()?;
        (if by_idx { PseudoSrc::MapIdxValue } else { PseudoSrc::MapValue }, off)
    } else {
        (if by_idx { PseudoSrc::MapIdx } else { PseudoSrc::MapFd }, 0)
    };
    c.eat_ident("ll");
    Ok((Insn::LdImm64 { dst, src, imm, next_imm }, None))
}

/// `dst = btf_id ID[, FD] ll`.
fn btf_id<'a>(c: &mut Cursor<'a>, dst: RegTok<'_>) -> PResult<Parsed<'a>> {
    let dst = dst.r64()?;
    let imm = c.num()?.imm32()?;
    let next_imm = if c.eat_punct(",") { c.num()?.imm32()? } else { 0 };
    c.eat_ident("ll");
    Ok((Insn::LdImm64 { dst, src: PseudoSrc::BtfId, imm, next_imm }, None))
}

/// `src = atomic[64]_OP((size *)(dst + off), src)` and
/// `r0 = atomic[64]_cmpxchg((size *)(dst + off), r0, src)`; `name` is the `atomic...` word.
fn atomic_fetch(c: &mut Cursor<'_>, lhs: RegTok<'_>, name: Token<'_>) -> PResult<Insn> {
    let unknown = || (name.col, AsmErrorKind::UnknownMnemonic(name.text.to_owned()));
    let (size, op) = match name.text.strip_prefix("atomic64_") {
        Some(op) => (MemSize::Dw, op),
        None => (MemSize::W, name.text.strip_prefix("atomic_").ok_or_else(unknown)?),
    };
    let op = AtomicOp::from_symbol(op).filter(|op| op.fetches()).ok_or_else(unknown)?;
    c.punct("(")?;
    let size = atomic_size(c, Some(size))?;
    let (dst, off) = c.addr()?;
    c.punct(",")?;
    if op == AtomicOp::Cmpxchg {
        lhs.same_as(Reg::R0)?;
        c.reg()?.same_as(Reg::R0)?;
        c.punct(",")?;
    }
    let src = c.reg()?;
    if op != AtomicOp::Cmpxchg {
        src.same_as(lhs.reg)?;
    }
    c.punct(")")?;
    Ok(Insn::Atomic { size, op, dst, src: src.reg, off })
}

/// The byte order and width a word like `be16` or `bswap64` names.
fn endian(word: &str) -> Option<(ByteOrder, u8)> {
    [ByteOrder::Le, ByteOrder::Be, ByteOrder::Swap].into_iter().find_map(|order| {
        let bits = match word.strip_prefix(order.name())? {
            "16" => 16,
            "32" => 32,
            "64" => 64,
            _ => return None,
        };
        Some((order, bits))
    })
}
