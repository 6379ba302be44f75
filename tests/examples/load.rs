//! Load generator for `scripts/bench-load`: many gRPC clients against one
//! running btyd, over its Unix socket, while downloads and hashes run.
//!
//! ```text
//! load --socket PATH --pid PID --image-root DIR [--clients 200]
//!      [--subscribers 20] [--duration 30] [--rows 300] [--downloads 4]
//!      [--hashes 2] [--hash-mib 1024] [--download-mib 32]
//! ```
//!
//! 1. Starts an HTTP origin on 127.0.0.1 (the bty-e2e origin) and imports a
//!    catalog of `--rows` entries pointing at it (the first `--downloads`
//!    are real files there); writes `--hashes` files into the image root and
//!    waits for btyd to hash them.
//! 2. Idle: samples btyd's VmRSS and CPU for a few seconds.
//! 3. Load, for `--duration` seconds: the origin is throttled and the
//!    downloads start; `--hashes` tasks keep re-hashing their files (touch,
//!    `HashImage`, watch to the end, again); `--subscribers` connections
//!    hold `EventService.Subscribe` streams; `--clients` connections call
//!    `ListImages` in a loop (each call bounded by a 10 s timeout).
//! 4. Prints ListImages latency p50/p99/max, calls served, starved clients
//!    (zero successful calls), event streams that ended early or missed
//!    events without a `resync` (a skipped sequence number is lost unless
//!    `ListEvents` shows it as a log-only `request.*` record), VmRSS idle
//!    and under load, and CPU % (utime + stime over wall time, 100 % = one
//!    core).
//!
//! Exits 1 if a client starved, a stream ended early or lost events without
//! a resync, or btyd died. Loopback only; every loop is bounded in time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bty_e2e::noise;
use bty_e2e::origin::Origin;
use bty_proto::channel::Target;
use bty_proto::v1::catalog_service_client::CatalogServiceClient;
use bty_proto::v1::event_service_client::EventServiceClient;
use bty_proto::v1::job_service_client::JobServiceClient;
use bty_proto::v1::{
    FetchImageRequest, GetJobRequest, HashImageRequest, ImportCatalogRequest, JobState,
    ListEventsRequest, ListImagesRequest, ListJobsRequest, SubscribeRequest, event,
    import_catalog_request,
};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

const MIB: usize = 1 << 20;
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

