//! One group's classic-protocol state machine (Kafka's `GroupMetadata` + the coordinator's
//! join/sync/heartbeat/leave rules), kept free of I/O and clocks so it is unit-tested directly.
//!
//! States: Empty → PreparingRebalance → CompletingRebalance → Stable, and back to
//! PreparingRebalance whenever membership or a subscription changes. Dead groups are removed
//! from the coordinator's map, so "Dead" is only ever reported, never stored.
//!
//! Delayed answers: a JoinGroup waits until the join phase completes and a follower's
//! SyncGroup waits for the leader's; each waiting member holds a tokio oneshot sender here and
//! the handler awaits the receiver (never holding the coordinator's lock).
//!
//! Timing: every method takes `now`; the coordinator's run loop calls [`Group::tick`] at the
//! earliest [`Group::next_deadline`] (session expiry, pending-member expiry, the end of the
//! join phase, including `group.initial.rebalance.delay.ms` for the first rebalance of an
//! Empty group).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

/// Error code 0.
pub const NONE: i16 = 0;

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Kafka's group states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Join finished; waiting for the leader's SyncGroup.
    CompletingRebalance,
    /// Assignment distributed.
    Stable,
    /// Deleted (only reported).
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Timing and size limits of the coordinator (broker config keys in [`crate::group::GroupConfig`]).
#[derive(Clone, Debug)]
pub struct Limits {
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
}

/// A JoinGroup request, decoded.
#[derive(Clone, Debug, Default)]
pub struct JoinParams {
    /// Member id ("" on a first join).
    pub member_id: String,
    /// `group.instance.id` (static membership, v5+).
    pub group_instance_id: Option<String>,
    /// Client id from the request header.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v1+; the session timeout on v0).
    pub rebalance_timeout_ms: i32,
    /// Protocol type ("consumer", "connect", …).
    pub protocol_type: String,
    /// Protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a dynamic member must round-trip MEMBER_ID_REQUIRED first (KIP-394).
    pub require_known_member_id: bool,
}

/// A member in the JoinGroup response of the leader.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Metadata for the selected protocol.
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JoinResult {
    /// Error code.
    pub error: i16,
    /// Generation.
    pub generation_id: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// Leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Members (leader only).
    pub members: Vec<JoinMember>,
    /// KIP-814: a static leader rejoined without a rebalance.
    pub skip_assignment: bool,
}

