//! `exec`: runs a command and makes each line of its standard output an event (Flume's
//! `ExecSource`), in batches of `batchSize` or every `batchTimeout` ms.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{sleep_or_shutdown, BoxFuture, Source};
use crate::channel_processor::ChannelProcessor;
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;
use crate::monitoring::{CounterGroup, SOURCE_COUNTERS};

/// Settings of the `exec` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// `command`: what to run. Required.
    pub command: String,
    /// `shell`: e.g. `/bin/sh -c`; the command is appended as one argument. Default: none
    /// (the command is split on whitespace and run directly).
    pub shell: Option<String>,
    /// `restartThrottle`: ms before a restart. Flume's default: 10000.
    pub restart_throttle: Duration,
    /// `restart`: run again when the command exits. Flume's default: false.
    pub restart: bool,
    /// `logStdErr`: log stderr lines. Flume's default: false.
    pub log_stderr: bool,
    /// `batchSize`: events per put. Flume's default: 20.
    pub batch_size: usize,
    /// `batchTimeout`: ms before a partial batch is flushed. Flume's default: 3000.
    pub batch_timeout: Duration,
}

impl ExecConfig {
    /// Reads and validates the properties.
    pub fn from_context(ctx: &Context) -> Result<Self> {
        let command = ctx.require("command")?.trim().to_string();
        if command.is_empty() {
            return Err(ctx.error("command", "must not be empty"));
        }
        let batch_size = ctx.number::<usize>("batchSize", 20)?;
        if batch_size == 0 {
            return Err(ctx.error("batchSize", "must be at least 1"));
        }
        Ok(ExecConfig {
            command,
            shell: ctx.get("shell").map(str::to_string),
            restart_throttle: Duration::from_millis(ctx.number("restartThrottle", 10000)?),
            restart: ctx.boolean("restart", false),
            log_stderr: ctx.boolean("logStdErr", false),
            batch_size,
            batch_timeout: Duration::from_millis(ctx.number("batchTimeout", 3000)?),
        })
    }

    /// Creates the source (the command starts when the source runs).
    pub fn build(self, name: &str) -> ExecSource {
        ExecSource {
            config: self,
            counter: Arc::new(CounterGroup::new("SOURCE", name, SOURCE_COUNTERS)),
        }
    }
}

/// A running `exec` source.
pub struct ExecSource {
    config: ExecConfig,
    counter: Arc<CounterGroup>,
}

impl Source for ExecSource {
    fn counter(&self) -> Option<Arc<CounterGroup>> {
        Some(self.counter.clone())
    }

    fn run(
        self: Box<Self>,
        processor: Arc<ChannelProcessor>,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                if let Err(error) = self.run_once(&processor, &shutdown).await {
                    tracing::error!(%error, command = %self.config.command, "Failed while running command.");
                }
                if shutdown.is_cancelled() || !self.config.restart {
                    break;
                }
                tracing::info!(command = %self.config.command, "Restarting command after throttle.");
                if !sleep_or_shutdown(self.config.restart_throttle, &shutdown).await {
                    break;
                }
            }
            shutdown.cancelled().await;
            self.counter.stop();
        })
    }
}

impl ExecSource {
    async fn run_once(
        &self,
        processor: &ChannelProcessor,
        shutdown: &CancellationToken,
    ) -> std::io::Result<()> {
        let mut argv: Vec<String> = match &self.config.shell {
            Some(shell) => {
                let mut v: Vec<String> = shell.split_whitespace().map(str::to_string).collect();
                v.push(self.config.command.clone());
                v
            }
            None => self
                .config
                .command
                .split_whitespace()
                .map(str::to_string)
                .collect(),
        };
        let program = argv.remove(0);
        let mut child = Command::new(program)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let log_stderr = self.config.log_stderr;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut n = 0u64;
            while let Ok(Some(line)) = lines.next_line().await {
                n += 1;
                if log_stderr {
                    tracing::info!("StderrLogger[{n}] = '{line}'");
                }
            }
        });
        let mut reader = BufReader::with_capacity(64 * 1024, stdout);
        let mut batch: Vec<Event> = Vec::new();
        let mut line = Vec::new();
        let mut deadline = tokio::time::Instant::now() + self.config.batch_timeout;
        loop {
            line.clear();
            let read = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(deadline) => {
                    self.flush(processor, &mut batch).await?;
                    deadline = tokio::time::Instant::now() + self.config.batch_timeout;
                    continue;
                }
                r = reader.read_until(b'\n', &mut line) => r?,
            };
            if read == 0 {
                break;
            }
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            self.counter.add("EventReceivedCount", 1);
            batch.push(Event::new(Bytes::copy_from_slice(&line)));
            if batch.len() >= self.config.batch_size {
                self.flush(processor, &mut batch).await?;
                deadline = tokio::time::Instant::now() + self.config.batch_timeout;
            }
        }
        self.flush(processor, &mut batch).await?;
        let _ = child.kill().await;
        let status = child.wait().await?;
        tracing::info!(command = %self.config.command, %status, "Command exited.");
        Ok(())
    }

    async fn flush(
        &self,
        processor: &ChannelProcessor,
        batch: &mut Vec<Event>,
    ) -> std::io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as i64;
        self.counter.add("AppendBatchReceivedCount", 1);
        match processor.process_batch(std::mem::take(batch)).await {
            Ok(()) => {
                self.counter.add("EventAcceptedCount", n);
                self.counter.add("AppendBatchAcceptedCount", 1);
                Ok(())
            }
            Err(error) => {
                // Flume: the batch is lost and the child killed.
                self.counter.add("ChannelWriteFail", 1);
                Err(std::io::Error::other(format!(
                    "channel refused a batch of {n} events (lost): {error}"
                )))
            }
        }
    }
}