struct Opts {
    socket: PathBuf,
    pid: u32,
    image_root: PathBuf,
    clients: usize,
    subscribers: usize,
    duration: Duration,
    rows: usize,
    downloads: usize,
    hashes: usize,
    hash_mib: usize,
    download_mib: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        socket: PathBuf::new(),
        pid: 0,
        image_root: PathBuf::new(),
        clients: 200,
        subscribers: 20,
        duration: Duration::from_secs(30),
        rows: 300,
        downloads: 4,
        hashes: 2,
        hash_mib: 1024,
        download_mib: 32,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.chunks(2);
    for pair in &mut it {
        let [key, value] = pair else {
            panic!("usage: load --key value …");
        };
        let num = || {
            value
                .parse::<usize>()
                .unwrap_or_else(|_| panic!("{key}: not a number: {value}"))
        };
        match key.as_str() {
            "--socket" => o.socket = PathBuf::from(value),
            "--pid" => o.pid = u32::try_from(num()).unwrap(),
            "--image-root" => o.image_root = PathBuf::from(value),
            "--clients" => o.clients = num(),
            "--subscribers" => o.subscribers = num(),
            "--duration" => o.duration = Duration::from_secs(num() as u64),
            "--rows" => o.rows = num(),
            "--downloads" => o.downloads = num(),
            "--hashes" => o.hashes = num(),
            "--hash-mib" => o.hash_mib = num(),
            "--download-mib" => o.download_mib = num(),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        !o.socket.as_os_str().is_empty() && o.pid != 0 && !o.image_root.as_os_str().is_empty(),
        "--socket, --pid and --image-root are required"
    );
    assert!(
        o.duration <= Duration::from_secs(600),
        "--duration is capped at 600 s"
    );
    o
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses;
    // utime and stime are fields 14 and 15 (1-based), 12th/13th after ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

async fn wait_idle(
    jobs: &mut JobServiceClient<tonic::transport::Channel>,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let active = jobs
            .list_jobs(ListJobsRequest {
                active_only: true,
                kind: 0,
            })
            .await
            .map(|r| r.into_inner().jobs.len())
            .unwrap_or(1);
        if active == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Write `mib` MiB of noise (a 64 MiB block repeated) to `path`.
fn write_big_file(path: &Path, mib: usize, seed: u64) {
    let block = noise(64 * MIB, seed);
    // Next to the image root (same file system), renamed in when complete.
    let outside = path
        .parent()
        .and_then(Path::parent)
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    let tmp = outside.join(format!(
        "incoming-{}",
        path.file_name().unwrap().to_string_lossy()
    ));
    let mut f = std::fs::File::create(&tmp).unwrap();
    let mut left = mib;
    while left > 0 {
        let n = left.min(64);
        f.write_all(&block[..n * MIB]).unwrap();
        left -= n;
    }
    f.sync_all().unwrap();
    drop(f);
    // std::fs::rename fails across file systems.
    if std::fs::rename(&tmp, path).is_err() {
        std::fs::copy(&tmp, path).unwrap();
        std::fs::remove_file(&tmp).unwrap();
    }
}

#[derive(Default)]
struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    rows: usize,
}

#[derive(Default)]
struct StreamResult {
    events: u64,
    resyncs: u64,
    missed_by_resync: u64,
    /// Sequence numbers skipped without a resync (still missing at the
    /// end): lost, unless the event log shows them as log-only records.
    missing: BTreeSet<u64>,
    reordered: u64,
    ended_early: Option<String>,
}

async fn client_loop(target: Target, stop: Arc<AtomicBool>) -> ClientResult {
    let mut result = ClientResult::default();
    let channel = match target.connect().await {
        Ok(c) => c,
        Err(e) => {
            result.errors += 1;
            result.first_error = Some(format!("connect: {e}"));
            return result;
        }
    };
    let mut client = CatalogServiceClient::new(channel);
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let call = count_rows(&mut client);
        let outcome = tokio::time::timeout(CALL_TIMEOUT, call).await;
        // Every call counts in the percentiles, failed and timed-out ones
        // too (a timeout at its full wait): leaving them out would report
        // the calls that went well as the service's latency.
        let us = started.elapsed().as_micros();
        result
            .latencies_us
            .push(u32::try_from(us).unwrap_or(u32::MAX));
        match outcome {
            Ok(Ok(rows)) => result.rows = rows,
            Ok(Err(status)) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| status.to_string());
            }
            Err(_) => {
                result.errors += 1;
                result
                    .first_error
                    .get_or_insert_with(|| format!("timed out after {CALL_TIMEOUT:?}"));
            }
        }
    }
    result
}

async fn subscriber(target: Target, mut stop: tokio::sync::watch::Receiver<bool>) -> StreamResult {
    let mut r = StreamResult::default();
    let channel = match target.connect().await {
        Ok(c) => c,
        Err(e) => {
            r.ended_early = Some(format!("connect: {e}"));
            return r;
        }
    };
    let mut client = EventServiceClient::new(channel);
    let mut stream = match client.subscribe(SubscribeRequest {}).await {
        Ok(s) => s.into_inner(),
        Err(e) => {
            r.ended_early = Some(format!("subscribe: {e}"));
            return r;
        }
    };
    let mut max_seq = 0u64;
    let mut missing: BTreeSet<u64> = BTreeSet::new();
    loop {
        let next = tokio::select! {
            _ = stop.changed() => break,
            next = stream.message() => next,
        };
        match next {
            Ok(Some(ev)) => {
                r.events += 1;
                if let Some(event::Body::Resync(resync)) = &ev.body {
                    r.resyncs += 1;
                    r.missed_by_resync += resync.missed;
                    // Told to re-read: what was missing is accounted for,
                    // and the next seq may jump.
                    missing.clear();
                    max_seq = 0;
                    continue;
                }
                let seq = ev.seq;
                if max_seq != 0 && seq > max_seq + 1 {
                    missing.extend(max_seq + 1..seq);
                }
                if seq <= max_seq {
                    r.reordered += 1;
                    missing.remove(&seq);
                }
                max_seq = max_seq.max(seq);
            }
            Ok(None) => {
                r.ended_early = Some("stream ended".to_owned());
                break;
            }
            Err(status) => {
                r.ended_early = Some(status.to_string());
                break;
            }
        }
    }
    r.missing = missing;
    r
}

