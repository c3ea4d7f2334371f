//! Multi-call support: the tool names Flumen answers to, and the subcommand each one means.

use std::ffi::OsString;
use std::path::Path;

/// Tool names (as invoked through a link) and the subcommand they stand for. A `None`
/// subcommand means the tool's own first argument already is one (`flume-ng agent …`).
const ALIASES: &[(&str, Option<&str>)] = &[
    ("kafka-server-start.sh", Some("serve")),
    ("kafka-server-start", Some("serve")),
    ("kafka-topics.sh", Some("topics")),
    ("kafka-topics", Some("topics")),
    ("kafka-console-producer.sh", Some("console-producer")),
    ("kafka-console-producer", Some("console-producer")),
    ("kafka-console-consumer.sh", Some("console-consumer")),
    ("kafka-console-consumer", Some("console-consumer")),
    ("kafka-consumer-groups.sh", Some("consumer-groups")),
    ("kafka-consumer-groups", Some("consumer-groups")),
    ("kafka-producer-perf-test.sh", Some("producer-perf-test")),
    ("kafka-producer-perf-test", Some("producer-perf-test")),
    ("kafka-consumer-perf-test.sh", Some("consumer-perf-test")),
    ("kafka-consumer-perf-test", Some("consumer-perf-test")),
    ("connect-standalone.sh", Some("connect-standalone")),
    ("connect-standalone", Some("connect-standalone")),
    ("flume-ng", None),
];

/// The subcommand a program name stands for, if it is one of the known tool names.
pub fn subcommand_for(program: &str) -> Option<Option<&'static str>> {
    ALIASES
        .iter()
        .find(|(name, _)| *name == program)
        .map(|(_, sub)| *sub)
}

/// Every tool name Flumen answers to (what `flumen install-links` links).
pub fn tool_names() -> impl Iterator<Item = &'static str> {
    ALIASES.iter().map(|(name, _)| *name)
}

/// Rewrites `argv` so that a tool name in `argv[0]` becomes the matching subcommand.
pub fn rewrite_args(mut args: Vec<OsString>) -> Vec<OsString> {
    let Some(program) = args.first() else {
        return args;
    };
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match subcommand_for(&name) {
        Some(Some(sub)) => {
            args[0] = "flumen".into();
            args.insert(1, sub.into());
        }
        Some(None) => args[0] = "flumen".into(),
        None => {}
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_name_becomes_subcommand() {
        let out = rewrite_args(vec![
            "/usr/bin/kafka-server-start.sh".into(),
            "a.properties".into(),
        ]);
        assert_eq!(
            out,
            vec![
                OsString::from("flumen"),
                "serve".into(),
                "a.properties".into()
            ]
        );
    }

    #[test]
    fn own_name_is_left_alone() {
        let out = rewrite_args(vec!["flumen".into(), "serve".into()]);
        assert_eq!(out, vec![OsString::from("flumen"), "serve".into()]);
    }

    #[test]
    fn every_kafka_tool_name_with_and_without_sh() {
        for (tool, sub) in [
            ("kafka-topics", "topics"),
            ("kafka-console-producer", "console-producer"),
            ("kafka-console-consumer", "console-consumer"),
            ("kafka-consumer-groups", "consumer-groups"),
            ("kafka-producer-perf-test", "producer-perf-test"),
            ("kafka-consumer-perf-test", "consumer-perf-test"),
            ("kafka-server-start", "serve"),
            ("connect-standalone", "connect-standalone"),
        ] {
            assert_eq!(subcommand_for(tool), Some(Some(sub)), "{tool}");
            assert_eq!(
                subcommand_for(&format!("{tool}.sh")),
                Some(Some(sub)),
                "{tool}.sh"
            );
        }
        assert_eq!(subcommand_for("flume-ng"), Some(None));
        assert_eq!(subcommand_for("kafka-topics.bat"), None);
    }

    #[test]
    fn tool_name_through_a_path_keeps_the_arguments() {
        let out = rewrite_args(vec![
            "/opt/kafka/bin/kafka-topics.sh".into(),
            "--list".into(),
        ]);
        assert_eq!(
            out,
            vec![OsString::from("flumen"), "topics".into(), "--list".into()]
        );
    }
}
