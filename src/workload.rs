//! The test workload: what the harness binary does when it runs inside a test container. One
//! binary serves as harness and workload, so the test image needs no registry and no other
//! build. Each action runs in the order given on the command line.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

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
    /// Write a file; exit 1 with the error when that fails.
    Write(String),
    TerminationMessage {
        path: String,
        text: String,
    },
    AllocMib(usize),
    Sleep(Duration),
    Serve(u16),
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
            "--serve" => Action::Serve(u16::try_from(number(value()?)?).map_err(out_of_range)?),
            "--exit" => Action::Exit(i32::try_from(number(value()?)?).map_err(out_of_range)?),
            other => return Err(format!("unknown workload action {other:?}")),
        });
    }
    Ok(actions)
}

/// Runs the actions; returns the exit code.
pub fn run(actions: &[Action]) -> i32 {
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
            Action::Serve(port) => return serve(*port),
            Action::Exit(code) => return *code,
        }
    }
    0
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
