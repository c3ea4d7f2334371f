//! `java.util.Properties.load` reproduced exactly, keeping the line of every property.
//!
//! Rules (checked against the JDK): a natural line ends at `\n`, `\r` or `\r\n`; leading
//! blanks (space, tab, form feed) are skipped; a line whose first non-blank character is
//! `#` or `!` is a comment; an odd number of trailing backslashes joins the next line, whose
//! leading blanks are dropped; the key ends at the first unescaped `=`, `:` or blank, and
//! blanks plus one `=`/`:` after it are skipped; escapes `\t \n \r \f \uXXXX`, and a
//! backslash before any other character yields that character. Input bytes are ISO-8859-1
//! (as Flume 1.10+ loads them). The last occurrence of a key wins (handled by the caller).

use super::Origin;
use std::sync::Arc;

/// One `key = value` pair as written, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The unescaped key (not yet trimmed).
    pub key: String,
    /// The unescaped value (not yet trimmed).
    pub value: String,
    /// Where the logical line starts.
    pub origin: Origin,
}

/// Parses the bytes of a properties file. Errors are Java's only one: a malformed `\uXXXX`.
pub fn parse(bytes: &[u8], file: &str) -> Result<Vec<Property>, String> {
    let file: Arc<str> = Arc::from(file);
    let chars: Vec<char> = bytes.iter().map(|&b| b as char).collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line_no = 1;
    let n = chars.len();
    while i < n {
        // Start of a natural line: skip leading blanks.
        let start_line = line_no;
        while i < n && matches!(chars[i], ' ' | '\t' | '\x0c') {
            i += 1;
        }
        if i >= n {
            break;
        }
        if chars[i] == '\n' || chars[i] == '\r' {
            i = skip_eol(&chars, i, &mut line_no);
            continue;
        }
        if chars[i] == '#' || chars[i] == '!' {
            while i < n && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            if i < n {
                i = skip_eol(&chars, i, &mut line_no);
            }
            continue;
        }
        // Collect the logical line (with continuations).
        let mut logical = String::new();
        loop {
            let seg_start = i;
            while i < n && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            let seg = &chars[seg_start..i];
            let trailing = seg.iter().rev().take_while(|&&c| c == '\\').count();
            if trailing % 2 == 1 {
                logical.extend(&seg[..seg.len() - 1]);
                if i >= n {
                    break;
                }
                i = skip_eol(&chars, i, &mut line_no);
                while i < n && matches!(chars[i], ' ' | '\t' | '\x0c') {
                    i += 1;
                }
                continue;
            }
            logical.extend(seg);
            if i < n {
                i = skip_eol(&chars, i, &mut line_no);
            }
            break;
        }
        let (key, value) = split(&logical);
        out.push(Property {
            key: unescape(&key).map_err(|e| format!("line {start_line}: {e}"))?,
            value: unescape(&value).map_err(|e| format!("line {start_line}: {e}"))?,
            origin: Origin {
                file: file.clone(),
                line: start_line,
            },
        });
    }
    Ok(out)
}

fn skip_eol(chars: &[char], mut i: usize, line_no: &mut usize) -> usize {
    if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
        i += 1;
    }
    *line_no += 1;
    i + 1
}

/// Splits a logical line into the still-escaped key and value.
fn split(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut key_len = 0;
    let mut value_start = chars.len();
    let mut has_sep = false;
    let mut preceding_backslash = false;
    while key_len < chars.len() {
        let c = chars[key_len];
        if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_sep = true;
            break;
        } else if matches!(c, ' ' | '\t' | '\x0c') && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < chars.len() {
        let c = chars[value_start];
        if !matches!(c, ' ' | '\t' | '\x0c') {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (
        chars[..key_len].iter().collect(),
        chars[value_start.min(chars.len())..].iter().collect(),
    )
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or_else(|| "Malformed \\uxxxx encoding.".to_string())?;
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, usize)> {
        parse(text.as_bytes(), "t")
            .unwrap()
            .into_iter()
            .map(|p| (p.key, p.value, p.origin.line))
            .collect()
    }

    #[test]
    fn separators_comments_and_escapes() {
        let got = kv("# c\n  ! c2\na=1\nb : 2\nc 3\nd\t=\t4 # not a comment\ne\\=x = y\nf = \\\\d+\\t\\u0041\n");
        assert_eq!(
            got,
            vec![
                ("a".into(), "1".into(), 3),
                ("b".into(), "2".into(), 4),
                ("c".into(), "3".into(), 5),
                ("d".into(), "4 # not a comment".into(), 6),
                ("e=x".into(), "y".into(), 7),
                ("f".into(), "\\d+\tA".into(), 8),
            ]
        );
    }

    #[test]
    fn continuation_and_line_endings() {
        let got = kv("a = one, \\\n     two\r\nb=x\\\\\rc=\\\n\\\n  z\nkeyonly\n");
        assert_eq!(
            got,
            vec![
                ("a".into(), "one, two".into(), 1),
                ("b".into(), "x\\".into(), 3),
                ("c".into(), "z".into(), 4),
                ("keyonly".into(), "".into(), 7),
            ]
        );
    }

    #[test]
    fn malformed_unicode_is_an_error() {
        assert!(parse(b"a=\\u12", "t").is_err());
    }
}
