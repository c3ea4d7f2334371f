//! The `flumen` binary: one program, one subcommand per job.
//!
//! It also answers to the names of the Kafka and Flume tools it replaces
//! (`kafka-server-start.sh`, `flume-ng`, …): invoked under such a name (through a
//! link), it acts as that tool. See [`alias::subcommand_for`].

mod agent;
mod alias;
mod serve;

use clap::{Parser, Subcommand};

/// Flumen: a real-time data streaming platform — a Kafka-compatible broker, Flume-compatible
/// agents and Kafka's tools, in one binary.
#[derive(Parser, Debug)]
#[command(name = "flumen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the Kafka-compatible broker (like `kafka-server-start.sh`).
    Serve(serve::ServeArgs),
    /// Run a Flume-compatible agent from a Flume configuration file (like `flume-ng agent`).
    Agent(agent::AgentArgs),
}

fn main() -> std::process::ExitCode {
    let args = alias::rewrite_args(std::env::args_os().collect());
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Agent(args) => agent::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("flumen: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
