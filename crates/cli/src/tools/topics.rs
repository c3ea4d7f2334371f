//! `flumen topics` (`kafka-topics.sh`): create, list, describe, alter and delete topics
//! through the admin API.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication, TopicResult,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaErrorCode;
use regex::Regex;

use super::{usage, Reported};

/// Arguments of `flumen topics`, spelled as `kafka-topics.sh` spells them.
#[derive(clap::Args, Debug, Default)]
pub struct TopicsArgs {
    /// Create a new topic.
    #[arg(long)]
    pub create: bool,
    /// List all available topics.
    #[arg(long)]
    pub list: bool,
    /// List details for the given topics.
    #[arg(long)]
    pub describe: bool,
    /// Alter the number of partitions of a topic.
    #[arg(long)]
    pub alter: bool,
    /// Delete a topic.
    #[arg(long)]
    pub delete: bool,
    /// The Kafka server to connect to (HOST:PORT[,HOST:PORT…]).
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: Option<String>,
    /// Legacy (Kafka ≤ 2.x): a ZooKeeper address; means the cluster at the default bootstrap
    /// address ($FLUMEN_BOOTSTRAP_SERVER, else localhost:9092).
    #[arg(long, value_name = "HOST:2181")]
    pub zookeeper: Option<String>,
    /// A client properties file (security settings etc.).
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
    /// The topic (a regular expression for list, describe, alter and delete).
    #[arg(long)]
    pub topic: Option<String>,
    /// The number of partitions (create: default the broker's `num.partitions`; alter: the
    /// new, larger count).
    #[arg(long, allow_negative_numbers = true)]
    pub partitions: Option<i32>,
    /// The replication factor (default the broker's `default.replication.factor`).
    #[arg(long = "replication-factor", allow_negative_numbers = true)]
    pub replication_factor: Option<i32>,
    /// Manual replica assignment: `0:1,1:2` (commas between partitions, colons between
    /// replicas).
    #[arg(long = "replica-assignment")]
    pub replica_assignment: Option<String>,
    /// A topic config override `name=value` for the created topic (repeatable).
    #[arg(long = "config", value_name = "NAME=VALUE")]
    pub config: Vec<String>,
    /// Legacy (ZooKeeper-era `--alter`): a config override to remove (not supported).
    #[arg(long = "delete-config", value_name = "NAME")]
    pub delete_config: Vec<String>,
    /// Create: succeed silently if the topic already exists.
    #[arg(long = "if-not-exists")]
    pub if_not_exists: bool,
    /// Alter, delete, describe: do nothing if no topic matches.
    #[arg(long = "if-exists")]
    pub if_exists: bool,
    /// List, describe: leave out internal topics (names starting with `__`).
    #[arg(long = "exclude-internal")]
    pub exclude_internal: bool,
    /// Describe: only partitions whose ISR is smaller than the replica set.
    #[arg(long = "under-replicated-partitions")]
    pub under_replicated_partitions: bool,
    /// Describe: only partitions whose leader is not available.
    #[arg(long = "unavailable-partitions")]
    pub unavailable_partitions: bool,
    /// Describe: only partitions whose ISR is below min.insync.replicas (none on Flumen).
    #[arg(long = "under-min-isr-partitions")]
    pub under_min_isr_partitions: bool,
    /// Describe: only partitions whose ISR equals min.insync.replicas.
    #[arg(long = "at-min-isr-partitions")]
    pub at_min_isr_partitions: bool,
    /// Describe: only the header lines of topics with config overrides.
    #[arg(long = "topics-with-overrides")]
    pub topics_with_overrides: bool,
    /// Accepted and ignored (newest Kafka versions only).
    #[arg(long = "partition-size-limit-per-response", hide = true)]
    pub partition_size_limit_per_response: Option<i32>,
    /// Describe: print Kafka ≤ 2.3's layout (`Topic:fred<TAB>PartitionCount:1…`), as older
    /// courses show it.
    #[arg(long = "legacy-format")]
    pub legacy_format: bool,
    /// How long to wait for the cluster before giving up (default $FLUMEN_CONNECT_TIMEOUT_MS,
    /// else 5000).
    #[arg(long = "connect-timeout-ms", value_name = "MS")]
    pub connect_timeout_ms: Option<u64>,
}

/// One partition as `--describe` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, -1 when offline.
    pub leader: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
}

/// One topic as `--describe` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicView {
    /// Topic name.
    pub name: String,
    /// Overridden configs `name=value`, in order.
    pub configs: Vec<String>,
    /// Partitions, in index order.
    pub partitions: Vec<PartitionView>,
}

