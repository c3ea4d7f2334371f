//! State-machine tests: drive [`Group`] directly with explicit instants.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::state::*;

fn limits(delay_ms: u64) -> Limits {
    Limits {
        initial_rebalance_delay: Duration::from_millis(delay_ms),
        min_session_timeout_ms: 100,
        max_session_timeout_ms: 60_000,
        max_size: 100,
    }
}

fn params(member: &str, protocols: &[&str]) -> JoinParams {
    JoinParams {
        member_id: member.into(),
        client_id: "c".into(),
        session_timeout_ms: 1000,
        rebalance_timeout_ms: 2000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(p.to_string())))
            .collect(),
        require_known_member_id: true,
        ..Default::default()
    }
}

fn ready<T>(p: Pending<T>) -> T {
    match p {
        Pending::Ready(v) => v,
        Pending::Wait(_) => panic!("expected an immediate answer"),
    }
}

/// An immediate answer or one already sent through the channel.
fn answer<T>(p: Pending<T>) -> T {
    match p {
        Pending::Ready(v) => v,
        Pending::Wait(mut rx) => rx.try_recv().expect("answer already sent"),
    }
}

fn wait<T>(p: Pending<T>) -> tokio::sync::oneshot::Receiver<T> {
    match p {
        Pending::Wait(rx) => rx,
        Pending::Ready(_) => panic!("expected a delayed answer"),
    }
}

/// Joins a dynamic member through the MEMBER_ID_REQUIRED round trip; returns its receiver.
fn join_new(
    g: &mut Group,
    name: &str,
    protocols: &[&str],
    now: Instant,
    l: &Limits,
) -> (String, tokio::sync::oneshot::Receiver<JoinResult>) {
    let first = ready(g.join(params("", protocols), name.into(), now, l));
    assert_eq!(first.error, ResponseError::MemberIdRequired.code());
    assert_eq!(first.member_id, name);
    let rx = wait(g.join(params(name, protocols), "unused".into(), now, l));
    (name.to_string(), rx)
}

#[test]
fn first_rebalance_waits_for_the_initial_delay_then_elects_the_first_member_leader() {
    let l = limits(100);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let (a, mut ra) = join_new(&mut g, "a", &["range"], t0, &l);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let (b, mut rb) = join_new(&mut g, "b", &["range"], t0 + Duration::from_millis(50), &l);
    // Everyone joined, but the initial delay (extended by b's join) has not passed.
    g.tick(t0 + Duration::from_millis(120));
    assert!(ra.try_recv().is_err());
    g.tick(t0 + Duration::from_millis(150));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let ja = ra.try_recv().unwrap();
    let jb = rb.try_recv().unwrap();
    assert_eq!(
        (ja.error, ja.generation_id, ja.leader.as_str()),
        (0, 1, a.as_str())
    );
    assert_eq!(ja.members.len(), 2, "the leader gets the member list");
    assert!(jb.members.is_empty(), "followers do not");
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));
    // Follower syncs first and waits; the leader's sync releases both.
    let mut sb = wait(g.sync(&b, None, 1, (None, None), vec![], t0));
    let assignments = vec![
        (a.clone(), Bytes::from_static(b"A")),
        (b.clone(), Bytes::from_static(b"B")),
    ];
    let mut sa = wait(g.sync(&a, None, 1, (None, None), assignments, t0));
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(sa.try_recv().unwrap().assignment, Bytes::from_static(b"A"));
    assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from_static(b"B"));
    assert_eq!(g.heartbeat(&b, None, 1, t0), 0);
    assert_eq!(
        g.heartbeat(&b, None, 0, t0),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        g.heartbeat("zz", None, 1, t0),
        ResponseError::UnknownMemberId.code()
    );
}

