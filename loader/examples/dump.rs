//! Prints what the loader makes of an object: `cargo run -p bpflab-loader --example dump -- X.o`.

fn main() {
    let path = std::env::args().nth(1).expect("usage: dump OBJECT");
    let bytes = std::fs::read(&path).expect("read object");
    match bpflab_loader::load(&bytes, &bpflab_loader::LoadOptions::for_path(&path)) {
        Ok(obj) => {
            println!("license {:?} version {:?}", obj.license, obj.kernel_version);
            for (i, m) in obj.collection.maps.iter().enumerate() {
                println!(
                    "map {i}: {} {:?} k{} v{} n{} f{:#x} {:?}",
                    m.name,
                    m.map_type,
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    m.flags,
                    obj.maps[i]
                );
            }
            for (p, info) in obj.collection.programs.iter().zip(&obj.programs) {
                println!(
                    "prog {} [{}] {:?} eat={:?} to={:?} subs={:?}",
                    p.name,
                    p.section,
                    p.prog_type,
                    p.expected_attach_type,
                    p.attach_to,
                    info.subprograms
                );
                for (i, insn) in p.insns.iter().enumerate() {
                    println!("  {i:3}: {insn:?}");
                }
                for (slot, l) in &info.line_info {
                    println!("  line {slot}: {}:{} {}", l.file, l.line, l.text.trim());
                }
                println!("  funcs {:?}", info.func_info);
            }
            for r in &obj.relocations {
                println!("reloc {r:?}");
            }
            for c in &obj.core_relocations {
                println!("core {c:?}");
            }
        }
        Err(e) => println!("error: {e}"),
    }
}
