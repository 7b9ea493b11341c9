use std::process::ExitCode;

use clap::Parser;
use node_conformance::app;
use node_conformance::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help: not an error.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            let named = node_conformance::cli::invalid_utf8_inputs(std::env::args_os(), |n| {
                std::env::var_os(n)
            });
            if named.is_empty() {
                eprintln!("node-conformance: invalid UTF-8 in the arguments or environment");
            } else {
                eprintln!("node-conformance: not valid UTF-8: {}", named.join(", "));
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            // clap's first line names the bad input; usage hints follow it. Keep the one line.
            let text = e.render().to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            eprintln!("node-conformance: {}", first.trim());
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::Run(args) => app::run_in_cluster(args),
        Command::Deploy(target) => app::deploy(target).map(|yaml| {
            print!("{yaml}");
            true
        }),
        Command::Collect(args) => app::collect(args),
        Command::Finished { result_dir } => Ok(app::finished(result_dir)),
        Command::List(args) => app::list(args).map(|names| {
            for n in names {
                println!("{n}");
            }
            true
        }),
        Command::Report(args) => app::report(args),
        Command::Version => {
            println!("node-conformance {}", node_conformance::version());
            Ok(true)
        }
        Command::Workload { actions } => match node_conformance::workload::parse(actions) {
            Ok(actions) => {
                return ExitCode::from(
                    node_conformance::workload::run(&actions).clamp(0, 255) as u8
                );
            }
            Err(e) => Err(app::UsageError(e)),
        },
        Command::Certs { rootfs, pki_dir } => app::certs(rootfs.as_deref(), pki_dir).map(|text| {
            print!("{text}");
            true
        }),
        Command::ControlPlane(args) => app::control_plane(args).map(|()| true),
        Command::KubeletConfig {
            rootfs,
            api_server_port,
            pod_manifest_path,
            insecure_http,
        } => app::kubelet_config(
            rootfs.as_deref(),
            *api_server_port,
            pod_manifest_path,
            *insecure_http,
        )
        .map(|text| {
            print!("{text}");
            true
        }),
        Command::Spec => {
            print!("{}", node_conformance::spec::SysSpec::builtin().to_yaml());
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("node-conformance: error: {e}");
            ExitCode::from(2)
        }
    }
}
