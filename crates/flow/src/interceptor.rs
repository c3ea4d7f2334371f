//! Interceptors: decorate or filter events on a source's put path, in configured order
//! (`<source>.interceptors = i1 i2`, `<source>.interceptors.i1.type = timestamp`).

use regex::bytes::Regex;

use crate::config::types::{self, InterceptorType, Resolved};
use crate::config::Context;
use crate::error::Result;
use crate::event::Event;
use crate::monitoring::now_ms;

/// Rewrites or drops events.
pub trait Interceptor: Send + Sync {
    /// Processes a batch in place; removed events are dropped.
    fn intercept(&self, events: &mut Vec<Event>);
}

/// Builds the interceptors listed in a source's `interceptors` property.
pub fn build_all(source: &Context) -> Result<Vec<Box<dyn Interceptor>>> {
    let mut out: Vec<Box<dyn Interceptor>> = Vec::new();
    for name in source.list("interceptors") {
        let prefix = format!("interceptors.{name}.");
        let ctx = source.sub(
            &prefix,
            format!("{} interceptor {name}", source.component()),
        );
        let type_key = format!("interceptors.{name}.type");
        let t = source
            .get(&type_key)
            .ok_or_else(|| source.error(&type_key, "interceptor has no type"))?;
        let resolved = types::interceptor(t);
        let kind = match resolved {
            Resolved::Builtin(k) => k,
            other => return Err(source.error(&type_key, types::describe(&other, t))),
        };
        out.push(build(kind, &ctx)?);
    }
    Ok(out)
}

fn build(kind: InterceptorType, ctx: &Context) -> Result<Box<dyn Interceptor>> {
    Ok(match kind {
        InterceptorType::Timestamp => Box::new(Timestamp {
            header: ctx.string("headerName", "timestamp"),
            preserve: ctx.boolean("preserveExisting", false),
        }),
        InterceptorType::Host => {
            let use_ip = ctx.boolean("useIP", true);
            Box::new(SetHeader {
                key: ctx.string("hostHeader", "host"),
                value: local_host(use_ip),
                preserve: ctx.boolean("preserveExisting", false),
            })
        }
        InterceptorType::Static => Box::new(SetHeader {
            key: ctx.string("key", "key"),
            value: Some(ctx.string("value", "value")),
            preserve: ctx.boolean("preserveExisting", true),
        }),
        InterceptorType::RemoveHeader => {
            let sep = regex_of(ctx, "fromListSeparator", r"\s*,\s*")?;
            let from_list = ctx
                .get("fromList")
                .map(|l| {
                    sep.split(l.as_bytes())
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let matching = match ctx.get("matching") {
                Some(m) => Some(
                    regex::Regex::new(&format!("^(?:{m})$"))
                        .map_err(|e| ctx.error("matching", format!("invalid regex: {e}")))?,
                ),
                None => None,
            };
            Box::new(RemoveHeader {
                with_name: ctx.get("withName").map(str::to_string),
                from_list,
                matching,
            })
        }
        InterceptorType::RegexFilter => Box::new(RegexFilter {
            regex: regex_of(ctx, "regex", ".*")?,
            exclude: ctx.boolean("excludeEvents", false),
        }),
        InterceptorType::RegexExtractor => {
            let regex = Regex::new(ctx.require("regex")?)
                .map_err(|e| ctx.error("regex", format!("invalid regex: {e}")))?;
            let names = ctx.list("serializers");
            if names.is_empty() {
                return Err(ctx.error("serializers", "required property is missing"));
            }
            let mut headers = Vec::new();
            for s in names {
                let key = format!("serializers.{s}.name");
                headers.push(ctx.require(&key)?.to_string());
                let tkey = format!("serializers.{s}.type");
                if let Some(t) = ctx.get(&tkey) {
                    if t != "DEFAULT" && t != "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer" {
                        return Err(ctx.error(&tkey, format!("serializer `{t}` is not supported (only DEFAULT, exactly as Flume spells it)")));
                    }
                }
            }
            Box::new(RegexExtractor { regex, headers })
        }
        InterceptorType::SearchReplace => Box::new(SearchReplace {
            regex: Regex::new(ctx.require("searchPattern")?)
                .map_err(|e| ctx.error("searchPattern", format!("invalid regex: {e}")))?,
            replace: java_replacement(&ctx.string("replaceString", "")).into_bytes(),
        }),
        InterceptorType::Uuid => Box::new(Uuid {
            header: ctx.string("headerName", "id"),
            preserve: ctx.boolean("preserveExisting", true),
            prefix: ctx.string("prefix", ""),
        }),
    })
}

/// Converts a Java `replaceAll` replacement (`$1` group references, `\$` and `\\` escapes)
/// to the regex crate's syntax (`${1}`, `$$`).
fn java_replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len());
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn regex_of(ctx: &Context, key: &str, default: &str) -> Result<Regex> {
    let src = ctx.get(key).unwrap_or(default);
    Regex::new(src).map_err(|e| ctx.error(key, format!("invalid regex `{src}`: {e}")))
}

/// The local IP address (useIP=true) or host name, looked up once.
fn local_host(use_ip: bool) -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())?;
    if !use_ip {
        return Some(name);
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = (name.as_str(), 0).to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| a.ip().to_string())
}

struct Timestamp {
    header: String,
    preserve: bool,
}

