//! `flumen avro-client` (Flume's `flume-ng avro-client`): sends each line of a file, or of
//! stdin, as an event to an Avro source, in `appendBatch` calls.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use flumen_flow::event::{Event, Headers};
use flumen_flow::sink::avro::AvroClient;

/// Arguments of `flumen avro-client`.
#[derive(Args, Debug)]
pub struct AvroClientArgs {
    /// The Avro source's host.
    #[arg(short = 'H', long = "host")]
    host: String,
    /// The Avro source's port.
    #[arg(short = 'p', long = "port")]
    port: u16,
    /// The file whose lines are sent (stdin when absent).
    #[arg(short = 'F', long = "filename")]
    filename: Option<std::path::PathBuf>,
    /// A file of `key=value` lines: headers added to every event.
    #[arg(short = 'R', long = "headerFile")]
    header_file: Option<std::path::PathBuf>,
    /// Send every file of this directory instead (as Flume's `--dirname`).
    #[arg(long = "dirname")]
    dirname: Option<std::path::PathBuf>,
    /// Events per `appendBatch` call.
    #[arg(long = "batch-size", default_value_t = 100)]
    batch_size: usize,
    /// Flume's configuration directory (accepted for compatibility; unused).
    #[arg(short = 'c', long = "conf")]
    conf: Option<String>,
}

/// Runs the client.
pub fn run(args: AvroClientArgs) -> anyhow::Result<()> {
    let _ = &args.conf;
    let mut headers = Headers::new();
    if let Some(h) = &args.header_file {
        let text = std::fs::read_to_string(h)
            .with_context(|| format!("cannot read header file {}", h.display()))?;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .or_else(|| line.split_once(':'))
                .with_context(|| format!("bad header line `{line}` in {}", h.display()))?;
            headers.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut read = |r: &mut dyn BufRead| -> anyhow::Result<()> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            lines.push(buf.clone());
        }
    };
    if let Some(dir) = &args.dirname {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            let file =
                std::fs::File::open(&f).with_context(|| format!("cannot open {}", f.display()))?;
            read(&mut std::io::BufReader::new(file))?;
        }
    } else if let Some(f) = &args.filename {
        let file =
            std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
        read(&mut std::io::BufReader::new(file))?;
    } else {
        read(&mut std::io::stdin().lock())?;
    }
    let batch = args.batch_size.max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut client = AvroClient::new(
            args.host.clone(),
            args.port,
            Duration::from_secs(20),
            Duration::from_secs(20),
        );
        let mut sent = 0usize;
        for chunk in lines.chunks(batch) {
            let events: Vec<Event> = chunk
                .iter()
                .map(|l| Event {
                    headers: headers.clone(),
                    body: l.clone().into(),
                })
                .collect();
            if let Err(message) = client.append_batch(&events).await {
                bail!(
                    "sending to {}:{} failed after {sent} events: {message}",
                    args.host,
                    args.port
                );
            }
            sent += events.len();
        }
        client.close();
        eprintln!("Sent {sent} events to {}:{}.", args.host, args.port);
        Ok(())
    })
}
