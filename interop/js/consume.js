// A group consumer that prints one JSON line per event: {event: "join", member, assignment},
// {event: "record", ...}, {event: "done"}. Spec {bootstrap, group, topics, fromBeginning,
// count (stop after this many records; 0 = run until stdin closes), idle_ms, session_ms}.
// Closing stdin makes it leave the group cleanly (commit, LeaveGroup) and exit.
'use strict';
const { kafka, recordOut, emit, run } = require('./common');

run(async (spec) => {
  const consumer = kafka(spec.bootstrap, spec.client_id || 'flumen-interop').consumer({
    groupId: spec.group,
    sessionTimeout: spec.session_ms || 6000,
    rebalanceTimeout: spec.rebalance_ms || 6000,
    heartbeatInterval: spec.heartbeat_ms || 300,
    maxWaitTimeInMs: spec.max_wait_ms || 500,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  consumer.on(consumer.events.GROUP_JOIN, (e) => emit({
    event: 'join', member: e.payload.memberId, leader: e.payload.isLeader,
    assignment: e.payload.memberAssignment,
  }));
  consumer.on(consumer.events.CRASH, (e) => { emit({ event: 'crash', error: String(e.payload.error) }); finish(); });
  process.stdin.on('end', () => finish());
  process.stdin.on('error', () => finish());
  process.stdin.resume();
  await consumer.connect();
  for (const topic of spec.topics) await consumer.subscribe({ topic, fromBeginning: spec.fromBeginning !== false });
  let seen = 0;
  await consumer.run({
    autoCommitInterval: 200,
    eachMessage: async ({ topic, partition, message }) => {
      emit({ event: 'record', ...recordOut(topic, partition, message) });
      seen += 1;
      if (spec.count && seen >= spec.count) finish();
    },
  });
  await finished;
  await consumer.disconnect();
  emit({ event: 'done', seen });
});
