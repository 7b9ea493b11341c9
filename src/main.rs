use std::process::ExitCode;

use clap::Parser;
use node_conformance::app;
use node_conformance::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => app::run(args),
        Command::List(args) => app::list(args).map(|names| {
            for n in names {
                println!("{n}");
            }
            true
        }),
        Command::Version => {
            println!("node-conformance {}", node_conformance::version());
            Ok(true)
        }
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
