// Produces records: spec {bootstrap, topic, codec, acks, records: [{key, value, headers, timestamp, partition}]}
// (bytes as base64). Prints {event: "produced", offsets: [[partition, baseOffset], ...]}.
'use strict';
const { kafka, CODECS, unb64, headersIn, emit, run } = require('./common');

run(async (spec) => {
  const producer = kafka(spec.bootstrap).producer({ allowAutoTopicCreation: false, idempotent: !!spec.idempotent });
  await producer.connect();
  try {
    const messages = spec.records.map((r) => {
      const m = { key: unb64(r.key), value: unb64(r.value), headers: headersIn(r.headers) };
      if (r.timestamp !== undefined && r.timestamp !== null) m.timestamp = String(r.timestamp);
      if (r.partition !== undefined && r.partition !== null) m.partition = r.partition;
      return m;
    });
    const res = await producer.send({
      topic: spec.topic,
      messages,
      acks: spec.acks === undefined ? -1 : spec.acks,
      compression: CODECS[spec.codec || 'none'],
    });
    emit({ event: 'produced', offsets: res.map((r) => [r.partition, Number(r.baseOffset)]) });
  } finally {
    await producer.disconnect();
  }
});
