//! Flume's component type names: the aliases (matched case-insensitively) and the full
//! Java class names users write instead, mapped to Flumen's implementations.

/// What a `type` value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<T> {
    /// A built-in that Flumen implements.
    Builtin(T),
    /// A Flume built-in that Flumen does not implement (yet).
    NotImplemented(&'static str),
    /// Neither an alias nor a known class name (a typo or a custom plugin).
    Unknown,
}

/// One row: alias, Java class name, Flumen implementation (None = not implemented).
type Row<T> = (&'static str, &'static str, Option<T>);

fn resolve<T: Copy>(table: &[Row<T>], value: &str) -> Resolved<T> {
    let v = value.trim();
    for (alias, class, imp) in table {
        if (!alias.is_empty() && v.eq_ignore_ascii_case(alias)) || v == *class {
            return match imp {
                Some(t) => Resolved::Builtin(*t),
                None => Resolved::NotImplemented(class),
            };
        }
    }
    Resolved::Unknown
}

/// Source implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    /// `netcat`
    Netcat,
    /// `netcatudp`
    NetcatUdp,
    /// `seq`
    Seq,
    /// `exec`
    Exec,
    /// `spooldir`
    SpoolDir,
    /// `TAILDIR`
    Taildir,
    /// `org.apache.flume.source.kafka.KafkaSource`
    Kafka,
    /// `syslogtcp`
    SyslogTcp,
    /// `syslogudp`
    SyslogUdp,
    /// `multiport_syslogtcp`
    MultiportSyslogTcp,
    /// `http`
    Http,
    /// `avro`
    Avro,
    /// `thrift`
    Thrift,
}

const SOURCES: &[Row<SourceType>] = &[
    (
        "seq",
        "org.apache.flume.source.SequenceGeneratorSource",
        Some(SourceType::Seq),
    ),
    (
        "netcat",
        "org.apache.flume.source.NetcatSource",
        Some(SourceType::Netcat),
    ),
    (
        "netcatudp",
        "org.apache.flume.source.NetcatUdpSource",
        Some(SourceType::NetcatUdp),
    ),
    (
        "exec",
        "org.apache.flume.source.ExecSource",
        Some(SourceType::Exec),
    ),
    (
        "spooldir",
        "org.apache.flume.source.SpoolDirectorySource",
        Some(SourceType::SpoolDir),
    ),
    (
        "avro",
        "org.apache.flume.source.AvroSource",
        Some(SourceType::Avro),
    ),
    (
        "thrift",
        "org.apache.flume.source.ThriftSource",
        Some(SourceType::Thrift),
    ),
    (
        "syslogtcp",
        "org.apache.flume.source.SyslogTcpSource",
        Some(SourceType::SyslogTcp),
    ),
    (
        "multiport_syslogtcp",
        "org.apache.flume.source.MultiportSyslogTCPSource",
        Some(SourceType::MultiportSyslogTcp),
    ),
    (
        "syslogudp",
        "org.apache.flume.source.SyslogUDPSource",
        Some(SourceType::SyslogUdp),
    ),
    (
        "http",
        "org.apache.flume.source.http.HTTPSource",
        Some(SourceType::Http),
    ),
    ("jms", "org.apache.flume.source.jms.JMSSource", None),
    (
        "TAILDIR",
        "org.apache.flume.source.taildir.TaildirSource",
        Some(SourceType::Taildir),
    ),
    (
        "",
        "org.apache.flume.source.kafka.KafkaSource",
        Some(SourceType::Kafka),
    ),
    ("", "org.apache.flume.source.StressSource", None),
];

/// Resolves a source `type`.
pub fn source(value: &str) -> Resolved<SourceType> {
    resolve(SOURCES, value)
}

/// Channel implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelType {
    /// `memory`
    Memory,
    /// `file`
    File,
    /// `org.apache.flume.channel.kafka.KafkaChannel`
    Kafka,
}

