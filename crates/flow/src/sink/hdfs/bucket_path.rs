//! Flume's `BucketPath`: the escape sequences of `hdfs.path` and `hdfs.filePrefix`, and the
//! timestamp rounding of `hdfs.round*` (`TimestampRoundDownUtil`).
//!
//! A pattern is parsed once into `Piece`s; [`EscapePattern::format`] then resolves it for
//! one event. Escapes (verified against the real `BucketPath` for 1339526074123 in UTC):
//! `%{header}` (missing → empty), `%t` (the `timestamp` header itself, never rounded), the
//! `SimpleDateFormat`-backed `%a %A %b %B %c %d %e %D %H %I %j %k %l %m %n %M %p %s %S %y %Y
//! %z`, `%%`, unknown `%x` → empty, and `%[localhost]`, `%[IP]`, `%[FQDN]` (case-insensitive,
//! resolved once per process). Every `%<char>` escape (even `%%` and unknown letters) needs a
//! timestamp; `%{…}` and `%[…]` do not.

use std::sync::OnceLock;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use crate::event::Headers;

/// `hdfs.roundUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundUnit {
    /// `second`
    Second,
    /// `minute`
    Minute,
    /// `hour`
    Hour,
}

/// Timestamp rounding (`hdfs.round = true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounding {
    /// The calendar field rounded.
    pub unit: RoundUnit,
    /// Round down to a multiple of this value of the field (1–60 / 1–24).
    pub value: u32,
}

/// Why a pattern could not be resolved for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscapeError {
    /// A time escape needs the `timestamp` header and the event has none.
    MissingTimestamp,
    /// The `timestamp` header is not a number.
    BadTimestamp(String),
    /// `%[x]` with an unknown x.
    UnknownHostEscape(String),
}

impl std::fmt::Display for EscapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EscapeError::MissingTimestamp => f.write_str(
                "Expected timestamp in the Flume event headers, but it was null (add a timestamp interceptor, set hdfs.useLocalTimeStamp = true, or choose hdfs.missingTimestampPolicy)",
            ),
            EscapeError::BadTimestamp(v) => write!(
                f,
                "Flume wasn't able to parse timestamp header in the event to resolve time based bucketing: `{v}` is not a number of milliseconds"
            ),
            EscapeError::UnknownHostEscape(v) => write!(
                f,
                "Expected one of localhost, IP, FQDN in %[…] but got `{v}`"
            ),
        }
    }
}

/// One parsed element of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text.
    Text(String),
    /// `%{name}`
    Header(String),
    /// `%x` (needs a timestamp).
    Time(char),
    /// `%[...]`, already resolved.
    Host(String),
}

/// A parsed `hdfs.path` or `hdfs.filePrefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapePattern {
    pieces: Vec<Piece>,
    needs_time: bool,
}

/// Host names for `%[localhost]`, `%[IP]`, `%[FQDN]`, resolved once per process.
#[derive(Debug)]
struct HostInfo {
    hostname: String,
    ip: String,
    fqdn: String,
}

fn host_info() -> &'static HostInfo {
    static INFO: OnceLock<HostInfo> = OnceLock::new();
    INFO.get_or_init(|| {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        use std::net::ToSocketAddrs;
        let ip = (hostname.as_str(), 0)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.find(|a| a.is_ipv4()).or_else(|| a.next()))
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "127.0.0.1".to_string());
        // The canonical name: the first dotted name that /etc/hosts gives the address or host.
        let fqdn = std::fs::read_to_string("/etc/hosts")
            .ok()
            .and_then(|hosts| {
                hosts.lines().find_map(|line| {
                    let line = line.split('#').next().unwrap_or("");
                    let mut words = line.split_whitespace();
                    let addr = words.next()?;
                    let names: Vec<&str> = words.collect();
                    if addr == ip || names.contains(&hostname.as_str()) {
                        names
                            .iter()
                            .find(|n| n.contains('.'))
                            .map(|n| n.to_string())
                    } else {
                        None
                    }
                })
            })
            .unwrap_or_else(|| hostname.clone());
        HostInfo { hostname, ip, fqdn }
    })
}

