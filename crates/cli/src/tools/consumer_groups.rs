//! `flumen consumer-groups` (`kafka-consumer-groups.sh`): list, describe, reset offsets of and
//! delete consumer groups.
//!
//! Group state and members come from DescribeGroups (`fetch_group_list`), committed offsets
//! from OffsetFetch (a consumer carrying the group's id, never joining it), log-end offsets
//! from ListOffsets (watermarks); `--reset-offsets --execute` commits with that same
//! non-member consumer, which Kafka accepts only while the group is empty — the tool checks
//! that first, as Kafka's does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{usage, Reported};

/// Arguments of `flumen consumer-groups`, spelled as `kafka-consumer-groups.sh` spells them.
#[derive(clap::Args, Debug, Default)]
pub struct ConsumerGroupsArgs {
    /// List all consumer groups.
    #[arg(long)]
    pub list: bool,
    /// Describe groups: offsets and lag (default), --members or --state.
    #[arg(long)]
    pub describe: bool,
    /// Delete groups (they must have no active members).
    #[arg(long)]
    pub delete: bool,
    /// Reset the committed offsets of inactive groups.
    #[arg(long = "reset-offsets")]
    pub reset_offsets: bool,
    /// Delete a group's committed offsets of some topics (the group must not be subscribed to
    /// them).
    #[arg(long = "delete-offsets")]
    pub delete_offsets: bool,
    /// The Kafka server to connect to (HOST:PORT[,HOST:PORT…]).
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Legacy (old consumers): a ZooKeeper address; means the cluster at the default bootstrap
    /// address.
    #[arg(long, value_name = "HOST:2181")]
    pub zookeeper: Option<String>,
    /// A client properties file (security settings etc.).
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// How long to wait for group operations, ms (default 5000).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// The group (repeatable for describe, delete and reset).
    #[arg(long)]
    pub group: Vec<String>,
    /// Apply to all groups.
    #[arg(long = "all-groups")]
    pub all_groups: bool,
    /// Describe: the members.
    #[arg(long)]
    pub members: bool,
    /// Describe: the group's state; list: a STATE column (optionally only these states,
    /// comma separated).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub state: Option<String>,
    /// Describe: offsets and lag (the default view).
    #[arg(long)]
    pub offsets: bool,
    /// Describe --members: also each member's assignment.
    #[arg(long)]
    pub verbose: bool,
    /// Reset/delete offsets: a topic, or `topic:0,1` for some partitions (repeatable).
    #[arg(long)]
    pub topic: Vec<String>,
    /// Reset: every topic the group has offsets for.
    #[arg(long = "all-topics")]
    pub all_topics: bool,
    /// Reset to the earliest offset.
    #[arg(long = "to-earliest")]
    pub to_earliest: bool,
    /// Reset to the latest offset.
    #[arg(long = "to-latest")]
    pub to_latest: bool,
    /// Reset to the current committed offset.
    #[arg(long = "to-current")]
    pub to_current: bool,
    /// Reset to this offset.
    #[arg(long = "to-offset", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// Move the committed offset by N (±).
    #[arg(long = "shift-by", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// Reset to the first offset at or after `YYYY-MM-DDTHH:mm:SS.sss[Z|±hh:mm]` (UTC if no
    /// zone).
    #[arg(long = "to-datetime")]
    pub to_datetime: Option<String>,
    /// Reset to the first offset at or after now minus `PnDTnHnMnS`.
    #[arg(long = "by-duration")]
    pub by_duration: Option<String>,
    /// Reset to the offsets in a CSV file (`topic,partition,offset` or
    /// `group,topic,partition,offset`).
    #[arg(long = "from-file")]
    pub from_file: Option<std::path::PathBuf>,
    /// Only show the plan (the default).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Apply the plan.
    #[arg(long)]
    pub execute: bool,
    /// Print the plan as CSV.
    #[arg(long)]
    pub export: bool,
    /// List: a TYPE column (all groups here are classic).
    #[arg(long = "type", num_args = 0..=1, default_missing_value = "")]
    pub group_type: Option<String>,
    /// How long to wait for the cluster before giving up (default $FLUMEN_CONNECT_TIMEOUT_MS,
    /// else 5000).
    #[arg(long = "connect-timeout-ms", value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
}

/// One row of the `--describe` offsets table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    /// Group id.
    pub group: String,
    /// Topic, `-` for a member without partitions.
    pub topic: String,
    /// Partition, None for `-`.
    pub partition: Option<i32>,
    /// Committed offset.
    pub current: Option<i64>,
    /// Log-end offset.
    pub log_end: Option<i64>,
    /// Member id, host and client id (`-` when no member owns the partition).
    pub consumer_id: String,
    /// Member host.
    pub host: String,
    /// Member client id.
    pub client_id: String,
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |x| x.to_string())
}

