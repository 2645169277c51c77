//! `bpf_trace_printk`: the kernel's printf subset, output captured in the environment.

use crate::helpers::{ArgType, Helper, HelperCtx, HelperError, HelperProto, RetType};

/// The helpers of this family.
pub(super) const HELPERS: &[Helper] = &[Helper { proto: TRACE_PRINTK, func: trace_printk }];

const TRACE_PRINTK: HelperProto = HelperProto {
    id: 6,
    name: "bpf_trace_printk",
    ret: RetType::Integer,
    args: &[
        ArgType::PtrToMem,
        ArgType::ConstSize,
        ArgType::Anything,
        ArgType::Anything,
        ArgType::Anything,
    ],
    gpl_only: true,
};

/// Largest string `%s` prints, as the kernel's `MAX_BPRINTF_STR_LEN`.
const MAX_STR: u64 = 512;

/// `long bpf_trace_printk(const char *fmt, u32 fmt_size, ...)`: formats up to three arguments
/// with the kernel's subset of printf, records the line, returns its length.
fn trace_printk(ctx: &mut HelperCtx<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
    if a[1] == 0 {
        return Err(HelperError::BadArg { arg: 2, reason: "format size must be > 0" });
    }
    let fmt = ctx.arg_str(1, a[0], a[1])?;
    let line = format_printk(ctx, &fmt, &a[2..5])?;
    let len = line.len() as u64;
    ctx.world.env.trace.push(String::from_utf8_lossy(&line).into_owned());
    Ok(len)
}

/// Formats `fmt` with the kernel's bprintf rules: `%[-0 width][l|ll|h|hh](d|i|u|x|X|c|s|p)`
/// and `%%`; at most `args.len()` conversions.
fn format_printk(ctx: &HelperCtx<'_>, fmt: &[u8], args: &[u64]) -> Result<Vec<u8>, HelperError> {
    let bad = |reason| Err(HelperError::BadArg { arg: 1, reason });
    let mut out = Vec::with_capacity(fmt.len() + 16);
    let mut next = args.iter().copied();
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        if fmt.get(i) == Some(&b'%') {
            out.push(b'%');
            i += 1;
            continue;
        }
        let (mut left, mut zero, mut width) = (false, false, 0usize);
        while let Some(&f @ (b'-' | b'0')) = fmt.get(i) {
            left |= f == b'-';
            zero |= f == b'0';
            i += 1;
        }
        while let Some(d @ b'0'..=b'9') = fmt.get(i).copied() {
            width = (width * 10 + usize::from(d - b'0')).min(64);
            i += 1;
        }
        let mut long = 0;
        while fmt.get(i) == Some(&b'l') {
            long += 1;
            i += 1;
        }
        let mut short = 0;
        while fmt.get(i) == Some(&b'h') {
            short += 1;
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else { return bad("format ends inside a conversion") };
        i += 1;
        if long > 2 || short > 2 {
            return bad("invalid length modifier");
        }
        let Some(v) = next.next() else { return bad("more conversions than arguments") };
        let bits = match (long, short) {
            (0, 0) => 32,
            (0, 1) => 16,
            (0, _) => 8,
            _ => 64,
        };
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let signed = |v: u64| ((v << (64 - bits)) as i64) >> (64 - bits);
        let text: Vec<u8> = match conv {
            b'd' | b'i' => signed(v).to_string().into_bytes(),
            b'u' => (v & mask).to_string().into_bytes(),
            b'x' => format!("{:x}", v & mask).into_bytes(),
            b'X' => format!("{:X}", v & mask).into_bytes(),
            b'c' => vec![v as u8],
            b'p' => format!("{v:#x}").into_bytes(),
            b's' => match ctx.world.mem.slice(v, 1) {
                Ok(_) => read_c_string(ctx, v),
                Err(_) => b"(efault)".to_vec(),
            },
            _ => return bad("unsupported conversion"),
        };
        pad(&mut out, &text, width, left, zero && !left && conv != b's');
    }
    Ok(out)
}

/// Reads a NUL-terminated string of at most [`MAX_STR`] bytes, stopping at the region's end.
fn read_c_string(ctx: &HelperCtx<'_>, addr: u64) -> Vec<u8> {
    let mut s = Vec::new();
    for k in 0..MAX_STR {
        match ctx.world.mem.slice(addr.wrapping_add(k), 1) {
            Ok([0]) | Err(_) => break,
            Ok(b) => s.push(b[0]),
        }
    }
    s
}

fn pad(out: &mut Vec<u8>, text: &[u8], width: usize, left: bool, zero: bool) {
    let fill = width.saturating_sub(text.len());
    if left {
        out.extend_from_slice(text);
        out.resize(out.len() + fill, b' ');
    } else if zero {
        let (sign, digits) = match text.first() {
            Some(b'-') => (&text[..1], &text[1..]),
            _ => (&text[..0], text),
        };
        out.extend_from_slice(sign);
        out.resize(out.len() + fill, b'0');
        out.extend_from_slice(digits);
    } else {
        out.resize(out.len() + fill, b' ');
        out.extend_from_slice(text);
    }
}
