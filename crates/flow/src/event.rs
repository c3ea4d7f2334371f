//! The Flume event: headers plus a body.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;

/// Event headers. Flume uses a `HashMap<String,String>`; a `BTreeMap` keeps the same
/// semantics (unique keys) with a stable order, and costs no allocation when empty.
pub type Headers = BTreeMap<String, String>;

/// One event: string headers and an opaque body (a slice of a shared buffer, so sources
/// cut events out of their read buffers without copying).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Header map (`timestamp`, `host`, `file`, …).
    pub headers: Headers,
    /// The payload.
    pub body: Bytes,
}

impl Event {
    /// An event with this body and no headers.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Event {
            headers: Headers::new(),
            body: body.into(),
        }
    }

    /// The bytes this event occupies in a channel: body plus header keys and values.
    /// (Flume counts bodies only; Flumen counts what the memory really holds.)
    pub fn byte_size(&self) -> usize {
        if self.headers.is_empty() {
            return self.body.len();
        }
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// Java's `Map.toString()` of the headers: `{}` or `{k1=v1, k2=v2}`.
pub fn headers_to_string(headers: &Headers) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in headers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out.push('}');
    out
}

/// Flume's `EventHelper.dumpEvent`: `{ headers:{…} body: 48 65 … Hello }`, with a
/// commons-io hex dump of at most `max_bytes` bytes of the body.
pub fn dump_event(event: &Event, max_bytes: usize) -> String {
    let body = &event.body[..event.body.len().min(max_bytes)];
    let mut dump = String::new();
    for (row, chunk) in body.chunks(16).enumerate() {
        let _ = write!(dump, "{:08X} ", row * 16);
        for col in 0..16 {
            match chunk.get(col) {
                Some(b) => {
                    let _ = write!(dump, "{b:02X} ");
                }
                None => dump.push_str("   "),
            }
        }
        for &b in chunk {
            dump.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        dump.push('\n');
    }
    // EventHelper strips the first row's offset and the final line separator.
    let dump = if dump.is_empty() {
        dump
    } else {
        dump[8..dump.len() - 1].to_string()
    };
    format!(
        "{{ headers:{} body:{} }}",
        headers_to_string(&event.headers),
        dump
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_matches_flume() {
        assert_eq!(
            dump_event(&Event::new("abc"), 16),
            format!("{{ headers:{{}} body: 61 62 63 {}abc }}", " ".repeat(39))
        );
        let mut e = Event::new("Hello world!\r");
        e.headers.insert("a".into(), "1".into());
        assert_eq!(
            dump_event(&e, 16),
            "{ headers:{a=1} body: 48 65 6C 6C 6F 20 77 6F 72 6C 64 21 0D          Hello world!. }"
        );
        assert_eq!(
            dump_event(&Event::new("0123456789abcdefXYZ"), 16),
            "{ headers:{} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 0123456789abcdef }"
        );
        assert_eq!(
            dump_event(&Event::new("0123456789abcdefXYZ"), 32),
            format!("{{ headers:{{}} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 0123456789abcdef\n00000010 58 59 5A {}XYZ }}", " ".repeat(39))
        );
        assert_eq!(dump_event(&Event::new(""), 16), "{ headers:{} body: }");
    }
}