impl EscapePattern {
    /// Parses `pattern`; `%[x]` names are resolved here (an unknown one is an error).
    pub fn parse(pattern: &str) -> Result<Self, EscapeError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        let flush = |text: &mut String, pieces: &mut Vec<Piece>| {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(text)));
            }
        };
        while i < chars.len() {
            let c = chars[i];
            if c != '%' || i + 1 >= chars.len() {
                text.push(c);
                i += 1;
                continue;
            }
            let n = chars[i + 1];
            if n == '{' {
                if let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') {
                    let name: String = chars[i + 2..i + 2 + end].iter().collect();
                    if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                    {
                        flush(&mut text, &mut pieces);
                        pieces.push(Piece::Header(name));
                        i += 3 + end;
                        continue;
                    }
                }
                text.push(c);
                i += 1;
            } else if n == '[' {
                if let Some(end) = chars[i + 2..].iter().position(|&c| c == ']') {
                    let name: String = chars[i + 2..i + 2 + end].iter().collect();
                    if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        let info = host_info();
                        let value = match name.to_ascii_lowercase().as_str() {
                            "localhost" => info.hostname.clone(),
                            "ip" => info.ip.clone(),
                            "fqdn" => info.fqdn.clone(),
                            _ => return Err(EscapeError::UnknownHostEscape(name)),
                        };
                        flush(&mut text, &mut pieces);
                        pieces.push(Piece::Host(value));
                        i += 3 + end;
                        continue;
                    }
                }
                text.push(c);
                i += 1;
            } else if n.is_alphanumeric() || n == '_' || n == '%' {
                flush(&mut text, &mut pieces);
                pieces.push(Piece::Time(n));
                i += 2;
            } else {
                text.push(c);
                i += 1;
            }
        }
        flush(&mut text, &mut pieces);
        let needs_time = pieces.iter().any(|p| matches!(p, Piece::Time(_)));
        Ok(EscapePattern { pieces, needs_time })
    }

    /// True when the pattern has a time escape (so events need a timestamp).
    pub fn needs_time(&self) -> bool {
        self.needs_time
    }

    /// True when the pattern reads headers other than `timestamp` (`%{…}`) or `%t`.
    pub fn needs_headers(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Header(_) | Piece::Time('t')))
    }

    /// True when the pattern has no escape at all.
    pub fn is_literal(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// The literal text before the first escape.
    pub fn literal_prefix(&self) -> &str {
        match self.pieces.first() {
            Some(Piece::Text(t)) => t,
            _ => "",
        }
    }

    /// Resolves the pattern for one event. `time` is the resolved [`EventTime`] (needed
    /// only when [`Self::needs_time`]).
    pub fn format(
        &self,
        headers: &Headers,
        time: Option<&EventTime>,
        out: &mut String,
    ) -> Result<(), EscapeError> {
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Host(h) => out.push_str(h),
                Piece::Header(h) => {
                    if let Some(v) = headers.get(h) {
                        out.push_str(v);
                    }
                }
                Piece::Time(c) => {
                    let t = time.ok_or(EscapeError::MissingTimestamp)?;
                    format_time(*c, t, out);
                }
            }
        }
        Ok(())
    }
}

/// An event's time, resolved for formatting: the raw header value (for `%t`), and the
/// (possibly rounded) zoned time.
#[derive(Debug, Clone)]
pub struct EventTime {
    /// The raw `timestamp` header (or the local clock in ms), for `%t`.
    pub raw: String,
    /// The time after rounding, in the configured zone.
    pub zoned: Zoned,
}

/// Clock source and zone used to resolve event times.
#[derive(Debug, Clone)]
pub struct TimeResolver {
    /// `hdfs.timeZone` (else the system zone).
    pub zone: TimeZone,
    /// `hdfs.round*`.
    pub rounding: Option<Rounding>,
    /// `hdfs.useLocalTimeStamp`.
    pub use_local_time: bool,
}

