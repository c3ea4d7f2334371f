// Runs admin operations in order: spec {bootstrap, ops: [{op, ...args}]}. Prints one JSON line
// per op: {op, ok: true, result} or {op, ok: false, error, type} (KafkaJS's error type name,
// e.g. TOPIC_ALREADY_EXISTS), so the test can check both results and the errors Kafka would give.
'use strict';
const { kafka, emit, run } = require('./common');
const { ConfigResourceTypes } = require('kafkajs');

const OPS = {
  createTopics: (a, o) => a.createTopics({ topics: o.topics, validateOnly: !!o.validateOnly, waitForLeaders: !o.validateOnly }),
  deleteTopics: (a, o) => a.deleteTopics({ topics: o.topics, timeout: 10000 }).then(() => true),
  listTopics: (a) => a.listTopics(),
  fetchTopicMetadata: (a, o) => a.fetchTopicMetadata({ topics: o.topics }),
  createPartitions: (a, o) => a.createPartitions({ topicPartitions: o.topicPartitions }),
  describeConfigs: (a, o) => a.describeConfigs({
    includeSynonyms: false,
    resources: o.topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: o.configNames })),
  }),
  alterConfigs: (a, o) => a.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: o.topic, configEntries: o.entries }],
  }),
  describeCluster: (a) => a.describeCluster(),
  fetchTopicOffsets: (a, o) => a.fetchTopicOffsets(o.topic),
  listGroups: (a) => a.listGroups(),
  describeGroups: (a, o) => a.describeGroups(o.groups),
  deleteGroups: (a, o) => a.deleteGroups(o.groups),
  fetchOffsets: (a, o) => a.fetchOffsets({ groupId: o.group, topics: o.topics }),
  setOffsets: (a, o) => a.setOffsets({ groupId: o.group, topic: o.topic, partitions: o.partitions }).then(() => true),
};

run(async (spec) => {
  const admin = kafka(spec.bootstrap).admin({ retry: { retries: 2, initialRetryTime: 100 } });
  await admin.connect();
  try {
    for (const o of spec.ops) {
      try {
        const result = await OPS[o.op](admin, o);
        emit({ op: o.op, ok: true, result });
      } catch (e) {
        const inner = (e.groups || e.errors || []).map((g) => g && (g.error ? g.error.type : g.type));
        const type = e.type || (e.cause && e.cause.type) || (e.originalError && e.originalError.type); // unwraps KafkaJSNumberOfRetriesExceeded
        emit({ op: o.op, ok: false, error: String(e.message), type, name: e.name, inner });
      }
    }
  } finally {
    await admin.disconnect();
  }
});
