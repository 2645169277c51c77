//! A verification's result: the verdict, the kernel-style statistics and the log.

use serde::Serialize;

use crate::error::{Unsupported, Verdict, VerifyError};

/// The verifier's counters, as the kernel's stats line prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Instructions processed along all explored paths (`processed N insns`).
    pub processed_insns: u64,
    /// States stored for pruning (`total_states`).
    pub total_states: u64,
    /// Most states stored at once (`peak_states`).
    pub peak_states: u64,
    /// Most states stored at one instruction (`max_states_per_insn`).
    pub max_states_per_insn: u64,
    /// Longest chain of liveness marks (`mark_read`).
    pub mark_read: u64,
    /// Wall-clock time the verification took, in microseconds.
    pub verification_usec: u64,
}

impl Stats {
    /// The kernel's stats line: `processed N insns (limit 1000000) max_states_per_insn M
    /// total_states T peak_states P mark_read R`.
    pub fn line(&self, limit: u64) -> String {
        format!(
            "processed {} insns (limit {limit}) max_states_per_insn {} total_states {} \
             peak_states {} mark_read {}",
            self.processed_insns,
            self.max_states_per_insn,
            self.total_states,
            self.peak_states,
            self.mark_read
        )
    }
}

/// The result of verifying one program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The program's name.
    pub program: String,
    /// What the verifier decided.
    pub verdict: Verdict,
    /// Its counters.
    pub stats: Stats,
    /// The log at the configured level, in the kernel's format, ending with the stats line.
    pub log: String,
}

/// The header of veristat's CSV output (`veristat -o csv`), which `veristat -C` and `-R` read.
pub const CSV_HEADER: &str = "file_name,prog_name,verdict,duration,total_insns,total_states,\
                              peak_states,max_states_per_insn,max_mark_read_len";

/// One report as the `--json` contract has it (fields in this order).
#[derive(Serialize)]
struct JsonReport<'a> {
    program: &'a str,
    verdict: &'static str,
    error: Option<&'a VerifyError>,
    unsupported: Option<&'a Unsupported>,
    stats: JsonStats,
}

/// The counters of the `--json` contract.
#[derive(Serialize)]
struct JsonStats {
    processed_insns: u64,
    total_states: u64,
    peak_states: u64,
    max_states_per_insn: u64,
    verification_usec: u64,
}

impl Serialize for Report {
    /// The `--json` contract, fields in its order: `program`, `verdict` (`accepted`,
    /// `rejected`, `unsupported`), `error` (`kind`, `message`, `insn`, `source`; null unless
    /// rejected), `unsupported` (`feature`, `insn`; null unless unsupported) and `stats`
    /// (`processed_insns`, `total_states`, `peak_states`, `max_states_per_insn`,
    /// `verification_usec`).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (error, unsupported) = match &self.verdict {
            Verdict::Accepted => (None, None),
            Verdict::Rejected(e) => (Some(e), None),
            Verdict::Unsupported(u) => (None, Some(u)),
        };
        JsonReport {
            program: &self.program,
            verdict: self.verdict.name(),
            error,
            unsupported,
            stats: JsonStats {
                processed_insns: self.stats.processed_insns,
                total_states: self.stats.total_states,
                peak_states: self.stats.peak_states,
                max_states_per_insn: self.stats.max_states_per_insn,
                verification_usec: self.stats.verification_usec,
            },
        }
        .serialize(serializer)
    }
}