impl TimeResolver {
    /// The event time from the `timestamp` header (or the clock), rounded.
    pub fn resolve(&self, headers: &Headers, now_ms: i64) -> Result<EventTime, EscapeError> {
        let (raw, ms) = if self.use_local_time {
            (now_ms.to_string(), now_ms)
        } else {
            let raw = headers
                .get("timestamp")
                .ok_or(EscapeError::MissingTimestamp)?;
            let ms = raw
                .trim()
                .parse::<i64>()
                .map_err(|_| EscapeError::BadTimestamp(raw.clone()))?;
            (raw.clone(), ms)
        };
        Ok(EventTime {
            raw,
            zoned: self.zoned(ms),
        })
    }

    /// `ms` in the zone, rounded down as configured.
    pub fn zoned(&self, ms: i64) -> Zoned {
        let ts = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let z = ts.to_zoned(self.zone.clone());
        match self.rounding {
            None => z,
            Some(r) => round_down(&z, r),
        }
    }
}

/// Flume's `TimestampRoundDownUtil`: in the zone, subtract `field mod value` from the field
/// and zero every smaller field (not epoch-aligned: minute/7 restarts every hour).
pub fn round_down(z: &Zoned, r: Rounding) -> Zoned {
    let dt = z.datetime();
    let v = r.value.max(1) as i8;
    let rounded = match r.unit {
        RoundUnit::Second => DateTime::new(
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second() - dt.second() % v,
            0,
        ),
        RoundUnit::Minute => DateTime::new(
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute() - dt.minute() % v,
            0,
            0,
        ),
        RoundUnit::Hour => DateTime::new(
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour() - dt.hour() % v,
            0,
            0,
            0,
        ),
    };
    rounded
        .ok()
        .and_then(|d| z.time_zone().to_zoned(d).ok())
        .unwrap_or_else(|| z.clone())
}

