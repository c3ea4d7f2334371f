//! Group coordinator wire tests: an in-process broker on 127.0.0.1:0, spoken to with raw
//! frames (JoinGroup/SyncGroup/Heartbeat/LeaveGroup, OffsetCommit/OffsetFetch incl. the v8
//! multi-group form, ListGroups/DescribeGroups/DeleteGroups/OffsetDelete, restart).

use std::path::Path;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use flumen_broker::{BrokerConfig, Server};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct TestBroker {
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(dir: &Path) -> TestBroker {
    let o: Vec<String> = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".into(),
        format!("log.dirs={}", dir.display()),
        "group.initial.rebalance.delay.ms=0".into(),
        "group.min.session.timeout.ms=100".into(),
    ];
    let (config, unknown) = BrokerConfig::load(None, &o).unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    let server = Server::build(config).await.unwrap();
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    let task = tokio::spawn(async move { server.run(s).await.unwrap() });
    TestBroker {
        addr,
        shutdown,
        task,
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

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

async fn call<R: Encodable, T: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &R,
) -> T {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(3)
        .with_client_id(Some(sb("groups-wire")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    req.encode(&mut body, version).unwrap();
    let mut out = Vec::with_capacity(body.len() + 4);
    out.put_i32(body.len() as i32);
    out.extend_from_slice(&body);
    s.write_all(&out).await.unwrap();
    let mut len = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut len))
        .await
        .expect("answer in time")
        .unwrap();
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    let mut buf = Bytes::from(buf);
    let h = ResponseHeader::decode(&mut buf, key.response_header_version(version)).unwrap();
    assert_eq!(h.correlation_id, 3);
    T::decode(&mut buf, version).unwrap()
}

async fn create_topic(s: &mut TcpStream, name: &str, partitions: i32) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(sb(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let r: CreateTopicsResponse = call(s, ApiKey::CreateTopics, 5, &req).await;
    assert_eq!(r.topics[0].error_code, 0);
}

fn join_req(group: &str, member: &str) -> JoinGroupRequest {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    JoinGroupRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(5000)
        .with_member_id(sb(member))
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(Bytes::from_static(
                b"\x00\x00\x00\x00\x00\x01\x00\x01t\xff\xff\xff\xff",
            ))])
}

fn commit_req(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(i32, i64, &str)],
) -> OffsetCommitRequest {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let partitions = offsets
        .iter()
        .map(|(p, o, m)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(sb(m)))
        })
        .collect();
    OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_partitions(partitions)])
}