fn width<'a>(min: usize, values: impl Iterator<Item = &'a str>) -> usize {
    values
        .map(|v| v.chars().count())
        .max()
        .unwrap_or(0)
        .max(min)
}

/// The `--describe` offsets table: a blank line, the header, one line per row.
pub fn offsets_table(rows: &[OffsetRow]) -> String {
    let g = width(15, rows.iter().map(|r| r.group.as_str()).chain(["GROUP"]));
    let t = width(15, rows.iter().map(|r| r.topic.as_str()));
    let c = width(15, rows.iter().map(|r| r.consumer_id.as_str()));
    let h = width(15, rows.iter().map(|r| r.host.as_str()));
    let line = |cols: [&str; 9]| {
        format!(
            "{:<g$} {:<t$} {:<10} {:<15} {:<15} {:<15} {:<c$} {:<h$} {}",
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8]
        )
    };
    let mut out = String::from("\n");
    out.push_str(&line([
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]));
    out.push('\n');
    for r in rows {
        let lag = match (r.current, r.log_end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        out.push_str(&line([
            &r.group,
            &r.topic,
            &dash(r.partition),
            &dash(r.current),
            &dash(r.log_end),
            &dash(lag),
            &r.consumer_id,
            &r.host,
            &r.client_id,
        ]));
        out.push('\n');
    }
    out
}

/// One member, as `--describe --members` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    /// Group id.
    pub group: String,
    /// Member id.
    pub consumer_id: String,
    /// Member host.
    pub host: String,
    /// Member client id.
    pub client_id: String,
    /// Assigned partitions per topic.
    pub assignment: BTreeMap<String, Vec<i32>>,
}

