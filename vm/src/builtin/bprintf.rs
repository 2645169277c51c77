//! The kernel's BPF printf (`bpf_bprintf_prepare` + `bstr_printf`), shared by
//! `bpf_trace_printk` and `bpf_snprintf`.
//!
//! Conversions: `%[0+- ][width](d|i|u|x|X)` with `l`/`ll` for 64 bits, `%c`, `%s`, `%%`, and
//! the pointer forms `%p`, `%px`, `%pK`, `%ps`, `%pS`, `%pB`, `%pks`, `%pus`, `%pI4`, `%pi4`,
//! `%pI6`, `%pi6`. Strings, characters and IP addresses are copied into the kernel's 512-byte
//! argument buffer (`-ENOSPC` when it runs out), a string that cannot be read prints as
//! nothing, and IP addresses that cannot be read as zeros. bpflab has no kernel symbols and
//! no per-boot hash key: `%p` and `%pK` print a hash of the address in the kernel's shape
//! (`00000000` and 8 hex digits) but not the kernel's value, and `%ps`/`%pS`/`%pB` print the
//! address as `0x...`, as the kernel does for an address without a symbol.

use crate::memory::Memory;

/// Size of the kernel's per-call argument buffer (`MAX_BPRINTF_BIN_ARGS`).
const BIN_ARGS: usize = 512;
/// `FIELD_WIDTH_MAX`.
const WIDTH_MAX: usize = (1 << 23) - 1;

/// Why formatting failed, as `bpf_bprintf_prepare` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FmtError {
    /// `-EINVAL`: the format is invalid or has more conversions than arguments.
    Invalid(&'static str),
    /// `-ENOSPC`: the arguments do not fit the argument buffer.
    NoSpace,
}

impl FmtError {
    /// The negative errno.
    pub(crate) fn errno(self) -> i64 {
        match self {
            FmtError::Invalid(_) => -22,
            FmtError::NoSpace => -28,
        }
    }
}

/// Formatted output: the first `cap` bytes and the length the whole output has.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// The bytes kept (at most the capacity asked for).
    pub(crate) text: Vec<u8>,
    /// The full length, as `vsnprintf` returns it.
    pub(crate) len: usize,
    cap: usize,
}

impl Output {
    fn push(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        let room = self.cap.saturating_sub(self.text.len());
        self.text.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn fill(&mut self, c: u8, n: usize) {
        self.len += n;
        let room = self.cap.saturating_sub(self.text.len());
        self.text.resize(self.text.len() + n.min(room), c);
    }
}

/// One conversion's flags and width (`struct printf_spec`).
#[derive(Clone, Copy, Debug, Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
}

/// A conversion's argument, captured as `bpf_bprintf_prepare` stores it.
#[derive(Debug)]
enum Arg {
    /// An integer conversion: the value, its size (4 or 8), signedness, base 16 and case.
    Int { v: u64, wide: bool, signed: bool, hex: bool, upper: bool },
    /// `%c`.
    Char(u8),
    /// A string (`%s`, `%pks`, `%pus`, formatted IP addresses, `%pB`).
    Str(Vec<u8>),
    /// A pointer (`%p`, `%px`, `%pK`), and whether the kernel hashes it.
    Ptr(u64, bool),
    /// A symbol pointer (`%ps`, `%pS`).
    Sym(u64),
}

