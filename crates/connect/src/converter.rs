//! Connect's converters: how a record's key and value become bytes in the topic and back.
//!
//! | class | to the topic | from the topic |
//! |---|---|---|
//! | `StringConverter` | the text as UTF-8 | an optional string |
//! | `JsonConverter`, `schemas.enable=true` (default) | `{"schema":{…},"payload":…}` | the payload, checked against the envelope shape |
//! | `JsonConverter`, `schemas.enable=false` | the JSON value (`"line"` for a string) | any JSON value |
//! | `ByteArrayConverter` | the bytes unchanged | the bytes unchanged |
//!
//! Null stays null (no bytes) with every converter. Where Kafka would refuse a string with
//! `ByteArrayConverter`, Flumen passes its UTF-8 bytes through.

use serde_json::{json, Value};

use crate::config::Props;
use crate::error::{ConnectError, Result};

/// A record key or value inside the worker (Connect's "connect data", reduced to what the
/// file connectors produce and consume).
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Null (no schema).
    Null,
    /// A string (Connect's `STRING` schema).
    String(String),
    /// Bytes (Connect's `BYTES` schema).
    Bytes(Vec<u8>),
    /// Any other JSON value (schemaless data or a payload of another schema type).
    Json(Value),
}

impl Data {
    /// The text a `FileStreamSink` writes for this value (Java's `String.valueOf`): strings
    /// as they are, null as `null`. Other values: compact JSON, and bytes as (lossy) UTF-8
    /// text where Java would print a `[B@hash` reference.
    pub fn sink_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Data::Null => "null".into(),
            Data::String(s) => s.as_str().into(),
            Data::Bytes(b) => String::from_utf8_lossy(b),
            Data::Json(Value::String(s)) => s.as_str().into(),
            Data::Json(v) => v.to_string().into(),
        }
    }
}

/// One of Connect's converters with its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converter {
    /// `org.apache.kafka.connect.storage.StringConverter` (UTF-8; `converter.encoding` other
    /// than UTF-8 is refused).
    String,
    /// `org.apache.kafka.connect.json.JsonConverter`.
    Json {
        /// `schemas.enable`: wrap values in the schema/payload envelope. Default true
        /// (Kafka's `JsonConverterConfig`).
        schemas_enable: bool,
    },
    /// `org.apache.kafka.connect.converters.ByteArrayConverter`.
    ByteArray,
}

const ENVELOPE_ERROR: &str = "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.";

