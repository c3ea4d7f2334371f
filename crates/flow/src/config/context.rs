//! `Context`: one component's properties, with typed getters whose errors name the
//! component, the key and the file line (Flume's `org.apache.flume.Context`).

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::error::{FlowError, Origin, Result};

/// The properties of one component (keys relative to it: `port`, `selector.type`, …).
#[derive(Debug, Clone, Default)]
pub struct Context {
    component: String,
    props: BTreeMap<String, (String, Origin)>,
}

impl Context {
    /// An empty context for `component` (e.g. `source r1`).
    pub fn new(component: impl Into<String>) -> Self {
        Context {
            component: component.into(),
            props: BTreeMap::new(),
        }
    }

    /// A context from plain `(key, value)` pairs (tests, programmatic use).
    pub fn from_pairs(component: &str, pairs: &[(&str, &str)]) -> Self {
        let mut ctx = Context::new(component);
        for (k, v) in pairs {
            ctx.insert(
                k.to_string(),
                v.to_string(),
                Origin {
                    file: "<memory>".into(),
                    line: 0,
                },
            );
        }
        ctx
    }

    /// Adds or replaces a property.
    pub fn insert(&mut self, key: String, value: String, origin: Origin) {
        self.props.insert(key, (value, origin));
    }

    /// The component this context belongs to (`source r1`).
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Every key, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.props.keys().map(String::as_str)
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(|(v, _)| v.as_str())
    }

    /// Where `key` was written.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.props.get(key).map(|(_, o)| o)
    }

    /// A configuration error about `key` of this component.
    pub fn error(&self, key: &str, message: impl Into<String>) -> FlowError {
        FlowError::config(
            self.component.clone(),
            key,
            self.origin(key).cloned(),
            message,
        )
    }

    /// The value of `key`, or `default`.
    pub fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    /// The value of a required `key`.
    pub fn require(&self, key: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| self.error(key, "required property is missing"))
    }

    /// `key` parsed as a number (Java `parseInt`/`parseLong` of the trimmed value).
    pub fn number<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.error(key, format!("`{v}` is not a valid {}", type_word::<T>()))),
        }
    }

    /// A required numeric `key`.
    pub fn require_number<T: FromStr>(&self, key: &str) -> Result<T> {
        let v = self.require(key)?;
        v.trim()
            .parse()
            .map_err(|_| self.error(key, format!("`{v}` is not a valid {}", type_word::<T>())))
    }

    /// `key` as Flume reads booleans: `true` in any case is true, anything else false.
    pub fn boolean(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => v.trim().eq_ignore_ascii_case("true"),
        }
    }

    /// `key` as a whitespace-separated list.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The properties under `prefix` (e.g. `selector.`), with the prefix removed.
    pub fn sub(&self, prefix: &str, component: impl Into<String>) -> Context {
        let mut ctx = Context::new(component);
        for (k, (v, o)) in &self.props {
            if let Some(rest) = k.strip_prefix(prefix) {
                ctx.props.insert(rest.to_string(), (v.clone(), o.clone()));
            }
        }
        ctx
    }
}

fn type_word<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    if name.contains("f64") || name.contains("f32") {
        "number"
    } else {
        "integer"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_component_key_and_line() {
        let mut ctx = Context::new("source r1");
        ctx.insert(
            "port".into(),
            "44444 # x".into(),
            Origin {
                file: "a.conf".into(),
                line: 7,
            },
        );
        let err = ctx.number::<u16>("port", 0).unwrap_err().to_string();
        assert_eq!(
            err,
            "source r1: property `port` (a.conf:7): `44444 # x` is not a valid integer"
        );
        assert!(ctx.boolean("missing", true));
        assert!(!Context::from_pairs("x", &[("b", "yes")]).boolean("b", true));
    }
}
