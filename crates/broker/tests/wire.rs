//! Wire tests: an in-process broker on 127.0.0.1:0, spoken to with raw frames.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flumen_broker::{BrokerConfig, Server};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct TestBroker {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    broker: std::sync::Arc<flumen_broker::Broker>,
    _dir: tempfile::TempDir,
}

async fn start(overrides: &[&str]) -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let mut o: Vec<String> = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".into(),
        format!("log.dirs={}", dir.path().display()),
    ];
    o.extend(overrides.iter().map(|s| s.to_string()));
    let (config, unknown) = BrokerConfig::load(None, &o).unwrap();
    assert!(unknown.is_empty());
    let server = Server::build(config).await.unwrap();
    let addr = server.local_addr();
    let broker = server.broker().clone();
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    let task = tokio::spawn(async move { server.run(s).await.unwrap() });
    TestBroker {
        addr,
        shutdown,
        task,
        broker,
        _dir: dir,
    }
}

impl TestBroker {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn frame<R: Encodable>(key: ApiKey, version: i16, correlation: i32, req: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    req.encode(&mut body, version)
        .unwrap_or_else(|e| panic!("cannot encode {key:?} v{version}: {e}"));
    let mut out = Vec::with_capacity(body.len() + 4);
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    out
}

/// Reads one response frame; `None` if the connection was closed.
async fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut len))
        .await
        .expect("response in time")
    {
        Ok(_) => {}
        Err(_) => return None,
    }
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

async fn call<R: Encodable, T: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &R,
) -> T {
    s.write_all(&frame(key, version, 7, req)).await.unwrap();
    let mut buf = read_frame(s)
        .await
        .unwrap_or_else(|| panic!("no response to {key:?} v{version}"));
    let header = ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    T::decode(&mut buf, version).unwrap()
}

async fn closed(s: &mut TcpStream) -> bool {
    read_frame(s).await.is_none()
}

fn batch(values: &[&str], producer: Option<(i64, i16, i32)>) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.map(|p| p.0).unwrap_or(-1),
            producer_epoch: producer.map(|p| p.1).unwrap_or(-1),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: producer.map(|p| p.2 + i as i32).unwrap_or(-1),
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn produce_req(topic: &str, records: Bytes, acks: i16) -> ProduceRequest {
    use kafka_protocol::messages::produce_request::*;
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])])
}

fn fetch_req(topic: &str, offset: i64, max_wait: i32) -> FetchRequest {
    use kafka_protocol::messages::fetch_request::*;
    FetchRequest::default()
        .with_max_wait_ms(max_wait)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.into())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