/// The `--describe --members` table.
pub fn members_table(rows: &[MemberRow], verbose: bool) -> String {
    let g = width(15, rows.iter().map(|r| r.group.as_str()));
    let c = width(15, rows.iter().map(|r| r.consumer_id.as_str()));
    let h = width(15, rows.iter().map(|r| r.host.as_str()));
    let cl = width(15, rows.iter().map(|r| r.client_id.as_str()));
    let line = |a: &str, b: &str, d: &str, e: &str, f: &str, x: Option<&str>| {
        let mut s = format!("{a:<g$} {b:<c$} {d:<h$} {e:<cl$} {f:<15} ");
        if let Some(x) = x {
            s.push_str(x);
        }
        s
    };
    let mut out = String::from("\n");
    out.push_str(&line(
        "GROUP",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
        verbose.then_some("ASSIGNMENT"),
    ));
    out.push('\n');
    for r in rows {
        let n: usize = r.assignment.values().map(|v| v.len()).sum();
        let assignment = if r.assignment.is_empty() {
            "-".to_string()
        } else {
            r.assignment
                .iter()
                .map(|(t, ps)| {
                    let ps: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
                    format!("{t}({})", ps.join(","))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&line(
            &r.group,
            &r.consumer_id,
            &r.host,
            &r.client_id,
            &n.to_string(),
            verbose.then_some(assignment.as_str()),
        ));
        out.push('\n');
    }
    out
}

/// The `--describe --state` table.
pub fn state_table(
    group: &str,
    coordinator: &str,
    strategy: &str,
    state: &str,
    members: usize,
) -> String {
    let w = coordinator.chars().count().max(25);
    let line = |a: &str, b: &str, c: &str, d: &str, e: &str| {
        format!("{a:<w$} {b:<25} {c:<20} {d:<15} {e}")
    };
    format!(
        "\n{}\n{}\n",
        line(
            "GROUP",
            "COORDINATOR (ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS"
        ),
        line(group, coordinator, strategy, state, &members.to_string())
    )
}

/// The `--reset-offsets` plan table.
pub fn reset_table(group: &str, plan: &BTreeMap<(String, i32), i64>) -> String {
    let line = |a: &str, b: &str, c: &str, d: &str| format!("{a:<30} {b:<30} {c:<10} {d:<15}");
    let mut out = String::from("\n");
    out.push_str(&line("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"));
    out.push('\n');
    for ((t, p), o) in plan {
        out.push_str(&line(group, t, &p.to_string(), &o.to_string()));
        out.push('\n');
    }
    out
}

/// Decodes a consumer-protocol `Assignment` (version, `[topic, [partition]]`, user data).
pub fn parse_assignment(bytes: &[u8]) -> BTreeMap<String, Vec<i32>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if b.len() < n {
            return None;
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Some(head)
    }
    fn i16_(b: &mut &[u8]) -> Option<i16> {
        take(b, 2).map(|x| i16::from_be_bytes([x[0], x[1]]))
    }
    fn i32_(b: &mut &[u8]) -> Option<i32> {
        take(b, 4).map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    }
    let mut out = BTreeMap::new();
    let mut b = bytes;
    let parse = |b: &mut &[u8], out: &mut BTreeMap<String, Vec<i32>>| -> Option<()> {
        i16_(b)?;
        let topics = i32_(b)?;
        for _ in 0..topics.max(0) {
            let len = i16_(b)?;
            let name = String::from_utf8_lossy(take(b, len.max(0) as usize)?).into_owned();
            let n = i32_(b)?;
            let mut ps = Vec::new();
            for _ in 0..n.max(0) {
                ps.push(i32_(b)?);
            }
            ps.sort_unstable();
            out.insert(name, ps);
        }
        Some(())
    };
    let _ = parse(&mut b, &mut out);
    out
}

/// Parses `--by-duration` (`PnDTnHnMnS`, ISO-8601 as Java's `Duration.parse`).
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let bad = || {
        super::UsageError(format!(
            "Invalid --by-duration '{text}': expected PnDTnHnMnS"
        ))
    };
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix('P').ok_or_else(bad)?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut ms: f64 = 0.0;
    if !days.is_empty() {
        let d = days.strip_suffix('D').ok_or_else(bad)?;
        ms += d.parse::<f64>().map_err(|_| bad())? * 86_400_000.0;
    }
    let mut num = String::new();
    for ch in time.chars() {
        match ch {
            '0'..='9' | '.' => num.push(ch),
            'H' | 'M' | 'S' => {
                let v: f64 = num.parse().map_err(|_| bad())?;
                ms += v * match ch {
                    'H' => 3_600_000.0,
                    'M' => 60_000.0,
                    _ => 1000.0,
                };
                num.clear();
            }
            _ => return Err(bad().into()),
        }
    }
    if !num.is_empty() || (days.is_empty() && time.is_empty()) {
        return Err(bad().into());
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Parses `--to-datetime` (`YYYY-MM-DDTHH:mm:SS.sss`, optional `Z` or `±hh:mm`; UTC when no
/// zone) into epoch milliseconds.
pub fn parse_datetime(text: &str) -> anyhow::Result<i64> {
    let bad = || {
        super::UsageError(format!(
            "Error parsing timestamp '{text}': expected YYYY-MM-DDTHH:mm:SS.sss[Z|±hh:mm]"
        ))
    };
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(dt) = chrono::DateTime::parse_from_str(text, fmt) {
            return Ok(dt.timestamp_millis());
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(text, fmt) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    Err(bad().into())
}

/// Parses a `--topic` scope: `t` (all partitions) or `t:0,1`.
pub fn parse_topic_scope(text: &str) -> anyhow::Result<(String, Option<Vec<i32>>)> {
    match text.split_once(':') {
        None => Ok((text.to_string(), None)),
        Some((t, ps)) => {
            let ps = ps
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .map_err(|_| super::UsageError(format!("Invalid partition in '{text}'")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((t.to_string(), Some(ps)))
        }
    }
}

struct Cluster {
    bootstrap: String,
    props: BTreeMap<String, String>,
    probe: BaseConsumer,
    timeout: Duration,
}

impl Cluster {
    fn group_consumer(&self, group: &str) -> anyhow::Result<BaseConsumer> {
        let mut props = self.props.clone();
        props.insert("group.id".into(), group.to_string());
        props.insert("enable.auto.commit".into(), "false".into());
        super::client_config(&self.bootstrap, &props)
            .create()
            .map_err(|e| anyhow::anyhow!("invalid client configuration: {e}"))
    }

    fn topics(&self) -> anyhow::Result<BTreeMap<String, Vec<i32>>> {
        let md = self.probe.fetch_metadata(None, self.timeout)?;
        Ok(md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
            .map(|t| {
                let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
                ps.sort_unstable();
                (t.name().to_string(), ps)
            })
            .collect())
    }

    /// Committed offsets of `group` on every partition it has one for.
    fn committed(
        &self,
        group: &str,
        scope: &BTreeMap<String, Vec<i32>>,
    ) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
        let mut tpl = TopicPartitionList::new();
        for (t, ps) in scope {
            for p in ps {
                tpl.add_partition(t, *p);
            }
        }
        if tpl.count() == 0 {
            return Ok(BTreeMap::new());
        }
        let consumer = self.group_consumer(group)?;
        let got = consumer
            .committed_offsets(tpl, self.timeout)
            .with_context(|| format!("cannot fetch the committed offsets of group '{group}'"))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    fn watermarks(&self, topic: &str, partition: i32) -> anyhow::Result<(i64, i64)> {
        self.probe
            .fetch_watermarks(topic, partition, self.timeout)
            .with_context(|| format!("cannot fetch the offsets of {topic}-{partition}"))
    }

    fn describe_group(&self, group: &str) -> anyhow::Result<GroupState> {
        let list = self
            .probe
            .fetch_group_list(Some(group), self.timeout)
            .with_context(|| format!("cannot describe group '{group}'"))?;
        let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
            return Ok(GroupState {
                state: "Dead".into(),
                protocol: String::new(),
                members: vec![],
            });
        };
        Ok(GroupState {
            state: g.state().to_string(),
            protocol: g.protocol().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| MemberRow {
                    group: group.to_string(),
                    consumer_id: m.id().to_string(),
                    host: m.client_host().to_string(),
                    client_id: m.client_id().to_string(),
                    assignment: m.assignment().map(parse_assignment).unwrap_or_default(),
                })
                .collect(),
        })
    }

    fn coordinator_text(&self) -> String {
        match self.probe.fetch_metadata(None, self.timeout) {
            Ok(md) => md
                .brokers()
                .iter()
                .find(|b| b.id() == md.orig_broker_id())
                .or(md.brokers().first())
                .map_or("-".to_string(), |b| {
                    format!("{}:{}  ({})", b.host(), b.port(), b.id())
                }),
            Err(_) => "-".into(),
        }
    }
}

struct GroupState {
    state: String,
    protocol: String,
    members: Vec<MemberRow>,
}

impl GroupState {
    fn exists(&self, committed: &BTreeMap<(String, i32), i64>) -> bool {
        !(self.state == "Dead" && self.members.is_empty() && committed.is_empty())
    }
}

fn print_error(message: &str) {
    println!("\nError: {message}");
}

/// Runs the tool.
pub fn run(args: ConsumerGroupsArgs) -> anyhow::Result<()> {
    let actions = super::count_set(&[
        args.list,
        args.describe,
        args.delete,
        args.reset_offsets,
        args.delete_offsets,
    ]);
    if actions != 1 {
        return usage(
            "Command must include exactly one action: --list, --describe, --delete, --reset-offsets, --delete-offsets",
        );
    }
    let views = super::count_set(&[args.members, args.state.is_some(), args.offsets]);
    if args.describe && views > 1 {
        return usage(
            "Option [describe] takes at most one of these options: [members], [offsets], [state]",
        );
    }
    if (args.describe || args.delete || args.reset_offsets || args.delete_offsets)
        && args.group.is_empty()
        && !args.all_groups
    {
        return usage("Option [describe/delete/reset-offsets] takes one of these options: [all-groups], [group]");
    }
    if args.delete && !args.topic.is_empty() {
        return usage("Option \"[topic]\" can't be used with option \"[delete]\"");
    }
    if args.dry_run && args.execute {
        return usage("Option \"[dry-run]\" can't be used with option \"[execute]\"");
    }
    let bootstrap = super::resolve_bootstrap(
        args.bootstrap_server.as_deref(),
        None,
        args.zookeeper.as_deref(),
    )?;
    let props = super::properties_with_overrides(args.command_config.as_deref(), &[])?;
    let connect = super::connect_timeout(args.connect_timeout_ms);
    let probe: BaseConsumer = super::client_config(&bootstrap, &props)
        .create()
        .map_err(|e| anyhow::anyhow!("invalid client configuration: {e}"))?;
    super::check_reachable(probe.client(), &bootstrap, connect)?;
    let cluster = Cluster {
        bootstrap,
        props,
        probe,
        timeout: Duration::from_millis(args.timeout.unwrap_or(5000)).max(connect),
    };
    let groups: Vec<String> = if args.all_groups {
        list_groups(&cluster)?.into_iter().map(|(g, _)| g).collect()
    } else {
        args.group.clone()
    };

    if args.list {
        return list(&cluster, &args);
    }
    if args.delete {
        return delete(&cluster, &groups);
    }
    if args.delete_offsets {
        let [group] = groups.as_slice() else {
            return usage("Option [delete-offsets] takes exactly one [group]");
        };
        if args.topic.is_empty() {
            return usage("Option [delete-offsets] takes one or more [topic]");
        }
        return delete_offsets(&cluster, group, &args.topic);
    }
    let mut failed = false;
    for g in &groups {
        let ok = if args.describe {
            describe(&cluster, g, &args)?
        } else {
            reset(&cluster, g, &args, groups.len() > 1)?
        };
        failed |= !ok;
    }
    if failed {
        return Err(Reported.into());
    }
    Ok(())
}

fn list_groups(cluster: &Cluster) -> anyhow::Result<Vec<(String, String)>> {
    let list = cluster
        .probe
        .fetch_group_list(None, cluster.timeout)
        .context("cannot list the consumer groups")?;
    let mut out: Vec<(String, String)> = list
        .groups()
        .iter()
        .filter(|g| g.protocol_type() == "consumer" || g.protocol_type().is_empty())
        .map(|g| (g.name().to_string(), g.state().to_string()))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The `--list --state` table.
pub fn list_table(groups: &[(String, String)], with_type: bool) -> String {
    let w = width(15, groups.iter().map(|(g, _)| g.as_str())) + 10;
    let mut out = String::new();
    let mut header = format!("{:<w$}", "GROUP");
    if with_type {
        header.push_str(&format!(" {:<20}", "TYPE"));
    }
    header.push_str(&format!(" {:<20}", "STATE"));
    out.push_str(&header);
    out.push('\n');
    for (g, s) in groups {
        let mut line = format!("{g:<w$}");
        if with_type {
            line.push_str(&format!(" {:<20}", "Classic"));
        }
        line.push_str(&format!(" {s:<20}"));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn list(cluster: &Cluster, args: &ConsumerGroupsArgs) -> anyhow::Result<()> {
    let groups = list_groups(cluster)?;
    match &args.state {
        None if args.group_type.is_none() => {
            for (g, _) in groups {
                println!("{g}");
            }
        }
        filter => {
            let wanted: Vec<String> = filter
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            let shown: Vec<(String, String)> = groups
                .into_iter()
                .filter(|(_, s)| wanted.is_empty() || wanted.contains(&s.to_ascii_lowercase()))
                .collect();
            if args.state.is_some() {
                print!("{}", list_table(&shown, args.group_type.is_some()));
            } else {
                let w = width(15, shown.iter().map(|(g, _)| g.as_str())) + 10;
                println!("{:<w$} {:<20}", "GROUP", "TYPE");
                for (g, _) in shown {
                    println!("{g:<w$} {:<20}", "Classic");
                }
            }
        }
    }
    Ok(())
}

fn describe(cluster: &Cluster, group: &str, args: &ConsumerGroupsArgs) -> anyhow::Result<bool> {
    let state = cluster.describe_group(group)?;
    let topics = cluster.topics()?;
    let committed = cluster.committed(group, &topics)?;
    if !state.exists(&committed) {
        print_error(&format!("Consumer group '{group}' does not exist."));
        return Ok(false);
    }
    if args.state.is_some() {
        print!(
            "{}",
            state_table(
                group,
                &cluster.coordinator_text(),
                if state.protocol.is_empty() {
                    ""
                } else {
                    &state.protocol
                },
                &state.state,
                state.members.len()
            )
        );
        return Ok(true);
    }
    match state.state.as_str() {
        "Dead" | "Empty" => {
            eprintln!("\nConsumer group '{group}' has no active members.");
        }
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
            eprintln!("\nWarning: Consumer group '{group}' is rebalancing.");
        }
        _ => {}
    }
    if args.members {
        print!("{}", members_table(&state.members, args.verbose));
        return Ok(true);
    }
    let mut rows = Vec::new();
    let mut owned = BTreeSet::new();
    for m in &state.members {
        if m.assignment.is_empty() {
            rows.push(OffsetRow {
                group: group.to_string(),
                topic: "-".into(),
                partition: None,
                current: None,
                log_end: None,
                consumer_id: m.consumer_id.clone(),
                host: m.host.clone(),
                client_id: m.client_id.clone(),
            });
        }
        for (t, ps) in &m.assignment {
            for p in ps {
                owned.insert((t.clone(), *p));
                rows.push(OffsetRow {
                    group: group.to_string(),
                    topic: t.clone(),
                    partition: Some(*p),
                    current: committed.get(&(t.clone(), *p)).copied(),
                    log_end: cluster.watermarks(t, *p).ok().map(|w| w.1),
                    consumer_id: m.consumer_id.clone(),
                    host: m.host.clone(),
                    client_id: m.client_id.clone(),
                });
            }
        }
    }
    for ((t, p), o) in &committed {
        if owned.contains(&(t.clone(), *p)) {
            continue;
        }
        rows.push(OffsetRow {
            group: group.to_string(),
            topic: t.clone(),
            partition: Some(*p),
            current: Some(*o),
            log_end: cluster.watermarks(t, *p).ok().map(|w| w.1),
            consumer_id: "-".into(),
            host: "-".into(),
            client_id: "-".into(),
        });
    }
    rows.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    print!("{}", offsets_table(&rows));
    Ok(true)
}

fn reset(
    cluster: &Cluster,
    group: &str,
    args: &ConsumerGroupsArgs,
    several: bool,
) -> anyhow::Result<bool> {
    let scenarios = super::count_set(&[
        args.to_earliest,
        args.to_latest,
        args.to_current,
        args.to_offset.is_some(),
        args.shift_by.is_some(),
        args.to_datetime.is_some(),
        args.by_duration.is_some(),
        args.from_file.is_some(),
    ]);
    if scenarios != 1 {
        return usage(
            "Option [reset-offsets] takes exactly one of these options: [to-datetime], [by-duration], [to-earliest], [to-latest], [shift-by], [from-file], [to-current], [to-offset]",
        );
    }
    if args.topic.is_empty() && !args.all_topics && args.from_file.is_none() {
        return usage("Option [reset-offsets] takes one of these options: [all-topics], [topic]");
    }
    if !args.dry_run && !args.execute && !args.export {
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. In a future \
             major release, the default behavior of this command will be to prompt the user \
             before executing the reset rather than doing a dry run. You should add the \
             --dry-run option explicitly if you are scripting this command and want to keep the \
             current default behavior without prompting."
        );
    }
    let state = cluster.describe_group(group)?;
    if !matches!(state.state.as_str(), "Empty" | "Dead" | "") {
        print_error(&format!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            state.state
        ));
        return Ok(false);
    }
    let topics = cluster.topics()?;
    let committed = cluster.committed(group, &topics)?;

    // The partitions in scope.
    let mut scope: Vec<(String, i32)> = Vec::new();
    let mut from_file: BTreeMap<(String, i32), i64> = BTreeMap::new();
    if let Some(path) = &args.from_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').map(|s| s.trim()).collect();
            let (g, t, p, o) = match f.as_slice() {
                [t, p, o] => (group, *t, *p, *o),
                [g, t, p, o] => (*g, *t, *p, *o),
                _ => anyhow::bail!("Invalid line in {}: '{line}'", path.display()),
            };
            if g != group {
                continue;
            }
            let p: i32 = p
                .parse()
                .with_context(|| format!("invalid partition in '{line}'"))?;
            let o: i64 = o
                .parse()
                .with_context(|| format!("invalid offset in '{line}'"))?;
            from_file.insert((t.to_string(), p), o);
            scope.push((t.to_string(), p));
        }
    } else if args.all_topics {
        scope.extend(committed.keys().cloned());
    } else {
        for spec in &args.topic {
            let (t, ps) = parse_topic_scope(spec)?;
            let Some(all) = topics.get(&t) else {
                print_error(&format!("Topic '{t}' does not exist."));
                return Ok(false);
            };
            for p in ps.unwrap_or_else(|| all.clone()) {
                scope.push((t.clone(), p));
            }
        }
    }

    let timestamp = match (&args.to_datetime, &args.by_duration) {
        (Some(dt), _) => Some(parse_datetime(dt)?),
        (_, Some(d)) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Some(now.saturating_sub(parse_duration(d)?).as_millis() as i64)
        }
        _ => None,
    };
    let by_time: BTreeMap<(String, i32), i64> = match timestamp {
        Some(ts) => {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in &scope {
                tpl.add_partition_offset(t, *p, Offset::Offset(ts))?;
            }
            let consumer = cluster.group_consumer(group)?;
            consumer
                .offsets_for_times(tpl, cluster.timeout)
                .context("cannot look offsets up by time")?
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                    _ => None,
                })
                .collect()
        }
        None => BTreeMap::new(),
    };

    let mut plan: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (t, p) in scope {
        let (low, high) = cluster.watermarks(&t, p)?;
        let current = committed.get(&(t.clone(), p)).copied();
        let wanted = if args.to_earliest {
            low
        } else if args.to_latest {
            high
        } else if args.to_current {
            current.unwrap_or(high)
        } else if let Some(o) = args.to_offset {
            o
        } else if let Some(n) = args.shift_by {
            match current {
                Some(c) => c + n,
                None => {
                    print_error(&format!(
                        "Partition {t}-{p} has no committed offset to shift (group '{group}')."
                    ));
                    return Ok(false);
                }
            }
        } else if timestamp.is_some() {
            match by_time.get(&(t.clone(), p)) {
                Some(o) if *o >= 0 => *o,
                _ => {
                    if args.to_datetime.is_some() && low == high {
                        eprintln!("Warn: Partition {p} from topic {t} is empty. Falling back to latest known offset.");
                    }
                    high
                }
            }
        } else {
            from_file.get(&(t.clone(), p)).copied().unwrap_or(high)
        };
        let clamped = wanted.clamp(low, high.max(low));
        if wanted > high {
            eprintln!("WARN New offset ({wanted}) is higher than latest offset for topic partition {t}-{p}. Value will be set to {high}");
        } else if wanted < low {
            eprintln!("WARN New offset ({wanted}) is lower than earliest offset for topic partition {t}-{p}. Value will be set to {low}");
        }
        plan.insert((t, p), clamped);
    }

    if args.execute {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in &plan {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))?;
        }
        if tpl.count() > 0 {
            let consumer = cluster.group_consumer(group)?;
            consumer
                .commit(&tpl, CommitMode::Sync)
                .with_context(|| format!("cannot commit the new offsets of group '{group}'"))?;
        }
    }
    if args.export {
        for ((t, p), o) in &plan {
            if several {
                println!("{group},{t},{p},{o}");
            } else {
                println!("{t},{p},{o}");
            }
        }
    } else {
        print!("{}", reset_table(group, &plan));
    }
    Ok(true)
}

