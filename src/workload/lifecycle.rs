//! Upstream's `ExecCommand` (kubernetes test/e2e_node/container_lifecycle_pod_construction.go):
//! a container, hook or probe that logs what it does, with timestamps, to a log of its
//! container on a volume that outlives the container (`/persistent/<container>.log`) and to the
//! container's output, so that a test reading the container's log sees every run, hook and
//! probe in order.
//!
//! A line is `<RFC 3339 UTC time, milliseconds> <name> <event> [<value>]`; the events are
//! `Starting <start delay>`, `Started`, `Delaying <delay>`, `Looping` and `Exiting`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Where the log of each container lies: upstream's emptyDir mount.
pub const LOG_DIR: &str = "/persistent";

/// One `ExecCommand`: `--lifecycle NAME SPEC`, SPEC being `key=value` pairs separated by
/// commas (`start-delay=5,delay=1,termination=15,exit=0,container=regular-1,loop`), every key
/// optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lifecycle {
    /// The name its lines carry: the container's, or `PostStart-<container>` for a hook.
    pub name: String,
    /// The container whose log the lines go to, for a hook or probe (upstream's
    /// `ContainerName`); `None` for the container's own command, which also replays its log
    /// (earlier runs) to its output first.
    pub container: Option<String>,
    /// Seconds before `Started`.
    pub start_delay: u64,
    /// Seconds between `Delaying` and `Exiting`.
    pub delay: u64,
    /// Seconds from SIGTERM to `Exiting`.
    pub termination: u64,
    /// A `Looping` line every second after the delay, until SIGTERM.
    pub loop_forever: bool,
    /// The exit status, as the shell's `exit N` gives it (`-1` is 255).
    pub exit: i32,
}

impl Lifecycle {
    /// Parses NAME and SPEC; `Err` names the key or value that is wrong.
    pub fn parse(name: &str, spec: &str) -> Result<Self, String> {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("--lifecycle: {name:?} is no name (one word)"));
        }
        let mut l = Self {
            name: name.to_string(),
            ..Self::default()
        };
        let seconds = |k: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("--lifecycle {k}: {v:?} is not a number of seconds"))
        };
        for pair in spec.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "start-delay" => l.start_delay = seconds(k, v)?,
                "delay" => l.delay = seconds(k, v)?,
                "termination" => l.termination = seconds(k, v)?,
                "exit" => {
                    l.exit = v
                        .parse()
                        .map_err(|_| format!("--lifecycle exit: {v:?} is not an exit code"))?;
                }
                "container" if !v.is_empty() && !v.contains(['/', ' ']) => {
                    l.container = Some(v.to_string());
                }
                "container" => return Err(format!("--lifecycle container: {v:?} is no name")),
                "loop" if v.is_empty() => l.loop_forever = true,
                _ => return Err(format!("--lifecycle: unknown key {pair:?}")),
            }
        }
        Ok(l)
    }

    fn log_path(&self) -> PathBuf {
        Path::new(LOG_DIR).join(format!(
            "{}.log",
            self.container.as_deref().unwrap_or(&self.name)
        ))
    }

    /// Runs it: returns the exit status.
    pub fn run(&self) -> i32 {
        let log = self.log_path();
        let out = Output::new(self.container.is_some());
        // `touch LOG; cat LOG >> /proc/1/fd/1`: the container's own command shows the runs
        // before it, which its current log would otherwise lose.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log);
        if self.container.is_none()
            && let Ok(before) = std::fs::read(&log)
        {
            out.write(&before);
        }
        let line = |event: &str| {
            let text = format!(
                "{} {} {event}\n",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                self.name
            );
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
            {
                let _ = f.write_all(text.as_bytes());
            }
            out.write(text.as_bytes());
        };
        line(&format!("Starting {}", self.start_delay));
        let term = match terminations() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("lifecycle: cannot handle SIGTERM: {e}");
                return 1;
            }
        };
        // `exit -1` in the shell is 255.
        let status = self.exit & 0xff;
        let on_term = || {
            std::thread::sleep(Duration::from_secs(self.termination));
            line("Exiting");
            status
        };
        if term.recv_timeout(secs(self.start_delay)).is_ok() {
            return on_term();
        }
        // Upstream's readiness marker, relative to the working directory as `touch started`
        // makes it; a read-only root leaves it out, as the shell would go on.
        let _ = std::fs::write("started", b"");
        line("Started");
        line(&format!("Delaying {}", self.delay));
        if term.recv_timeout(secs(self.delay)).is_ok() {
            return on_term();
        }
        if self.loop_forever {
            loop {
                line("Looping");
                if term.recv_timeout(Duration::from_secs(1)).is_ok() {
                    return on_term();
                }
            }
        }
        line("Exiting");
        status
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Where the lines go besides the log: the container's output, which for a hook or probe
/// (run beside the container's process) is its first process's stdout, `/proc/1/fd/1`.
struct Output(Option<std::fs::File>);

impl Output {
    fn new(beside: bool) -> Self {
        Self(
            beside
                .then(|| std::fs::OpenOptions::new().write(true).open("/proc/1/fd/1"))
                .and_then(Result::ok),
        )
    }

    fn write(&self, bytes: &[u8]) {
        match &self.0 {
            Some(f) => {
                // `&File` writes: one open file serves every line.
                let mut f: &std::fs::File = f;
                let _ = f.write_all(bytes);
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(bytes);
                let _ = out.flush();
            }
        }
    }
}

/// A channel that receives a message on each SIGTERM, so a sleep can end on one.
fn terminations() -> std::io::Result<mpsc::Receiver<()>> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM])?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstreams_fields() {
        let l = Lifecycle::parse(
            "PreStop-regular-1",
            "start-delay=5,delay=1,termination=15,exit=-1,container=regular-1,loop",
        )
        .unwrap();
        assert_eq!(
            l,
            Lifecycle {
                name: "PreStop-regular-1".into(),
                container: Some("regular-1".into()),
                start_delay: 5,
                delay: 1,
                termination: 15,
                loop_forever: true,
                exit: -1,
            }
        );
        assert_eq!(
            l.log_path(),
            PathBuf::from("/persistent/regular-1.log"),
            "a hook logs to its container's log"
        );
        let own = Lifecycle::parse("init-1", "").unwrap();
        assert_eq!(own.log_path(), PathBuf::from("/persistent/init-1.log"));
        assert_eq!(own.exit, 0);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for (name, spec) in [
            ("a b", ""),
            ("", ""),
            ("x", "delay=-1"),
            ("x", "delay=1.5"),
            ("x", "exit=a"),
            ("x", "container=../etc"),
            ("x", "container="),
            ("x", "sleep=3"),
            ("x", "loop=1"),
        ] {
            assert!(
                Lifecycle::parse(name, spec).is_err(),
                "{name:?} {spec:?} accepted"
            );
        }
    }
}