impl Interceptor for Timestamp {
    fn intercept(&self, events: &mut Vec<Event>) {
        let now = now_ms().to_string();
        for e in events {
            if !(self.preserve && e.headers.contains_key(&self.header)) {
                e.headers.insert(self.header.clone(), now.clone());
            }
        }
    }
}

struct SetHeader {
    key: String,
    value: Option<String>,
    preserve: bool,
}

impl Interceptor for SetHeader {
    fn intercept(&self, events: &mut Vec<Event>) {
        let Some(value) = &self.value else { return };
        for e in events {
            if !(self.preserve && e.headers.contains_key(&self.key)) {
                e.headers.insert(self.key.clone(), value.clone());
            }
        }
    }
}

struct RemoveHeader {
    with_name: Option<String>,
    from_list: Vec<String>,
    matching: Option<regex::Regex>,
}

impl Interceptor for RemoveHeader {
    fn intercept(&self, events: &mut Vec<Event>) {
        for e in events {
            e.headers.retain(|k, _| {
                !(self.with_name.as_deref() == Some(k.as_str())
                    || self.from_list.iter().any(|n| n == k)
                    || self.matching.as_ref().is_some_and(|m| m.is_match(k)))
            });
        }
    }
}

struct RegexFilter {
    regex: Regex,
    exclude: bool,
}

impl Interceptor for RegexFilter {
    fn intercept(&self, events: &mut Vec<Event>) {
        events.retain(|e| self.regex.is_match(&e.body) != self.exclude);
    }
}

struct RegexExtractor {
    regex: Regex,
    headers: Vec<String>,
}

impl Interceptor for RegexExtractor {
    fn intercept(&self, events: &mut Vec<Event>) {
        for e in events {
            if let Some(caps) = self.regex.captures(&e.body) {
                for (i, name) in self.headers.iter().enumerate() {
                    if let Some(m) = caps.get(i + 1) {
                        e.headers.insert(
                            name.clone(),
                            String::from_utf8_lossy(m.as_bytes()).into_owned(),
                        );
                    }
                }
            }
        }
    }
}

struct SearchReplace {
    regex: Regex,
    replace: Vec<u8>,
}

impl Interceptor for SearchReplace {
    fn intercept(&self, events: &mut Vec<Event>) {
        for e in events {
            let out = self.regex.replace_all(&e.body, self.replace.as_slice());
            if let std::borrow::Cow::Owned(v) = out {
                e.body = v.into();
            }
        }
    }
}

struct Uuid {
    header: String,
    preserve: bool,
    prefix: String,
}

impl Interceptor for Uuid {
    fn intercept(&self, events: &mut Vec<Event>) {
        for e in events {
            if !(self.preserve && e.headers.contains_key(&self.header)) {
                e.headers.insert(
                    self.header.clone(),
                    format!("{}{}", self.prefix, uuid::Uuid::new_v4()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, &str)], events: Vec<Event>) -> Vec<Event> {
        let ctx = Context::from_pairs("source r1", pairs);
        let mut events = events;
        for i in build_all(&ctx).unwrap() {
            i.intercept(&mut events);
        }
        events
    }

    #[test]
    fn chain_in_order() {
        let out = run(
            &[
                ("interceptors", "f x s t r u"),
                ("interceptors.f.type", "regex_filter"),
                ("interceptors.f.regex", "^skip"),
                ("interceptors.f.excludeEvents", "true"),
                ("interceptors.x.type", "regex_extractor"),
                ("interceptors.x.regex", r"(\d+) (\w+)"),
                ("interceptors.x.serializers", "s1 s2"),
                ("interceptors.x.serializers.s1.name", "num"),
                ("interceptors.x.serializers.s2.name", "word"),
                ("interceptors.s.type", "static"),
                ("interceptors.s.key", "dc"),
                ("interceptors.s.value", "eu"),
                (
                    "interceptors.t.type",
                    "org.apache.flume.interceptor.TimestampInterceptor$Builder",
                ),
                ("interceptors.r.type", "search_replace"),
                ("interceptors.r.searchPattern", r"(\d+)"),
                ("interceptors.r.replaceString", "<$1>"),
                (
                    "interceptors.u.type",
                    "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",
                ),
            ],
            vec![Event::new("skip me"), Event::new("12 apples")],
        );
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e.body, "<12> apples");
        assert_eq!(e.headers["num"], "12");
        assert_eq!(e.headers["word"], "apples");
        assert_eq!(e.headers["dc"], "eu");
        assert!(e.headers["timestamp"].parse::<i64>().unwrap() > 0);
        assert_eq!(e.headers["id"].len(), 36);
    }

    #[test]
    fn java_replacement_syntax() {
        assert_eq!(java_replacement("<$1a>"), "<${1}a>");
        assert_eq!(java_replacement("\\$5 $"), "$$5 $$");
    }

    #[test]
    fn remove_header_and_bad_type() {
        let mut e = Event::new("x");
        for k in ["a", "b", "c", "dd"] {
            e.headers.insert(k.into(), "v".into());
        }
        let out = run(
            &[
                ("interceptors", "rm"),
                ("interceptors.rm.type", "remove_header"),
                ("interceptors.rm.withName", "a"),
                ("interceptors.rm.fromList", "b , c"),
                ("interceptors.rm.matching", "d+"),
            ],
            vec![e],
        );
        assert!(out[0].headers.is_empty());
        let ctx = Context::from_pairs(
            "source r1",
            &[("interceptors", "i"), ("interceptors.i.type", "nope")],
        );
        assert!(build_all(&ctx).is_err());
    }
}