fn ids(list: &[i32]) -> String {
    list.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The describe header line of a topic (modern layout, or Kafka ≤ 2.3's with `legacy`).
pub fn describe_header(topic: &TopicView, legacy: bool) -> String {
    let rf = topic.partitions.first().map_or(0, |p| p.replicas.len());
    let configs = topic.configs.join(",");
    if legacy {
        format!(
            "Topic:{}\tPartitionCount:{}\tReplicationFactor:{}\tConfigs:{}",
            topic.name,
            topic.partitions.len(),
            rf,
            configs
        )
    } else {
        format!(
            "Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
            topic.name,
            topic.partitions.len(),
            rf,
            configs
        )
    }
}

/// The describe line of one partition.
pub fn describe_partition(topic: &str, p: &PartitionView) -> String {
    let leader = if p.leader < 0 {
        "none".to_string()
    } else {
        p.leader.to_string()
    };
    format!(
        "\tTopic: {topic}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
        p.partition,
        ids(&p.replicas),
        ids(&p.isr)
    )
}

/// The Kafka warning for topic names with `.` or `_`.
pub const COLLISION_WARNING: &str = "WARNING: Due to limitations in metric names, topics with a \
period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.";

/// Parses `--replica-assignment` (`0:1,1:2`).
pub fn parse_replica_assignment(text: &str) -> anyhow::Result<Vec<Vec<i32>>> {
    text.split(',')
        .map(|part| {
            part.split(':')
                .map(|id| {
                    id.trim().parse::<i32>().map_err(|_| {
                        super::UsageError(format!("Invalid replica assignment '{text}'")).into()
                    })
                })
                .collect()
        })
        .collect()
}

fn topic_matcher(topic: Option<&str>) -> anyhow::Result<Option<Regex>> {
    topic
        .map(|t| {
            Regex::new(&format!("^(?:{t})$"))
                .map_err(|e| super::UsageError(format!("Invalid topic pattern '{t}': {e}")).into())
        })
        .transpose()
}

fn is_internal(name: &str) -> bool {
    name.starts_with("__")
}

/// Runs the tool.
pub fn run(args: TopicsArgs) -> anyhow::Result<()> {
    let actions = super::count_set(&[
        args.create,
        args.list,
        args.describe,
        args.alter,
        args.delete,
    ]);
    if actions != 1 {
        return usage(
            "Command must include exactly one action: --list, --describe, --create, --alter or --delete",
        );
    }
    if (args.create || args.alter || args.delete) && args.topic.is_none() {
        return usage("Missing required argument \"[topic]\"");
    }
    if let Some(p) = args.partitions {
        if p < 1 {
            return usage("The partitions must be greater than 0");
        }
    }
    if let Some(rf) = args.replication_factor {
        if !(1..=32767).contains(&rf) {
            return usage("The replication factor must be between 1 and 32767 inclusive");
        }
    }
    if args.alter && args.partitions.is_none() {
        if !args.config.is_empty() || !args.delete_config.is_empty() {
            return usage(
                "Option \"[config]\" can't be used with option \"[alter]\": change topic configs \
                 with kafka-configs.sh",
            );
        }
        return usage("Missing required argument \"[partitions]\"");
    }
    if !args.create && (args.replication_factor.is_some() || args.replica_assignment.is_some()) {
        return usage("Option \"[replication-factor]\" can't be used with option \"[alter]\"");
    }
    let bootstrap = super::resolve_bootstrap(
        args.bootstrap_server.as_deref(),
        None,
        args.zookeeper.as_deref(),
    )?;
    let timeout = super::connect_timeout(args.connect_timeout_ms);
    let props = super::properties_with_overrides(args.command_config.as_deref(), &[])?;
    let admin: AdminClient<DefaultClientContext> = super::client_config(&bootstrap, &props)
        .create()
        .context("cannot create the admin client")?;
    let metadata = super::check_reachable(admin.inner(), &bootstrap, timeout)?;
    let rt = super::runtime()?;
    let opts = AdminOptions::new().request_timeout(Some(timeout.max(Duration::from_secs(30))));
    let admin = Admin {
        rt,
        client: admin,
        opts,
    };

    let result = if args.create {
        create(&admin, &args)
    } else if args.list {
        list(&metadata, &args)
    } else if args.describe {
        describe(&admin, &metadata, &args)
    } else if args.alter {
        alter(&admin, &metadata, &args)
    } else {
        delete(&admin, &metadata, &args)
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.is::<super::UsageError>() => Err(e),
        Err(e) => {
            println!("Error while executing topic command : {e}");
            Err(Reported.into())
        }
    }
}

/// The admin client with what each of its requests needs: a runtime to wait on and the
/// request options.
struct Admin {
    rt: tokio::runtime::Runtime,
    client: AdminClient<DefaultClientContext>,
    opts: AdminOptions,
}

fn create(admin: &Admin, args: &TopicsArgs) -> anyhow::Result<()> {
    let name = args.topic.as_deref().unwrap_or_default();
    if name.contains('.') || name.contains('_') {
        println!("{COLLISION_WARNING}");
    }
    let configs = args
        .config
        .iter()
        .map(|c| super::parse_key_value(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let assignment = args
        .replica_assignment
        .as_deref()
        .map(parse_replica_assignment)
        .transpose()?;
    let assignment_refs: Vec<&[i32]>;
    let new_topic = match &assignment {
        Some(a) => {
            assignment_refs = a.iter().map(|v| v.as_slice()).collect();
            NewTopic::new(
                name,
                a.len() as i32,
                TopicReplication::Variable(&assignment_refs),
            )
        }
        None => NewTopic::new(
            name,
            args.partitions.unwrap_or(-1),
            TopicReplication::Fixed(args.replication_factor.unwrap_or(-1)),
        ),
    };
    let mut new_topic = new_topic;
    for (k, v) in &configs {
        new_topic = new_topic.set(k, v);
    }
    let results = admin
        .rt
        .block_on(admin.client.create_topics([&new_topic], &admin.opts))?;
    for r in results {
        match r {
            Ok(_) => println!("Created topic {name}."),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if args.if_not_exists => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                anyhow::bail!("Topic '{name}' already exists.")
            }
            Err((_, code)) => anyhow::bail!("{code}"),
        }
    }
    Ok(())
}

fn matching_topics(metadata: &Metadata, args: &TopicsArgs) -> anyhow::Result<Vec<String>> {
    let matcher = topic_matcher(args.topic.as_deref())?;
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| t.name().to_string())
        .filter(|n| !(args.exclude_internal && is_internal(n)))
        .filter(|n| matcher.as_ref().is_none_or(|m| m.is_match(n)))
        .collect();
    names.sort();
    Ok(names)
}

/// The topics `--topic` matches, for describe, alter and delete: None (nothing to do) when
/// none match and that is fine (`--if-exists`, or no `--topic`), an error when none match
/// otherwise.
fn existing_topics(metadata: &Metadata, args: &TopicsArgs) -> anyhow::Result<Option<Vec<String>>> {
    let names = matching_topics(metadata, args)?;
    if names.is_empty() {
        if args.if_exists || args.topic.is_none() {
            return Ok(None);
        }
        anyhow::bail!(
            "Topic '{}' does not exist as expected",
            args.topic.as_deref().unwrap_or_default()
        );
    }
    Ok(Some(names))
}

fn list(metadata: &Metadata, args: &TopicsArgs) -> anyhow::Result<()> {
    for name in matching_topics(metadata, args)? {
        println!("{name}");
    }
    Ok(())
}

fn topic_view(metadata: &Metadata, name: &str, configs: Vec<String>) -> Option<TopicView> {
    let t = metadata.topics().iter().find(|t| t.name() == name)?;
    let mut partitions: Vec<PartitionView> = t
        .partitions()
        .iter()
        .map(|p| PartitionView {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    Some(TopicView {
        name: name.to_string(),
        configs,
        partitions,
    })
}

fn describe(admin: &Admin, metadata: &Metadata, args: &TopicsArgs) -> anyhow::Result<()> {
    let Some(names) = existing_topics(metadata, args)? else {
        return Ok(());
    };
    let specifiers: Vec<ResourceSpecifier> =
        names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
    // A broker without DescribeConfigs still gets a describe, with empty Configs.
    let configs: BTreeMap<String, Vec<String>> = admin
        .rt
        .block_on(
            admin
                .client
                .describe_configs(specifiers.iter(), &admin.opts),
        )
        .map(|results| {
            results
                .into_iter()
                .flatten()
                .filter_map(|res| {
                    let name = match &res.specifier {
                        rdkafka::admin::OwnedResourceSpecifier::Topic(n) => n.clone(),
                        _ => return None,
                    };
                    let mut overrides: Vec<String> = res
                        .entries
                        .iter()
                        .filter(|e| e.source == ConfigSource::DynamicTopic)
                        .map(|e| {
                            let v = if e.is_sensitive {
                                "[hidden]".to_string()
                            } else {
                                e.value.clone().unwrap_or_else(|| "null".into())
                            };
                            format!("{}={v}", e.name)
                        })
                        .collect();
                    overrides.sort();
                    Some((name, overrides))
                })
                .collect()
        })
        .unwrap_or_default();
    let partition_filter = args.under_replicated_partitions
        || args.unavailable_partitions
        || args.under_min_isr_partitions
        || args.at_min_isr_partitions;
    for name in &names {
        let cfg = configs.get(name).cloned().unwrap_or_default();
        let Some(view) = topic_view(metadata, name, cfg) else {
            continue;
        };
        if args.topics_with_overrides {
            if !view.configs.is_empty() {
                println!("{}", describe_header(&view, args.legacy_format));
            }
            continue;
        }
        if !partition_filter {
            println!("{}", describe_header(&view, args.legacy_format));
        }
        for p in &view.partitions {
            let show = !partition_filter
                || (args.under_replicated_partitions && p.isr.len() < p.replicas.len())
                || (args.unavailable_partitions && p.leader < 0);
            if show {
                println!("{}", describe_partition(name, p));
            }
        }
    }
    Ok(())
}

fn alter(admin: &Admin, metadata: &Metadata, args: &TopicsArgs) -> anyhow::Result<()> {
    let Some(names) = existing_topics(metadata, args)? else {
        return Ok(());
    };
    let count = args.partitions.unwrap_or(1) as usize;
    let requests: Vec<NewPartitions> = names.iter().map(|n| NewPartitions::new(n, count)).collect();
    first_topic_error(
        admin
            .rt
            .block_on(admin.client.create_partitions(requests.iter(), &admin.opts))?,
    )
}

fn delete(admin: &Admin, metadata: &Metadata, args: &TopicsArgs) -> anyhow::Result<()> {
    let Some(names) = existing_topics(metadata, args)? else {
        return Ok(());
    };
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    first_topic_error(
        admin
            .rt
            .block_on(admin.client.delete_topics(&refs, &admin.opts))?,
    )
}

/// Fails with the first per-topic error of an admin request, as `{code} (topic '{name}')`.
fn first_topic_error(results: Vec<TopicResult>) -> anyhow::Result<()> {
    for r in results {
        if let Err((topic, code)) = r {
            anyhow::bail!("{code} (topic '{topic}')");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fred() -> TopicView {
        TopicView {
            name: "fred".into(),
            configs: vec![],
            partitions: vec![PartitionView {
                partition: 0,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
            }],
        }
    }

    #[test]
    fn describe_modern_layout() {
        assert_eq!(
            describe_header(&fred(), false),
            "Topic: fred\tPartitionCount: 1\tReplicationFactor: 1\tConfigs: "
        );
        assert_eq!(
            describe_partition("fred", &fred().partitions[0]),
            "\tTopic: fred\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"
        );
    }

    #[test]
    fn describe_legacy_layout_and_configs() {
        let mut t = fred();
        t.configs = vec!["cleanup.policy=compact".into(), "retention.ms=1000".into()];
        assert_eq!(
            describe_header(&t, true),
            "Topic:fred\tPartitionCount:1\tReplicationFactor:1\tConfigs:cleanup.policy=compact,retention.ms=1000"
        );
    }

    #[test]
    fn offline_leader_prints_none() {
        let p = PartitionView {
            partition: 2,
            leader: -1,
            replicas: vec![1, 2],
            isr: vec![],
        };
        assert_eq!(
            describe_partition("t", &p),
            "\tTopic: t\tPartition: 2\tLeader: none\tReplicas: 1,2\tIsr: "
        );
    }

    #[test]
    fn replica_assignment_parses() {
        assert_eq!(
            parse_replica_assignment("0:1,1:2").unwrap(),
            vec![vec![0, 1], vec![1, 2]]
        );
        assert!(parse_replica_assignment("a:b").is_err());
    }

    #[test]
    fn topic_pattern_is_a_full_match() {
        let m = topic_matcher(Some("fred")).unwrap().unwrap();
        assert!(m.is_match("fred"));
        assert!(!m.is_match("freddy"));
    }

    #[test]
    fn exactly_one_action() {
        let err = run(TopicsArgs::default()).unwrap_err();
        assert!(err.to_string().contains("exactly one action"));
        let err = run(TopicsArgs {
            create: true,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("[topic]"));
    }
}