impl Converter {
    /// The converter configured under `prefix` (`key.converter`, `value.converter`) with its
    /// sub-configs (`<prefix>.schemas.enable`), or `None` when `prefix` is not set.
    pub fn from_props(props: &Props, prefix: &str) -> Result<Option<Self>> {
        let Some(class) = props.get(prefix).filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let sub = |k: &str| {
            props
                .get(&format!("{prefix}.{k}"))
                .map(|v| v.trim().to_ascii_lowercase())
        };
        let simple = class.rsplit('.').next().unwrap_or(class);
        let converter = match simple {
            "StringConverter" => {
                if let Some(enc) = sub("encoding") {
                    if enc != "utf-8" && enc != "utf8" {
                        return Err(ConnectError::Invalid {
                            key: format!("{prefix}.encoding"),
                            value: enc,
                            reason: "only UTF-8 is supported".into(),
                        });
                    }
                }
                Converter::String
            }
            "JsonConverter" => {
                let schemas_enable = match sub("schemas.enable").as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(other) => {
                        return Err(ConnectError::Invalid {
                            key: format!("{prefix}.schemas.enable"),
                            value: other.into(),
                            reason: "Expected value to be either true or false".into(),
                        })
                    }
                };
                Converter::Json { schemas_enable }
            }
            "ByteArrayConverter" => Converter::ByteArray,
            _ => return Err(ConnectError::UnknownConverter(class.clone())),
        };
        Ok(Some(converter))
    }

    /// Connect data → the bytes written to the topic (`None` = a null key or value).
    pub fn from_connect(&self, data: &Data) -> Option<Vec<u8>> {
        if *data == Data::Null {
            return None;
        }
        Some(match self {
            Converter::String => match data {
                Data::String(s) => s.as_bytes().to_vec(),
                Data::Bytes(b) => b.clone(),
                Data::Json(Value::String(s)) => s.as_bytes().to_vec(),
                Data::Json(v) => v.to_string().into_bytes(),
                Data::Null => unreachable!(),
            },
            Converter::ByteArray => match data {
                Data::Bytes(b) => b.clone(),
                other => other.sink_text().as_bytes().to_vec(),
            },
            Converter::Json { schemas_enable } => {
                // Written by hand: Kafka's field order (`schema` before `payload`, `type`
                // before `optional`) is not serde_json's sorted map order.
                let (schema, payload) = match data {
                    Data::String(s) => (r#"{"type":"string","optional":false}"#, json!(s)),
                    Data::Bytes(b) => (
                        r#"{"type":"bytes","optional":false}"#,
                        json!(base64_encode(b)),
                    ),
                    Data::Json(v) => ("null", v.clone()),
                    Data::Null => unreachable!(),
                };
                let mut out = Vec::new();
                if *schemas_enable {
                    out.extend_from_slice(b"{\"schema\":");
                    out.extend_from_slice(schema.as_bytes());
                    out.extend_from_slice(b",\"payload\":");
                    write_json(&mut out, &payload);
                    out.push(b'}');
                } else {
                    write_json(&mut out, &payload);
                }
                out
            }
        })
    }

    /// A `FileStreamSource` line (a non-null string) → the bytes written to the topic,
    /// put in `out` (cleared first). The same bytes as [`from_connect`](Self::from_connect)
    /// with `Data::String`, without allocating per line; invalid UTF-8 is replaced as Java's
    /// decoder does.
    pub fn encode_line(&self, line: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let text = utf8_lossy(line);
        match self {
            Converter::String | Converter::ByteArray => out.extend_from_slice(text.as_bytes()),
            Converter::Json { schemas_enable } => {
                if *schemas_enable {
                    out.extend_from_slice(STRING_ENVELOPE_HEAD);
                }
                write_json_str(out, &text);
                if *schemas_enable {
                    out.push(b'}');
                }
            }
        }
    }

    /// The bytes read from the topic → the line a `FileStreamSink` writes (without its
    /// terminator), appended to `out`. The same text as `to_connect(bytes)?.sink_text()`,
    /// with fast paths that neither parse nor allocate for the common records: any bytes
    /// with `StringConverter`, and JSON strings without escapes (bare, or in the schema
    /// envelope of a string) with `JsonConverter`.
    pub fn write_sink_line(&self, bytes: Option<&[u8]>, out: &mut Vec<u8>) -> Result<()> {
        let Some(b) = bytes else {
            out.extend_from_slice(b"null");
            return Ok(());
        };
        match self {
            Converter::String | Converter::ByteArray => {
                out.extend_from_slice(utf8_lossy(b).as_bytes())
            }
            Converter::Json { schemas_enable } => {
                let inner = if *schemas_enable {
                    b.strip_prefix(STRING_ENVELOPE_HEAD)
                        .and_then(|r| r.strip_prefix(b"\""))
                        .and_then(|r| r.strip_suffix(b"\"}"))
                } else {
                    b.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\""))
                };
                let mark = out.len();
                if !inner.is_some_and(|s| unescape_json_str(s, out)) {
                    out.truncate(mark);
                    out.extend_from_slice(self.to_connect(Some(b))?.sink_text().as_bytes());
                }
            }
        }
        Ok(())
    }

    /// The bytes read from the topic → Connect data.
    pub fn to_connect(&self, bytes: Option<&[u8]>) -> Result<Data> {
        let Some(bytes) = bytes else {
            return Ok(Data::Null);
        };
        match self {
            Converter::String => Ok(Data::String(String::from_utf8_lossy(bytes).into_owned())),
            Converter::ByteArray => Ok(Data::Bytes(bytes.to_vec())),
            Converter::Json { schemas_enable } => {
                let value: Value = serde_json::from_slice(bytes).map_err(|e| {
                    ConnectError::Conversion(format!(
                        "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
                    ))
                })?;
                if !schemas_enable {
                    return Ok(match value {
                        Value::Null => Data::Null,
                        Value::String(s) => Data::String(s),
                        v => Data::Json(v),
                    });
                }
                let Value::Object(mut obj) = value else {
                    return Err(ConnectError::Conversion(ENVELOPE_ERROR.into()));
                };
                if obj.len() != 2 || !obj.contains_key("schema") || !obj.contains_key("payload") {
                    return Err(ConnectError::Conversion(ENVELOPE_ERROR.into()));
                }
                let payload = obj.remove("payload").unwrap_or(Value::Null);
                let schema_type = obj
                    .get("schema")
                    .and_then(|s| s.get("type"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string);
                Ok(match (schema_type.as_deref(), payload) {
                    (_, Value::Null) => Data::Null,
                    (Some("bytes"), Value::String(s)) => {
                        Data::Bytes(base64_decode(&s).ok_or_else(|| {
                            ConnectError::Conversion("Invalid bytes field: not base64".into())
                        })?)
                    }
                    (_, Value::String(s)) => Data::String(s),
                    (_, v) => Data::Json(v),
                })
            }
        }
    }
}

