//! The `flumen` binary: one program, one subcommand per job.
//!
//! It also answers to the names of the Kafka and Flume tools it replaces
//! (`kafka-server-start.sh`, `flume-ng`, …): invoked under such a name (through a
//! link), it acts as that tool. See [`alias::subcommand_for`].

mod agent;
mod alias;
mod avro_client;
mod connect;
mod serve;
mod tools;

use clap::{Parser, Subcommand};

/// Flumen: a real-time data streaming platform — a Kafka-compatible broker, Flume-compatible
/// agents and Kafka's tools, in one binary.
#[derive(Parser, Debug)]
#[command(name = "flumen", version, about, long_about = None, propagate_version = true)]
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
    /// Run Kafka Connect connectors in standalone mode (like `connect-standalone.sh`).
    ConnectStandalone(connect::ConnectArgs),
    /// Send each line of a file (or stdin) to an Avro source (like `flume-ng avro-client`).
    AvroClient(avro_client::AvroClientArgs),
    /// Create, list, describe, alter and delete topics (like `kafka-topics.sh`).
    Topics(tools::topics::TopicsArgs),
    /// Send each line of stdin as a record (like `kafka-console-producer.sh`).
    ConsoleProducer(tools::console_producer::ConsoleProducerArgs),
    /// Print records to stdout (like `kafka-console-consumer.sh`).
    ConsoleConsumer(tools::console_consumer::ConsoleConsumerArgs),
    /// List, describe, reset and delete consumer groups (like `kafka-consumer-groups.sh`).
    ConsumerGroups(tools::consumer_groups::ConsumerGroupsArgs),
    /// Measure produce throughput and latency (like `kafka-producer-perf-test.sh`).
    ProducerPerfTest(tools::producer_perf::ProducerPerfArgs),
    /// Measure consume throughput (like `kafka-consumer-perf-test.sh`).
    ConsumerPerfTest(tools::consumer_perf::ConsumerPerfArgs),
    /// Link the Kafka and Flume tool names (`kafka-topics.sh`, `flume-ng`, …) to this binary
    /// in a folder.
    InstallLinks(tools::install_links::InstallLinksArgs),
}

fn main() -> std::process::ExitCode {
    let args = alias::rewrite_args(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Kafka's tools exit 1 on a bad flag; help and version exit 0.
            let _ = error.print();
            return if error.use_stderr() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Agent(args) => agent::run(args),
        Command::ConnectStandalone(args) => connect::run(args),
        Command::AvroClient(args) => avro_client::run(args),
        Command::Topics(args) => tools::topics::run(args),
        Command::ConsoleProducer(args) => tools::console_producer::run(args),
        Command::ConsoleConsumer(args) => tools::console_consumer::run(args),
        Command::ConsumerGroups(args) => tools::consumer_groups::run(args),
        Command::ProducerPerfTest(args) => tools::producer_perf::run(args),
        Command::ConsumerPerfTest(args) => tools::consumer_perf::run(args),
        Command::InstallLinks(args) => tools::install_links::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if error.is::<tools::Reported>() => std::process::ExitCode::FAILURE,
        Err(error) if error.is::<tools::UsageError>() => {
            eprintln!("{error}");
            eprintln!("(run with --help to see the options)");
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("flumen: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