#[test]
fn a_new_member_triggers_a_rebalance_and_members_that_do_not_rejoin_are_removed() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let (a, mut ra) = join_new(&mut g, "a", &["range"], t0, &l);
    g.tick(t0);
    assert_eq!(ra.try_recv().unwrap().generation_id, 1);
    answer(g.sync(
        &a,
        None,
        1,
        (None, None),
        vec![(a.clone(), Bytes::from_static(b"x"))],
        t0,
    ));
    assert_eq!(g.state, GroupState::Stable);
    let (_b, mut rb) = join_new(&mut g, "b", &["range"], t0, &l);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&a, None, 1, t0),
        ResponseError::RebalanceInProgress.code()
    );
    // a never rejoins: at the rebalance timeout (2 s) it is dropped and b leads generation 2.
    g.tick(t0 + Duration::from_millis(500));
    assert!(rb.try_recv().is_err());
    g.tick(t0 + Duration::from_millis(2000));
    let jb = rb.try_recv().unwrap();
    assert_eq!((jb.generation_id, jb.leader.as_str()), (2, "b"));
    assert!(!g.members.contains_key(&a));
}

#[test]
fn everyone_rejoining_completes_the_join_without_waiting() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let (a, mut ra) = join_new(&mut g, "a", &["range"], t0, &l);
    g.tick(t0);
    ra.try_recv().unwrap();
    answer(g.sync(&a, None, 1, (None, None), vec![], t0));
    let (b, _rb) = join_new(&mut g, "b", &["range"], t0, &l);
    let mut ra2 = wait(g.join(params(&a, &["range"]), "x".into(), t0, &l));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!(ra2.try_recv().unwrap().generation_id, 2);
    assert!(g.members.contains_key(&b));
}

#[test]
fn leave_and_session_expiry_rebalance_the_rest() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let (a, _ra) = join_new(&mut g, "a", &["range"], t0, &l);
    let (b, _rb) = join_new(&mut g, "b", &["range"], t0, &l);
    let (c, _rc) = join_new(&mut g, "c", &["range"], t0, &l);
    g.tick(t0);
    let _sb = g.sync(&b, None, 1, (None, None), vec![], t0);
    let _sc = g.sync(&c, None, 1, (None, None), vec![], t0);
    answer(g.sync(&a, None, 1, (None, None), vec![], t0));
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.leave(&c, None, t0), 0);
    assert_eq!(g.leave(&c, None, t0), ResponseError::UnknownMemberId.code());
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // a rejoins, b stays silent past its session timeout (1 s) and expires.
    let mut ra = wait(g.join(params(&a, &["range"]), "x".into(), t0, &l));
    let expired = g.tick(t0 + Duration::from_millis(1001));
    assert_eq!(expired, vec![b.clone()]);
    let j = ra.try_recv().unwrap();
    assert_eq!((j.generation_id, j.members.len()), (2, 1));
    // The last member leaving empties the group.
    answer(g.sync(&a, None, 2, (None, None), vec![], t0));
    assert_eq!(g.leave(&a, None, t0), 0);
    assert_eq!(g.state, GroupState::Empty);
    assert!(g.empty_since_ms.is_some());
}

#[test]
fn protocol_selection_takes_the_most_voted_common_protocol() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    join_new(&mut g, "a", &["range", "roundrobin"], t0, &l);
    join_new(&mut g, "b", &["roundrobin", "range"], t0, &l);
    join_new(&mut g, "c", &["roundrobin", "sticky", "range"], t0, &l);
    assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
    // A member sharing no protocol with the group is refused.
    let r = ready(g.join(params("", &["other"]), "d".into(), t0, &l));
    assert_eq!(r.error, ResponseError::InconsistentGroupProtocol.code());
    let mut p = params("", &["range"]);
    p.protocol_type = "connect".into();
    assert_eq!(
        ready(g.join(p, "e".into(), t0, &l)).error,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

#[test]
fn session_timeout_outside_the_configured_range_is_refused() {
    let l = limits(0);
    let mut g = Group::new("g");
    let mut p = params("", &["range"]);
    p.session_timeout_ms = 10;
    let r = ready(g.join(p, "a".into(), Instant::now(), &l));
    assert_eq!(r.error, ResponseError::InvalidSessionTimeout.code());
}

#[test]
fn old_versions_get_a_member_id_without_the_round_trip_and_unknown_ids_are_refused() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let mut p = params("", &["range"]);
    p.require_known_member_id = false;
    let mut rx = wait(g.join(p, "gen".into(), t0, &l));
    g.tick(t0);
    assert_eq!(rx.try_recv().unwrap().member_id, "gen");
    let r = ready(g.join(params("nobody", &["range"]), "x".into(), t0, &l));
    assert_eq!(r.error, ResponseError::UnknownMemberId.code());
}

