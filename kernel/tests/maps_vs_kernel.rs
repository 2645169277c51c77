//! The simulated maps against the running kernel's: the same random operations on an LPM trie,
//! a queue and a stack, through `bpftool` (a pinned map under /sys/fs/bpf) and through
//! bpflab's [`World`], must give the same errnos, lookups and iteration order. Skipped (with a
//! message) where bpftool or bpffs is unavailable.

use std::path::PathBuf;
use std::process::Command;

use bpflab_vm::maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST};
use bpflab_vm::spec::{MapSpec, MapType};
use bpflab_vm::world::World;

/// Deterministic pseudo-random numbers (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hex(bytes: &[u8]) -> Vec<String> {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex(text: &str) -> Vec<u8> {
    text.split_whitespace().filter_map(|w| u8::from_str_radix(w, 16).ok()).collect()
}

/// The errno whose message bpftool printed after "failed: ".
fn errno_of(stderr: &str) -> i64 {
    let msg = stderr.rsplit("failed: ").next().unwrap_or("").trim();
    (1..600)
        .find(|&n| {
            let text = std::io::Error::from_raw_os_error(n).to_string();
            text.strip_suffix(&format!(" (os error {n})")).unwrap_or(&text) == msg
        })
        .map_or(-1, |n| -i64::from(n))
}

/// A map pinned in bpffs, removed on drop.
struct Pinned {
    path: PathBuf,
}

impl Pinned {
    /// Creates the map, or `None` (with a SKIP message) where bpftool cannot.
    fn create(
        name: &str,
        kind: &str,
        key: u32,
        value: u32,
        entries: u32,
        flags: u32,
    ) -> Option<Pinned> {
        let path = PathBuf::from(format!("/sys/fs/bpf/bpflab_mvk_{name}_{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let out = Command::new("bpftool")
            .args(["map", "create"])
            .arg(&path)
            .args(["type", kind, "key", &key.to_string(), "value", &value.to_string()])
            .args(["entries", &entries.to_string(), "name", name, "flags", &flags.to_string()])
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Pinned { path }),
            Ok(o) => {
                println!("SKIP: bpftool map create: {}", String::from_utf8_lossy(&o.stderr));
                None
            }
            Err(e) => {
                println!("SKIP: bpftool unavailable: {e}");
                None
            }
        }
    }