fn delete(cluster: &Cluster, groups: &[String]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        super::client_config(&cluster.bootstrap, &cluster.props)
            .create()
            .context("cannot create the admin client")?;
    let rt = super::runtime()?;
    let refs: Vec<&str> = groups.iter().map(|g| g.as_str()).collect();
    let opts = AdminOptions::new().request_timeout(Some(cluster.timeout));
    let results = rt.block_on(admin.delete_groups(&refs, &opts))?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(g) => ok.push(g),
            Err((g, code)) => failed.push((g, code)),
        }
    }
    if failed.is_empty() {
        println!("{}", deletion_success(&ok));
        return Ok(());
    }
    println!("Error: Deletion of some consumer groups failed:");
    for (g, code) in &failed {
        println!(
            "* Group '{g}' could not be deleted due to: {}",
            group_error_text(*code)
        );
    }
    if !ok.is_empty() {
        println!(
            "\nThese consumer groups were deleted successfully: {}",
            quoted(&ok)
        );
    }
    Err(Reported.into())
}

/// The `--delete-offsets` status table: a blank line, then `TOPIC PARTITION STATUS` rows.
pub fn delete_offsets_table(rows: &[(String, i32, Option<String>)]) -> String {
    let line = |a: &str, b: &str, c: &str| format!("{a:<30} {b:<15} {c:<15}");
    let mut out = String::from("\n");
    out.push_str(&line("TOPIC", "PARTITION", "STATUS"));
    out.push('\n');
    for (t, p, error) in rows {
        let status = match error {
            None => "Successful".to_string(),
            Some(e) => format!("Error: :{e}"),
        };
        out.push_str(&line(t, &p.to_string(), &status));
        out.push('\n');
    }
    out
}