#[test]
fn pending_member_ids_expire_after_the_session_timeout() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    ready(g.join(params("", &["range"]), "p".into(), t0, &l));
    assert!(g.pending.contains_key("p"));
    g.tick(t0 + Duration::from_millis(1001));
    assert!(g.pending.is_empty());
    let r = ready(g.join(params("p", &["range"]), "x".into(), t0, &l));
    assert_eq!(r.error, ResponseError::UnknownMemberId.code());
}

#[test]
fn static_member_rejoining_replaces_the_old_id_without_a_rebalance_and_fences_it() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let mut pa = params("", &["range"]);
    pa.group_instance_id = Some("i-a".into());
    let mut ra = wait(g.join(pa.clone(), "a1".into(), t0, &l));
    let (b, _rb) = join_new(&mut g, "b", &["range"], t0, &l);
    g.tick(t0);
    let ja = ra.try_recv().unwrap();
    assert_eq!(ja.leader, "a1");
    // b is the follower; make b static-less and a the leader. Stabilise.
    let _sb = g.sync(&b, None, 1, (None, None), vec![], t0);
    let assignments = vec![
        ("a1".to_string(), Bytes::from_static(b"A")),
        (b.clone(), Bytes::from_static(b"B")),
    ];
    answer(g.sync("a1", Some("i-a"), 1, (None, None), assignments, t0));
    assert_eq!(g.state, GroupState::Stable);
    // A static follower: give b an instance id by rejoining as static member "i-b".
    let mut pb = params("", &["range"]);
    pb.group_instance_id = Some("i-b".into());
    // i-b is unknown, so it joins as a new member and triggers a rebalance.
    let _rb2 = wait(g.join(pb.clone(), "b2".into(), t0, &l));
    let mut ra2 = wait(g.join(
        params("a1", &["range"]).with_instance("i-a"),
        "x".into(),
        t0,
        &l,
    ));
    g.tick(t0 + Duration::from_millis(2001));
    assert_eq!(ra2.try_recv().unwrap().generation_id, 2);
    let _sb2 = g.sync("b2", Some("i-b"), 2, (None, None), vec![], t0);
    let assignments = vec![("b2".to_string(), Bytes::from_static(b"B2"))];
    answer(g.sync("a1", Some("i-a"), 2, (None, None), assignments, t0));
    assert_eq!(g.state, GroupState::Stable);
    // i-b restarts with an empty member id: new id, same assignment, no rebalance.
    let r = ready(g.join(pb, "b3".into(), t0, &l));
    assert_eq!(
        (r.error, r.generation_id, r.member_id.as_str()),
        (0, 2, "b3")
    );
    assert_eq!(g.state, GroupState::Stable);
    let s = answer(g.sync("b3", Some("i-b"), 2, (None, None), vec![], t0));
    assert_eq!(s.assignment, Bytes::from_static(b"B2"));
    // The old incarnation is fenced everywhere.
    assert_eq!(
        g.heartbeat("b2", Some("i-b"), 2, t0),
        ResponseError::FencedInstanceId.code()
    );
    assert_eq!(
        g.check_commit("b2", Some("i-b"), 2, t0),
        ResponseError::FencedInstanceId.code()
    );
    assert_eq!(
        g.leave("b2", Some("i-b"), t0),
        ResponseError::FencedInstanceId.code()
    );
    // Batch leave by instance id alone removes the current incarnation.
    assert_eq!(g.leave("", Some("i-b"), t0), 0);
    assert!(!g.members.contains_key("b3"));
}

