// Shared helpers for the interop scripts: a quiet KafkaJS client, the compression codecs
// (gzip is built into KafkaJS; snappy, lz4 and zstd are registered here from pure-JS/wasm
// packages so that `npm install` needs no native build), and the JSON encoding of records
// that the pytest side reads and writes (bytes as base64, null as null).
'use strict';
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const lz4 = require('lz4js');
const { ZstdCodec } = require('zstd-codec');

// Kafka's lz4 is the LZ4 frame format with independent blocks. lz4js writes it; its frame
// reader skips a block checksum before the block instead of after it (frames from cramjam,
// i.e. aiokafka, carry block checksums), so frames are parsed here and only the blocks are
// handed to lz4js.
function lz4DecompressFrames(src) {
  const out = [];
  let i = 0;
  while (i + 7 <= src.length) {
    if (src.readUInt32LE(i) !== 0x184d2204) throw new Error(`lz4: bad frame magic at ${i}`);
    const flg = src[i + 4];
    const bd = src[i + 5];
    const blockSum = (flg & 0x10) !== 0;
    const contentSum = (flg & 0x04) !== 0;
    const maxBlock = [0, 0, 0, 0, 1 << 16, 1 << 18, 1 << 20, 1 << 22][(bd >> 4) & 7];
    if (!maxBlock) throw new Error(`lz4: bad block size byte ${bd}`);
    i += 6 + ((flg & 0x08) ? 8 : 0) + ((flg & 0x01) ? 4 : 0) + 1; // descriptor, content size, dict id, HC
    for (;;) {
      const size = src.readUInt32LE(i);
      i += 4;
      if (size === 0) break;
      const len = size & 0x7fffffff;
      if (size & 0x80000000) {
        out.push(src.subarray(i, i + len));
      } else {
        const dst = Buffer.alloc(maxBlock);
        const n = lz4.decompressBlock(src, dst, i, len, 0);
        out.push(dst.subarray(0, n));
      }
      i += len + (blockSum ? 4 : 0);
    }
    if (contentSum) i += 4;
  }
  return Buffer.concat(out);
}
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress(encoder) { return Buffer.from(lz4.compress(encoder.buffer)); },
  async decompress(buffer) { return lz4DecompressFrames(Buffer.from(buffer)); },
});
let zstdReady = null;
function zstd() {
  if (!zstdReady) zstdReady = new Promise((resolve) => ZstdCodec.run((z) => resolve(z)));
  return zstdReady;
}
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) { const z = await zstd(); return Buffer.from(new z.Simple().compress(encoder.buffer, 3)); },
  // streaming decompression: frames written without a content size (as some clients do) work too
  async decompress(buffer) { const z = await zstd(); return Buffer.from(new z.Streaming().decompress(buffer)); },
});

const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

function kafka(bootstrap, clientId = 'flumen-interop') {
  return new Kafka({
    clientId,
    brokers: [bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 15000,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  });
}

const b64 = (buf) => (buf === null || buf === undefined ? null : Buffer.from(buf).toString('base64'));
const unb64 = (s) => (s === null || s === undefined ? null : Buffer.from(s, 'base64'));

// [[key, b64|null], ...] -> KafkaJS headers object (a repeated key becomes an array)
function headersIn(list) {
  const out = {};
  for (const [k, v] of list || []) {
    const val = unb64(v);
    if (k in out) out[k] = [].concat(out[k], [val]);
    else out[k] = val;
  }
  return out;
}

// KafkaJS headers object -> [[key, b64|null], ...] in the order they were decoded
function headersOut(h) {
  const out = [];
  for (const [k, v] of Object.entries(h || {})) {
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, b64(one)]);
  }
  return out;
}

function recordOut(topic, partition, m) {
  return {
    topic,
    partition,
    offset: Number(m.offset),
    key: b64(m.key),
    value: b64(m.value),
    headers: headersOut(m.headers),
    timestamp: Number(m.timestamp),
  };
}

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

// Runs main(spec) with the JSON spec from argv[2]; a failure prints a JSON error and exits 1.
function run(main) {
  const spec = JSON.parse(process.argv[2] || '{}');
  const hardLimit = setTimeout(() => { emit({ event: 'error', error: 'time limit' }); process.exit(2); },
    spec.limit_ms || 60000);
  main(spec).then(() => { clearTimeout(hardLimit); process.exit(0); }, (e) => {
    emit({ event: 'error', error: String(e && e.stack || e), type: e && e.type, name: e && e.name });
    process.exit(1);
  });
}

module.exports = { lz4DecompressFrames, kafka, CODECS, b64, unb64, headersIn, headersOut, recordOut, emit, run };