    fn bpftool(&self, args: &[&str], tail: &[String]) -> (bool, String, String) {
        let out = Command::new("bpftool")
            .args(["map", args[0], "pinned"])
            .arg(&self.path)
            .args(&args[1..])
            .args(tail)
            .output()
            .expect("bpftool runs");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    /// 0 or the negative errno.
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> i64 {
        let flag = match flags {
            BPF_NOEXIST => "noexist",
            BPF_EXIST => "exist",
            _ => "any",
        };
        let mut tail = Vec::new();
        if !key.is_empty() {
            tail.push("key".to_owned());
            tail.push("hex".to_owned());
            tail.extend(hex(key));
        }
        tail.push("value".to_owned());
        tail.push("hex".to_owned());
        tail.extend(hex(value));
        tail.push(flag.to_owned());
        let (ok, _, err) = self.bpftool(&["update"], &tail);
        if ok { 0 } else { errno_of(&err) }
    }

    fn delete(&self, key: &[u8]) -> i64 {
        let mut tail = vec!["key".to_owned(), "hex".to_owned()];
        tail.extend(hex(key));
        let (ok, _, err) = self.bpftool(&["delete"], &tail);
        if ok { 0 } else { errno_of(&err) }
    }

    /// The value found for `key`, if any.
    fn lookup(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut tail = vec!["key".to_owned(), "hex".to_owned()];
        tail.extend(hex(key));
        let (ok, out, _) = self.bpftool(&["lookup"], &tail);
        let value = out.split("value:").nth(1)?;
        ok.then(|| parse_hex(value))
    }

    /// `pop` or `peek` of a queue or stack.
    fn take(&self, cmd: &str) -> Option<Vec<u8>> {
        let (ok, out, _) = self.bpftool(&[cmd], &[]);
        let value = out.split("value:").nth(1)?;
        ok.then(|| parse_hex(value))
    }

    /// Every key, in the kernel's get_next_key order.
    fn keys(&self) -> Vec<Vec<u8>> {
        let (_, out, _) = self.bpftool(&["dump"], &[]);
        out.split("key:")
            .skip(1)
            .map(|entry| parse_hex(entry.split("value:").next().unwrap_or("")))
            .collect()
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An IPv4 LPM key; the data bits past the prefix are random, as programs may pass them.
fn lpm_key(rng: &mut Rng, plen_max: u64) -> Vec<u8> {
    let plen = rng.below(plen_max + 1) as u32;
    // Few distinct prefixes, so updates and deletes hit existing ones.
    let addr = [10, rng.below(3) as u8 * 64, rng.below(4) as u8, rng.below(256) as u8];
    let mut key = plen.to_le_bytes().to_vec();
    key.extend_from_slice(&addr);
    key
}

#[test]
fn lpm_trie_matches_the_kernel() {
    let Some(kernel) = Pinned::create("lpm", "lpm_trie", 8, 4, 24, 1) else { return };
    let mut spec = MapSpec::new("lpm", MapType::LpmTrie, 8, 4, 24);
    spec.flags = 1;
    let mut sim = World::new(&[spec], 1).unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let errno = |r: Result<(), bpflab_vm::maps::MapError>| r.map_or_else(|e| e.errno(), |()| 0);
    let mut seen = std::collections::BTreeSet::<i64>::new();
    let mut found = 0;
    for step in 0..300 {
        let key = lpm_key(&mut rng, 34);
        match rng.below(5) {
            0..=2 => {
                let flags = [BPF_ANY, BPF_NOEXIST, BPF_EXIST][rng.below(3) as usize];
                let value = (step as u32).to_le_bytes();
                let want = kernel.update(&key, &value, flags);
                seen.insert(want);
                assert_eq!(
                    errno(sim.update(0, &key, &value, flags)),
                    want,
                    "step {step}: update {key:?}"
                );
            }
            3 => {
                let want = kernel.delete(&key);
                assert_eq!(errno(sim.delete(0, &key)), want, "step {step}: delete {key:?}");
            }
            _ => {
                let want = kernel.lookup(&key);
                found += usize::from(want.is_some());
                assert_eq!(sim.lookup(0, &key).unwrap(), want, "step {step}: lookup {key:?}");
            }
        }
        if step % 50 == 49 {
            assert_eq!(sim.keys(0).unwrap(), kernel.keys(), "step {step}: iteration order");
        }
    }
    // The sequence exercised every outcome: success, EEXIST, ENOENT, ENOSPC, EINVAL.
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![-28, -22, -17, -2, 0]);
    assert!(found > 0);
    // Longest-prefix lookups of whole addresses.
    for _ in 0..100 {
        let mut key = lpm_key(&mut rng, 0);
        key[..4].copy_from_slice(&32u32.to_le_bytes());
        assert_eq!(sim.lookup(0, &key).unwrap(), kernel.lookup(&key), "lookup {key:?}");
    }
}

#[test]
fn queue_and_stack_match_the_kernel() {
    for kind in ["queue", "stack"] {
        let Some(kernel) = Pinned::create(kind, kind, 0, 2, 5, 0) else { return };
        let t = if kind == "queue" { MapType::Queue } else { MapType::Stack };
        let mut sim = World::new(&[MapSpec::new(kind, t, 0, 2, 5)], 1).unwrap();
        let mut rng = Rng(0xfeed_f00d_1234_5679);
        for step in 0..200u16 {
            match rng.below(4) {
                0 | 1 => {
                    let flags = [BPF_ANY, BPF_EXIST][rng.below(2) as usize];
                    let value = step.to_le_bytes();
                    let want = kernel.update(&[], &value, flags);
                    let got = sim.update(0, &[], &value, flags).map_or_else(|e| e.errno(), |()| 0);
                    assert_eq!(got, want, "{kind} step {step}: push");
                }
                2 => {
                    let want = kernel.take("pop");
                    let (m, mem) = sim.map_mut(0).unwrap();
                    assert_eq!(m.pop(mem).ok(), want, "{kind} step {step}: pop");
                }
                _ => {
                    let want = kernel.take("peek");
                    assert_eq!(sim.lookup(0, &[]).unwrap(), want, "{kind} step {step}: peek");
                }
            }
        }
    }
}