const CHANNELS: &[Row<ChannelType>] = &[
    (
        "memory",
        "org.apache.flume.channel.MemoryChannel",
        Some(ChannelType::Memory),
    ),
    (
        "file",
        "org.apache.flume.channel.file.FileChannel",
        Some(ChannelType::File),
    ),
    ("jdbc", "org.apache.flume.channel.jdbc.JdbcChannel", None),
    (
        "SPILLABLEMEMORY",
        "org.apache.flume.channel.SpillableMemoryChannel",
        None,
    ),
    (
        "",
        "org.apache.flume.channel.kafka.KafkaChannel",
        Some(ChannelType::Kafka),
    ),
    ("", "org.apache.flume.channel.PseudoTxnMemoryChannel", None),
];

/// Resolves a channel `type`.
pub fn channel(value: &str) -> Resolved<ChannelType> {
    resolve(CHANNELS, value)
}

/// Sink implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkType {
    /// `null`
    Null,
    /// `logger`
    Logger,
    /// `file_roll`
    FileRoll,
    /// `hdfs`
    Hdfs,
    /// `org.apache.flume.sink.kafka.KafkaSink`
    Kafka,
    /// `avro`
    Avro,
    /// `thrift`
    Thrift,
}

const SINKS: &[Row<SinkType>] = &[
    (
        "null",
        "org.apache.flume.sink.NullSink",
        Some(SinkType::Null),
    ),
    (
        "logger",
        "org.apache.flume.sink.LoggerSink",
        Some(SinkType::Logger),
    ),
    (
        "file_roll",
        "org.apache.flume.sink.RollingFileSink",
        Some(SinkType::FileRoll),
    ),
    (
        "hdfs",
        "org.apache.flume.sink.hdfs.HDFSEventSink",
        Some(SinkType::Hdfs),
    ),
    ("irc", "org.apache.flume.sink.irc.IRCSink", None),
    (
        "avro",
        "org.apache.flume.sink.AvroSink",
        Some(SinkType::Avro),
    ),
    (
        "thrift",
        "org.apache.flume.sink.ThriftSink",
        Some(SinkType::Thrift),
    ),
    ("hbase", "org.apache.flume.sink.hbase.HBaseSink", None),
    (
        "asynchbase",
        "org.apache.flume.sink.hbase.AsyncHBaseSink",
        None,
    ),
    ("hbase2", "org.apache.flume.sink.hbase2.HBase2Sink", None),
    (
        "morphline_solr",
        "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
        None,
    ),
    ("hive", "org.apache.flume.sink.hive.HiveSink", None),
    ("http", "org.apache.flume.sink.http.HttpSink", None),
    (
        "",
        "org.apache.flume.sink.kafka.KafkaSink",
        Some(SinkType::Kafka),
    ),
];

/// Resolves a sink `type`.
pub fn sink(value: &str) -> Resolved<SinkType> {
    resolve(SINKS, value)
}

/// Channel selectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorType {
    /// `replicating` (Flume's default)
    Replicating,
    /// `multiplexing`
    Multiplexing,
}

const SELECTORS: &[Row<SelectorType>] = &[
    (
        "replicating",
        "org.apache.flume.channel.ReplicatingChannelSelector",
        Some(SelectorType::Replicating),
    ),
    (
        "multiplexing",
        "org.apache.flume.channel.MultiplexingChannelSelector",
        Some(SelectorType::Multiplexing),
    ),
    (
        "load_balancing",
        "org.apache.flume.channel.LoadBalancingChannelSelector",
        None,
    ),
];

/// Resolves a `selector.type`.
pub fn selector(value: &str) -> Resolved<SelectorType> {
    resolve(SELECTORS, value)
}

/// Sink processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessorType {
    /// `default`
    Default,
    /// `failover`
    Failover,
    /// `load_balance`
    LoadBalance,
}

const PROCESSORS: &[Row<ProcessorType>] = &[
    (
        "default",
        "org.apache.flume.sink.DefaultSinkProcessor",
        Some(ProcessorType::Default),
    ),
    (
        "failover",
        "org.apache.flume.sink.FailoverSinkProcessor",
        Some(ProcessorType::Failover),
    ),
    (
        "load_balance",
        "org.apache.flume.sink.LoadBalancingSinkProcessor",
        Some(ProcessorType::LoadBalance),
    ),
];

