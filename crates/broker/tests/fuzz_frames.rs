//! The request decoder and handlers against random and mutated frames: no input may panic
//! (a panic anywhere, including blocking threads, fails the test through the panic hook).
//! The same property is fuzzed with cargo-fuzz in `fuzz/` (target `request_frame`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use flumen_broker::connection::handle_frame;
use flumen_broker::dispatch::HANDLERS;
use flumen_broker::{Broker, BrokerConfig};
use proptest::prelude::*;

static PANICKED: AtomicBool = AtomicBool::new(false);

fn broker(dir: &std::path::Path) -> Arc<Broker> {
    let (config, _) = BrokerConfig::load(
        None,
        &[
            format!("log.dirs={}", dir.display()),
            "auto.create.topics.enable=false".into(),
        ],
    )
    .unwrap();
    let advertised = config.advertised(9092);
    let b = Broker::open(config, advertised).unwrap();
    b.create_topic("t", 2, Default::default(), false).unwrap();
    Arc::new(b)
}

/// A frame with a valid API key and version of the table, then `body` (header included).
fn frame(row: usize, version_pick: u16, body: &[u8]) -> Bytes {
    let h = &HANDLERS[row % HANDLERS.len()];
    let span = (h.max_version - h.advertised_min + 1) as u16;
    let version = h.advertised_min + (version_pick % span) as i16;
    let mut f = BytesMut::new();
    f.put_i16(h.key as i16);
    f.put_i16(version);
    f.put_slice(body);
    f.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    #[test]
    fn random_frames_never_panic(row in 0usize..64, v in any::<u16>(), body in proptest::collection::vec(any::<u8>(), 0..300)) {
        run(vec![frame(row, v, &body), Bytes::from(body)]);
    }
}

fn run(frames: Vec<Bytes>) {
    static RT: std::sync::OnceLock<(tokio::runtime::Runtime, Arc<Broker>, tempfile::TempDir)> =
        std::sync::OnceLock::new();
    let (rt, broker, _) = RT.get_or_init(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            prev(info);
        }));
        let dir = tempfile::tempdir().unwrap();
        let b = broker(dir.path());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        (rt, b, dir)
    });
    for f in frames {
        rt.block_on(async {
            // A decoded Fetch may legitimately wait: bound it.
            let _ = tokio::time::timeout(Duration::from_millis(20), handle_frame(broker, f)).await;
        });
        assert!(
            !PANICKED.load(Ordering::SeqCst),
            "a request made the broker panic"
        );
    }
}

#[test]
fn mutated_valid_requests_never_panic() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    // Valid requests of several APIs, then every truncation and a sweep of byte flips.
    let topic = TopicName(StrBytes::from_static_str("t"));
    let mut seeds: Vec<(ApiKey, i16, BytesMut)> = Vec::new();
    let mut push = |key: ApiKey, v: i16, enc: &dyn Fn(&mut BytesMut, i16)| {
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(v)
            .with_client_id(Some(StrBytes::from_static_str("c")))
            .encode(&mut b, key.request_header_version(v))
            .unwrap();
        enc(&mut b, v);
        seeds.push((key, v, b));
    };
    let md = metadata_request::MetadataRequestTopic::default().with_name(Some(topic.clone()));
    for v in [0, 4, 9, 12] {
        push(ApiKey::Metadata, v, &|b, v| {
            MetadataRequest::default()
                .with_topics(Some(vec![md.clone()]))
                .encode(b, v)
                .unwrap()
        });
    }
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic.clone())
            .with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition(0)
            ])]);
    for v in [4, 11, 12] {
        push(ApiKey::Fetch, v, &|b, v| fetch.encode(b, v).unwrap());
    }
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("n")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    for v in [2, 5, 7] {
        push(ApiKey::CreateTopics, v, &|b, v| {
            create.encode(b, v).unwrap()
        });
    }
    let configs = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t")),
    ]);
    for v in [1, 4] {
        push(ApiKey::DescribeConfigs, v, &|b, v| {
            configs.encode(b, v).unwrap()
        });
    }
    let mut frames = Vec::new();
    for (_, _, seed) in &seeds {
        for cut in 0..seed.len() {
            frames.push(Bytes::copy_from_slice(&seed[..cut]));
        }
        for i in 4..seed.len() {
            for x in [0x00u8, 0x7f, 0x80, 0xff] {
                let mut m = seed.to_vec();
                m[i] = x;
                frames.push(Bytes::from(m));
            }
        }
    }
    run(frames);
}
