use super::*;

fn event(body: &[u8], headers: &[(&str, &str)]) -> Event {
    let mut e = Event::new(body.to_vec());
    for (k, v) in headers {
        e.headers.insert(k.to_string(), v.to_string());
    }
    e
}

#[test]
fn known_reply_bytes() {
    let mut want = vec![0x80, 0x01, 0x00, 0x02, 0, 0, 0, 6];
    want.extend_from_slice(b"append");
    want.extend_from_slice(&[0, 0, 0, 1, 0x08, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        encode_reply(Protocol::Binary, "append", 1, Status::Ok),
        want
    );
    let mut want = vec![0x82, 0x41, 0x01, 0x06];
    want.extend_from_slice(b"append");
    // Field id 0 cannot be a delta: long form (type, zig-zag id), then the value, stop.
    want.extend_from_slice(&[0x05, 0x00, 0x02, 0x00]);
    assert_eq!(
        encode_reply(Protocol::Compact, "append", 1, Status::Failed),
        want
    );
    assert_eq!(
        decode_reply(Protocol::Compact, &want, 1).unwrap(),
        Ok(Status::Failed)
    );
    assert!(decode_reply(Protocol::Compact, &want, 2).is_err());
}

#[test]
fn known_call_bytes() {
    let e = event(b"x", &[("a", "b")]);
    let mut want = vec![0x82, 0x21, 0x01, 0x06];
    want.extend_from_slice(b"append");
    want.extend_from_slice(&[
        0x1c, // field 1, struct
        0x1b, 0x01, 0x88, 0x01, b'a', 0x01, b'b', // field 1, map<string,string> of 1
        0x18, 0x01, b'x', // field 2, binary
        0x00, 0x00,
    ]);
    let got = encode_call(
        Protocol::Compact,
        Method::Append,
        1,
        std::slice::from_ref(&e),
    );
    assert_eq!(got, want);
    let mut want = vec![0x80, 0x01, 0x00, 0x01, 0, 0, 0, 11];
    want.extend_from_slice(b"appendBatch");
    want.extend_from_slice(&[0, 0, 0, 7]);
    want.extend_from_slice(&[0x0f, 0, 1, 0x0c, 0, 0, 0, 1]); // field 1: list<struct> of 1
    want.extend_from_slice(&[0x0d, 0, 1, 0x0b, 0x0b, 0, 0, 0, 1]); // headers: map of 1
    want.extend_from_slice(&[0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b']);
    want.extend_from_slice(&[0x0b, 0, 2, 0, 0, 0, 1, b'x', 0, 0]);
    let got = encode_call(Protocol::Binary, Method::AppendBatch, 7, &[e]);
    assert_eq!(got, want);
}

#[test]
fn calls_round_trip_in_both_protocols() {
    let many: Vec<Event> = (0..40)
        .map(|i| {
            event(
                format!("body {i}").as_bytes(),
                &[("host", "web1"), ("i", &i.to_string())],
            )
        })
        .collect();
    for proto in [Protocol::Binary, Protocol::Compact] {
        for (method, events) in [
            (Method::Append, vec![event(b"", &[])]),
            (Method::AppendBatch, vec![]),
            (Method::AppendBatch, many.clone()),
            (
                Method::AppendBatch,
                vec![event(&[0, 255, 10], &[("k", "")])],
            ),
        ] {
            let bytes = encode_call(proto, method, -5, &events);
            assert_eq!(sniff(&bytes), Some(proto));
            let call = decode_call(proto, &bytes).unwrap();
            assert_eq!(
                call,
                Call {
                    method,
                    seqid: -5,
                    events
                }
            );
        }
        for s in [Status::Ok, Status::Failed, Status::Error, Status::Unknown] {
            let bytes = encode_reply(proto, "appendBatch", 99, s);
            assert_eq!(decode_reply(proto, &bytes, 99).unwrap(), Ok(s));
        }
        let bytes = encode_exception(proto, "x", 3, UNKNOWN_METHOD, "Invalid method name: 'x'");
        assert_eq!(
            decode_reply(proto, &bytes, 3).unwrap(),
            Err("Invalid method name: 'x'".into())
        );
    }
}

#[test]
fn unknown_fields_are_skipped_and_bad_calls_named() {
    for proto in [Protocol::Binary, Protocol::Compact] {
        // appendBatch_args with an extra field 5 (a struct holding every skippable type)
        // before field 1, and an extra field 9 inside the event.
        let mut w = Writer::with_capacity(proto, 128);
        w.message_begin("appendBatch", CALL, 1);
        w.struct_begin();
        w.field_begin(TType::Struct, 5);
        w.struct_begin();
        w.field_begin(TType::I32, 3);
        w.i32(-7);
        w.field_begin(TType::List, 20);
        w.list_begin(TType::String, 20);
        for _ in 0..20 {
            w.binary(b"s");
        }
        w.field_begin(TType::Map, 21);
        w.map_begin(TType::I32, TType::String, 0);
        w.field_stop();
        w.struct_end();
        w.field_begin(TType::List, 1);
        w.list_begin(TType::Struct, 1);
        w.struct_begin();
        w.field_begin(TType::String, 2);
        w.binary(b"body");
        w.field_begin(TType::I32, 9);
        w.i32(1);
        w.field_begin(TType::Map, 1);
        w.map_begin(TType::String, TType::String, 0);
        w.field_stop();
        w.struct_end();
        w.field_stop();
        w.struct_end();
        let call = decode_call(proto, &w.into_inner()).unwrap();
        assert_eq!(call.events, vec![event(b"body", &[])]);

        let mut w = Writer::with_capacity(proto, 32);
        w.message_begin("ping", CALL, 4);
        w.struct_begin();
        w.field_stop();
        let bad = decode_call(proto, &w.into_inner()).unwrap_err();
        assert_eq!(
            (bad.name.as_str(), bad.seqid, bad.kind),
            ("ping", 4, UNKNOWN_METHOD)
        );

        // An event without its body; a truncated message; a hostile list size.
        let mut w = Writer::with_capacity(proto, 32);
        w.message_begin("append", CALL, 2);
        w.struct_begin();
        w.field_begin(TType::Struct, 1);
        w.struct_begin();
        w.field_begin(TType::Map, 1);
        w.map_begin(TType::String, TType::String, 0);
        w.field_stop();
        w.struct_end();
        w.field_stop();
        w.struct_end();
        let bad = decode_call(proto, &w.into_inner()).unwrap_err();
        assert_eq!(bad.kind, PROTOCOL_ERROR);
        assert!(bad.error.0.contains("body"), "{}", bad.error);
        let full = encode_call(proto, Method::Append, 1, &[event(b"abc", &[("k", "v")])]);
        for n in 0..full.len() {
            assert!(decode_call(proto, &full[..n]).is_err(), "prefix {n}");
        }
        let mut w = Writer::with_capacity(proto, 32);
        w.message_begin("appendBatch", CALL, 2);
        w.struct_begin();
        w.field_begin(TType::List, 1);
        w.list_begin(TType::Struct, 1_000_000_000);
        assert!(decode_call(proto, &w.into_inner()).is_err());
    }
}

#[test]
fn old_binary_header_and_compact_long_lists() {
    // The non-strict binary header: name length, name, type byte, seqid.
    let mut raw = vec![0, 0, 0, 6];
    raw.extend_from_slice(b"append");
    raw.push(CALL);
    raw.extend_from_slice(&9i32.to_be_bytes());
    let strict = encode_call(Protocol::Binary, Method::Append, 9, &[event(b"q", &[])]);
    raw.extend_from_slice(&strict[4 + 4 + 6 + 4..]);
    let call = decode_call(Protocol::Binary, &raw).unwrap();
    assert_eq!((call.seqid, call.events.len()), (9, 1));
    // Wrong protocol: a clear error.
    let bad = decode_call(Protocol::Compact, &strict).unwrap_err();
    assert!(bad.error.0.contains("binary"), "{}", bad.error);
}

#[tokio::test]
async fn frames() {
    let mut raw = Vec::new();
    write_frame(&mut raw, b"abc").await.unwrap();
    write_frame(&mut raw, b"").await.unwrap();
    assert_eq!(&raw[..7], &[0, 0, 0, 3, b'a', b'b', b'c']);
    let mut rd = &raw[..];
    assert_eq!(read_frame(&mut rd).await.unwrap(), Some(b"abc".to_vec()));
    assert_eq!(read_frame(&mut rd).await.unwrap(), Some(vec![]));
    assert_eq!(read_frame(&mut rd).await.unwrap(), None);
    let mut rd = &[0x80u8, 1, 0, 1, 0][..];
    assert!(read_frame(&mut rd).await.is_err());
    let mut rd = &[0u8, 0, 0, 5, 1, 2][..];
    let e = read_frame(&mut rd).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
}