/// The envelope of a string value up to its payload (JsonConverter, `schemas.enable=true`).
const STRING_ENVELOPE_HEAD: &[u8] = br#"{"schema":{"type":"string","optional":false},"payload":"#;

/// `String::from_utf8_lossy`, checking with the faster `str::from_utf8` first (almost every
/// line is valid).
fn utf8_lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => s.into(),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Appends the text of the inside of a JSON string literal (between its quotes) to `out`;
/// `false` (with `out` partly written) for what it does not handle — a `\u` escape, a bare
/// quote or control character, invalid UTF-8 — which the caller then parses in full.
fn unescape_json_str(s: &[u8], out: &mut Vec<u8>) -> bool {
    if std::str::from_utf8(s).is_err() {
        return false;
    }
    let mut rest = s;
    loop {
        let run_end = memchr::memchr(b'\\', rest).unwrap_or(rest.len());
        let run = &rest[..run_end];
        if run.iter().any(|&c| c == b'"' || c < 0x20) {
            return false;
        }
        out.extend_from_slice(run);
        if run_end == rest.len() {
            return true;
        }
        let c = match rest.get(run_end + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 8,
            Some(b'f') => 12,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            _ => return false,
        };
        out.push(c);
        rest = &rest[run_end + 2..];
    }
}

/// A JSON string literal, as serde_json (and Jackson, for these characters) writes it.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing JSON to a Vec cannot fail");
}

