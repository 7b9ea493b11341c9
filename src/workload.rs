//! The test workload: what the harness binary does when it runs inside a test container. One
//! binary serves as harness and workload, so the test image needs no registry and no other
//! build. Each action runs in the order given on the command line.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

pub mod lifecycle;

/// One thing the workload does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Stdout(String),
    /// Text on stdout without a newline, as `echo -n` prints it.
    Print(String),
    /// Appends a line to a file (a volume that outlives the container) and counts the lines:
    /// which start of the container this is, for [`Action::ExitOnStart`].
    CountStart(String),
    /// Exits with the code when [`Action::CountStart`] counted this start.
    ExitOnStart {
        start: u64,
        code: i32,
    },
    Stderr(String),
    PrintEnv(String),
    /// Every environment variable, `NAME=value` a line, as `env` prints them.
    Env,
    /// A file's content on stdout, as `cat` prints it; exit 1 when it cannot be read.
    Cat(String),
    /// `echo TEXT > PATH` in busybox's shell: on failure the shell's message on stderr
    /// (`/bin/sh: can't create PATH: <reason>`), and the next action runs.
    Create {
        path: String,
        text: String,
    },
    PrintId,
    /// Waits until the file exists and holds the text, checking every second: upstream's
    /// `while true; do if [ -e F ] && grep -q T F; then exit 0; fi; sleep 1; done`.
    AwaitContent {
        path: String,
        text: String,
    },
    /// agnhost's `entrypoint-tester`: the process's whole argv as Go prints a `[]string`
    /// (`[/node-conformance workload entrypoint-tester a b]`), then exit 0. The words after it
    /// are its arguments, not actions.
    EntrypointTester,
    /// busybox's `echo $(hostname)';'$(hostname -f)';'`: the kernel's host name and the name
    /// /etc/hosts makes canonical for it.
    HostnameFqdn,
    /// Write a file; exit 1 with the error when that fails.
    Write(String),
    TerminationMessage {
        path: String,
        text: String,
    },
    AllocMib(usize),
    Sleep(Duration),
    /// Prints `Paused` and waits for SIGTERM or SIGINT, then exits 0: agnhost's `pause`, the
    /// pause container's behaviour (a container that stops at once when asked).
    Pause,
    Serve(u16),
    /// Upstream's `ExecCommand` of the containers lifecycle tests, to its end.
    Lifecycle(lifecycle::Lifecycle),
    Exit(i32),
}

/// Parses `--stdout TEXT --exit 3 ...`.
pub fn parse(args: &[String]) -> Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let number = |v: String| {
            v.parse::<i64>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        let out_of_range = |e: std::num::TryFromIntError| format!("{flag}: {e}");
        actions.push(match flag.as_str() {
            "--stdout" => Action::Stdout(value()?),
            "--print" => Action::Print(value()?),
            "--count-start" => Action::CountStart(value()?),
            "--exit-on-start" => {
                let start = u64::try_from(number(value()?)?).map_err(out_of_range)?;
                let code = i32::try_from(number(value()?)?).map_err(out_of_range)?;
                Action::ExitOnStart { start, code }
            }
            "--stderr" => Action::Stderr(value()?),
            "--print-env" => Action::PrintEnv(value()?),
            "--env" => Action::Env,
            "--cat" => Action::Cat(value()?),
            "--create" => {
                let path = value()?;
                Action::Create {
                    path,
                    text: value()?,
                }
            }
            "--id" => Action::PrintId,
            "--hostname-fqdn" => Action::HostnameFqdn,
            "entrypoint-tester" => {
                actions.push(Action::EntrypointTester);
                return Ok(actions);
            }
            "--await-content" => {
                let path = value()?;
                Action::AwaitContent {
                    path,
                    text: value()?,
                }
            }
            "--write" => Action::Write(value()?),
            "--termination-message" => {
                let path = value()?;
                Action::TerminationMessage {
                    path,
                    text: value()?,
                }
            }
            "--alloc-mib" => {
                Action::AllocMib(usize::try_from(number(value()?)?).map_err(out_of_range)?)
            }
            "--sleep" => {
                let v = value()?;
                // `inf`, `NaN`, negatives and 1e300 parse as f64 but are no duration.
                Action::Sleep(
                    v.parse::<f64>()
                        .ok()
                        .and_then(|s| Duration::try_from_secs_f64(s).ok())
                        .ok_or_else(|| {
                            format!("--sleep: {v:?} is not a number of seconds (finite, 0 or more)")
                        })?,
                )
            }
            "--pause" => Action::Pause,
            "--serve" => Action::Serve(u16::try_from(number(value()?)?).map_err(out_of_range)?),
            "--lifecycle" => {
                let name = value()?;
                Action::Lifecycle(lifecycle::Lifecycle::parse(&name, &value()?)?)
            }
            "--exit" => Action::Exit(i32::try_from(number(value()?)?).map_err(out_of_range)?),
            other => return Err(format!("unknown workload action {other:?}")),
        });
    }
    Ok(actions)
}

