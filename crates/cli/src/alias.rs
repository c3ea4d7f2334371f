//! Multi-call support: the tool names Flumen answers to, and the subcommand each one means.

use std::ffi::OsString;
use std::path::Path;

/// Tool names (as invoked through a link) and the subcommand they stand for. A `None`
/// subcommand means the tool's own first argument already is one (`flume-ng agent …`).
const ALIASES: &[(&str, Option<&str>)] = &[
    ("kafka-server-start.sh", Some("serve")),
    ("kafka-server-start", Some("serve")),
    ("flume-ng", None),
];

/// The subcommand a program name stands for, if it is one of the known tool names.
pub fn subcommand_for(program: &str) -> Option<Option<&'static str>> {
    ALIASES
        .iter()
        .find(|(name, _)| *name == program)
        .map(|(_, sub)| *sub)
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
}