const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn format_time(c: char, t: &EventTime, out: &mut String) {
    use std::fmt::Write as _;
    let z = &t.zoned;
    let wd = DAYS[z.weekday().to_monday_zero_offset() as usize];
    let mon = MONTHS[(z.month() - 1) as usize];
    let h12 = match z.hour() % 12 {
        0 => 12,
        h => h,
    };
    let _ = match c {
        't' => write!(out, "{}", t.raw),
        'a' => write!(out, "{}", &wd[..3]),
        'A' => write!(out, "{wd}"),
        'b' => write!(out, "{}", &mon[..3]),
        'B' => write!(out, "{mon}"),
        'c' => write!(
            out,
            "{} {} {} {:02}:{:02}:{:02} {}",
            &wd[..3],
            &mon[..3],
            z.day(),
            z.hour(),
            z.minute(),
            z.second(),
            z.year()
        ),
        'd' => write!(out, "{:02}", z.day()),
        'e' => write!(out, "{}", z.day()),
        'D' => write!(
            out,
            "{:02}/{:02}/{:02}",
            z.month(),
            z.day(),
            z.year().rem_euclid(100)
        ),
        'H' => write!(out, "{:02}", z.hour()),
        'I' => write!(out, "{h12:02}"),
        'j' => write!(out, "{:03}", z.day_of_year()),
        'k' => write!(out, "{}", z.hour()),
        'l' => write!(out, "{h12}"),
        'm' => write!(out, "{:02}", z.month()),
        'n' => write!(out, "{}", z.month()),
        'M' => write!(out, "{:02}", z.minute()),
        'p' => write!(out, "{}", if z.hour() < 12 { "AM" } else { "PM" }),
        's' => write!(out, "{}", z.timestamp().as_second()),
        'S' => write!(out, "{:02}", z.second()),
        'y' => write!(out, "{:02}", z.year().rem_euclid(100)),
        'Y' => write!(out, "{}", z.year()),
        'z' => {
            let secs = z.offset().seconds();
            let sign = if secs < 0 { '-' } else { '+' };
            let a = secs.abs();
            write!(out, "{sign}{:02}{:02}", a / 3600, a / 60 % 60)
        }
        '%' => write!(out, "%"),
        _ => Ok(()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ts: &str) -> Headers {
        let mut h = Headers::new();
        h.insert("timestamp".into(), ts.into());
        h.insert("host".into(), "web01".into());
        h
    }

    fn fmt(pattern: &str, zone: &str, rounding: Option<Rounding>) -> String {
        let r = TimeResolver {
            zone: TimeZone::get(zone).unwrap(),
            rounding,
            use_local_time: false,
        };
        let h = headers("1339526074123");
        let t = r.resolve(&h, 0).unwrap();
        let mut out = String::new();
        EscapePattern::parse(pattern)
            .unwrap()
            .format(&h, Some(&t), &mut out)
            .unwrap();
        out
    }

    #[test]
    fn every_escape_matches_flume() {
        // Expected values: Flume's BucketPath for 1339526074123 in UTC (spec table).
        let cases = [
            ("%{host}", "web01"),
            ("%{missing}", ""),
            ("%t", "1339526074123"),
            ("%a %A %b %B", "Tue Tuesday Jun June"),
            ("%c", "Tue Jun 12 18:34:34 2012"),
            ("%d %e %D", "12 12 06/12/12"),
            ("%H %k %I %l", "18 18 06 6"),
            ("%j %m %n %M %p", "164 06 6 34 PM"),
            ("%s %S %y %Y %z", "1339526074 34 12 2012 +0000"),
            ("%% %x|", "% |"),
        ];
        for (p, want) in cases {
            assert_eq!(fmt(p, "UTC", None), want, "pattern {p}");
        }
        assert_eq!(fmt("%z %H", "America/Los_Angeles", None), "-0700 11");
    }

    #[test]
    fn rounding_is_calendar_based() {
        let minute = |v| {
            Some(Rounding {
                unit: RoundUnit::Minute,
                value: v,
            })
        };
        assert_eq!(fmt("%H:%M:%S", "UTC", minute(10)), "18:30:00");
        assert_eq!(fmt("%H:%M:%S", "UTC", minute(7)), "18:28:00");
        let hour5 = Some(Rounding {
            unit: RoundUnit::Hour,
            value: 5,
        });
        assert_eq!(fmt("%H:%M", "UTC", hour5), "15:00");
        // %s is rounded, %t is not.
        assert_eq!(fmt("%s %t", "UTC", minute(10)), "1339525800 1339526074123");
        // The seed lesson's layout.
        assert_eq!(
            fmt("/flume/%y-%m-%d/%H%M/%S", "UTC", minute(10)),
            "/flume/12-06-12/1830/00"
        );
    }

    #[test]
    fn timestamps_are_required_for_time_escapes_only() {
        let p = EscapePattern::parse("/a/%{host}/%[localhost]").unwrap();
        assert!(!p.needs_time());
        let mut out = String::new();
        p.format(&headers("1"), None, &mut out).unwrap();
        assert!(out.starts_with("/a/web01/"), "{out}");
        let p = EscapePattern::parse("/a/%%").unwrap();
        assert!(p.needs_time());
        assert_eq!(
            p.format(&Headers::new(), None, &mut String::new()),
            Err(EscapeError::MissingTimestamp)
        );
        let r = TimeResolver {
            zone: TimeZone::UTC,
            rounding: None,
            use_local_time: false,
        };
        assert_eq!(
            r.resolve(&Headers::new(), 0).unwrap_err(),
            EscapeError::MissingTimestamp
        );
        assert!(matches!(
            r.resolve(&headers("abc"), 0),
            Err(EscapeError::BadTimestamp(_))
        ));
        assert!(EscapePattern::parse("%[nope]").is_err());
        assert_eq!(
            EscapePattern::parse("/user/x/%y").unwrap().literal_prefix(),
            "/user/x/"
        );
    }
}