fn metadata_req(topics: Option<Vec<&str>>) -> MetadataRequest {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(topics.map(|t| {
            t.into_iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.into()))))
                })
                .collect()
        }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_every_version_and_fallback() {
    let b = start(&[]).await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    for v in 0..=4 {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("wire"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let resp: ApiVersionsResponse = call(&mut s, ApiKey::ApiVersions, v, &req).await;
        assert_eq!(resp.error_code, 0);
        let produce = resp.api_keys.iter().find(|k| k.api_key == 0).unwrap();
        assert_eq!((produce.min_version, produce.max_version), (0, 12));
        let fetch = resp.api_keys.iter().find(|k| k.api_key == 1).unwrap();
        assert_eq!((fetch.min_version, fetch.max_version), (4, 12));
        assert!(resp
            .api_keys
            .iter()
            .all(|k| k.api_key != 68 && k.api_key != 71));
    }
    // KIP-511: a too-new ApiVersions gets a v0 body with UNSUPPORTED_VERSION and our range
    let mut f = frame(ApiKey::ApiVersions, 4, 99, &ApiVersionsRequest::default());
    f[6..8].copy_from_slice(&9i16.to_be_bytes());
    s.write_all(&f).await.unwrap();
    let mut buf = read_frame(&mut s).await.unwrap();
    assert_eq!(buf.get_i32(), 99);
    let resp = ApiVersionsResponse::decode(&mut buf, 0).unwrap();
    assert_eq!(resp.error_code, 35);
    assert_eq!(resp.api_keys.len(), 1);
    assert_eq!(
        (
            resp.api_keys[0].api_key,
            resp.api_keys[0].min_version,
            resp.api_keys[0].max_version
        ),
        (18, 0, 4)
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_that_connection() {
    let b = start(&["socket.request.max.bytes=1000"]).await;
    // unknown API key
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let mut f = frame(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default());
    f[4..6].copy_from_slice(&68i16.to_be_bytes());
    s.write_all(&f).await.unwrap();
    assert!(closed(&mut s).await);
    // a version below what is decoded (Produce v2 is advertised but not accepted, as in Kafka 4)
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    s.write_all(&frame(
        ApiKey::Produce,
        3,
        1,
        &produce_req("t", batch(&["a"], None), 1),
    ))
    .await
    .unwrap();
    assert!(read_frame(&mut s).await.is_some());
    let mut f = frame(
        ApiKey::Produce,
        3,
        1,
        &produce_req("t", batch(&["a"], None), 1),
    );
    f[6..8].copy_from_slice(&2i16.to_be_bytes());
    s.write_all(&f).await.unwrap();
    assert!(closed(&mut s).await);
    // oversized frame: refused from the size prefix alone
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    s.write_all(&100_000i32.to_be_bytes()).await.unwrap();
    assert!(closed(&mut s).await);
    // negative size
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    s.write_all(&(-5i32).to_be_bytes()).await.unwrap();
    assert!(closed(&mut s).await);
    // a body that does not decode
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let mut f = frame(ApiKey::Metadata, 1, 1, &metadata_req(Some(vec!["x"])));
    let n = f.len();
    f.truncate(n - 3);
    let len = (f.len() - 4) as i32;
    f[0..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&f).await.unwrap();
    assert!(closed(&mut s).await);
    // huge array counts do not allocate or crash
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let mut f = frame(ApiKey::Metadata, 1, 1, &metadata_req(Some(vec![])));
    let n = f.len();
    f[n - 4..].copy_from_slice(&0x7fff_fff0i32.to_be_bytes());
    s.write_all(&f).await.unwrap();
    assert!(closed(&mut s).await);
    // and the broker still serves new connections
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let resp: ApiVersionsResponse = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("wire"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    )
    .await;
    assert_eq!(resp.error_code, 0);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_v0_empty_means_all_and_v1_null_means_all() {
    let b = start(&[]).await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let created: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        12,
        &metadata_req(Some(vec!["m1", "m2"])),
    )
    .await;
    assert!(created
        .topics
        .iter()
        .all(|t| t.error_code == 0 && !t.topic_id.is_nil()));
    let v0: MetadataResponse = call(&mut s, ApiKey::Metadata, 0, &metadata_req(Some(vec![]))).await;
    assert_eq!(v0.topics.len(), 2);
    let v1_none: MetadataResponse =
        call(&mut s, ApiKey::Metadata, 1, &metadata_req(Some(vec![]))).await;
    assert_eq!(v1_none.topics.len(), 0);
    let v1_all: MetadataResponse = call(&mut s, ApiKey::Metadata, 1, &metadata_req(None)).await;
    assert_eq!(v1_all.topics.len(), 2);
    assert_eq!(v1_all.controller_id.0, 1);
    let bad: MetadataResponse = call(
        &mut s,
        ApiKey::Metadata,
        9,
        &metadata_req(Some(vec!["no good"])),
    )
    .await;
    assert_eq!(bad.topics[0].error_code, 17);
    for v in 0..=12 {
        let r: MetadataResponse =
            call(&mut s, ApiKey::Metadata, v, &metadata_req(Some(vec!["m1"]))).await;
        assert_eq!(r.brokers[0].port as u16, b.addr.port());
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_acks_0_gets_none() {
    let b = start(&[]).await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let _: MetadataResponse =
        call(&mut s, ApiKey::Metadata, 9, &metadata_req(Some(vec!["p"]))).await;
    let mut burst = Vec::new();
    for i in 0..20 {
        if i % 5 == 4 {
            // acks=0: no response at all
            burst.extend(frame(
                ApiKey::Produce,
                9,
                1000 + i,
                &produce_req("p", batch(&["z"], None), 0),
            ));
        } else if i % 2 == 0 {
            burst.extend(frame(
                ApiKey::Produce,
                9,
                1000 + i,
                &produce_req("p", batch(&["x", "y"], None), 1),
            ));
        } else {
            burst.extend(frame(ApiKey::Metadata, 1, 1000 + i, &metadata_req(None)));
        }
    }
    s.write_all(&burst).await.unwrap();
    let expected: Vec<i32> = (0..20).filter(|i| i % 5 != 4).map(|i| 1000 + i).collect();
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        let mut f = read_frame(&mut s).await.unwrap();
        got.push(f.get_i32());
    }
    assert_eq!(got, expected);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_fetch_idempotence_and_long_poll() {
    use kafka_protocol::messages::produce_response::PartitionProduceResponse;
    let b = start(&[]).await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let _: MetadataResponse =
        call(&mut s, ApiKey::Metadata, 9, &metadata_req(Some(vec!["f"]))).await;
    let part = |r: ProduceResponse| -> PartitionProduceResponse {
        r.responses[0].partition_responses[0].clone()
    };
    // plain produce
    let r = part(
        call(
            &mut s,
            ApiKey::Produce,
            9,
            &produce_req("f", batch(&["a", "b", "c"], None), -1),
        )
        .await,
    );
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    // idempotent: in order, duplicate (same offset back), gap (45), old epoch (47)
    let pid: InitProducerIdResponse = call(
        &mut s,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default().with_transaction_timeout_ms(60000),
    )
    .await;
    let id = pid.producer_id.0;
    assert!(id >= 0);
    let first = batch(&["d", "e"], Some((id, 0, 0)));
    let r = part(
        call(
            &mut s,
            ApiKey::Produce,
            9,
            &produce_req("f", first.clone(), -1),
        )
        .await,
    );
    assert_eq!((r.error_code, r.base_offset), (0, 3));
    let r = part(call(&mut s, ApiKey::Produce, 9, &produce_req("f", first, -1)).await);
    assert_eq!((r.error_code, r.base_offset), (0, 3));
    let r = part(
        call(
            &mut s,
            ApiKey::Produce,
            9,
            &produce_req("f", batch(&["g"], Some((id, 0, 5))), -1),
        )
        .await,
    );
    assert_eq!(r.error_code, 45);
    let r = part(
        call(
            &mut s,
            ApiKey::Produce,
            9,
            &produce_req("f", batch(&["g"], Some((id, 0, 2))), -1),
        )
        .await,
    );
    assert_eq!((r.error_code, r.base_offset), (0, 5));
    // unknown topic, unknown partition
    let r = part(
        call(
            &mut s,
            ApiKey::Produce,
            9,
            &produce_req("nope", batch(&["a"], None), 1),
        )
        .await,
    );
    assert_eq!(r.error_code, 3);
    // fetch from a mid-batch offset returns the whole batch holding it ("d","e" at 3..=4)
    let f: FetchResponse = call(&mut s, ApiKey::Fetch, 11, &fetch_req("f", 4, 0)).await;
    let p = &f.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 6));
    let mut records = p.records.clone().unwrap();
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records).unwrap();
    let offsets: Vec<i64> = sets
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.offset))
        .collect();
    assert_eq!(offsets, vec![3, 4, 5]);
    assert_eq!(f.session_id, 0);
    // out of range
    let f: FetchResponse = call(&mut s, ApiKey::Fetch, 11, &fetch_req("f", 99, 0)).await;
    assert_eq!(f.responses[0].partitions[0].error_code, 1);
    // at the end: empty, non-null records after max_wait
    let f: FetchResponse = call(&mut s, ApiKey::Fetch, 4, &fetch_req("f", 6, 100)).await;
    assert_eq!(
        f.responses[0].partitions[0]
            .records
            .as_ref()
            .map(|r| r.len()),
        Some(0)
    );
    // a parked fetch is woken by an append from another connection
    let addr = b.addr;
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut p = TcpStream::connect(addr).await.unwrap();
        let _: ProduceResponse = call(
            &mut p,
            ApiKey::Produce,
            9,
            &produce_req("f", batch(&["late"], None), 1),
        )
        .await;
    });
    let f: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch_req("f", 6, 30_000)).await;
    assert!(!f.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());
    producer.await.unwrap();
    // list offsets: earliest, latest, by time, max time
    use kafka_protocol::messages::list_offsets_request::*;
    let lo = |ts: i64| {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("f")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)])])
    };
    let off = |r: ListOffsetsResponse| {
        (
            r.topics[0].partitions[0].offset,
            r.topics[0].partitions[0].timestamp,
        )
    };
    assert_eq!(
        off(call(&mut s, ApiKey::ListOffsets, 7, &lo(-2)).await).0,
        0
    );
    assert_eq!(
        off(call(&mut s, ApiKey::ListOffsets, 7, &lo(-1)).await).0,
        7
    );
    assert_eq!(
        off(call(&mut s, ApiKey::ListOffsets, 7, &lo(1_700_000_000_001)).await),
        (1, 1_700_000_000_001)
    );
    assert_eq!(
        off(call(&mut s, ApiKey::ListOffsets, 1, &lo(1_700_000_000_001)).await).0,
        1
    );
    assert_eq!(
        off(call(&mut s, ApiKey::ListOffsets, 7, &lo(1_800_000_000_000)).await).0,
        -1
    );
    b.stop().await;
}

