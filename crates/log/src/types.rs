//! Newtypes for the numbers that cross module boundaries (offsets, positions, timestamps).

use std::fmt;

/// A Kafka offset: the position of a record in a partition, counted from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Offset(pub i64);

impl Offset {
    /// The offset `n` records after this one.
    pub fn plus(self, n: i64) -> Offset {
        Offset(self.0 + n)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An offset relative to the base offset of its segment, as stored in the index files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RelativeOffset(pub u32);

/// A byte position inside one segment's `.log` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FilePosition(pub u32);

/// Milliseconds since the Unix epoch (Kafka's record timestamps); -1 means "no timestamp".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Kafka's "no timestamp" value (-1).
    pub const NONE: Timestamp = Timestamp(-1);

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A topic name plus partition number; displayed (and named on disk) as `topic-0`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name (may contain `.`, `_`, `-` and digits).
    pub topic: String,
    /// Partition number, from 0.
    pub partition: i32,
}

impl TopicPartition {
    /// Builds a topic-partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses a directory name `<topic>-<partition>`, splitting at the last `-`.
    pub fn parse_dir_name(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty()
            || partition.is_empty()
            || !partition.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let partition: i32 = partition.parse().ok()?;
        Some(TopicPartition::new(topic, partition))
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Which timestamp a topic keeps in its batches (`message.timestamp.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamps are kept (Kafka's default).
    #[default]
    CreateTime,
    /// The broker overwrites each batch's max timestamp with its own clock on append.
    LogAppendTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dir_names_from_the_right() {
        assert_eq!(
            TopicPartition::parse_dir_name("my-topic.v2_x-12"),
            Some(TopicPartition::new("my-topic.v2_x", 12))
        );
        assert_eq!(TopicPartition::parse_dir_name("t-0.deleted"), None);
        assert_eq!(TopicPartition::parse_dir_name("-1"), None);
        assert_eq!(TopicPartition::parse_dir_name("abc"), None);
        assert_eq!(
            TopicPartition::parse_dir_name("a--1"),
            Some(TopicPartition::new("a-", 1))
        );
        assert_eq!(TopicPartition::new("a.b", 3).to_string(), "a.b-3");
    }
}
