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
