/* An object shaped like the ones bpf_conformance's ELF mode writes: the program is the global
 * function `main` in `.text`, called with r1 = memory and r2 = its length.
 * Rebuild: clang-19 -O2 -ffreestanding -target bpf -c conformance_main.c -o conformance_main.o */
unsigned long main(unsigned char *mem, unsigned long len)
{
	return len > 1 ? (unsigned long)mem[0] << 8 | mem[1] : 0xdead;
}
