//! The fan-out part of the Sync bench: one `scopegate control-plane --source DIR` process with
//! 1,000 demo-sized accounts, 10,000 raw Sync streams from this process (10 per account over 100
//! HTTP/2 connections), its memory per stream, and the CPU it spends per change, less its idle CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scopegate::proto::sync_response;

use crate::measure::{cpu_time, rss_kib};
use crate::{cp, sync_client};

async fn wait_for(counter: &AtomicU64, target: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    while counter.load(Ordering::Relaxed) < target {
        assert!(
            start.elapsed() < limit,
            "{} of {target} arrived",
            counter.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

pub async fn fan_out() {
    const ACCOUNTS: usize = 1000;
    const PER_ACCOUNT: usize = 10;
    const CONNECTIONS: usize = 100;
    const CHANGED: usize = 1000;
    let dir = cp::TempDir::new("bench-fan-out");
    for i in 0..ACCOUNTS {
        let name = format!("acct{i:04}");
        cp::write_atomic(&dir.join(&format!("{name}.yaml")), &cp::demo(&name, 1, false));
    }
    let process = cp::Process::control_plane(&dir.0, "127.0.0.1:0", &[]);
    let pid = process.pid();
    let url = process.url();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(pid);
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(
            tonic::transport::Endpoint::from_shared(url.clone())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let received = Arc::new(AtomicU64::new(0));
    let streams = ACCOUNTS * PER_ACCOUNT;
    for n in 0..streams {
        let channel = channels[n % CONNECTIONS].clone();
        let account = format!("acct{:04}", n % ACCOUNTS);
        let received = Arc::clone(&received);
        let count = move |_: &sync_response::Update| {
            received.fetch_add(1, Ordering::Relaxed);
        };
        tokio::spawn(sync_client::follow(channel, account, format!("bench-{n}"), count));
    }
    let opened = wait_for(&received, streams as u64, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open_rss = rss_kib(pid);
    println!(
        "fan_out/streams: {streams} streams opened and served their snapshot in {opened:.2?}; control plane \
         {} MiB idle, {} MiB with the streams: {:.1} KiB per stream",
        idle_rss / 1024,
        open_rss / 1024,
        open_rss.saturating_sub(idle_rss) as f64 / streams as f64
    );
    let idle_window = Duration::from_secs(5);
    let before = cpu_time(pid);
    tokio::time::sleep(idle_window).await;
    let idle_cpu = cpu_time(pid) - before;
    let before = cpu_time(pid);
    let start = Instant::now();
    for i in 0..CHANGED {
        let name = format!("acct{i:04}");
        cp::write_atomic(&dir.join(&format!("{name}.yaml")), &cp::demo(&name, 2, true));
    }
    let target = (streams + CHANGED * PER_ACCOUNT) as u64;
    let delivered = wait_for(&received, target, Duration::from_secs(60)).await;
    // a whole idle window after the last delivery, so the figure holds every scan of the change
    tokio::time::sleep(idle_window.saturating_sub(start.elapsed())).await;
    let window = start.elapsed();
    let busy = cpu_time(pid) - before;
    let idle_share = idle_cpu.mul_f64(window.as_secs_f64() / idle_window.as_secs_f64());
    let net = busy.saturating_sub(idle_share);
    println!(
        "fan_out/changes: {CHANGED} accounts changed ({} deltas sent) delivered in {delivered:.2?}; control-plane \
         CPU {busy:.2?} over {window:.2?} against {idle_cpu:.2?} idle per {idle_window:?}: {:.2?} per change \
         (read, parse and compile of the changed file, diff, one encoding, {PER_ACCOUNT} sends)",
        CHANGED * PER_ACCOUNT,
        net / CHANGED as u32
    );
    process.kill();
}
