; XDP-style parse of an Ethernet/IPv4/TCP packet in raw mode:
; r1 = packet start, r2 = packet length. Returns 2 (XDP_PASS) for TCP port 80,
; 1 (XDP_DROP) for other TCP ports and 0 (XDP_ABORTED) for anything else.
    r0 = 0
    r3 = r1
    r3 += r2                    ; r3 = data_end
    r4 = r1
    r4 += 34                    ; Ethernet (14) + minimal IPv4 (20)
    if r4 > r3 goto out
    r5 = *(u16 *)(r1 + 12)      ; ethertype
    r5 = be16 r5
    if r5 != 0x800 goto out
    r5 = *(u8 *)(r1 + 14)       ; version / IHL
    r6 = r5
    r6 >>= 4
    if r6 != 4 goto out
    r5 &= 15
    r5 <<= 2                    ; IPv4 header length
    if r5 < 20 goto out
    r6 = *(u8 *)(r1 + 23)       ; protocol
    if r6 != 6 goto out
    r4 = r1
    r4 += 14
    r4 += r5                    ; TCP header
    r7 = r4
    r7 += 20
    if r7 > r3 goto out
    r6 = *(u16 *)(r4 + 2)       ; destination port
    r6 = be16 r6
    r0 = 1
    if r6 != 80 goto out
    r0 = 2
out:
    exit
