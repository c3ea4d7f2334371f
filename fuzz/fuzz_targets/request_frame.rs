//! Fuzzes one request frame (the bytes after the size prefix) through the broker's request
//! path: header peek, KIP-511 fallback, version checks, header and body decoding, and the
//! handler itself against a real broker with one topic. Any panic — including on a blocking
//! thread, caught by the panic hook — or abort is a finding.
#![no_main]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use flumen_broker::connection::handle_frame;
use flumen_broker::{Broker, BrokerConfig};
use libfuzzer_sys::fuzz_target;

static PANICKED: AtomicBool = AtomicBool::new(false);

struct State {
    rt: tokio::runtime::Runtime,
    broker: Arc<Broker>,
    _dir: tempfile::TempDir,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            prev(info);
        }));
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, _) = BrokerConfig::load(
            None,
            &[format!("log.dirs={}", dir.path().display()), "auto.create.topics.enable=false".into()],
        )
        .expect("config");
        let advertised = config.advertised(9092);
        let broker = Broker::open(config, advertised).expect("broker");
        broker.create_topic("t", 2, Default::default(), false).expect("topic");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        State { rt, broker: Arc::new(broker), _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = state();
    let frame = Bytes::copy_from_slice(data);
    s.rt.block_on(async {
        // A well-formed Fetch may wait for data: bound it.
        let _ = tokio::time::timeout(Duration::from_millis(20), handle_frame(&s.broker, frame)).await;
    });
    assert!(!PANICKED.load(Ordering::SeqCst), "the request made the broker panic");
});
