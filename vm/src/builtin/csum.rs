//! Internet checksum arithmetic as the kernel does it on little-endian x86-64
//! (include/net/checksum.h, arch/x86 `csum_partial`/`csum_fold`): ones' complement sums with
//! end-around carry over native-endian words, bit-exact including which of the two zeros
//! (0x0000 / 0xffff) a result comes out as.

/// `csum_add`: 32-bit ones' complement addition.
pub(crate) fn csum_add(csum: u32, addend: u32) -> u32 {
    let (res, carry) = csum.overflowing_add(addend);
    res.wrapping_add(u32::from(carry))
}

/// `csum_sub`: adds the complement.
pub(crate) fn csum_sub(csum: u32, addend: u32) -> u32 {
    csum_add(csum, !addend)
}

/// `csum16_add`: 16-bit ones' complement addition.
pub(crate) fn csum16_add(csum: u16, addend: u16) -> u16 {
    let (res, carry) = csum.overflowing_add(addend);
    res.wrapping_add(u16::from(carry))
}

/// `csum16_sub`.
pub(crate) fn csum16_sub(csum: u16, addend: u16) -> u16 {
    csum16_add(csum, !addend)
}

/// `csum_fold`: folds a 32-bit sum to 16 bits and complements it.
pub(crate) fn csum_fold(sum: u32) -> u16 {
    let s = (sum >> 16) + (sum & 0xffff);
    let s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// `csum_from32to16`: folds a 32-bit sum to 16 bits without complementing it.
pub(crate) fn csum_from32to16(sum: u32) -> u16 {
    (sum.wrapping_add(sum.rotate_right(16)) >> 16) as u16
}

/// `csum_partial`: the 32-bit ones' complement sum of `buf` (as little-endian words, the
/// tail zero-padded) and `sum`.
pub(crate) fn csum_partial(buf: &[u8], sum: u32) -> u32 {
    let mut acc = u64::from(sum);
    for chunk in buf.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        acc += u64::from(u32::from_le_bytes(w));
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// `csum_replace_by_diff`: applies a 32-bit checksum difference to the checksum field `sum`.
pub(crate) fn csum_replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !u32::from(sum)))
}

/// `csum_replace4`: updates `sum` for a 32-bit field changing from `from` to `to`.
pub(crate) fn csum_replace4(sum: u16, from: u32, to: u32) -> u16 {
    let tmp = csum_sub(!u32::from(sum), from);
    csum_fold(csum_add(tmp, to))
}

/// `csum_replace2`: updates `sum` for a 16-bit field changing from `from` to `to`.
pub(crate) fn csum_replace2(sum: u16, from: u16, to: u16) -> u16 {
    !csum16_add(csum16_sub(!sum, from), to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid IPv4 header sums to 0xffff (folded: 0).
    #[test]
    fn ipv4_header_checksum() {
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(csum_from32to16(csum_partial(&hdr, 0)), 0xffff);
        assert_eq!(csum_fold(csum_partial(&hdr, 0)), 0);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        // The checksum field, as stored (big-endian 0xb861), read little-endian.
        assert_eq!(csum_fold(csum_partial(&zeroed, 0)), u16::from_le_bytes([0xb8, 0x61]));
    }

    #[test]
    fn replace_agrees_with_recomputation() {
        let mut hdr = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let old = u32::from_le_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
        let new = u32::from_le_bytes([10, 9, 8, 7]);
        let sum = u16::from_le_bytes([hdr[10], hdr[11]]);
        let by4 = csum_replace4(sum, old, new);
        let diff = csum_sub(new, old);
        let by_diff = csum_replace_by_diff(sum, diff);
        hdr[16..20].copy_from_slice(&[10, 9, 8, 7]);
        hdr[10] = 0;
        hdr[11] = 0;
        let full = csum_fold(csum_partial(&hdr, 0));
        assert_eq!(by4, full);
        assert_eq!(by_diff, full);
        assert_eq!(csum_add(0xffff_ffff, 1), 1);
        assert_eq!(csum16_add(0xffff, 1), 1);
        assert_eq!(csum_partial(&[], 0), 0);
        assert_eq!(csum_partial(&[0xff; 4], 0), 0xffff_ffff);
        assert_eq!(csum_partial(&[1], 0), 1);
    }
}
