//! Channel selectors: which channels (required and optional) each event goes to.

use std::collections::HashMap;

use crate::config::types::{self, Resolved, SelectorType};
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;

/// A source's channel selector; channels are indexes into the source's channel list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelSelector {
    /// Every channel gets every event; `selector.optional` ones may fail.
    Replicating {
        /// Channels whose failure fails the put.
        required: Vec<usize>,
        /// Channels whose failure is logged and ignored.
        optional: Vec<usize>,
    },
    /// Routes by a header value.
    Multiplexing {
        /// `selector.header`. Flume's default: `flume.selector.header`.
        header: String,
        /// `selector.mapping.<value>` → required channels.
        mapping: HashMap<String, Vec<usize>>,
        /// `selector.optional.<value>` → optional channels (minus that value's required).
        optional: HashMap<String, Vec<usize>>,
        /// `selector.default`: required channels when the header is absent or unmapped.
        default: Vec<usize>,
    },
}

impl ChannelSelector {
    /// Reads `selector.*` of a source whose channels are `channels`.
    pub fn from_context(source: &Context, channels: &[String]) -> Result<Self> {
        let t = source.get("selector.type").unwrap_or("replicating");
        let kind = match types::selector(t) {
            Resolved::Builtin(k) => k,
            other => return Err(source.error("selector.type", types::describe(&other, t))),
        };
        // Exactly one space separates names in multiplexing lists (Flume's split(" ")).
        let resolve = |key: &str, value: &str, single_space: bool| -> Result<Vec<usize>> {
            let names: Vec<&str> = if single_space {
                value.split(' ').collect()
            } else {
                value.split_whitespace().collect()
            };
            names
                .iter()
                .map(|n| {
                    channels.iter().position(|c| c == n).ok_or_else(|| {
                        source.error(
                            key,
                            format!(
                                "Selector channel not found: `{n}` (channels of this source: {})",
                                channels.join(" ")
                            ),
                        )
                    })
                })
                .collect()
        };
        match kind {
            SelectorType::Replicating => {
                let optional = match source.get("selector.optional") {
                    Some(v) => resolve("selector.optional", v, false)?,
                    None => vec![],
                };
                let required = (0..channels.len())
                    .filter(|i| !optional.contains(i))
                    .collect();
                Ok(ChannelSelector::Replicating { required, optional })
            }
            SelectorType::Multiplexing => {
                let header = source.string("selector.header", "flume.selector.header");
                let mut mapping = HashMap::new();
                let mut optional = HashMap::new();
                for key in source.keys() {
                    if let Some(value) = key.strip_prefix("selector.mapping.") {
                        let v = source.get(key).unwrap_or_default();
                        mapping.insert(value.to_string(), resolve(key, v, true)?);
                    } else if let Some(value) = key.strip_prefix("selector.optional.") {
                        let v = source.get(key).unwrap_or_default();
                        optional.insert(value.to_string(), resolve(key, v, true)?);
                    }
                }
                if mapping.is_empty() {
                    return Err(source.error(
                        "selector.mapping.*",
                        "a multiplexing selector needs at least one mapping",
                    ));
                }
                let default = match source.get("selector.default") {
                    Some(v) => resolve("selector.default", v, true)?,
                    None => vec![],
                };
                for (value, opt) in optional.iter_mut() {
                    let req = mapping.get(value).unwrap_or(&default);
                    opt.retain(|c| !req.contains(c));
                }
                Ok(ChannelSelector::Multiplexing {
                    header,
                    mapping,
                    optional,
                    default,
                })
            }
        }
    }

    /// Required channels for `event`.
    pub fn required(&self, event: &Event) -> &[usize] {
        match self {
            ChannelSelector::Replicating { required, .. } => required,
            ChannelSelector::Multiplexing {
                header,
                mapping,
                default,
                ..
            } => match event.headers.get(header).map(|v| v.trim()) {
                Some(v) if !v.is_empty() => mapping.get(v).unwrap_or(default),
                _ => default,
            },
        }
    }

    /// Optional channels for `event`.
    pub fn optional(&self, event: &Event) -> &[usize] {
        match self {
            ChannelSelector::Replicating { optional, .. } => optional,
            ChannelSelector::Multiplexing {
                header, optional, ..
            } => event
                .headers
                .get(header)
                .and_then(|v| optional.get(v.trim()))
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        }
    }

    /// True when every event goes to exactly the same required channels and no optional one.
    pub fn is_static(&self) -> bool {
        matches!(self, ChannelSelector::Replicating { optional, .. } if optional.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chans() -> Vec<String> {
        vec!["c1".into(), "c2".into(), "c3".into()]
    }

    #[test]
    fn multiplexing_routes_by_header() {
        let ctx = Context::from_pairs(
            "source r1",
            &[
                ("selector.type", "multiplexing"),
                ("selector.header", "state"),
                ("selector.mapping.CA", "c1"),
                ("selector.mapping.AZ", "c2 c3"),
                ("selector.optional.CA", "c1 c3"),
                ("selector.default", "c3"),
            ],
        );
        let s = ChannelSelector::from_context(&ctx, &chans()).unwrap();
        let mut e = Event::new("x");
        assert_eq!(s.required(&e), &[2]);
        e.headers.insert("state".into(), "AZ".into());
        assert_eq!(s.required(&e), &[1, 2]);
        e.headers.insert("state".into(), "CA".into());
        assert_eq!(s.required(&e), &[0]);
        assert_eq!(s.optional(&e), &[2]);
        e.headers.insert("state".into(), "NY".into());
        assert_eq!(s.required(&e), &[2]);
    }

    #[test]
    fn bad_selectors() {
        let ctx = Context::from_pairs(
            "source r1",
            &[
                ("selector.type", "multiplexing"),
                ("selector.mapping.CA", "c1  c2"),
            ],
        );
        let err = ChannelSelector::from_context(&ctx, &chans())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Selector channel not found"), "{err}");
        let ctx = Context::from_pairs("source r1", &[("selector.optional", "c2")]);
        let s = ChannelSelector::from_context(&ctx, &chans()).unwrap();
        assert_eq!(
            s,
            ChannelSelector::Replicating {
                required: vec![0, 2],
                optional: vec![1]
            }
        );
        let ctx = Context::from_pairs("source r1", &[("selector.type", "load_balancing")]);
        assert!(ChannelSelector::from_context(&ctx, &chans()).is_err());
    }
}