/// The ids of the event log's log-only records: operators' requests
/// (`request.*`) take a number from the sequence live events use, and are
/// not streamed, so a watcher sees them as skipped numbers. Every page is
/// read; the log keeps its last `[events] history` records, far more than
/// the requests of one run.
async fn log_only_ids(channel: tonic::transport::Channel) -> Result<BTreeSet<u64>, tonic::Status> {
    let mut client = EventServiceClient::new(channel);
    let mut ids = BTreeSet::new();
    let mut before_id = 0;
    loop {
        let page = client
            .list_events(ListEventsRequest {
                limit: 500,
                before_id,
                kinds: vec!["request.".to_owned()],
                ..ListEventsRequest::default()
            })
            .await?
            .into_inner();
        ids.extend(page.events.iter().map(|e| e.id));
        match page.events.last() {
            Some(last) if page.more => before_id = last.id,
            _ => return Ok(ids),
        }
    }
}

/// Re-hash `name` again and again until `stop`: make its sidecar stale
/// (touch), ask for a hash, watch the job to its end. Returns jobs done.
async fn hash_loop(
    target: Target,
    image_root: PathBuf,
    name: String,
    stop: Arc<AtomicBool>,
) -> (u64, u64, Option<String>) {
    let (mut done, mut failed, mut last_error) = (0u64, 0u64, None);
    let channel = target.connect().await.expect("connect");
    let mut catalog = CatalogServiceClient::new(channel.clone());
    let mut jobs = JobServiceClient::new(channel);
    let path = image_root.join(&name);
    while !stop.load(Ordering::Relaxed) {
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("hash file");
        f.set_modified(SystemTime::now()).expect("touch");
        drop(f);
        let job = match catalog
            .hash_image(HashImageRequest { name: name.clone() })
            .await
        {
            Ok(j) => j.into_inner(),
            Err(e) => {
                failed += 1;
                last_error = Some(e.to_string());
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let state = jobs
                .get_job(GetJobRequest { id: job.id.clone() })
                .await
                .map(|j| j.into_inner());
            match state {
                Ok(j) if j.state == JobState::Completed as i32 => {
                    done += 1;
                    break;
                }
                Ok(j)
                    if j.state == JobState::Failed as i32
                        || j.state == JobState::Cancelled as i32 =>
                {
                    failed += 1;
                    last_error = j.error;
                    break;
                }
                Ok(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(_) => {
                    failed += 1;
                    last_error = Some("hash job did not end within 120 s".to_owned());
                    break;
                }
                Err(e) => {
                    failed += 1;
                    last_error = Some(e.to_string());
                    break;
                }
            }
        }
    }
    (done, failed, last_error)
}

fn main() {
    let opts = parse_opts();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ok = runtime.block_on(run(opts));
    std::process::exit(i32::from(!ok));
}

async fn run(o: Opts) -> bool {
    let target = Target::Unix(o.socket.clone());
    let channel = target.connect().await.expect("btyd answers on its socket");
    let mut catalog =
        CatalogServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    let mut jobs = JobServiceClient::new(channel.clone());
    let tck = clock_ticks_per_sec();

    // 1. Origin, catalog, files to hash.
    let origin = Origin::start();
    let mut toml = String::from("version = 1\n");
    for i in 0..o.downloads {
        let path = format!("dl/load-{i}.img");
        origin.put(&path, noise(o.download_mib * MIB, 500 + i as u64));
        toml.push_str(&format!(
            "\n[[images]]\nname = \"load-dl-{i}.img\"\nsrc = \"{}\"\n",
            origin.url(&path)
        ));
    }
    for i in o.downloads..o.rows {
        toml.push_str(&format!(
            "\n[[images]]\nname = \"row-{i:04}.img.zst\"\nsrc = \"{}\"\nsize_bytes = {}\ndescription = \"bench-load row {i}\"\n",
            origin.url(&format!("none/row-{i:04}.img.zst")),
            (i as u64 + 1) << 20
        ));
    }
    let report = catalog
        .import_catalog(ImportCatalogRequest {
            source: Some(import_catalog_request::Source::Content(toml.into_bytes())),
            label: "bench-load".to_owned(),
        })
        .await
        .expect("catalog import")
        .into_inner();
    println!(
        "load: imported {} entries ({} updated, {} skipped, {} errors)",
        report.imported,
        report.updated,
        report.skipped,
        report.errors.len()
    );
    let hash_names: Vec<String> = (0..o.hashes)
        .map(|i| format!("load-hash-{i}.img"))
        .collect();
    for (i, name) in hash_names.iter().enumerate() {
        write_big_file(&o.image_root.join(name), o.hash_mib, 900 + i as u64);
    }
    if !wait_idle(&mut jobs, Duration::from_secs(120)).await {
        println!("load: warning: btyd still had active jobs after 120 s of setup");
    }
    let rows = count_rows(&mut catalog).await.expect("list");
    println!("load: {rows} rows listed");

    // 2. Idle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_window = Duration::from_secs(3);
    let t0 = Instant::now();
    let c0 = cpu_ticks(o.pid).unwrap_or(0);
    tokio::time::sleep(idle_window).await;
    let idle_cpu =
        (cpu_ticks(o.pid).unwrap_or(0) - c0) as f64 / tck / t0.elapsed().as_secs_f64() * 100.0;
    let idle_rss = rss_kib(o.pid).unwrap_or(0);
    println!(
        "load: idle: VmRSS {:.1} MiB, CPU {idle_cpu:.1} %",
        idle_rss as f64 / 1024.0
    );

    // 3. Load.
    // ~64 KiB per 70 ms ≈ 0.9 MiB/s per download: they run all through.
    origin.throttle(Duration::from_millis(70));
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut subs = Vec::new();
    for _ in 0..o.subscribers {
        subs.push(tokio::spawn(subscriber(target.clone(), stop_rx.clone())));
    }
    // Let the subscriptions open before the events start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let c_start = cpu_ticks(o.pid).unwrap_or(0);
    let mut download_jobs = Vec::new();
    for i in 0..o.downloads {
        match catalog
            .fetch_image(FetchImageRequest {
                id: format!("load-dl-{i}.img"),
                update: false,
            })
            .await
        {
            Ok(job) => download_jobs.push(job.into_inner().id),
            Err(e) => println!("load: fetch load-dl-{i}.img failed: {e}"),
        }
    }
    let mut hashers = Vec::new();
    for name in &hash_names {
        hashers.push(tokio::spawn(hash_loop(
            target.clone(),
            o.image_root.clone(),
            name.clone(),
            stop.clone(),
        )));
    }
    let mut clients = Vec::new();
    for _ in 0..o.clients {
        clients.push(tokio::spawn(client_loop(target.clone(), stop.clone())));
    }
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (max_rss, stop, pid) = (max_rss.clone(), stop.clone(), o.pid);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    max_rss.fetch_max(kib, Ordering::Relaxed);
                    samples.push(kib);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };
    tokio::time::sleep(o.duration).await;
    let window = started.elapsed().as_secs_f64();
    let load_cpu = (cpu_ticks(o.pid).unwrap_or(c_start) - c_start) as f64 / tck / window * 100.0;
    let load_rss_end = rss_kib(o.pid).unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);

    // 4. Collect (bounded: calls time out after CALL_TIMEOUT).
    let mut all: Vec<u32> = Vec::new();
    let (mut served, mut errors, mut starved, mut min_calls) = (0u64, 0u64, 0usize, u64::MAX);
    let mut first_error = None;
    let mut rows_seen = 0;
    for c in clients {
        let r = tokio::time::timeout(CALL_TIMEOUT * 2, c)
            .await
            .expect("client ended")
            .expect("client task");
        let n = r.latencies_us.len() as u64;
        served += n;
        min_calls = min_calls.min(n);
        if n == 0 {
            starved += 1;
        }
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
        rows_seen = rows_seen.max(r.rows);
        all.extend(r.latencies_us);
    }
    let mut stream_events = 0u64;
    let (mut resyncs, mut missed_by_resync, mut lost, mut reordered) = (0u64, 0u64, 0u64, 0u64);
    let mut log_only_skipped = 0u64;
    let log_only = match log_only_ids(channel.clone()).await {
        Ok(ids) => ids,
        Err(e) => {
            println!("load: ListEvents failed ({e}): every skipped number counts as lost");
            BTreeSet::new()
        }
    };
    let mut ended = Vec::new();
    for s in subs {
        let r = tokio::time::timeout(Duration::from_secs(5), s)
            .await
            .expect("subscriber ended")
            .expect("subscriber task");
        stream_events += r.events;
        resyncs += r.resyncs;
        missed_by_resync += r.missed_by_resync;
        let lost_here = r.missing.difference(&log_only).count() as u64;
        lost += lost_here;
        log_only_skipped += r.missing.len() as u64 - lost_here;
        reordered += r.reordered;
        if let Some(e) = r.ended_early {
            ended.push(e);
        }
    }
    let (mut hashes_done, mut hashes_failed) = (0u64, 0u64);
    for h in hashers {
        let (d, f, e) = tokio::time::timeout(Duration::from_secs(130), h)
            .await
            .expect("hash loop ended")
            .expect("hash task");
        hashes_done += d;
        hashes_failed += f;
        if let Some(e) = e {
            println!("load: last hash error: {e}");
        }
    }
    let samples = sampler.await.unwrap_or_default();
    let mut download_bytes = 0u64;
    let mut download_states = Vec::new();
    for id in &download_jobs {
        if let Ok(job) = jobs.get_job(GetJobRequest { id: id.clone() }).await {
            let job = job.into_inner();
            download_bytes += job.bytes_done;
            download_states.push(
                JobState::try_from(job.state)
                    .map_or("?".to_owned(), |s| s.as_str_name().to_owned()),
            );
        }
    }
    // Memory once the load is gone (connections closed, streams dropped).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_rss = rss_kib(o.pid).unwrap_or(0);
    let alive = after_rss > 0;
    all.sort_unstable();
    let p50 = percentile(&all, 0.50);
    let p99 = percentile(&all, 0.99);
    let max = all.last().map_or(0.0, |&m| f64::from(m) / 1000.0);
    let avg_rss = if samples.is_empty() {
        0.0
    } else {
        samples.iter().sum::<u64>() as f64 / samples.len() as f64 / 1024.0
    };

    println!(
        "---- bench-load ({} clients, {} subscribers, {window:.1} s, {rows_seen} rows per ListImages) ----",
        o.clients, o.subscribers
    );
    println!("ListImages latency: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms");
    println!(
        "ListImages served: {served} ({:.0}/s), errors {errors}{}",
        served as f64 / window,
        first_error
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "starved clients (0 successful calls): {starved}; fewest calls by one client: {}",
        if min_calls == u64::MAX { 0 } else { min_calls }
    );
    println!(
        "event streams: {} events on {} streams, resyncs {resyncs} (missed {missed_by_resync}), lost without resync {lost}, reordered {reordered}, ended early {}{} (numbers skipped for log-only request records: {log_only_skipped})",
        stream_events,
        o.subscribers,
        ended.len(),
        ended
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "background: downloads {} MiB done ({}), hash jobs completed {hashes_done} ({} MiB hashed), failed {hashes_failed}",
        download_bytes >> 20,
        download_states.join(", "),
        hashes_done as usize * o.hash_mib
    );
    println!(
        "btyd VmRSS: idle {:.1} MiB, under load avg {avg_rss:.1} MiB / max {:.1} MiB / end {:.1} MiB, 3 s after {:.1} MiB",
        idle_rss as f64 / 1024.0,
        max_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        load_rss_end as f64 / 1024.0,
        after_rss as f64 / 1024.0
    );
    println!(
        "btyd CPU: idle {idle_cpu:.1} %, under load {load_cpu:.1} % (100 % = one core; 2 cores here)"
    );
    println!("btyd alive after the run: {alive}");
    drop(origin);
    let ok = starved == 0 && ended.is_empty() && lost == 0 && alive;
    if !ok {
        println!("load: FAILED (starved clients, broken event streams or a dead btyd)");
    }
    ok
}

/// Every row of one listing (StreamImages, as btyctl reads it), counted.
async fn count_rows(
    client: &mut CatalogServiceClient<tonic::transport::Channel>,
) -> Result<usize, tonic::Status> {
    let mut pages = client
        .stream_images(ListImagesRequest::default())
        .await?
        .into_inner();
    let mut rows = 0;
    while let Some(page) = pages.message().await? {
        rows += page.images.len();
    }
    Ok(rows)
}