fn is_punct(c: u8) -> bool {
    c.is_ascii_punctuation()
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Reads a NUL-terminated string of at most `count - 1` bytes (`strncpy_from_kernel_nofault`):
/// `None` if a byte before the end cannot be read.
fn read_str(mem: &Memory, addr: u64, count: usize) -> Option<Vec<u8>> {
    let mut s = Vec::new();
    for k in 0..count as u64 {
        match mem.slice(addr.wrapping_add(k), 1) {
            Ok([0]) => return Some(s),
            Ok(b) if (s.len() + 1) < count => s.push(b[0]),
            Ok(_) => return Some(s),
            Err(_) => return None,
        }
    }
    Some(s)
}

fn ip_string(mem: &Memory, addr: u64, upper: bool, v6: bool) -> Vec<u8> {
    let n = if v6 { 16 } else { 4 };
    let ip = mem.slice(addr, n).map(<[u8]>::to_vec).unwrap_or_else(|_| vec![0; n]);
    let s = match (v6, upper) {
        (false, true) => format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
        (false, false) => format!("{:03}.{:03}.{:03}.{:03}", ip[0], ip[1], ip[2], ip[3]),
        (true, true) => {
            let words: Vec<String> =
                ip.chunks(2).map(|w| format!("{:02x}{:02x}", w[0], w[1])).collect();
            words.join(":")
        }
        (true, false) => ip.iter().map(|b| format!("{b:02x}")).collect(),
    };
    s.into_bytes()
}

/// Formats `fmt` (without its NUL) with `args` the way the kernel does, keeping at most `cap`
/// bytes of output. `args.len()` is the number of arguments the caller passes (3 for
/// `bpf_trace_printk`, `data_len / 8` for `bpf_snprintf`).
pub(crate) fn format(
    mem: &Memory,
    fmt: &[u8],
    args: &[u64],
    cap: usize,
) -> Result<Output, FmtError> {
    let at = |i: usize| fmt.get(i).copied().unwrap_or(0);
    let mut captured: Vec<Arg> = Vec::new();
    // Offset into the 512-byte argument buffer.
    let mut tmp = 0usize;
    let mut i = 0;
    // Pass 1: bpf_bprintf_prepare.
    while i < fmt.len() {
        let c = fmt[i];
        if c.is_ascii() && !c.is_ascii_graphic() && !is_space(c) && c != b' ' {
            return Err(FmtError::Invalid("control character in format"));
        }
        if c != b'%' {
            i += 1;
            continue;
        }
        if at(i + 1) == b'%' {
            i += 2;
            continue;
        }
        if captured.len() >= args.len() {
            return Err(FmtError::Invalid("more conversions than arguments"));
        }
        let arg = args[captured.len()];
        i += 1;
        if !at(i).is_ascii() {
            return Err(FmtError::Invalid("non-ASCII character in a conversion"));
        }
        while matches!(at(i), b'0' | b'+' | b'-' | b' ') {
            i += 1;
        }
        if (b'1'..=b'9').contains(&at(i)) {
            i += 1;
            while at(i).is_ascii_digit() {
                i += 1;
            }
        }
        let sized = |tmp: &mut usize, size: usize| -> Result<(), FmtError> {
            *tmp = tmp.div_ceil(4) * 4;
            if BIN_ARGS.saturating_sub(*tmp) < size {
                return Err(FmtError::NoSpace);
            }
            *tmp += size;
            Ok(())
        };
        let string = |tmp: &mut usize, addr: u64| -> Result<Vec<u8>, FmtError> {
            if *tmp >= BIN_ARGS {
                return Err(FmtError::NoSpace);
            }
            match read_str(mem, addr, BIN_ARGS - *tmp) {
                Some(s) => {
                    *tmp += s.len() + 1;
                    Ok(s)
                }
                None => {
                    *tmp += 1;
                    Ok(Vec::new())
                }
            }
        };
        let next_ends_word = |j: usize| {
            let n = at(j);
            n == 0 || is_space(n) || is_punct(n)
        };
        match at(i) {
            b'p' => {
                let n = at(i + 1);
                if next_ends_word(i + 1) {
                    sized(&mut tmp, 8)?;
                    captured.push(Arg::Ptr(arg, true));
                    i += 1;
                } else if matches!(n, b'k' | b'u') && at(i + 2) == b's' {
                    i += 3;
                    if !next_ends_word(i) {
                        return Err(FmtError::Invalid("%pks/%pus must end a word"));
                    }
                    captured.push(Arg::Str(string(&mut tmp, arg)?));
                } else if matches!(n, b'K' | b'x' | b's' | b'S') {
                    sized(&mut tmp, 8)?;
                    captured.push(match n {
                        b's' | b'S' => Arg::Sym(arg),
                        b'K' => Arg::Ptr(arg, true),
                        _ => Arg::Ptr(arg, false),
                    });
                    i += 2;
                } else if n == b'B' {
                    let text = format!("{arg:#x}").into_bytes();
                    let room = BIN_ARGS.saturating_sub(tmp);
                    let kept = text[..text.len().min(room.saturating_sub(1))].to_vec();
                    tmp += text.len() + 1;
                    captured.push(Arg::Str(kept));
                    i += 2;
                } else if matches!(n, b'i' | b'I') && matches!(at(i + 2), b'4' | b'6') {
                    let v6 = at(i + 2) == b'6';
                    if BIN_ARGS.saturating_sub(tmp) < if v6 { 16 } else { 4 } {
                        return Err(FmtError::NoSpace);
                    }
                    let text = ip_string(mem, arg, n == b'I', v6);
                    tmp += text.len() + 1;
                    captured.push(Arg::Str(text));
                    i += 3;
                } else {
                    return Err(FmtError::Invalid("unsupported %p extension"));
                }
            }
            b's' => {
                i += 1;
                if !next_ends_word(i) {
                    return Err(FmtError::Invalid("%s must end a word"));
                }
                captured.push(Arg::Str(string(&mut tmp, arg)?));
            }
            b'c' => {
                if tmp >= BIN_ARGS {
                    return Err(FmtError::NoSpace);
                }
                tmp += 1;
                captured.push(Arg::Char(arg as u8));
                i += 1;
            }
            _ => {
                let mut wide = false;
                if at(i) == b'l' {
                    wide = true;
                    i += 1;
                }
                if at(i) == b'l' {
                    i += 1;
                }
                let conv = at(i);
                if !matches!(conv, b'i' | b'd' | b'u' | b'x' | b'X') {
                    return Err(FmtError::Invalid("unsupported conversion"));
                }
                sized(&mut tmp, if wide { 8 } else { 4 })?;
                captured.push(Arg::Int {
                    v: arg,
                    wide,
                    signed: matches!(conv, b'i' | b'd'),
                    hex: matches!(conv, b'x' | b'X'),
                    upper: conv == b'X',
                });
                i += 1;
            }
        }
    }
    // Pass 2: bstr_printf.
    let mut out = Output { cap, ..Output::default() };
    let mut args = captured.into_iter();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            let end = fmt[i..].iter().position(|&b| b == b'%').map_or(fmt.len(), |p| i + p);
            out.push(&fmt[i..end]);
            i = end;
            continue;
        }
        if at(i + 1) == b'%' {
            out.push(b"%");
            i += 2;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        loop {
            match at(i) {
                b'-' => spec.left = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                b'0' => spec.zero = true,
                _ => break,
            }
            i += 1;
        }
        if at(i).is_ascii_digit() {
            let mut w = 0usize;
            while at(i).is_ascii_digit() {
                w = (w * 10 + usize::from(at(i) - b'0')).min(WIDTH_MAX);
                i += 1;
            }
            spec.width = Some(w);
        }
        // Skip the conversion letters; pointer extensions end at the first non-alphanumeric.
        let pointer = at(i) == b'p';
        if pointer {
            i += 1;
            while at(i).is_ascii_alphanumeric() {
                i += 1;
            }
        } else {
            while at(i) == b'l' {
                i += 1;
            }
            i += 1;
        }
        let Some(arg) = args.next() else { break };
        render(&mut out, spec, arg);
    }
    Ok(out)
}