fn delete_offsets(cluster: &Cluster, group: &str, topics: &[String]) -> anyhow::Result<()> {
    use kafka_protocol::messages::{
        offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic},
        OffsetDeleteRequest, OffsetDeleteResponse, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::ResponseError;

    let known = cluster.topics()?;
    let mut request_topics = Vec::new();
    let mut names = Vec::new();
    for spec in topics {
        let (t, ps) = parse_topic_scope(spec)?;
        let partitions = match ps {
            Some(ps) => ps,
            None => known.get(&t).cloned().unwrap_or_default(),
        };
        names.push(t.clone());
        request_topics.push(
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(t)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                        .collect(),
                ),
        );
    }
    let request = OffsetDeleteRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_string(
            group.to_string(),
        )))
        .with_topics(request_topics);
    let mut conn = super::wire::group_coordinator(&cluster.bootstrap, group, cluster.timeout)?;
    let response: OffsetDeleteResponse = conn.call(&request, 0)?;
    let top = ResponseError::try_from_code(response.error_code);
    let mut rows: Vec<(String, i32, Option<String>)> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.name.0.as_str().to_string(),
                    p.partition_index,
                    ResponseError::try_from_code(p.error_code).map(|e| e.to_string()),
                )
            })
        })
        .collect();
    rows.sort();
    let partition_errors = rows.iter().any(|r| r.2.is_some());
    match top {
        None if !partition_errors => println!(
            "Request succeed for deleting offsets with topic {} group {group}",
            names.join(", ")
        ),
        None => print_error("Encounter some partition level error, see the follow-up details:"),
        Some(ResponseError::GroupIdNotFound) => {
            print_error(&format!("'{group}' does not exist."));
            return Err(Reported.into());
        }
        Some(ResponseError::NonEmptyGroup) => {
            print_error(&format!(
                "Deleting offsets of a consumer group '{group}' is forbidden if the group is not empty."
            ));
            return Err(Reported.into());
        }
        Some(e) => {
            print_error(&format!("Encounter some unknown error: {e}"));
            return Err(Reported.into());
        }
    }
    print!("{}", delete_offsets_table(&rows));
    if partition_errors {
        return Err(Reported.into());
    }
    Ok(())
}