/// Every advertised version of every API gets a decodable response (no field set that a
/// version lacks, which would make the encoder fail and the connection close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_of_every_api_answers() {
    let b = start(&[]).await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let _: MetadataResponse =
        call(&mut s, ApiKey::Metadata, 9, &metadata_req(Some(vec!["v"]))).await;
    let t = || TopicName(StrBytes::from_static_str("v"));
    macro_rules! each {
        ($key:expr, $range:expr, $req:expr, $resp:ty) => {
            for v in $range {
                let _: $resp = call(&mut s, $key, v, &$req).await;
            }
        };
    }
    each!(
        ApiKey::Produce,
        3..=12,
        produce_req("v", batch(&["a"], None), 1),
        ProduceResponse
    );
    each!(
        ApiKey::Produce,
        3..=12,
        produce_req("missing", batch(&["a"], None), 1),
        ProduceResponse
    );
    each!(ApiKey::Fetch, 4..=12, fetch_req("v", 0, 0), FetchResponse);
    each!(
        ApiKey::Fetch,
        4..=12,
        fetch_req("v", 1000, 0),
        FetchResponse
    );
    {
        use kafka_protocol::messages::list_offsets_request::*;
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(t())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        each!(ApiKey::ListOffsets, 1..=7, req, ListOffsetsResponse);
    }
    {
        use kafka_protocol::messages::create_topics_request::*;
        for v in 2..=7 {
            let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(format!("ct{v}"))))
                .with_num_partitions(if v >= 4 { -1 } else { 1 })
                .with_replication_factor(if v >= 4 { -1 } else { 1 })]);
            let r: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, v, &req).await;
            assert_eq!(r.topics[0].error_code, 0, "v{v}");
            let again: CreateTopicsResponse = call(&mut s, ApiKey::CreateTopics, v, &req).await;
            assert_eq!(again.topics[0].error_code, 36, "v{v}");
        }
    }
    {
        use kafka_protocol::messages::delete_topics_request::*;
        for v in 1..=6 {
            let name = TopicName(StrBytes::from_string(format!("ct{}", v + 1)));
            let req = if v >= 6 {
                DeleteTopicsRequest::default()
                    .with_topics(vec![DeleteTopicState::default().with_name(Some(name))])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![name])
            };
            let r: DeleteTopicsResponse = call(&mut s, ApiKey::DeleteTopics, v, &req).await;
            assert!(
                r.responses[0].error_code == 0 || v == 6,
                "v{v}: {}",
                r.responses[0].error_code
            );
        }
    }
    {
        use kafka_protocol::messages::describe_configs_request::*;
        let req = |v: i16| {
            DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_include_documentation(v >= 3)
                .with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_static_str("v")),
                    DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(StrBytes::from_static_str("1")),
                ])
        };
        for v in 1..=4 {
            let r: DescribeConfigsResponse =
                call(&mut s, ApiKey::DescribeConfigs, v, &req(v)).await;
            assert!(
                r.results[0]
                    .configs
                    .iter()
                    .any(|c| c.name.as_str() == "retention.ms"),
                "v{v}: {:?}",
                r.results[0]
            );
            assert!(r.results[1]
                .configs
                .iter()
                .any(|c| c.name.as_str() == "num.partitions"));
        }
    }
    {
        use kafka_protocol::messages::alter_configs_request::*;
        let req =
            AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("v"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str("1000")))])]);
        each!(ApiKey::AlterConfigs, 0..=2, req, AlterConfigsResponse);
    }
    {
        use kafka_protocol::messages::incremental_alter_configs_request::*;
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("v"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_config_operation(1)]),
        ]);
        each!(
            ApiKey::IncrementalAlterConfigs,
            0..=1,
            req,
            IncrementalAlterConfigsResponse
        );
    }
    {
        use kafka_protocol::messages::create_partitions_request::*;
        for v in 0..=3 {
            let req = CreatePartitionsRequest::default().with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(t())
                    .with_count(2 + v as i32),
            ]);
            let r: CreatePartitionsResponse = call(&mut s, ApiKey::CreatePartitions, v, &req).await;
            assert_eq!(r.results[0].error_code, 0, "v{v}");
        }
    }
    {
        use kafka_protocol::messages::delete_records_request::*;
        let req = DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
            .with_name(t())
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(1)])]);
        each!(ApiKey::DeleteRecords, 0..=2, req, DeleteRecordsResponse);
    }
    {
        use kafka_protocol::messages::offset_for_leader_epoch_request::*;
        let req = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(t())
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_leader_epoch(0)]),
        ]);
        each!(
            ApiKey::OffsetForLeaderEpoch,
            2..=4,
            req,
            OffsetForLeaderEpochResponse
        );
    }
    for v in 0..=5 {
        let req = if v >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("g")])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))
        };
        let r: FindCoordinatorResponse = call(&mut s, ApiKey::FindCoordinator, v, &req).await;
        if v >= 4 {
            assert_eq!(r.coordinators[0].port as u16, b.addr.port());
        } else {
            assert_eq!(r.port as u16, b.addr.port());
        }
    }
    each!(
        ApiKey::InitProducerId,
        0..=5,
        InitProducerIdRequest::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
        InitProducerIdResponse
    );
    each!(
        ApiKey::DescribeCluster,
        0..=2,
        DescribeClusterRequest::default().with_endpoint_type(1),
        DescribeClusterResponse
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_messages_1_group_commits_concurrent_producers() {
    const PRODUCERS: usize = 8;
    const EACH: usize = 25;
    let b = start(&["log.flush.interval.messages=1"]).await;
    let mut s = TcpStream::connect(b.addr).await.unwrap();
    let _: MetadataResponse =
        call(&mut s, ApiKey::Metadata, 9, &metadata_req(Some(vec!["gc"]))).await;
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let addr = b.addr;
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut acked = Vec::new();
            for i in 0..EACH {
                let v = format!("p{p}-{i}");
                let r: ProduceResponse = call(
                    &mut s,
                    ApiKey::Produce,
                    9,
                    &produce_req("gc", batch(&[&v], None), -1),
                )
                .await;
                let r = &r.responses[0].partition_responses[0];
                assert_eq!(r.error_code, 0, "{:?}", r.error_message);
                acked.push(r.base_offset);
            }
            acked
        }));
    }
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.extend(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    offsets.sort_unstable();
    let appends = PRODUCERS * EACH;
    assert_eq!(offsets, (0..appends as i64).collect::<Vec<_>>());
    let topic = b.broker.topic("gc").unwrap();
    let part = topic.partition(0).unwrap();
    // Every acknowledged record is on disk.
    assert!(part.recovery_point() >= appends as i64);
    // Group commit: fewer fsyncs than appends, but at least one.
    let fsyncs = part.fsync_count();
    assert!(fsyncs >= 1 && fsyncs < appends as u64, "{fsyncs} fsyncs");
    b.stop().await;
}
