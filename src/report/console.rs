//! The console: one line per test as it finishes, then the failures and a summary.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::runner::{RunRecord, TestRecord};
use crate::suite::Verdict;

#[derive(Debug, Default)]
pub struct Console {
    lock: Mutex<()>,
}

fn ms(d: Duration) -> String {
    format!("{:>8.1}ms", d.as_secs_f64() * 1000.0)
}

impl Console {
    pub fn new() -> Self {
        Self::default()
    }

    fn print(&self, text: &str) {
        let _guard = self.lock.lock();
        let mut out = std::io::stdout().lock();
        // A closed stdout must not stop the run: the result files are what counts.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    pub fn line(&self, text: &str) {
        self.print(&format!("{text}\n"));
    }

    pub fn started(&self, selected: usize, total: usize) {
        self.print(&format!("running {selected} of {total} tests\n"));
    }

    pub fn finished(&self, r: &TestRecord) {
        let o = &r.outcome;
        let mut line = match o.verdict {
            Verdict::Passed => format!("PASS {} {}", ms(r.duration), r.name),
            Verdict::Failed => format!("FAIL {} {}", ms(r.duration), r.name),
            Verdict::Skipped => format!(
                "SKIP {} {}: {}",
                ms(r.duration),
                r.name,
                o.message.as_deref().unwrap_or("")
            ),
        };
        match o.warnings() {
            0 => {}
            1 => line.push_str(" (1 warning)"),
            n => line.push_str(&format!(" ({n} warnings)")),
        }
        line.push('\n');
        self.print(&line);
    }

    pub fn summary(&self, run: &RunRecord, written: &[String]) {
        let mut out = String::new();
        let failed: Vec<&TestRecord> = run
            .records
            .iter()
            .filter(|r| r.outcome.verdict == Verdict::Failed)
            .collect();
        if !failed.is_empty() {
            out.push_str("\nfailures:\n");
            for r in failed {
                out.push_str(&format!(
                    "\n  {}\n    {}\n",
                    r.name,
                    r.outcome.message.as_deref().unwrap_or("")
                ));
            }
        }
        let selected = run.records.iter().filter(|r| r.selected).count();
        out.push_str(&format!(
            "\nran {selected} of {} tests in {:.3}s; results in {}\n",
            run.records.len(),
            run.duration.as_secs_f64(),
            written.join(", ")
        ));
        out.push_str(&format!(
            "{} passed, {} failed, {} skipped\n",
            run.count(Verdict::Passed),
            run.count(Verdict::Failed),
            run.count(Verdict::Skipped)
        ));
        self.print(&out);
    }
}