fn quoted(groups: &[String]) -> String {
    groups
        .iter()
        .map(|g| format!("'{g}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Deletion of requested consumer groups ('g1', 'g2') was successful.`
pub fn deletion_success(groups: &[String]) -> String {
    format!(
        "Deletion of requested consumer groups ({}) was successful.",
        quoted(groups)
    )
}

fn group_error_text(code: rdkafka::types::RDKafkaErrorCode) -> String {
    use rdkafka::types::RDKafkaErrorCode as E;
    match code {
        E::NonEmptyGroup => {
            "org.apache.kafka.common.errors.GroupNotEmptyException: The group is not empty.".into()
        }
        E::GroupIdNotFound => {
            "org.apache.kafka.common.errors.GroupIdNotFoundException: The group id does not exist."
                .into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(topic: &str, p: i32, cur: Option<i64>, end: i64) -> OffsetRow {
        OffsetRow {
            group: "g".into(),
            topic: topic.into(),
            partition: Some(p),
            current: cur,
            log_end: Some(end),
            consumer_id: "-".into(),
            host: "-".into(),
            client_id: "-".into(),
        }
    }

    #[test]
    fn offsets_table_layout_and_lag() {
        let t = offsets_table(&[row("fred", 0, Some(3), 5), row("fred", 1, None, 2)]);
        let lines: Vec<&str> = t.split('\n').collect();
        assert_eq!(lines[0], "");
        assert_eq!(
            lines[1],
            "GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID     HOST            CLIENT-ID"
        );
        assert_eq!(
            lines[2],
            "g               fred            0          3               5               2               -               -               -"
        );
        assert_eq!(
            lines[3],
            "g               fred            1          -               2               -               -               -               -"
        );
    }

    #[test]
    fn reset_plan_layout() {
        let mut plan = BTreeMap::new();
        plan.insert(("fred".to_string(), 0), 0i64);
        let t = reset_table("g1", &plan);
        assert_eq!(
            t,
            format!(
                "\n{:<30} {:<30} {:<10} {:<15}\n{:<30} {:<30} {:<10} {:<15}\n",
                "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET", "g1", "fred", "0", "0"
            )
        );
    }

    #[test]
    fn state_table_layout() {
        let t = state_table("my-group", "localhost:9092  (0)", "range", "Stable", 4);
        assert!(t.starts_with("\nGROUP                     COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE           #MEMBERS\n"));
        assert!(t.ends_with("my-group                  localhost:9092  (0)       range                Stable          4\n"));
    }

    #[test]
    fn members_table_counts_partitions() {
        let mut a = BTreeMap::new();
        a.insert("fred".to_string(), vec![0, 1]);
        let t = members_table(
            &[MemberRow {
                group: "g".into(),
                consumer_id: "c-1".into(),
                host: "/127.0.0.1".into(),
                client_id: "c".into(),
                assignment: a,
            }],
            true,
        );
        assert!(t.contains("#PARTITIONS     ASSIGNMENT"));
        assert!(t.contains(" 2               fred(0,1)"));
    }

    #[test]
    fn assignment_decodes() {
        let mut b = vec![0u8, 0];
        b.extend(1i32.to_be_bytes());
        b.extend(4i16.to_be_bytes());
        b.extend(b"fred");
        b.extend(2i32.to_be_bytes());
        b.extend(1i32.to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        let a = parse_assignment(&b);
        assert_eq!(a["fred"], vec![0, 1]);
        assert!(parse_assignment(&[0, 0, 0]).is_empty());
    }

    #[test]
    fn durations_and_datetimes() {
        assert_eq!(parse_duration("PT1H").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("P1DT2M3.5S").unwrap(),
            Duration::from_millis(86_400_000 + 120_000 + 3500)
        );
        assert!(parse_duration("1H").is_err());
        assert_eq!(parse_datetime("1970-01-01T00:00:01.000").unwrap(), 1000);
        assert_eq!(parse_datetime("1970-01-01T01:00:00.000+01:00").unwrap(), 0);
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert!(parse_datetime("yesterday").is_err());
    }

    #[test]
    fn topic_scope() {
        assert_eq!(parse_topic_scope("t").unwrap(), ("t".to_string(), None));
        assert_eq!(
            parse_topic_scope("t:0,2").unwrap(),
            ("t".to_string(), Some(vec![0, 2]))
        );
    }

    #[test]
    fn delete_offsets_layout() {
        let t = delete_offsets_table(&[
            ("fred".into(), 0, None),
            ("fred".into(), 1, Some("The group is not empty.".into())),
        ]);
        assert_eq!(
            t,
            format!(
                "\n{:<30} {:<15} {:<15}\n{:<30} {:<15} {:<15}\n{:<30} {:<15} {:<15}\n",
                "TOPIC",
                "PARTITION",
                "STATUS",
                "fred",
                "0",
                "Successful",
                "fred",
                "1",
                "Error: :The group is not empty."
            )
        );
    }

    #[test]
    fn deletion_line() {
        assert_eq!(
            deletion_success(&["g1".into(), "g2".into()]),
            "Deletion of requested consumer groups ('g1', 'g2') was successful."
        );
    }

    #[test]
    fn list_with_state() {
        let t = list_table(&[("g".into(), "Empty".into())], false);
        assert_eq!(
            t,
            format!(
                "{:<25} {:<20}\n{:<25} {:<20}\n",
                "GROUP", "STATE", "g", "Empty"
            )
        );
    }
}