#[test]
fn commits_are_checked_against_member_and_generation() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    // Simple commits are allowed while the group has no members.
    assert_eq!(g.check_commit("", None, -1, t0), 0);
    let (a, _ra) = join_new(&mut g, "a", &["range"], t0, &l);
    g.tick(t0);
    assert_eq!(
        g.check_commit(&a, None, 1, t0),
        ResponseError::RebalanceInProgress.code()
    );
    answer(g.sync(&a, None, 1, (None, None), vec![], t0));
    assert_eq!(g.check_commit(&a, None, 1, t0), 0);
    assert_eq!(
        g.check_commit(&a, None, 7, t0),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        g.check_commit("", None, -1, t0),
        ResponseError::UnknownMemberId.code()
    );
}

#[test]
fn a_rebalance_during_completing_fails_waiting_syncs() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let (_a, _ra) = join_new(&mut g, "a", &["range"], t0, &l);
    let (b, _rb) = join_new(&mut g, "b", &["range"], t0, &l);
    g.tick(t0);
    let mut sb = wait(g.sync(&b, None, 1, (None, None), vec![], t0));
    join_new(&mut g, "c", &["range"], t0, &l);
    assert_eq!(
        sb.try_recv().unwrap().error,
        ResponseError::RebalanceInProgress.code()
    );
}

trait WithInstance {
    fn with_instance(self, i: &str) -> Self;
}

impl WithInstance for JoinParams {
    fn with_instance(mut self, i: &str) -> Self {
        self.group_instance_id = Some(i.into());
        self
    }
}

mod coordinator {
    use super::super::{GroupConfig, GroupCoordinator, OffsetCommit};
    use super::*;

    fn commit(topic: &str, partition: i32, offset: i64, commit_ms: i64) -> OffsetCommit {
        OffsetCommit {
            topic: topic.into(),
            partition,
            committed: CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_ms,
            },
        }
    }

    #[test]
    fn offsets_of_empty_groups_expire_after_the_retention_and_stay_expired() {
        let dir = tempfile::tempdir().unwrap();
        let config = GroupConfig {
            offsets_retention_minutes: 1,
            ..Default::default()
        };
        let c = GroupCoordinator::open(dir.path(), config.clone()).unwrap();
        assert_eq!(c.check_commit("old", "", None, -1), 0);
        c.commit(
            "old",
            vec![commit("t", 0, 5, 1_000), commit("t", 1, 6, 100_000)],
        )
        .unwrap();
        c.commit("fresh", vec![commit("t", 0, 7, 100_000)]).unwrap();
        // At 61.5 s only the commit made at 1 s is older than one minute.
        c.expire_offsets(61_500).unwrap();
        assert_eq!(c.inspect("old", |g| g.unwrap().offsets.len()), 1);
        c.expire_offsets(160_001).unwrap();
        assert!(
            c.inspect("old", |g| g.is_none()),
            "a group left with nothing is removed"
        );
        assert!(c.inspect("fresh", |g| g.is_none()));
        drop(c);
        let c = GroupCoordinator::open(dir.path(), config).unwrap();
        assert!(c.inspect_all(|all| all.count()) == 0);
    }

    #[test]
    fn offsets_of_groups_with_members_do_not_expire() {
        let dir = tempfile::tempdir().unwrap();
        let config = GroupConfig {
            offsets_retention_minutes: 1,
            min_session_timeout_ms: 100,
            ..Default::default()
        };
        let c = GroupCoordinator::open(dir.path(), config).unwrap();
        c.commit("g", vec![commit("t", 0, 5, 0)]).unwrap();
        let mut p = params("", &["range"]);
        p.require_known_member_id = false;
        let _rx = c.join("g", p);
        c.expire_offsets(1_000_000).unwrap();
        assert_eq!(c.inspect("g", |g| g.unwrap().offsets.len()), 1);
        assert_eq!(
            c.delete_group("g").unwrap(),
            ResponseError::NonEmptyGroup.code()
        );
    }

    #[test]
    fn a_refused_first_join_leaves_no_group() {
        let dir = tempfile::tempdir().unwrap();
        let c = GroupCoordinator::open(dir.path(), GroupConfig::default()).unwrap();
        let mut p = params("", &["range"]);
        p.session_timeout_ms = 10;
        let r = ready(c.join("g", p));
        assert_eq!(r.error, ResponseError::InvalidSessionTimeout.code());
        assert!(c.inspect("g", |g| g.is_none()));
    }
}