impl JoinResult {
    fn error(e: ResponseError, member_id: &str) -> JoinResult {
        JoinResult {
            error: code(e),
            generation_id: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncResult {
    /// Error code.
    pub error: i16,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment (never null on the wire).
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(e: ResponseError) -> SyncResult {
        SyncResult {
            error: code(e),
            ..Default::default()
        }
    }
}

/// An answer now or a receiver for a delayed one.
#[derive(Debug)]
pub enum Pending<T> {
    /// Answered immediately.
    Ready(T),
    /// Answered when the group moves on.
    Wait(oneshot::Receiver<T>),
}

/// A group member.
#[derive(Debug)]
pub struct Member {
    /// Member id.
    pub id: String,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Rebalance timeout.
    pub rebalance_timeout: Duration,
    /// Protocols in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// Assignment from the last SyncGroup of the leader.
    pub assignment: Bytes,
    /// Session expiry.
    pub deadline: Instant,
    /// Order of first join (the leader is the earliest).
    pub seq: u64,
    join_tx: Option<oneshot::Sender<JoinResult>>,
    sync_tx: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// True while its JoinGroup is waiting.
    pub fn awaiting_join(&self) -> bool {
        self.join_tx.is_some()
    }
}

/// A committed offset.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommittedOffset {
    /// The offset.
    pub offset: i64,
    /// Leader epoch (-1 if unknown).
    pub leader_epoch: i32,
    /// The commit's metadata string.
    pub metadata: String,
    /// Commit time, ms since the epoch.
    pub commit_ms: i64,
}

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// When the group last became Empty (wall clock ms), for offset retention; `None` after a
    /// restart (then commit times alone decide).
    pub empty_since_ms: Option<i64>,
    /// Generation.
    pub generation: i32,
    /// Protocol type of the members.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader's member id.
    pub leader: Option<String>,
    /// Members by id.
    pub members: HashMap<String, Member>,
    /// KIP-394 member ids handed out but not yet used, with their expiry.
    pub pending: HashMap<String, Instant>,
    /// Static instance id → member id.
    pub static_members: HashMap<String, String>,
    /// Committed offsets by (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    join_deadline: Option<Instant>,
    initial_limit: Option<Instant>,
    next_seq: u64,
}

impl Group {
    /// A new Empty group.
    pub fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            empty_since_ms: None,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: HashMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            offsets: BTreeMap::new(),
            join_deadline: None,
            initial_limit: None,
            next_seq: 0,
        }
    }

    /// Members in join order.
    pub fn members_in_order(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.seq);
        v
    }

    /// Protocols every member supports (in the first member's order).
    fn candidates(&self) -> Vec<String> {
        let members = self.members_in_order();
        let Some(first) = members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect()
    }

    /// Kafka's selection: each member votes for its most preferred candidate; most votes win
    /// (ties go to the first member's preference order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let mut best: Option<(String, usize)> = None;
        for (c, n) in votes {
            if best.as_ref().is_none_or(|(_, b)| n > *b) {
                best = Some((c, n));
            }
        }
        best.map(|(c, _)| c)
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidates();
        protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    fn generation_info(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        let members = if is_leader {
            self.members_in_order()
                .into_iter()
                .map(|m| JoinMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// Handles a JoinGroup. `new_member_id` is used if the member needs an id.
    pub fn join(
        &mut self,
        p: JoinParams,
        new_member_id: String,
        now: Instant,
        limits: &Limits,
    ) -> Pending<JoinResult> {
        let ready = |e| Pending::Ready(JoinResult::error(e, &p.member_id));
        if p.protocol_type.is_empty() || p.protocols.is_empty() {
            return ready(ResponseError::InconsistentGroupProtocol);
        }
        if p.session_timeout_ms < limits.min_session_timeout_ms
            || p.session_timeout_ms > limits.max_session_timeout_ms
        {
            return ready(ResponseError::InvalidSessionTimeout);
        }
        if !self.supports(&p.protocol_type, &p.protocols) {
            return ready(ResponseError::InconsistentGroupProtocol);
        }
        if p.member_id.is_empty() {
            if let Some(instance) = p.group_instance_id.clone() {
                if let Some(old) = self.static_members.get(&instance).cloned() {
                    return self.replace_static_member(&old, new_member_id, p, now);
                }
                return self.add_member(new_member_id, p, now, limits);
            }
            if p.require_known_member_id {
                let expiry = now + Duration::from_millis(p.session_timeout_ms.max(0) as u64);
                self.pending.insert(new_member_id.clone(), expiry);
                return Pending::Ready(JoinResult::error(
                    ResponseError::MemberIdRequired,
                    &new_member_id,
                ));
            }
            return self.add_member(new_member_id, p, now, limits);
        }
        if self.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member(id, p, now, limits);
        }
        if let Some(instance) = &p.group_instance_id {
            match self.static_members.get(instance) {
                Some(m) if *m == p.member_id => {}
                Some(_) => return ready(ResponseError::FencedInstanceId),
                None => return ready(ResponseError::UnknownMemberId),
            }
        }
        if !self.members.contains_key(&p.member_id) {
            return ready(ResponseError::UnknownMemberId);
        }
        self.rejoin(p, now)
    }

    fn new_member(&mut self, id: String, p: &JoinParams, now: Instant) -> Member {
        self.next_seq += 1;
        Member {
            id,
            instance_id: p.group_instance_id.clone(),
            client_id: p.client_id.clone(),
            client_host: p.client_host.clone(),
            session_timeout: Duration::from_millis(p.session_timeout_ms.max(0) as u64),
            rebalance_timeout: Duration::from_millis(p.rebalance_timeout_ms.max(0) as u64),
            protocols: p.protocols.clone(),
            assignment: Bytes::new(),
            deadline: now + Duration::from_millis(p.session_timeout_ms.max(0) as u64),
            seq: self.next_seq,
            join_tx: None,
            sync_tx: None,
        }
    }

    fn add_member(
        &mut self,
        id: String,
        p: JoinParams,
        now: Instant,
        limits: &Limits,
    ) -> Pending<JoinResult> {
        if self.members.len() >= limits.max_size {
            return Pending::Ready(JoinResult::error(ResponseError::GroupMaxSizeReached, &id));
        }
        let mut m = self.new_member(id.clone(), &p, now);
        let (tx, rx) = oneshot::channel();
        m.join_tx = Some(tx);
        if let Some(instance) = &p.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        self.members.insert(id.clone(), m);
        if self.leader.is_none() {
            self.leader = Some(id);
        }
        match self.state {
            GroupState::PreparingRebalance => {
                // A new member during the initial delay extends it (Kafka's InitialDelayedJoin).
                if let (Some(limit), Some(deadline)) = (self.initial_limit, self.join_deadline) {
                    let extended = (now + limits.initial_rebalance_delay).min(limit);
                    self.join_deadline = Some(deadline.max(extended));
                }
            }
            _ => self.prepare_rebalance(now, limits),
        }
        self.try_complete_join(now);
        Pending::Wait(rx)
    }

    fn rejoin(&mut self, p: JoinParams, now: Instant) -> Pending<JoinResult> {
        let state = self.state;
        let is_leader = self.leader.as_deref() == Some(p.member_id.as_str());
        let m = self
            .members
            .get_mut(&p.member_id)
            .expect("checked by the caller");
        let unchanged = m.protocols == p.protocols;
        m.deadline = now + m.session_timeout;
        match state {
            GroupState::CompletingRebalance if unchanged => {
                return Pending::Ready(self.generation_info(&p.member_id))
            }
            GroupState::Stable if unchanged && !is_leader => {
                return Pending::Ready(self.generation_info(&p.member_id));
            }
            _ => {}
        }
        m.protocols = p.protocols;
        m.client_id = p.client_id;
        m.session_timeout = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        m.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms.max(0) as u64);
        let (tx, rx) = oneshot::channel();
        m.join_tx = Some(tx);
        if state != GroupState::PreparingRebalance {
            self.prepare_rebalance_plain(now);
        }
        self.try_complete_join(now);
        Pending::Wait(rx)
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinResult> {
        let Some(mut m) = self.members.remove(old_id) else {
            return Pending::Ready(JoinResult::error(ResponseError::UnknownMemberId, &new_id));
        };
        if let Some(tx) = m.join_tx.take() {
            let _ = tx.send(JoinResult::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(tx) = m.sync_tx.take() {
            let _ = tx.send(SyncResult::error(ResponseError::FencedInstanceId));
        }
        m.id = new_id.clone();
        m.protocols = p.protocols.clone();
        m.client_id = p.client_id.clone();
        m.session_timeout = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        m.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms.max(0) as u64);
        m.deadline = now + m.session_timeout;
        if let Some(instance) = &p.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), m);
        // Kafka compares the protocol the next generation would select, not the metadata bytes
        // (they carry owned partitions, which a restarted member no longer has).
        let same_protocol = self.protocol.is_some() && self.select_protocol() == self.protocol;
        if self.state == GroupState::Stable && same_protocol {
            // KIP-345: a known static member coming back keeps its assignment and causes no
            // rebalance. A returning leader gets the member list with skip_assignment
            // (KIP-814, v9); an older client's SyncGroup in Stable just returns the stored
            // assignments, so whatever it computes changes nothing.
            let mut info = self.generation_info(&new_id);
            info.skip_assignment = was_leader;
            return Pending::Ready(info);
        }
        let (tx, rx) = oneshot::channel();
        self.members
            .get_mut(&new_id)
            .expect("just inserted")
            .join_tx = Some(tx);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance_plain(now);
        }
        self.try_complete_join(now);
        Pending::Wait(rx)
    }

    fn prepare_rebalance(&mut self, now: Instant, limits: &Limits) {
        if self.state == GroupState::Empty {
            let limit = now
                + self
                    .max_rebalance_timeout()
                    .max(limits.initial_rebalance_delay);
            self.initial_limit = Some(limit);
            self.join_deadline = Some((now + limits.initial_rebalance_delay).min(limit));
            self.state = GroupState::PreparingRebalance;
        } else {
            self.prepare_rebalance_plain(now);
        }
    }

    fn prepare_rebalance_plain(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(tx) = m.sync_tx.take() {
                    let _ = tx.send(SyncResult::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        self.initial_limit = None;
        self.join_deadline = Some(now + self.max_rebalance_timeout());
        self.state = GroupState::PreparingRebalance;
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_tx.is_some())
    }

    /// Completes the join phase early once everyone rejoined (never during the initial delay).
    fn try_complete_join(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_limit.is_none()
            && self.all_joined()
        {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_tx.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.drop_member(&id);
        }
        self.join_deadline = None;
        self.initial_limit = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        self.protocol = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members_in_order().first().map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let info = self.generation_info(&id);
            let m = self.members.get_mut(&id).expect("listed above");
            m.deadline = now + m.session_timeout;
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(info);
            }
        }
    }

    fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.protocol = None;
        self.protocol_type = None;
        self.leader = None;
        self.join_deadline = None;
        self.initial_limit = None;
        self.empty_since_ms = Some(wall_ms());
    }

    fn drop_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(JoinResult::error(ResponseError::UnknownMemberId, id));
            }
            if let Some(tx) = m.sync_tx.take() {
                let _ = tx.send(SyncResult::error(ResponseError::UnknownMemberId));
            }
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members_in_order().first().map(|m| m.id.clone());
        }
    }

    /// Removes a member and rebalances the rest.
    fn remove_member(&mut self, id: &str, now: Instant) {
        self.drop_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance_plain(now)
            }
            _ => {}
        }
        self.try_complete_join(now);
    }

    /// Checks a member's identity and generation (Kafka's order: fencing, member, generation).
    fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance_id {
            if let Some(known) = self.static_members.get(instance) {
                if known != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles a SyncGroup.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Pending<SyncResult> {
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return Pending::Ready(SyncResult::error(e));
        }
        if let Some(t) = protocol.0 {
            if Some(t) != self.protocol_type.as_deref() {
                return Pending::Ready(SyncResult::error(ResponseError::InconsistentGroupProtocol));
            }
        }
        if let Some(n) = protocol.1 {
            if Some(n) != self.protocol.as_deref() {
                return Pending::Ready(SyncResult::error(ResponseError::InconsistentGroupProtocol));
            }
        }
        let ok = |g: &Group, a: Bytes| SyncResult {
            error: NONE,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            assignment: a,
        };
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                Pending::Ready(SyncResult::error(ResponseError::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                Pending::Ready(SyncResult::error(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => {
                let m = self.members.get_mut(member_id).expect("checked");
                m.deadline = now + m.session_timeout;
                Pending::Ready(ok(self, self.members[member_id].assignment.clone()))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let m = self.members.get_mut(member_id).expect("checked");
                m.deadline = now + m.session_timeout;
                m.sync_tx = Some(tx);
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let answer = ok(self, self.members[&id].assignment.clone());
                        if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.sync_tx.take()) {
                            let _ = tx.send(answer);
                        }
                    }
                }
                Pending::Wait(rx)
            }
        }
    }

    /// Handles a Heartbeat; returns the error code.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if self.state == GroupState::Empty {
            return code(ResponseError::UnknownMemberId);
        }
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return code(e);
        }
        let m = self.members.get_mut(member_id).expect("checked");
        m.deadline = now + m.session_timeout;
        match self.state {
            GroupState::PreparingRebalance => code(ResponseError::RebalanceInProgress),
            _ => NONE,
        }
    }

    /// Handles one member of a LeaveGroup; returns its error code.
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Instant) -> i16 {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return code(ResponseError::UnknownMemberId),
                Some(known) if !member_id.is_empty() && known != member_id => {
                    return code(ResponseError::FencedInstanceId)
                }
                Some(known) => known.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            self.try_complete_join(now);
            return NONE;
        }
        if !self.members.contains_key(&id) {
            return code(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id, now);
        NONE
    }

    /// Validates an OffsetCommit against the group (simple commits use generation < 0 and an
    /// empty member id, allowed only while the group has no members). Refreshes the session.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if let Some(instance) = instance_id {
            if self
                .static_members
                .get(instance)
                .is_some_and(|k| k != member_id)
            {
                return code(ResponseError::FencedInstanceId);
            }
        }
        if generation < 0 && self.members.is_empty() {
            return NONE;
        }
        if self.state == GroupState::CompletingRebalance {
            return code(ResponseError::RebalanceInProgress);
        }
        let Some(m) = self.members.get_mut(member_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        if generation != self.generation {
            return code(ResponseError::IllegalGeneration);
        }
        m.deadline = now + m.session_timeout;
        NONE
    }

    /// The earliest instant at which [`Group::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let members = self
            .members
            .values()
            .filter(|m| m.join_tx.is_none() && m.sync_tx.is_none())
            .map(|m| m.deadline);
        members
            .chain(self.pending.values().copied())
            .chain(self.join_deadline)
            .min()
    }

    /// Expires members and pending ids whose session ended, and ends a join phase whose time
    /// is up. Returns the ids of expired members.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let before = self.pending.len();
        self.pending.retain(|_, expiry| *expiry > now);
        if self.pending.len() != before {
            self.try_complete_join(now);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_tx.is_none() && m.sync_tx.is_none() && m.deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id, now);
        }
        if self.state == GroupState::PreparingRebalance
            && self.join_deadline.is_some_and(|d| d <= now)
        {
            self.complete_join(now);
        }
        expired
    }

    /// Fails every waiting request (shutdown).
    pub fn fail_waiters(&mut self, e: ResponseError) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.join_tx.take() {
                let _ = tx.send(JoinResult::error(e, &m.id));
            }
            if let Some(tx) = m.sync_tx.take() {
                let _ = tx.send(SyncResult::error(e));
            }
        }
    }

    /// Topics the members subscribe to (decoded from consumer-protocol metadata).
    pub fn subscribed_topics(&self) -> Option<std::collections::HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.clone()?;
        let mut topics = std::collections::HashSet::new();
        for m in self.members.values() {
            let mut meta = m.metadata_for(&protocol);
            if meta.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([meta[0], meta[1]]).clamp(0, 3);
            bytes::Buf::advance(&mut meta, 2);
            use kafka_protocol::protocol::Decodable;
            if let Ok(sub) =
                kafka_protocol::messages::ConsumerProtocolSubscription::decode(&mut meta, version)
            {
                topics.extend(sub.topics.iter().map(|t| t.to_string()));
            }
        }
        Some(topics)
    }
}

/// Milliseconds since the epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
