//! Unit tests of the audit queue and record format.

use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use super::*;

/// A sink that waits for a go-ahead before taking its first line, then collects lines.
struct GatedSink {
    gate: Option<mpsc::Receiver<()>>,
    lines: Arc<Mutex<Vec<String>>>,
}

impl LineSink for GatedSink {
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv();
        }
        self.lines
            .lock()
            .unwrap()
            .push(String::from_utf8(line.to_vec()).unwrap());
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const IDS: [&str; 12] = [
    "d-0", "d-1", "d-2", "d-3", "d-4", "d-5", "d-6", "d-7", "d-8", "d-9", "d-10", "d-99",
];

pub(crate) fn sample(n: usize) -> AuditRecord<'static> {
    AuditRecord {
        time: SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
        decision_id: IDS[n.min(11)],
        request_id: Some("req-1"),
        frontend: "grpc",
        method: "GET",
        path: path_only("/ng/api/pipelines/p1?accountIdentifier=acme&token=s3cret"),
        account: Some("acme"),
        principal: Some("USER:alice"),
        permission: Some("core_pipeline_view"),
        org: Some("default"),
        project: None,
        resource_type: Some("PIPELINE"),
        resource_id: Some("p1"),
        allowed: true,
        reason: "granted",
        latency_us: 12,
        token_id: Some("alicetok01"),
        issuer: None,
        checks: None,
        dry_run: false,
    }
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let (go, gate) = mpsc::channel();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = GatedSink {
        gate: Some(gate),
        lines: Arc::clone(&lines),
    };
    let log = AuditLog::with_sink(Box::new(sink), 4).unwrap();
    // the writer takes the first record and blocks in the sink; 4 more fill the queue
    log.record(&sample(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while log.queue_depth() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never took the first record"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for n in 1..=10 {
        log.record(&sample(n));
    }
    assert_eq!(log.queue_depth(), 4);
    assert_eq!(log.dropped(), 6);
    go.send(()).unwrap();
    log.close();
    assert_eq!(log.written(), 5);
    assert_eq!(log.queue_depth(), 0);
    let lines = lines.lock().unwrap();
    let ids: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["decision_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["d-0", "d-1", "d-2", "d-3", "d-4"]);
    // after close, records are dropped and counted, never written or waited for
    log.record(&sample(99));
    assert_eq!(log.dropped(), 7);
}

#[test]
fn a_record_is_one_json_line_with_every_field() {
    let log_lines = Arc::new(Mutex::new(Vec::new()));
    let (go, gate) = mpsc::channel();
    go.send(()).unwrap();
    let log = AuditLog::with_sink(
        Box::new(GatedSink {
            gate: Some(gate),
            lines: Arc::clone(&log_lines),
        }),
        16,
    )
    .unwrap();
    log.record(&sample(7));
    log.close();
    let lines = log_lines.lock().unwrap();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].ends_with('\n') && !lines[0].trim_end().contains('\n'));
    let value: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(value["time"], "2023-11-14T22:13:20.123456Z");
    assert_eq!(value["result"], "allow");
    assert_eq!(value["path"], "/ng/api/pipelines/p1");
    assert_eq!(value["token_id"], "alicetok01");
    assert_eq!(value["issuer"], serde_json::Value::Null);
    assert_eq!(value["dry_run"], false);
    assert!(value.get("checks").is_none());
    assert!(!lines[0].contains("s3cret"));
    assert_eq!(value["decision_id"], "d-7");
    assert_eq!(value["project"], serde_json::Value::Null);
    assert_eq!(value["latency_us"], 12);
    assert_eq!(value["reason"], "granted");
}

#[test]
fn paths_lose_their_query_and_fragment() {
    assert_eq!(path_only("/a/b?x=1"), "/a/b");
    assert_eq!(path_only("/a#frag?x"), "/a");
    assert_eq!(path_only("/a"), "/a");
    assert_eq!(path_only("?only"), "");
}

#[test]
fn an_off_log_takes_nothing() {
    let log = AuditLog::off();
    assert!(!log.is_on());
    log.record(&sample(1));
    assert_eq!((log.dropped(), log.written()), (0, 0));
    log.close();
}