/// A group id and optionally one topic with partitions (`None`: every committed partition).
type FetchSpec<'a> = (&'a str, Option<(&'a str, Vec<i32>)>);

fn fetch_v8(groups: &[FetchSpec<'_>]) -> OffsetFetchRequest {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    OffsetFetchRequest::default().with_groups(
        groups
            .iter()
            .map(|(g, t)| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(sb(g)))
                    .with_topics(t.clone().map(|(t, ps)| {
                        vec![OffsetFetchRequestTopics::default()
                            .with_name(TopicName(sb(t)))
                            .with_partition_indexes(ps)]
                    }))
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_sync_heartbeat_leave_and_describe() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let mut s = b.connect().await;
    let first: JoinGroupResponse = call(&mut s, ApiKey::JoinGroup, 5, &join_req("g", "")).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let member = first.member_id.to_string();
    assert!(member.starts_with("groups-wire-"), "{member}");
    let j: JoinGroupResponse = call(&mut s, ApiKey::JoinGroup, 5, &join_req("g", &member)).await;
    assert_eq!(
        (j.error_code, j.generation_id, j.leader.as_str()),
        (0, 1, member.as_str())
    );
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    assert_eq!(j.members.len(), 1);
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_generation_id(1)
        .with_member_id(sb(&member))
        .with_protocol_type(Some(sb("consumer")))
        .with_protocol_name(Some(sb("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(sb(&member))
            .with_assignment(Bytes::from_static(b"assigned"))]);
    let r: SyncGroupResponse = call(&mut s, ApiKey::SyncGroup, 5, &sync).await;
    assert_eq!((r.error_code, &r.assignment[..]), (0, &b"assigned"[..]));
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_generation_id(1)
        .with_member_id(sb(&member));
    let r: HeartbeatResponse = call(&mut s, ApiKey::Heartbeat, 4, &hb).await;
    assert_eq!(r.error_code, 0);
    let r: HeartbeatResponse = call(
        &mut s,
        ApiKey::Heartbeat,
        4,
        &hb.clone().with_generation_id(9),
    )
    .await;
    assert_eq!(r.error_code, 22, "ILLEGAL_GENERATION");

    let d: DescribeGroupsResponse = call(
        &mut s,
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(sb("g")), GroupId(sb("nope"))]),
    )
    .await;
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].protocol_data.as_str(), "range");
    assert_eq!(&d.groups[0].members[0].member_assignment[..], b"assigned");
    // Kafka's form of the member's address.
    assert_eq!(d.groups[0].members[0].client_host.as_str(), "/127.0.0.1");
    assert_eq!(d.groups[1].group_state.as_str(), "Dead");

    let l: ListGroupsResponse = call(
        &mut s,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default().with_states_filter(vec![sb("Empty")]),
    )
    .await;
    assert!(l.groups.is_empty());

    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(sb("g")))
        .with_members(vec![
            MemberIdentity::default().with_member_id(sb(&member)),
            MemberIdentity::default().with_member_id(sb("ghost")),
        ]);
    let r: LeaveGroupResponse = call(&mut s, ApiKey::LeaveGroup, 3, &leave).await;
    assert_eq!(
        r.members.iter().map(|m| m.error_code).collect::<Vec<_>>(),
        vec![0, 25]
    );
    let l: ListGroupsResponse = call(
        &mut s,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default().with_states_filter(vec![sb("Empty")]),
    )
    .await;
    assert_eq!(l.groups.len(), 1);
    assert_eq!(l.groups[0].group_state.as_str(), "Empty");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_commit_fetch_delete_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path()).await;
    let mut s = b.connect().await;
    create_topic(&mut s, "t", 3).await;
    let r: OffsetCommitResponse = call(
        &mut s,
        ApiKey::OffsetCommit,
        8,
        &commit_req(
            "g1",
            -1,
            "",
            "t",
            &[(0, 10, "zero"), (1, 11, ""), (7, 1, "")],
        ),
    )
    .await;
    let codes: Vec<i16> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, 0, 3], "partition 7 does not exist");
    let r: OffsetCommitResponse = call(
        &mut s,
        ApiKey::OffsetCommit,
        8,
        &commit_req("g2", -1, "", "t", &[(2, 5, "two")]),
    )
    .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let big = "x".repeat(5000);
    let r: OffsetCommitResponse = call(
        &mut s,
        ApiKey::OffsetCommit,
        8,
        &commit_req("g2", -1, "", "t", &[(0, 1, &big)]),
    )
    .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code, 12,
        "OFFSET_METADATA_TOO_LARGE"
    );
    // A commit with a generation to an unknown group is refused.
    let r: OffsetCommitResponse = call(
        &mut s,
        ApiKey::OffsetCommit,
        8,
        &commit_req("g3", 4, "m", "t", &[(0, 1, "")]),
    )
    .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 22);
    b.stop().await;

    let b = start(dir.path()).await;
    let mut s = b.connect().await;
    let f: OffsetFetchResponse = call(
        &mut s,
        ApiKey::OffsetFetch,
        8,
        &fetch_v8(&[
            ("g1", Some(("t", vec![0, 1, 2]))),
            ("g2", None),
            ("unknown", None),
        ]),
    )
    .await;
    let g1: Vec<(i32, i64, String)> = f.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.metadata.as_deref().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        g1,
        vec![
            (0, 10, "zero".into()),
            (1, 11, "".into()),
            (2, -1, "".into())
        ]
    );
    assert_eq!(f.groups[1].topics[0].partitions[0].committed_offset, 5);
    assert!(f.groups[2].topics.is_empty());
    // v1–7 single group form, null topics (v2+) meaning all.
    let f: OffsetFetchResponse = call(
        &mut s,
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(sb("g1")))
            .with_topics(None),
    )
    .await;
    assert_eq!(f.topics[0].partitions.len(), 2);

    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let del = OffsetDeleteRequest::default()
        .with_group_id(GroupId(sb("g1")))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(sb("t")))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let r: OffsetDeleteResponse = call(&mut s, ApiKey::OffsetDelete, 0, &del).await;
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0));
    let r: OffsetDeleteResponse = call(
        &mut s,
        ApiKey::OffsetDelete,
        0,
        &del.clone().with_group_id(GroupId(sb("nope"))),
    )
    .await;
    assert_eq!(r.error_code, 69, "GROUP_ID_NOT_FOUND");

    let r: DeleteGroupsResponse = call(
        &mut s,
        ApiKey::DeleteGroups,
        2,
        &DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(sb("g2")), GroupId(sb("nope"))]),
    )
    .await;
    assert_eq!(
        r.results.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        vec![0, 69]
    );
    b.stop().await;

    let b = start(dir.path()).await;
    let mut s = b.connect().await;
    let f: OffsetFetchResponse = call(
        &mut s,
        ApiKey::OffsetFetch,
        8,
        &fetch_v8(&[("g1", None), ("g2", None)]),
    )
    .await;
    let left: Vec<(i32, i64)> = f.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(left, vec![(1, 11)], "the deleted offset stays deleted");
    assert!(
        f.groups[1].topics.is_empty(),
        "the deleted group stays deleted"
    );
    b.stop().await;
}
