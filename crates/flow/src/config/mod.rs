//! Flume configuration files: the properties parser, `${…}` substitution, the key grammar
//! (`<agent>.sources.<name>.<prop>`), agent selection and Flume's first validation stage
//! (which components are dropped, and why).
//!
//! Flume drops bad components with a WARN that is easy to miss; Flumen records every such
//! decision as a [`Problem`], logs it loudly, and `flumen agent --check` prints them all.

pub mod context;
pub mod properties;
pub mod types;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub use crate::error::Origin;
use crate::error::{FlowError, Result};
pub use context::Context;
use properties::Property;

/// How serious a configuration problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Flume would log a WARN and carry on.
    Warning,
    /// A component (or the agent) is dropped.
    Error,
}

/// One finding of the validation: what is wrong and what is dropped because of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Warning or error.
    pub severity: Severity,
    /// The message, naming the component, the key and the file line where known.
    pub message: String,
}

/// All properties of the loaded files, after "last key wins" and substitution.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    entries: Vec<Property>,
}

impl Properties {
    /// Reads and merges `files` in order (later files override earlier ones key by key), then
    /// substitutes `${…}` in values from the properties, `system` (`-D`) and the environment.
    pub fn load(files: &[impl AsRef<Path>], system: &HashMap<String, String>) -> Result<Self> {
        let mut all = Vec::new();
        for path in files {
            let path = path.as_ref();
            let shown = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|e| FlowError::ConfigFile {
                path: shown.clone(),
                message: format!("The specified configuration file could not be read: {e}"),
            })?;
            let props =
                properties::parse(&bytes, &shown).map_err(|message| FlowError::ConfigFile {
                    path: shown.clone(),
                    message,
                })?;
            all.extend(props);
        }
        Ok(Self::from_properties(all, system))
    }

    /// Builds from already-parsed properties (last key wins), with substitution.
    pub fn from_properties(all: Vec<Property>, system: &HashMap<String, String>) -> Self {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut entries: Vec<Property> = Vec::new();
        for mut p in all {
            p.key = p.key.trim().to_string();
            p.value = p.value.trim().to_string();
            match index.get(&p.key) {
                Some(&i) => entries[i] = p,
                None => {
                    index.insert(p.key.clone(), entries.len());
                    entries.push(p);
                }
            }
        }
        let raw: HashMap<String, String> = entries
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        for p in &mut entries {
            p.value = substitute(&p.value, &raw, system, 0);
        }
        Properties { entries }
    }

    /// Parses text (tests and `--check` of inline configs).
    pub fn parse_str(text: &str, system: &HashMap<String, String>) -> Self {
        let props = properties::parse(text.as_bytes(), "<memory>").unwrap_or_default();
        Self::from_properties(props, system)
    }

    /// The names of the agents that have properties in the files.
    pub fn agent_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .iter()
            .filter_map(|p| p.key.split_once('.').map(|(a, _)| a.to_string()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Selects agent `name` and runs Flume's first validation stage on it.
    pub fn agent(&self, name: &str) -> AgentConfig {
        AgentConfig::validate(name, &self.entries)
    }
}

/// Apache Commons Text style substitution as Flume 1.10+ does it: `${env:X}`, `${sys:X}`,
/// `${key}` (another property, then a `-D` property, then the environment); unresolved
/// references stay literal; `$${` escapes.
fn substitute(
    value: &str,
    raw: &HashMap<String, String>,
    system: &HashMap<String, String>,
    depth: usize,
) -> String {
    if !value.contains("${") || depth > 8 {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find("${") {
        if pos > 0 && rest.as_bytes()[pos - 1] == b'$' {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[pos..]);
            return out;
        };
        let name = &after[..end];
        let resolved = if let Some(var) = name.strip_prefix("env:") {
            std::env::var(var).ok()
        } else if let Some(var) = name.strip_prefix("sys:") {
            system.get(var).cloned()
        } else {
            raw.get(name)
                .cloned()
                .or_else(|| system.get(name).cloned())
                .or_else(|| std::env::var(name).ok())
        };
        match resolved {
            Some(v) => out.push_str(&substitute(&v, raw, system, depth + 1)),
            None => out.push_str(&rest[pos..pos + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The kinds of component a Flume agent declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `<agent>.sources`
    Source,
    /// `<agent>.channels`
    Channel,
    /// `<agent>.sinks`
    Sink,
    /// `<agent>.sinkgroups`
    SinkGroup,
}

impl Kind {
    /// Lower-case word used in messages (`source`).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Channel => "channel",
            Kind::Sink => "sink",
            Kind::SinkGroup => "sinkgroup",
        }
    }
}

/// A component that survived the first validation stage.
#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// Its name (`r1`).
    pub name: String,
    /// Source, channel, sink or sink group.
    pub kind: Kind,
    /// Its `type` value as written (empty for sink groups; see `processor.type`).
    pub type_name: String,
    /// Its properties.
    pub ctx: Context,
    /// Sources: the channels they put to (narrowed to valid ones). Sinks: their one channel.
    /// Sink groups: their member sinks.
    pub links: Vec<String>,
}

/// One agent's configuration after Flume's first (syntactic) validation stage.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    /// The agent's name (`a1`).
    pub name: String,
    /// Valid sources.
    pub sources: Vec<ComponentConfig>,
    /// Valid channels.
    pub channels: Vec<ComponentConfig>,
    /// Valid sinks.
    pub sinks: Vec<ComponentConfig>,
    /// Valid sink groups.
    pub sink_groups: Vec<ComponentConfig>,
    /// What was found wrong, in order.
    pub problems: Vec<Problem>,
    /// True when the agent has any properties at all.
    pub found: bool,
}

impl AgentConfig {
    fn warn(&mut self, message: String) {
        self.problems.push(Problem {
            severity: Severity::Warning,
            message,
        });
    }

    fn drop_component(&mut self, message: String) {
        self.problems.push(Problem {
            severity: Severity::Error,
            message,
        });
    }

    fn validate(agent: &str, entries: &[Property]) -> AgentConfig {
        let mut cfg = AgentConfig {
            name: agent.to_string(),
            ..Default::default()
        };
        let mut lists: HashMap<&str, (String, Origin)> = HashMap::new();
        let mut comps: HashMap<(Kind, String), Context> = HashMap::new();
        for p in entries {
            let Some((a, rest)) = p.key.split_once('.') else {
                if !p.key.is_empty() {
                    cfg.warn(format!(
                        "Configuration property ignored: {} = {} ({}): a key needs an agent prefix",
                        p.key, p.value, p.origin
                    ));
                }
                continue;
            };
            if a != agent {
                continue;
            }
            cfg.found = true;
            if p.value.is_empty() {
                cfg.warn(format!(
                    "Configuration property ignored: {} = {} ({}): empty value",
                    p.key, p.value, p.origin
                ));
                continue;
            }
            let (head, tail) = match rest.split_once('.') {
                Some((h, t)) => (h, Some(t)),
                None => (rest, None),
            };
            let kind = match head {
                "sources" => Kind::Source,
                "channels" => Kind::Channel,
                "sinks" => Kind::Sink,
                "sinkgroups" => Kind::SinkGroup,
                "configfilters" => {
                    cfg.warn(format!(
                        "{}: config filters are not supported by Flumen yet; `{}` ignored",
                        p.origin, p.key
                    ));
                    continue;
                }
                _ => {
                    cfg.warn(format!(
                        "Invalid property specified: {rest} ({}): ignored",
                        p.origin
                    ));
                    continue;
                }
            };
            match tail {
                None => {
                    lists.insert(head, (p.value.clone(), p.origin.clone()));
                }
                Some(t) => match t.split_once('.') {
                    Some((name, prop)) if !prop.is_empty() => {
                        comps
                            .entry((kind, name.to_string()))
                            .or_insert_with(|| Context::new(format!("{} {name}", kind.word())))
                            .insert(prop.to_string(), p.value.clone(), p.origin.clone());
                    }
                    _ => cfg.warn(format!(
                        "Invalid property specified: {rest} ({}): ignored",
                        p.origin
                    )),
                },
            }
        }
        if !cfg.found {
            cfg.drop_component(format!("No configuration found for this host:{agent}"));
            return cfg;
        }
        let listed = |kind: &str| -> Vec<String> {
            let mut names: Vec<String> = lists
                .get(kind)
                .map(|(v, _)| {
                    if kind == "sinkgroups" {
                        v.split(' ')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    } else {
                        v.split_whitespace().map(str::to_string).collect()
                    }
                })
                .unwrap_or_default();
            let mut seen = std::collections::HashSet::new();
            names.retain(|n| seen.insert(n.clone()));
            names
        };
        // Properties of components that are not listed are ignored (Flume: silently).
        for (kind, name) in comps.keys() {
            let list = match kind {
                Kind::Source => "sources",
                Kind::Channel => "channels",
                Kind::Sink => "sinks",
                Kind::SinkGroup => "sinkgroups",
            };
            if !listed(list).contains(name) {
                let ctx = &comps[&(*kind, name.clone())];
                let first = ctx
                    .keys()
                    .next()
                    .and_then(|k| ctx.origin(k))
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default();
                cfg.warn(format!(
                    "{} {name}{first} has properties but is not listed in `{agent}.{list}`: ignored",
                    kind.word()
                ));
            }
        }
        let mut take = |kind: Kind, name: &str, cfg: &mut AgentConfig| -> Option<Context> {
            match comps.remove(&(kind, name.to_string())) {
                None => {
                    cfg.drop_component(format!(
                        "Configuration empty for: {name}. Removed. ({} {name} is listed but has no properties)",
                        kind.word()
                    ));
                    None
                }
                Some(ctx) => Some(ctx),
            }
        };
        // Channels.
        let channel_names = listed("channels");
        for name in &channel_names {
            let Some(ctx) = take(Kind::Channel, name, &mut cfg) else {
                continue;
            };
            let Some(t) = ctx.get("type").map(str::to_string) else {
                cfg.drop_component(format!(
                    "channel {name}: Component has no type. Cannot configure. Removed."
                ));
                continue;
            };
            cfg.channels.push(ComponentConfig {
                name: name.clone(),
                kind: Kind::Channel,
                type_name: t,
                ctx,
                links: vec![],
            });
        }
        if cfg.channels.is_empty() {
            cfg.drop_component(format!(
                "Agent configuration invalid for agent '{agent}'. It will be removed. (no valid channel: `{agent}.channels` is missing, empty, or every channel was dropped)"
            ));
            return cfg;
        }
        let valid_channels: Vec<String> = cfg.channels.iter().map(|c| c.name.clone()).collect();
        // Sources.
        for name in listed("sources") {
            let Some(ctx) = take(Kind::Source, &name, &mut cfg) else {
                continue;
            };
            let Some(t) = ctx.get("type").map(str::to_string) else {
                cfg.drop_component(format!(
                    "source {name}: Component has no type. Cannot configure. Removed."
                ));
                continue;
            };
            let wanted = ctx.list("channels");
            if wanted.is_empty() {
                let hint = if ctx.get("channel").is_some() {
                    format!(
                        " (`channel` is set at {}: a source takes `channels`, plural)",
                        ctx.origin("channel").unwrap()
                    )
                } else {
                    String::new()
                };
                cfg.drop_component(format!(
                    "source {name}: No channels set for {name}{hint}. Removed."
                ));
                continue;
            }
            let mut links = Vec::new();
            for ch in wanted {
                if valid_channels.contains(&ch) {
                    links.push(ch);
                } else {
                    cfg.warn(format!(
                        "source {name}: property `channels` ({}): channel {ch} is not a valid channel; the source will not put to it",
                        ctx.origin("channels").unwrap()
                    ));
                }
            }
            if links.is_empty() {
                cfg.drop_component(format!(
                    "source {name}: none of its channels is valid. Removed."
                ));
                continue;
            }
            cfg.sources.push(ComponentConfig {
                name,
                kind: Kind::Source,
                type_name: t,
                ctx,
                links,
            });
        }
        // Sinks.
        for name in listed("sinks") {
            let Some(ctx) = take(Kind::Sink, &name, &mut cfg) else {
                continue;
            };
            let Some(t) = ctx.get("type").map(str::to_string) else {
                cfg.drop_component(format!(
                    "sink {name}: Component has no type. Cannot configure. Removed."
                ));
                continue;
            };
            let Some(ch) = ctx.get("channel").map(str::to_string) else {
                let hint = if ctx.get("channels").is_some() {
                    format!(
                        " (`channels` is set at {}: a sink takes `channel`, singular)",
                        ctx.origin("channels").unwrap()
                    )
                } else {
                    String::new()
                };
                cfg.drop_component(format!(
                    "sink {name}: No channel configured for sink: {name}{hint}. Removed."
                ));
                continue;
            };
            if !valid_channels.contains(&ch) {
                cfg.drop_component(format!(
                    "sink {name}: property `channel` ({}): Channel {ch} not in active set. Removed.",
                    ctx.origin("channel").unwrap()
                ));
                continue;
            }
            cfg.sinks.push(ComponentConfig {
                name,
                kind: Kind::Sink,
                type_name: t,
                ctx,
                links: vec![ch],
            });
        }
        // Sink groups.
        let mut claimed: Vec<String> = Vec::new();
        for name in listed("sinkgroups") {
            let Some(ctx) = take(Kind::SinkGroup, &name, &mut cfg) else {
                continue;
            };
            let mut members = Vec::new();
            for s in ctx.list("sinks") {
                if !cfg.sinks.iter().any(|k| k.name == s) {
                    cfg.warn(format!(
                        "sinkgroup {name}: sink {s} is not a valid sink; skipped"
                    ));
                } else if claimed.contains(&s) {
                    cfg.warn(format!(
                        "sinkgroup {name}: sink {s} already belongs to another group; skipped"
                    ));
                } else {
                    members.push(s);
                }
            }
            if members.is_empty() {
                cfg.drop_component(format!("sinkgroup {name}: no valid sinks. Removed."));
                continue;
            }
            claimed.extend(members.iter().cloned());
            let t = ctx.string("processor.type", "");
            cfg.sink_groups.push(ComponentConfig {
                name,
                kind: Kind::SinkGroup,
                type_name: t,
                ctx,
                links: members,
            });
        }
        if cfg.sources.is_empty() && cfg.sinks.is_empty() {
            cfg.drop_component(format!(
                "Agent configuration invalid for agent '{agent}'. It will be removed. (no valid source and no valid sink)"
            ));
            cfg.channels.clear();
            cfg.sink_groups.clear();
        }
        cfg
    }

    /// Drops a component found invalid by the second stage (instantiation), with its reason.
    pub fn reject(&mut self, kind: Kind, name: &str, reason: &FlowError) {
        let word = match kind {
            Kind::Source => "Source",
            Kind::Channel => "Channel",
            Kind::Sink => "Sink",
            Kind::SinkGroup => "SinkGroup",
        };
        self.drop_component(format!(
            "{word} {name} has been removed due to an error during configuration: {reason}"
        ));
        let list = match kind {
            Kind::Source => &mut self.sources,
            Kind::Channel => &mut self.channels,
            Kind::Sink => &mut self.sinks,
            Kind::SinkGroup => &mut self.sink_groups,
        };
        list.retain(|c| c.name != name);
    }

    /// After stage-B removals: drops sinks of removed channels, sources left without a
    /// channel, channels nobody uses, and groups left without sinks.
    pub fn prune(&mut self) {
        loop {
            let channels: Vec<String> = self.channels.iter().map(|c| c.name.clone()).collect();
            let mut changed = false;
            let mut dropped = Vec::new();
            for s in &mut self.sources {
                let before = s.links.len();
                s.links.retain(|c| channels.contains(c));
                if s.links.len() != before {
                    changed = true;
                }
                if s.links.is_empty() {
                    dropped.push(format!(
                        "source {}: none of its channels is valid. Removed.",
                        s.name
                    ));
                }
            }
            self.sources.retain(|s| !s.links.is_empty());
            for k in &self.sinks {
                if !channels.contains(&k.links[0]) {
                    dropped.push(format!(
                        "sink {}: Channel {} not in active set. Removed.",
                        k.name, k.links[0]
                    ));
                }
            }
            self.sinks.retain(|k| channels.contains(&k.links[0]));
            let sinks: Vec<String> = self.sinks.iter().map(|k| k.name.clone()).collect();
            for g in &mut self.sink_groups {
                g.links.retain(|s| sinks.contains(s));
            }
            self.sink_groups.retain(|g| !g.links.is_empty());
            let used: Vec<String> = self
                .sources
                .iter()
                .flat_map(|s| s.links.iter().cloned())
                .chain(self.sinks.iter().map(|k| k.links[0].clone()))
                .collect();
            for c in &self.channels {
                if !used.contains(&c.name) {
                    self.problems.push(Problem {
                        severity: Severity::Warning,
                        message: format!(
                            "Channel {} has no components connected and has been removed.",
                            c.name
                        ),
                    });
                    changed = true;
                }
            }
            self.channels.retain(|c| used.contains(&c.name));
            changed |= !dropped.is_empty();
            for m in dropped {
                self.drop_component(m);
            }
            if !changed {
                break;
            }
        }
    }

    /// Problems by name → sorted map (for tests).
    pub fn messages(&self) -> Vec<String> {
        self.problems.iter().map(|p| p.message.clone()).collect()
    }

    /// Every component's property keys, for display.
    pub fn summary(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for c in self
            .sources
            .iter()
            .chain(&self.channels)
            .chain(&self.sinks)
            .chain(&self.sink_groups)
        {
            out.insert(
                format!("{} {}", c.kind.word(), c.name),
                format!("{} → {}", c.type_name, c.links.join(" ")),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(text: &str) -> AgentConfig {
        Properties::parse_str(text, &HashMap::new()).agent("a1")
    }

    const EXAMPLE: &str = "a1.sources = r1\na1.sinks = k1\na1.channels = c1\n\
        a1.sources.r1.type = netcat\na1.sources.r1.bind = localhost\na1.sources.r1.port = 44444\n\
        a1.sinks.k1.type = logger\na1.channels.c1.type = memory\n\
        a1.sources.r1.channels = c1\na1.sinks.k1.channel = c1\n";

    #[test]
    fn example_is_valid() {
        let cfg = agent(EXAMPLE);
        assert!(cfg.problems.is_empty(), "{:?}", cfg.problems);
        assert_eq!(cfg.sources[0].links, vec!["c1"]);
        assert_eq!(cfg.sinks[0].type_name, "logger");
    }

    #[test]
    fn wrong_spellings_drop_components() {
        let cfg = agent(
            &EXAMPLE
                .replace("r1.channels", "r1.channel")
                .replace("k1.channel =", "k1.channels ="),
        );
        assert!(cfg.sources.is_empty());
        assert!(cfg.sinks.is_empty());
        let msgs = cfg.messages().join("\n");
        assert!(
            msgs.contains("No channels set for r1 (`channel` is set at <memory>:9"),
            "{msgs}"
        );
        assert!(
            msgs.contains("No channel configured for sink: k1"),
            "{msgs}"
        );
        assert!(msgs.contains("Agent configuration invalid"), "{msgs}");
    }

    #[test]
    fn unknown_agent_and_invalid_property() {
        let cfg = Properties::parse_str(EXAMPLE, &HashMap::new()).agent("a2");
        assert!(!cfg.found);
        let cfg = agent(&format!("{EXAMPLE}a1.foo = x\n"));
        assert!(cfg.messages()[0].contains("Invalid property specified: foo"));
    }

    #[test]
    fn substitution() {
        // Reads a variable every environment has instead of setting one: set_var races
        // with getenv in the other test threads (libc, C libraries) of this process.
        let path = std::env::var("PATH").expect("PATH is set");
        let mut sys = HashMap::new();
        sys.insert("dir".to_string(), "/tmp/x".to_string());
        let p = Properties::parse_str(
            "base=/data\na1.x = ${base}/y ${PATH} ${env:PATH} ${sys:dir} ${nope} $${base}\n",
            &sys,
        );
        let v = &p.entries.iter().find(|e| e.key == "a1.x").unwrap().value;
        assert_eq!(
            v,
            &format!("/data/y {path} {path} /tmp/x ${{nope}} ${{base}}")
        );
    }

    #[test]
    fn last_key_wins_and_commas_are_names() {
        let cfg = agent(&format!(
            "{EXAMPLE}a1.sources.r1.port = 1\na1.channels = c1,c2\n"
        ));
        // `c1,c2` is one channel name with no properties → no channel → agent removed.
        assert!(cfg.channels.is_empty());
        let cfg = agent(&format!("{EXAMPLE}a1.sources.r1.port = 1\n"));
        assert_eq!(cfg.sources[0].ctx.get("port"), Some("1"));
    }
}