/// Runs the actions; returns the exit code.
pub fn run(actions: &[Action]) -> i32 {
    // SIGTERM's handler is in place before any action runs, so a file an earlier action
    // writes (a readiness probe's marker) tells that the container will stop cleanly.
    let mut signals = if actions.contains(&Action::Pause) {
        match signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
        ]) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("pause: cannot handle signals: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    // Which start of the container this is, once counted.
    let mut start = 0;
    for action in actions {
        match action {
            Action::Stdout(t) => {
                println!("{t}");
                let _ = std::io::stdout().flush();
            }
            Action::Print(t) => {
                print!("{t}");
                let _ = std::io::stdout().flush();
            }
            Action::CountStart(path) => match count_start(Path::new(path)) {
                Ok(n) => start = n,
                Err(e) => {
                    eprintln!("count starts in {path}: {e}");
                    return 1;
                }
            },
            Action::ExitOnStart { start: n, code } => {
                if start == *n {
                    return *code;
                }
            }
            Action::Stderr(t) => eprintln!("{t}"),
            Action::PrintEnv(name) => match std::env::var(name) {
                Ok(v) => println!("{name}={v}"),
                Err(std::env::VarError::NotPresent) => println!("{name} is not set"),
                Err(std::env::VarError::NotUnicode(v)) => {
                    println!("{name} is not valid UTF-8: {}", v.to_string_lossy());
                }
            },
            Action::Env => {
                let mut out = std::io::stdout().lock();
                for (k, v) in std::env::vars_os() {
                    let _ = writeln!(out, "{}={}", k.to_string_lossy(), v.to_string_lossy());
                }
                let _ = out.flush();
            }
            Action::Cat(path) => match std::fs::read(path) {
                Ok(bytes) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                }
                Err(e) => {
                    eprintln!("cat: can't open '{path}': {}", reason(&e));
                    return 1;
                }
            },
            Action::Create { path, text } => {
                if let Err(e) = std::fs::write(path, format!("{text}\n")) {
                    eprintln!("/bin/sh: can't create {path}: {}", reason(&e));
                }
            }
            Action::PrintId => {
                println!(
                    "uid={} gid={}",
                    rustix::process::getuid().as_raw(),
                    rustix::process::getgid().as_raw()
                );
            }
            Action::AwaitContent { path, text } => loop {
                if std::fs::read(path).is_ok_and(|b| contains(&b, text.as_bytes())) {
                    println!("{path} holds {text:?}");
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            },
            Action::EntrypointTester => {
                let argv: Vec<String> = std::env::args_os()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                println!("[{}]", argv.join(" "));
                return 0;
            }
            Action::HostnameFqdn => {
                let uname = rustix::system::uname();
                let host = uname.nodename().to_string_lossy().into_owned();
                let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
                let fqdn = canonical_name(&hosts, &host).unwrap_or_else(|| host.clone());
                println!("{host};{fqdn};");
            }
            Action::Write(path) => {
                if let Err(e) = std::fs::write(path, b"written\n") {
                    eprintln!("write {path}: {e}");
                    return 1;
                }
                println!("wrote {path}");
            }
            Action::TerminationMessage { path, text } => {
                let p = Path::new(path);
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                if let Err(e) = std::fs::write(p, text) {
                    eprintln!("termination message {path}: {e}");
                    return 1;
                }
            }
            Action::AllocMib(mib) => {
                // Touch every page so the memory is really charged to the cgroup.
                let mut blocks = Vec::new();
                for _ in 0..*mib {
                    blocks.push(vec![1u8; 1 << 20]);
                }
                println!("allocated {} MiB", blocks.len());
            }
            Action::Sleep(d) => std::thread::sleep(*d),
            Action::Pause => {
                if let Some(signals) = signals.as_mut() {
                    return pause(signals);
                }
            }
            Action::Serve(port) => return serve(*port),
            Action::Lifecycle(l) => return l.run(),
            Action::Exit(code) => return *code,
        }
    }
    0
}

/// Whether `needle` occurs in `haystack` (grep's fixed-string match on bytes).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The canonical name of `host` as a resolver reading `hosts` (/etc/hosts) gives it, as
/// gethostbyname does for busybox's `hostname -f`: the first name of the first line that lists
/// `host` among its names (case-insensitively). `None` when no line lists it.
pub fn canonical_name(hosts: &str, host: &str) -> Option<String> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let _address = fields.next()?;
        let names: Vec<&str> = fields.collect();
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(host))
            .then(|| names[0].to_string())
    })
}

/// Waits for SIGTERM or SIGINT; as PID 1 of a container the signals are otherwise ignored,
/// and the kubelet would wait out the whole grace period.
fn pause(signals: &mut signal_hook::iterator::Signals) -> i32 {
    println!("Paused");
    let _ = std::io::stdout().flush();
    match signals.forever().next() {
        Some(signal) => {
            println!("Received signal {signal}, exiting");
            0
        }
        None => 1,
    }
}

