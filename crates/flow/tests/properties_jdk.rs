//! The properties parser against the JDK: `fixtures/tricky.jdk.txt` is what
//! `java.util.Properties.load(InputStream)` (JDK 17, `fixtures/Dump.java`) reads from
//! `fixtures/tricky.properties` (comments, separators, escapes, continuations, CR/LF/CRLF,
//! ISO-8859-1 bytes, duplicates). Regenerate with:
//! `javac Dump.java && java Dump tricky.properties > tricky.jdk.txt`.

use std::collections::BTreeMap;

fn esc(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c as u32) < 0x20 || (c as u32) > 0x7e || c == '\\' {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[test]
fn parses_exactly_as_java() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let input = std::fs::read(dir.join("tricky.properties")).unwrap();
    let expected = std::fs::read_to_string(dir.join("tricky.jdk.txt")).unwrap();
    let props = flumen_flow::config::properties::parse(&input, "tricky.properties").unwrap();
    let map: BTreeMap<String, String> = props.into_iter().map(|p| (p.key, p.value)).collect();
    let got: String = map
        .iter()
        .map(|(k, v)| format!("{}\t{}\n", esc(k), esc(v)))
        .collect();
    assert_eq!(got, expected);
}

/// Escapes a key or value the way `Properties.store` writes it.
fn java_escape(s: &str, is_key: bool) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        match c {
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

proptest::proptest! {
    /// Whatever `Properties.store` would write is read back unchanged, with any of the
    /// separators and line endings.
    #[test]
    fn store_then_load_round_trips(
        pairs in proptest::collection::vec(("[a-z.]{1,8}[ =:#!\\\\\t\u{e9}a-z]{0,6}", "[ -~\t\n\r\u{e9}\u{4e2d}]{0,20}"), 1..8),
        sep in proptest::sample::select(vec!["=", " = ", ":", " ", "\t: "]),
        eol in proptest::sample::select(vec!["\n", "\r\n", "\r"]),
    ) {
        let mut text = String::from("# generated\n");
        let mut want = BTreeMap::new();
        for (k, v) in &pairs {
            text.push_str(&java_escape(k, true));
            text.push_str(sep);
            text.push_str(&java_escape(v, false));
            text.push_str(eol);
            want.insert(k.clone(), v.clone());
        }
        let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        let got: BTreeMap<String, String> = flumen_flow::config::properties::parse(&bytes, "gen")
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value))
            .collect();
        proptest::prop_assert_eq!(got, want);
    }
}