mod config {
    use crate::config::BrokerConfig;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn group_keys_are_known_have_kafka_defaults_and_are_validated() {
        let (c, unknown) = BrokerConfig::from_properties(&[]).unwrap();
        assert!(unknown.is_empty());
        assert_eq!(c.groups.initial_rebalance_delay_ms, 3000);
        assert_eq!(c.groups.min_session_timeout_ms, 6000);
        assert_eq!(c.groups.offsets_retention_minutes, 10080);
        let (c, unknown) = BrokerConfig::from_properties(&pairs(&[
            ("group.initial.rebalance.delay.ms", "0"),
            ("group.min.session.timeout.ms", "500"),
            ("offsets.retention.minutes", "5"),
            ("offset.metadata.max.bytes", "10"),
        ]))
        .unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(
            (
                c.groups.initial_rebalance_delay_ms,
                c.groups.min_session_timeout_ms
            ),
            (0, 500)
        );
        assert_eq!(
            (
                c.groups.offsets_retention_minutes,
                c.groups.offset_metadata_max_bytes
            ),
            (5, 10)
        );
        let err =
            BrokerConfig::from_properties(&pairs(&[("group.initial.rebalance.delay.ms", "soon")]))
                .unwrap_err();
        assert!(
            err.to_string().contains("group.initial.rebalance.delay.ms"),
            "{err}"
        );
        let err = BrokerConfig::from_properties(&pairs(&[
            ("group.min.session.timeout.ms", "9000"),
            ("group.max.session.timeout.ms", "8000"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("group.max.session.timeout.ms"),
            "{err}"
        );
    }
}

#[test]
fn a_static_leader_restart_gets_the_members_with_skip_assignment_and_no_rebalance() {
    let l = limits(0);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let pa = params("", &["range"]).with_instance("i-a");
    let mut ra = wait(g.join(pa.clone(), "a1".into(), t0, &l));
    let (b, _rb) = join_new(&mut g, "b", &["range"], t0, &l);
    g.tick(t0);
    assert_eq!(ra.try_recv().unwrap().leader, "a1");
    let _sb = g.sync(&b, None, 1, (None, None), vec![], t0);
    let assignments = vec![
        ("a1".to_string(), Bytes::from_static(b"A")),
        (b.clone(), Bytes::from_static(b"B")),
    ];
    answer(g.sync("a1", Some("i-a"), 1, (None, None), assignments, t0));
    let r = ready(g.join(pa, "a2".into(), t0, &l));
    assert_eq!(
        (
            r.error,
            r.generation_id,
            r.leader.as_str(),
            r.skip_assignment
        ),
        (0, 1, "a2", true)
    );
    assert_eq!(r.members.len(), 2);
    assert_eq!(g.state, GroupState::Stable);
    // Whatever the returning leader sends, Stable keeps the stored assignments.
    let s = answer(g.sync(
        "a2",
        Some("i-a"),
        1,
        (None, None),
        vec![(b.clone(), Bytes::from_static(b"X"))],
        t0,
    ));
    assert_eq!(s.assignment, Bytes::from_static(b"A"));
    assert_eq!(g.members[&b].assignment, Bytes::from_static(b"B"));
}