/// An error as C's strerror words it (`Read-only file system`), without Rust's
/// ` (os error 30)`.
fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Appends a line to `path` and returns how many lines it holds: upstream's
/// `echo 'hello' >> $f; wc -l $f`.
fn count_start(path: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(b"hello\n")?;
    let text = std::fs::read(path)?;
    Ok(text.iter().filter(|b| **b == b'\n').count() as u64)
}

/// Answers every HTTP request with `200 ok` until killed.
fn serve(port: u16) -> i32 {
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("serve on port {port}: {e}");
            return 1;
        }
    };
    for mut stream in listener.incoming().flatten() {
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_string()).collect()
    }

    #[test]
    fn the_canonical_name_is_the_first_of_the_line_naming_the_host() {
        // As the kubelet writes /etc/hosts for a pod with a subdomain.
        let hosts = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n\
                     ::1\tlocalhost ip6-localhost ip6-loopback\n\
                     10.88.0.5\tweb-1.t.ns.svc.cluster.local\tweb-1\n";
        assert_eq!(
            canonical_name(hosts, "web-1").as_deref(),
            Some("web-1.t.ns.svc.cluster.local")
        );
        assert_eq!(
            canonical_name(hosts, "WEB-1.t.ns.svc.cluster.local").as_deref(),
            Some("web-1.t.ns.svc.cluster.local")
        );
        // Without a subdomain the line holds the short name alone.
        let short = "10.88.0.5\tweb-1\n# 10.0.0.1 web-2.example web-2\n";
        assert_eq!(canonical_name(short, "web-1").as_deref(), Some("web-1"));
        assert_eq!(canonical_name(short, "web-2"), None);
        assert_eq!(canonical_name("10.0.0.1\n", "web-1"), None);
    }

    #[test]
    fn parses_actions_in_order() {
        let a = parse(&args(&[
            "--stdout",
            "hi",
            "--termination-message",
            "/dev/t",
            "bye",
            "--exit",
            "3",
        ]))
        .unwrap();
        assert_eq!(
            a,
            vec![
                Action::Stdout("hi".into()),
                Action::TerminationMessage {
                    path: "/dev/t".into(),
                    text: "bye".into()
                },
                Action::Exit(3)
            ]
        );
        assert!(
            parse(&args(&["--exit"]))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse(&args(&["--exit", "x"]))
                .unwrap_err()
                .contains("not a number")
        );
        assert!(parse(&args(&["--bogus"])).unwrap_err().contains("unknown"));
        for bad in ["inf", "-inf", "NaN", "-1", "1e300", "x"] {
            let e = parse(&args(&["--sleep", bad])).unwrap_err();
            assert!(e.starts_with("--sleep: "), "{bad}: {e}");
        }
        assert_eq!(
            parse(&args(&["--sleep", "0.5"])).unwrap(),
            [Action::Sleep(Duration::from_millis(500))]
        );
        let e = parse(&args(&["--serve", "70000"])).unwrap_err();
        assert!(e.starts_with("--serve: "), "{e}");
    }

    #[test]
    fn runs_to_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let msg = dir.path().join("sub/termination-log");
        let code = run(&[
            Action::TerminationMessage {
                path: msg.to_string_lossy().into(),
                text: "done".into(),
            },
            Action::Exit(7),
            Action::Exit(9),
        ]);
        assert_eq!(code, 7);
        assert_eq!(std::fs::read_to_string(msg).unwrap(), "done");
        assert_eq!(run(&[Action::Write("/proc/definitely/not".into())]), 1);
    }

    #[test]
    fn starts_are_counted_in_a_file_and_decide_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("restartCount");
        // Upstream's script: the first start fails, the second succeeds, later ones run on.
        let actions = parse(&args(&[
            "--count-start",
            &count.display().to_string(),
            "--exit-on-start",
            "1",
            "1",
            "--exit-on-start",
            "2",
            "0",
            "--exit",
            "42",
        ]))
        .unwrap();
        assert_eq!(run(&actions), 1);
        assert_eq!(run(&actions), 0);
        assert_eq!(run(&actions), 42);
        assert_eq!(
            std::fs::read_to_string(&count).unwrap(),
            "hello\n".repeat(3)
        );
        assert_eq!(run(&[Action::CountStart("/proc/no/such".into())]), 1);
    }

    #[test]
    fn errors_are_worded_as_strerror_words_them() {
        let e = std::io::Error::from_raw_os_error(30);
        assert_eq!(reason(&e), "Read-only file system");
        // A failed create is said and the next action runs.
        assert_eq!(
            run(&[
                Action::Create {
                    path: "/proc/definitely/not".into(),
                    text: "test".into()
                },
                Action::Exit(4)
            ]),
            4
        );
        assert_eq!(run(&[Action::Cat("/proc/definitely/not".into())]), 1);
    }
}