/// Compact JSON, as Jackson writes it.
fn write_json(out: &mut Vec<u8>, value: &Value) {
    // serde_json's compact writer matches Jackson's output for these shapes.
    serde_json::to_writer(out, value).expect("writing JSON to a Vec cannot fail");
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (how JsonConverter writes bytes).
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on a bad character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON_ON: Converter = Converter::Json {
        schemas_enable: true,
    };
    const JSON_OFF: Converter = Converter::Json {
        schemas_enable: false,
    };

    #[test]
    fn json_envelope_for_a_line_is_kafkas_exact_bytes() {
        let out = JSON_ON
            .from_connect(&Data::String("a \"q\" line".into()))
            .unwrap();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"schema":{"type":"string","optional":false},"payload":"a \"q\" line"}"#
        );
        assert_eq!(
            JSON_ON.to_connect(Some(&out)).unwrap(),
            Data::String("a \"q\" line".into())
        );
    }

    #[test]
    fn json_without_schemas_is_a_quoted_string() {
        let out = JSON_OFF.from_connect(&Data::String("x".into())).unwrap();
        assert_eq!(out, b"\"x\"");
        assert_eq!(
            JSON_OFF.to_connect(Some(b"{\"a\":1}")).unwrap(),
            Data::Json(json!({"a":1}))
        );
    }

    #[test]
    fn json_with_schemas_refuses_plain_json_and_garbage() {
        let e = JSON_ON
            .to_connect(Some(b"{\"a\":1}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("schemas.enable=false"), "{e}");
        let e = JSON_ON
            .to_connect(Some(b"not json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "Converting byte[] to Kafka Connect data failed due to serialization error"
            ),
            "{e}"
        );
    }

    #[test]
    fn nulls_stay_null() {
        for c in [Converter::String, JSON_ON, JSON_OFF, Converter::ByteArray] {
            assert_eq!(c.from_connect(&Data::Null), None);
            assert_eq!(c.to_connect(None).unwrap(), Data::Null);
        }
        assert_eq!(
            JSON_ON
                .to_connect(Some(b"{\"schema\":null,\"payload\":null}"))
                .unwrap(),
            Data::Null
        );
        assert_eq!(Data::Null.sink_text(), "null");
    }

    #[test]
    fn string_and_bytes_round_trip() {
        assert_eq!(
            Converter::String
                .from_connect(&Data::String("é".into()))
                .unwrap(),
            "é".as_bytes()
        );
        assert_eq!(
            Converter::String.to_connect(Some("é".as_bytes())).unwrap(),
            Data::String("é".into())
        );
        assert_eq!(
            Converter::ByteArray.to_connect(Some(&[0, 255])).unwrap(),
            Data::Bytes(vec![0, 255])
        );
        let enc = JSON_ON
            .from_connect(&Data::Bytes(vec![0, 1, 2, 250]))
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&enc),
            r#"{"schema":{"type":"bytes","optional":false},"payload":"AAEC+g=="}"#
        );
        assert_eq!(
            JSON_ON.to_connect(Some(&enc)).unwrap(),
            Data::Bytes(vec![0, 1, 2, 250])
        );
    }

    #[test]
    fn fast_paths_match_the_general_conversion() {
        let lines: [&[u8]; 9] = [
            b"new\nline/\x08\x0c\r",
            "\u{2028} \u{1F600}".as_bytes(),
            b"plain line",
            b"",
            b"a \"q\" line",
            b"back\\slash\ttab",
            "\u{e9}t\u{e9}".as_bytes(),
            b"bad \xff utf8",
            b"ctl \x01 char",
        ];
        for c in [Converter::String, JSON_ON, JSON_OFF, Converter::ByteArray] {
            let mut enc = Vec::new();
            for line in lines {
                let data = Data::String(String::from_utf8_lossy(line).into_owned());
                c.encode_line(line, &mut enc);
                assert_eq!(Some(enc.clone()), c.from_connect(&data), "{c:?} {line:?}");
                let mut out = b"x".to_vec();
                c.write_sink_line(Some(&enc), &mut out).unwrap();
                let want = c.to_connect(Some(&enc)).unwrap();
                assert_eq!(&out[1..], want.sink_text().as_bytes(), "{c:?} {line:?}");
            }
            let mut out = Vec::new();
            c.write_sink_line(None, &mut out).unwrap();
            assert_eq!(out, b"null");
        }
        // Hand-written JSON strings: the fast path agrees with the parser or defers to it.
        for raw in [
            &b"\"a\\/b\""[..],
            b"\"\\u0041\\t\"",
            b"\"x\\\"",
            b"\"a\"b\"",
            b"\"\\q\"",
        ] {
            let mut out = Vec::new();
            match JSON_OFF.to_connect(Some(raw)) {
                Ok(d) => {
                    JSON_OFF.write_sink_line(Some(raw), &mut out).unwrap();
                    assert_eq!(out, d.sink_text().as_bytes(), "{raw:?}");
                }
                Err(_) => assert!(JSON_OFF.write_sink_line(Some(raw), &mut out).is_err()),
            }
        }
        let mut out = Vec::new();
        assert!(JSON_ON
            .write_sink_line(Some(b"{\"a\":1}"), &mut out)
            .is_err());
        // Not a string: written as JSON text.
        out.clear();
        JSON_OFF.write_sink_line(Some(b"12"), &mut out).unwrap();
        assert_eq!(out, b"12");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("a*b").is_none());
    }

    #[test]
    fn converter_config() {
        let mut p = Props::new();
        assert_eq!(Converter::from_props(&p, "value.converter").unwrap(), None);
        p.insert(
            "value.converter".into(),
            "org.apache.kafka.connect.json.JsonConverter".into(),
        );
        p.insert("value.converter.schemas.enable".into(), "false".into());
        assert_eq!(
            Converter::from_props(&p, "value.converter").unwrap(),
            Some(JSON_OFF)
        );
        p.insert(
            "value.converter".into(),
            "org.apache.kafka.connect.storage.StringConverter".into(),
        );
        assert_eq!(
            Converter::from_props(&p, "value.converter").unwrap(),
            Some(Converter::String)
        );
        p.insert(
            "value.converter".into(),
            "io.confluent.connect.avro.AvroConverter".into(),
        );
        assert!(Converter::from_props(&p, "value.converter").is_err());
    }
}