/// Resolves a sink group's `processor.type`.
pub fn processor(value: &str) -> Resolved<ProcessorType> {
    resolve(PROCESSORS, value)
}

/// Interceptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterceptorType {
    /// `timestamp`
    Timestamp,
    /// `host`
    Host,
    /// `static`
    Static,
    /// `regex_filter`
    RegexFilter,
    /// `regex_extractor`
    RegexExtractor,
    /// `remove_header`
    RemoveHeader,
    /// `search_replace`
    SearchReplace,
    /// UUID (FQCN only in Flume; Flumen also accepts `uuid`)
    Uuid,
}

const INTERCEPTORS: &[Row<InterceptorType>] = &[
    (
        "timestamp",
        "org.apache.flume.interceptor.TimestampInterceptor$Builder",
        Some(InterceptorType::Timestamp),
    ),
    (
        "host",
        "org.apache.flume.interceptor.HostInterceptor$Builder",
        Some(InterceptorType::Host),
    ),
    (
        "static",
        "org.apache.flume.interceptor.StaticInterceptor$Builder",
        Some(InterceptorType::Static),
    ),
    (
        "regex_filter",
        "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder",
        Some(InterceptorType::RegexFilter),
    ),
    (
        "regex_extractor",
        "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder",
        Some(InterceptorType::RegexExtractor),
    ),
    (
        "remove_header",
        "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder",
        Some(InterceptorType::RemoveHeader),
    ),
    (
        "search_replace",
        "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder",
        Some(InterceptorType::SearchReplace),
    ),
    (
        "uuid",
        "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",
        Some(InterceptorType::Uuid),
    ),
    (
        "",
        "org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder",
        None,
    ),
];

/// Resolves an interceptor `type`.
pub fn interceptor(value: &str) -> Resolved<InterceptorType> {
    resolve(INTERCEPTORS, value)
}

/// Event serializers (file_roll `sink.serializer`, hdfs `serializer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerializerType {
    /// `text`: body + newline
    Text,
    /// `header_and_text`: `{k=v} body` + newline
    HeaderAndText,
    /// `avro_event`: an Avro object container file of Flume's `Event` records
    /// (`{headers: map<string>, body: bytes}`), one block per batch.
    AvroEvent,
}

const SERIALIZERS: &[Row<SerializerType>] = &[
    (
        "text",
        "org.apache.flume.serialization.BodyTextEventSerializer$Builder",
        Some(SerializerType::Text),
    ),
    (
        "header_and_text",
        "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder",
        Some(SerializerType::HeaderAndText),
    ),
    (
        "avro_event",
        "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder",
        Some(SerializerType::AvroEvent),
    ),
];

/// Resolves an event serializer name.
pub fn serializer(value: &str) -> Resolved<SerializerType> {
    resolve(SERIALIZERS, value)
}

/// Describes an unresolvable type for messages.
pub fn describe<T>(r: &Resolved<T>, value: &str) -> String {
    match r {
        Resolved::Builtin(_) => format!("type `{value}`"),
        Resolved::NotImplemented(class) => {
            format!("type `{value}` ({class}) is a Flume built-in that Flumen does not implement yet")
        }
        Resolved::Unknown => format!(
            "type `{value}` is neither a Flume alias nor a known class name (Flume would reject the whole configuration; Flumen drops only this component)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_class_names() {
        assert_eq!(source("NETCAT"), Resolved::Builtin(SourceType::Netcat));
        assert_eq!(
            source("org.apache.flume.source.NetcatSource"),
            Resolved::Builtin(SourceType::Netcat)
        );
        assert_eq!(source("thrift"), Resolved::Builtin(SourceType::Thrift));
        assert!(matches!(source("jms"), Resolved::NotImplemented(_)));
        assert_eq!(source("taildir"), Resolved::Builtin(SourceType::Taildir));
        assert_eq!(source("netcatt"), Resolved::Unknown);
        assert_eq!(
            interceptor("org.apache.flume.interceptor.TimestampInterceptor$Builder"),
            Resolved::Builtin(InterceptorType::Timestamp)
        );
    }
}
