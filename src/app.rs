//! The subcommands, from parsed arguments to an outcome; `main` maps it to an exit code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{RunArgs, SelectArgs};
use crate::node::Node;
use crate::node::rootfs::RootFs;
use crate::report::{self, RunInfo, console::Console};
use crate::runner::{self, DEFAULT_SKIP, Selection};
use crate::spec::SysSpec;
use crate::suite::{self, Context};

/// Bad input or an unusable environment: exit code 2, one line naming what is wrong.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn selection(args: &SelectArgs) -> Result<Selection, UsageError> {
    let skip = args.skip.as_deref().unwrap_or(DEFAULT_SKIP);
    Selection::new(args.focus.as_deref(), Some(skip)).map_err(UsageError)
}

/// `list`: the selected names, one per line.
pub fn list(args: &SelectArgs) -> Result<Vec<String>, UsageError> {
    let sel = selection(args)?;
    Ok(runner::selected_names(&suite::registry(), &sel))
}

fn default_rootfs() -> PathBuf {
    let mounted = Path::new("/rootfs");
    if mounted.is_dir() {
        mounted.to_path_buf()
    } else {
        PathBuf::from("/")
    }
}

/// `run`: returns whether every selected test passed.
pub fn run(args: &RunArgs) -> Result<bool, UsageError> {
    let sel = selection(&args.select)?;
    let rootfs = args.rootfs.clone().unwrap_or_else(default_rootfs);
    let root = RootFs::open(&rootfs)
        .map_err(|e| UsageError(format!("root fs {}: {e}", rootfs.display())))?;
    let (spec, spec_name) = match &args.system_spec {
        Some(path) => (
            SysSpec::load(path).map_err(|e| UsageError(e.to_string()))?,
            path.display().to_string(),
        ),
        None => (SysSpec::builtin(), "built-in".to_string()),
    };
    report::check_writable(&args.result_dir).map_err(UsageError)?;
    let parallelism = args.parallelism.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );

    let info = RunInfo {
        version: crate::version(),
        hostname: rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        rootfs: rootfs.display().to_string(),
        focus: sel.focus().to_string(),
        skip: sel.skip().to_string(),
        system_spec: spec_name,
    };
    let tests = suite::registry();
    let ctx = Arc::new(Context {
        node: Node::new(root),
        spec,
    });
    let console = Arc::new(Console::new());
    let run = runner::run(&tests, ctx, &sel, parallelism, &console);

    let dir = &args.result_dir;
    let mut written = Vec::new();
    for (file, rendered) in [
        (report::JUNIT_FILE, report::junit::render(&run, &info)),
        (report::JSON_FILE, report::json::render(&run, &info)),
    ] {
        let path = dir.join(file);
        let text = rendered.map_err(UsageError)?;
        report::write_atomically(&path, text.as_bytes())
            .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
        written.push(path.display().to_string());
    }
    console.summary(&run, &written);
    Ok(!run.failed())
}