/// A stand-in for the kernel's `siphash_1u64(ptr, &ptr_key) & 0xffffffff`.
fn hash_ptr(p: u64) -> u64 {
    let mut x = p ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) & 0xffff_ffff
}

fn pad_str(out: &mut Output, spec: Spec, text: &[u8]) {
    let fill = spec.width.unwrap_or(0).saturating_sub(text.len());
    if !spec.left {
        out.fill(b' ', fill);
    }
    out.push(text);
    if spec.left {
        out.fill(b' ', fill);
    }
}

/// `number()` of lib/vsprintf.c.
fn number(out: &mut Output, mut spec: Spec, v: u64, signed: bool, hex: bool, upper: bool) {
    if spec.left {
        spec.zero = false;
    }
    let mut width = spec.width.unwrap_or(0);
    let (neg, mag) =
        if signed && (v as i64) < 0 { (true, (v as i64).unsigned_abs()) } else { (false, v) };
    let sign = if !signed {
        None
    } else if neg {
        Some(b'-')
    } else if spec.plus {
        Some(b'+')
    } else if spec.space {
        Some(b' ')
    } else {
        None
    };
    if sign.is_some() {
        width = width.saturating_sub(1);
    }
    let digits = match (hex, upper) {
        (false, _) => mag.to_string(),
        (true, false) => format!("{mag:x}"),
        (true, true) => format!("{mag:X}"),
    };
    let fill = width.saturating_sub(digits.len());
    if !spec.zero && !spec.left {
        out.fill(b' ', fill);
    }
    if let Some(s) = sign {
        out.push(&[s]);
    }
    if spec.zero {
        out.fill(b'0', fill);
    }
    out.push(digits.as_bytes());
    if spec.left {
        out.fill(b' ', fill);
    }
}

fn render(out: &mut Output, spec: Spec, arg: Arg) {
    match arg {
        Arg::Int { v, wide, signed, hex, upper } => {
            let v = match (wide, signed) {
                (true, _) => v,
                (false, true) => v as i32 as i64 as u64,
                (false, false) => u64::from(v as u32),
            };
            number(out, spec, v, signed, hex, upper);
        }
        Arg::Char(c) => pad_str(out, spec, &[c]),
        Arg::Str(s) => pad_str(out, spec, &s),
        Arg::Ptr(p, hashed) => {
            // The kernel prints a keyed hash of the low 32 bits for real addresses (NULL and
            // error pointers print as they are): same shape here, a different (fixed) key.
            let p = if hashed && p != 0 && p < (-4095i64) as u64 { hash_ptr(p) } else { p };
            let mut spec = spec;
            if spec.width.is_none() {
                spec.width = Some(16);
                spec.zero = true;
            }
            number(out, spec, p, false, true, false);
        }
        Arg::Sym(p) => pad_str(out, spec, format!("{p:#x}").as_bytes()),
    }
}