impl Report {
    /// The report as a JSON value (see its `Serialize`: the `--json` contract).
    pub fn to_json(&self) -> serde_json::Value {
        // Plain strings, numbers and options: serialising them cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// The report's row of veristat's CSV ([`CSV_HEADER`]) for an object named `file_name`
    /// (veristat writes the file's base name): verdict `success` or `failure`, duration in
    /// microseconds. `None` for an unsupported verdict, which veristat has no value for.
    /// Commas and line breaks in names (veristat's CSV has no quoting) become `_`.
    pub fn csv_row(&self, file_name: &str) -> Option<String> {
        let verdict = match self.verdict {
            Verdict::Accepted => "success",
            Verdict::Rejected(_) => "failure",
            Verdict::Unsupported(_) => return None,
        };
        let s = &self.stats;
        Some(format!(
            "{},{},{verdict},{},{},{},{},{},{}",
            csv_field(file_name),
            csv_field(&self.program),
            s.verification_usec,
            s.processed_insns,
            s.total_states,
            s.peak_states,
            s.max_states_per_insn,
            s.mark_read
        ))
    }

    /// For a rejection, the error as a command refusing to run the program prints it:
    /// `NAME: the verifier rejects the program: insn N: MESSAGE`, then `  source: FILE:LINE:
    /// TEXT` when the C source line is known. `None` unless rejected.
    pub fn refusal(&self) -> Option<String> {
        let Verdict::Rejected(e) = &self.verdict else { return None };
        let mut text = format!("{}: the verifier rejects the program: ", self.program);
        if let Some(insn) = e.insn {
            text += &format!("insn {insn}: ");
        }
        text += &e.message;
        if let Some(l) = &e.line {
            text += &format!("\n  source: {}:{}: {}", l.file, l.line, l.text.trim());
        }
        Some(text)
    }

    /// The report as text: the log when `log_level` is 1 or 2, then the verdict line
    /// (`NAME: accepted`, `NAME: rejected`, `NAME: unsupported: FEATURE, at insn N`), for a rejection the
    /// error with its instruction and C source line, and the kernel's stats line (with the
    /// processed-instruction `limit`) unless the log already ends with it.
    pub fn text(&self, log_level: u8, limit: u64) -> String {
        let mut out = String::new();
        let stats = self.stats.line(limit);
        let mut stats_shown = false;
        if log_level > 0 && !self.log.trim().is_empty() {
            out += self.log.trim_end_matches('\n');
            out.push('\n');
            stats_shown = self.log.lines().rev().find(|l| !l.trim().is_empty()) == Some(&stats);
        }
        match &self.verdict {
            Verdict::Accepted => out += &format!("{}: accepted\n", self.program),
            Verdict::Rejected(e) => {
                out += &format!("{}: rejected\n", self.program);
                match e.insn {
                    Some(insn) => out += &format!("  error: insn {insn}: {}\n", e.message),
                    None => out += &format!("  error: {}\n", e.message),
                }
                if let Some(l) = &e.line {
                    out += &format!("  source: {}:{}: {}\n", l.file, l.line, l.text.trim());
                }
            }
            Verdict::Unsupported(u) => {
                out += &format!("{}: unsupported: {}", self.program, u.feature);
                if let Some(insn) = u.insn {
                    out += &format!(", at insn {insn}");
                }
                out.push('\n');
            }
        }
        if !stats_shown {
            out += &stats;
            out.push('\n');
        }
        out
    }
}

/// A name as one veristat CSV field: no separators inside.
fn csv_field(name: &str) -> String {
    name.chars().map(|c| if matches!(c, ',' | '\n' | '\r') { '_' } else { c }).collect()
}

/// Reports as the `--json` contract has them, pretty-printed in the contract's field order:
/// one object for one report, a list for several.
pub fn json(reports: &[Report]) -> String {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(many),
    };
    // Plain strings, numbers and options: serialising them cannot fail.
    text.unwrap_or_default()
}

/// veristat's CSV of the reports of object `file_name`: the header, then one row per report
/// with a verdict (unsupported ones are left out: veristat knows only success and failure).
pub fn csv(file_name: &str, reports: &[Report]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for row in reports.iter().filter_map(|r| r.csv_row(file_name)) {
        out += &row;
        out.push('\n');
    }
    out
}

/// Counts of the verdicts of several reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Accepted programs.
    pub accepted: usize,
    /// Rejected programs.
    pub rejected: usize,
    /// Programs without a verdict.
    pub unsupported: usize,
}

impl Tally {
    /// The verdict counts of `reports`.
    pub fn of(reports: &[Report]) -> Tally {
        let mut t = Tally::default();
        for r in reports {
            match r.verdict {
                Verdict::Accepted => t.accepted += 1,
                Verdict::Rejected(_) => t.rejected += 1,
                Verdict::Unsupported(_) => t.unsupported += 1,
            }
        }
        t
    }

