//! Idempotent-producer state survives restarts: clean (snapshot at close) and unclean
//! (replayed from the log after the last snapshot).

use bytes::{Bytes, BytesMut};
use flumen_broker::{Broker, BrokerConfig};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn batch(pid: i64, seq: i32, n: usize) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
    buf.freeze()
}

fn open(dir: &std::path::Path) -> Broker {
    let (config, _) = BrokerConfig::load(None, &[format!("log.dirs={}", dir.display())]).unwrap();
    let advertised = config.advertised(9092);
    Broker::open(config, advertised).unwrap()
}

#[test]
fn duplicates_are_recognised_after_clean_and_unclean_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path());
    b.create_topic("t", 1, Default::default(), false).unwrap();
    let p = b.topic("t").unwrap().partitions[0].clone();
    let first = batch(7, 0, 3);
    assert_eq!(p.append(&first, 0).unwrap().base_offset, 0);
    assert_eq!(p.append(&batch(7, 3, 2), 0).unwrap().base_offset, 3);
    drop(p);
    b.close();
    drop(b);

    // clean restart: the snapshot written at close
    let b = open(dir.path());
    let p = b.topic("t").unwrap().partitions[0].clone();
    assert_eq!(
        p.append(&first, 0).unwrap().base_offset,
        0,
        "duplicate answered with its offset"
    );
    assert_eq!(
        p.append(&batch(7, 9, 1), 0).unwrap_err().error,
        ResponseError::OutOfOrderSequenceNumber
    );
    assert_eq!(p.append(&batch(7, 5, 1), 0).unwrap().base_offset, 5);
    assert_eq!(p.end_offset(), 6);
    drop(p);
    drop(b); // no close: like kill -9 (the snapshot still says end offset 5)

    // unclean restart: the batch at offset 5 is replayed from the log
    let b = open(dir.path());
    let p = b.topic("t").unwrap().partitions[0].clone();
    assert_eq!(
        p.append(&batch(7, 5, 1), 0).unwrap().base_offset,
        5,
        "replayed after the snapshot"
    );
    assert_eq!(p.append(&batch(7, 6, 1), 0).unwrap().base_offset, 6);
    assert_eq!(p.end_offset(), 7);
}