    /// The summary line: `3 programs: 1 accepted, 1 rejected, 1 unsupported`.
    pub fn line(&self) -> String {
        let n = self.accepted + self.rejected + self.unsupported;
        let programs = if n == 1 { "program" } else { "programs" };
        format!(
            "{n} {programs}: {} accepted, {} rejected, {} unsupported",
            self.accepted, self.rejected, self.unsupported
        )
    }

    /// The exit status `bpflab verify` ends with: 0 when every program is accepted, 1 when
    /// any is rejected, 2 when none is rejected but some have no verdict (or there are none).
    pub fn exit_status(&self) -> u8 {
        match (self.rejected, self.unsupported, self.accepted) {
            (r, _, _) if r > 0 => 1,
            (0, 0, a) if a > 0 => 0,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, SourceLine};

    fn stats() -> Stats {
        Stats {
            processed_insns: 42,
            total_states: 5,
            peak_states: 4,
            max_states_per_insn: 1,
            mark_read: 3,
            verification_usec: 17,
        }
    }

    fn rejected() -> Report {
        let mut error =
            VerifyError::new(ErrorKind::InvalidMemAccess, 12, "R1 invalid mem access 'scalar'");
        error.line =
            Some(SourceLine { file: "prog.bpf.c".into(), line: 31, text: "\treturn *p;".into() });
        Report {
            program: "xdp_bad".into(),
            verdict: Verdict::Rejected(error),
            stats: stats(),
            log: String::new(),
        }
    }

    fn accepted() -> Report {
        Report {
            program: "xdp_ok".into(),
            verdict: Verdict::Accepted,
            stats: stats(),
            log: String::new(),
        }
    }

    fn unsupported() -> Report {
        Report {
            program: "lsm_x".into(),
            verdict: Verdict::Unsupported(Unsupported {
                feature: "kfunc bpf_foo".into(),
                insn: Some(3),
            }),
            stats: Stats::default(),
            log: String::new(),
        }
    }

    #[test]
    fn json_contract_is_pinned() {
        let text = serde_json::to_string(&rejected()).unwrap();
        assert_eq!(
            text,
            r#"{"program":"xdp_bad","verdict":"rejected","error":{"kind":"invalid_mem_access","message":"R1 invalid mem access 'scalar'","insn":12,"source":{"file":"prog.bpf.c","line":31,"text":"\treturn *p;"}},"unsupported":null,"stats":{"processed_insns":42,"total_states":5,"peak_states":4,"max_states_per_insn":1,"verification_usec":17}}"#
        );
        let text = serde_json::to_string(&accepted()).unwrap();
        assert_eq!(
            text,
            r#"{"program":"xdp_ok","verdict":"accepted","error":null,"unsupported":null,"stats":{"processed_insns":42,"total_states":5,"peak_states":4,"max_states_per_insn":1,"verification_usec":17}}"#
        );
        let text = serde_json::to_string(&unsupported()).unwrap();
        assert_eq!(
            text,
            r#"{"program":"lsm_x","verdict":"unsupported","error":null,"unsupported":{"feature":"kfunc bpf_foo","insn":3},"stats":{"processed_insns":0,"total_states":0,"peak_states":0,"max_states_per_insn":0,"verification_usec":0}}"#
        );
    }

    #[test]
    fn json_error_kind_is_the_class_name() {
        for kind in [ErrorKind::PacketAccess, ErrorKind::UninitStack, ErrorKind::Other] {
            let r = Report {
                verdict: Verdict::Rejected(VerifyError::program(kind, "m")),
                ..accepted()
            };
            let doc = r.to_json();
            assert_eq!(doc["error"]["kind"], kind.name());
            assert_eq!(doc["error"]["insn"], serde_json::Value::Null);
            assert_eq!(doc["error"]["source"], serde_json::Value::Null);
        }
    }

    #[test]
    fn json_is_one_object_or_a_list() {
        let one: serde_json::Value = serde_json::from_str(&json(&[accepted()])).unwrap();
        assert_eq!(one, accepted().to_json());
        assert!(json(&[accepted()]).starts_with("{\n  \"program\": \"xdp_ok\",\n  \"verdict\""));
        let list: serde_json::Value =
            serde_json::from_str(&json(&[accepted(), rejected()])).unwrap();
        let items = list.as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1]["verdict"], "rejected");
        assert_eq!(items[1]["error"]["insn"], 12);
        assert_eq!(json(&[]), "[]");
    }

    #[test]
    fn csv_is_veristats() {
        assert_eq!(
            CSV_HEADER,
            "file_name,prog_name,verdict,duration,total_insns,total_states,peak_states,\
             max_states_per_insn,max_mark_read_len"
        );
        assert_eq!(
            csv("xdp.bpf.o", &[accepted(), unsupported(), rejected()]),
            "file_name,prog_name,verdict,duration,total_insns,total_states,peak_states,\
             max_states_per_insn,max_mark_read_len\n\
             xdp.bpf.o,xdp_ok,success,17,42,5,4,1,3\n\
             xdp.bpf.o,xdp_bad,failure,17,42,5,4,1,3\n"
        );
        assert_eq!(unsupported().csv_row("a.o"), None);
        assert_eq!(accepted().csv_row("a,b\n.o").unwrap(), "a_b_.o,xdp_ok,success,17,42,5,4,1,3");
    }

    #[test]
    fn text_per_verdict() {
        let stats = "processed 42 insns (limit 1000000) max_states_per_insn 1 total_states 5 \
                     peak_states 4 mark_read 3\n";
        assert_eq!(
            rejected().text(0, 1_000_000),
            format!(
                "xdp_bad: rejected\n  error: insn 12: R1 invalid mem access 'scalar'\n  \
                 source: prog.bpf.c:31: return *p;\n{stats}"
            )
        );
        assert_eq!(accepted().text(0, 1_000_000), format!("xdp_ok: accepted\n{stats}"));
        assert_eq!(
            unsupported().text(2, 1_000_000),
            "lsm_x: unsupported: kfunc bpf_foo, at insn 3\n\
             processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 \
             peak_states 0 mark_read 0\n"
        );
    }

    #[test]
    fn text_shows_the_log_at_level_1_and_the_stats_line_once() {
        let mut r = accepted();
        let stats = r.stats.line(1_000_000);
        r.log = format!("0: (b7) r0 = 0\n1: (95) exit\n{stats}\n");
        assert_eq!(
            r.text(1, 1_000_000),
            format!("0: (b7) r0 = 0\n1: (95) exit\n{stats}\nxdp_ok: accepted\n")
        );
        // Level 0 prints no log, but the stats line.
        assert_eq!(r.text(0, 1_000_000), format!("xdp_ok: accepted\n{stats}\n"));
        // A log without the stats line gets it after the verdict.
        r.log = "0: (b7) r0 = 0\n".into();
        assert_eq!(r.text(1, 1_000_000), format!("0: (b7) r0 = 0\nxdp_ok: accepted\n{stats}\n"));
    }

    #[test]
    fn refusal_names_program_insn_message_and_source() {
        assert_eq!(
            rejected().refusal().unwrap(),
            "xdp_bad: the verifier rejects the program: insn 12: R1 invalid mem access 'scalar'\n  \
             source: prog.bpf.c:31: return *p;"
        );
        let whole = Report {
            verdict: Verdict::Rejected(VerifyError::program(
                ErrorKind::FallOffEnd,
                "last insn is not an exit or jmp",
            )),
            ..accepted()
        };
        assert_eq!(
            whole.refusal().unwrap(),
            "xdp_ok: the verifier rejects the program: last insn is not an exit or jmp"
        );
        assert_eq!(accepted().refusal(), None);
        assert_eq!(unsupported().refusal(), None);
    }

    #[test]
    fn tally_lines_and_exit_statuses() {
        let t = Tally::of(&[accepted(), rejected(), unsupported()]);
        assert_eq!(t, Tally { accepted: 1, rejected: 1, unsupported: 1 });
        assert_eq!(t.line(), "3 programs: 1 accepted, 1 rejected, 1 unsupported");
        assert_eq!(t.exit_status(), 1);
        assert_eq!(Tally::of(&[accepted(), accepted()]).exit_status(), 0);
        assert_eq!(Tally::of(&[accepted(), unsupported()]).exit_status(), 2);
        assert_eq!(
            Tally::of(&[unsupported()]).line(),
            "1 program: 0 accepted, 0 rejected, 1 unsupported"
        );
        assert_eq!(Tally::of(&[]).exit_status(), 2);
    }
}
