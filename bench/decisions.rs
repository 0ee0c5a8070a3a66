//! Decision throughput: `POST /v1/decisions` over HTTP on loopback, side by side with a
//! hello-world axum server answering a JSON POST, in one run.
//!
//!   cargo bench --bench decisions                                        # SQLite
//!   STEPGATE_TEST_DATABASE_URL=postgres://… cargo bench --bench decisions # PostgreSQL
//!
//! The server is the real binary (release profile) with `bench/policies.cedar` and the
//! test purposes. One user (roles `editor`, `viewer`) logs in once; then
//! BENCH_CONNECTIONS (default 64) keep-alive connections each send the same decision
//! (an `allow`, checked on every answer) back to back for BENCH_WARMUP seconds (default
//! 2, not counted) and BENCH_SECONDS (default 10). The baseline is this benchmark's own
//! executable started again as a hello-world axum server (same runtime defaults as the
//! server: one worker thread per core); it parses the same request body and answers a
//! small JSON object. Runs alternate hello, decisions, hello, decisions (BENCH_ROUNDS
//! pairs, default 3), then `GET /healthz` on stepgate for reference; the summary gives
//! medians over the runs and the worst run. BENCH_ONLY=decisions (or `hello`, `healthz`)
//! runs one side once, for a profiler. BENCH_TIMELINE=1 lists, per run, the 50 ms
//! windows holding the most requests slower than the run's p99 (a periodic stall in the
//! server shows up as windows one period apart).
//!
//! The load generator is a minimal HTTP/1.1 client on tokio (pre-built request bytes,
//! Content-Length framing), so that as little of the two cores as possible goes to it;
//! it still shares them with the server, as the target says.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{PASSWORD, PURPOSES, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Set in the environment of the child that serves the hello-world baseline.
const HELLO_ENV: &str = "STEPGATE_BENCH_HELLO";

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------
// The baseline: a hello-world axum server.

async fn hello(axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    axum::Json(json!({"decision": "allow", "fields": body.as_object().map_or(0, |o| o.len())}))
}

fn serve_hello() {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let app = axum::Router::new()
            .route("/hello", axum::routing::post(hello))
            .route("/healthz", axum::routing::get(|| async { "ok" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the hello server");
        // The same line stepgate prints, so one reader finds both addresses.
        println!(
            "listening on http://{}",
            listener.local_addr().expect("an address")
        );
        axum::serve(listener, app).await.expect("serving hello");
    });
}

/// The hello-world server as a child process (this executable again).
struct Hello {
    child: Child,
    addr: SocketAddr,
}

impl Hello {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().expect("the bench executable"))
            .env(HELLO_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the hello server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the hello server's address");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected hello output: {line:?}"));
        Self { child, addr }
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The load generator.

/// One kind of request, sent as pre-built bytes; every answer must be a 200 whose body
/// contains `expect`.
struct Target {
    name: String,
    addr: SocketAddr,
    /// The serving process, whose CPU time is read around the measured window.
    pid: u32,
    request: Vec<u8>,
    expect: &'static [u8],
}

impl Target {
    fn new(
        name: &str,
        addr: SocketAddr,
        pid: u32,
        request_line: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
        expect: &'static [u8],
    ) -> Self {
        let mut head = format!("{request_line} HTTP/1.1\r\nHost: {addr}\r\n");
        if let Some(b) = bearer {
            head.push_str(&format!("Authorization: Bearer {b}\r\n"));
        }
        let body = body.map(Value::to_string).unwrap_or_default();
        if !body.is_empty() {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        Self {
            name: name.to_owned(),
            addr,
            pid,
            request: head.into_bytes(),
            expect,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one response into `buf` (which starts empty); returns the body's range.
async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<std::ops::Range<usize>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("ASCII headers");
            assert!(
                head.starts_with("HTTP/1.1 200"),
                "not a 200: {}",
                String::from_utf8_lossy(buf)
            );
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("a Content-Length");
            let body = end + 4..end + 4 + length;
            while buf.len() < body.end {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(body);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One keep-alive connection sending requests back to back until `end`; returns the
/// latencies (ns) of the requests that started at or after `from`.
async fn connection(target: Arc<Target>, from: Instant, end: Instant) -> Vec<(u64, u64)> {
    let mut stream = TcpStream::connect(target.addr).await.expect("connecting");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut latencies = Vec::with_capacity(64 * 1024);
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        stream.write_all(&target.request).await.expect("sending");
        let body = read_response(&mut stream, &mut buf)
            .await
            .expect("reading an answer");
        assert!(
            find(&buf[body], target.expect).is_some(),
            "{}: unexpected answer {}",
            target.name,
            String::from_utf8_lossy(&buf)
        );
        buf.clear();
        if start >= from {
            latencies.push((
                start.elapsed().as_nanos() as u64,
                (start - from).as_millis() as u64,
            ));
        }
    }
    latencies
}

/// Where in the run the slow requests started: per 50 ms window, how many requests
/// exceeded the run's p99, listed for the windows with the most.
fn timeline(timed: &[(u64, u64)], p99: u64) {
    let mut windows = std::collections::BTreeMap::<u64, (u64, u64, u64)>::new();
    for &(latency, at) in timed {
        let w = windows.entry(at / 50).or_default();
        w.0 += 1;
        if latency > p99 {
            w.1 += 1;
        }
        w.2 = w.2.max(latency);
    }
    let mut by_slow: Vec<_> = windows.iter().collect();
    by_slow.sort_by_key(|(_, (_, slow, _))| std::cmp::Reverse(*slow));
    for (w, (n, slow, max)) in by_slow.iter().take(20) {
        println!(
            "    t={:>6} ms: {n:>5} requests, {slow:>4} over p99, max {:.2} ms",
            *w * 50,
            *max as f64 / 1e6
        );
    }
}

struct Load {
    connections: usize,
    warmup: Duration,
    measure: Duration,
}

struct Run {
    rate: f64,
    /// CPU time per request of the server and of this load generator, in µs.
    server_cpu: f64,
    client_cpu: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Load {
    async fn run(&self, target: &Arc<Target>) -> Run {
        let from = Instant::now() + self.warmup;
        let end = from + self.measure;
        let tasks: Vec<_> = (0..self.connections)
            .map(|_| tokio::spawn(connection(target.clone(), from, end)))
            .collect();
        let server = target.pid.to_string();
        tokio::time::sleep_until(from.into()).await;
        let before = (cpu_seconds(&server), cpu_seconds("self"));
        tokio::time::sleep_until(end.into()).await;
        let after = (cpu_seconds(&server), cpu_seconds("self"));
        let mut timed = Vec::new();
        for t in tasks {
            timed.extend(t.await.expect("a connection task"));
        }
        let mut all: Vec<u64> = timed.iter().map(|(l, _)| *l).collect();
        all.sort_unstable();
        if std::env::var_os("BENCH_TIMELINE").is_some() {
            timeline(&timed, all[all.len() * 99 / 100]);
        }
        let ms = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)] as f64 / 1e6;
        let per_request = |seconds: f64| seconds * 1e6 / all.len() as f64;
        let run = Run {
            rate: all.len() as f64 / self.measure.as_secs_f64(),
            server_cpu: per_request(after.0 - before.0),
            client_cpu: per_request(after.1 - before.1),
            p50: ms(0.50),
            p90: ms(0.90),
            p99: ms(0.99),
            max: ms(1.0),
        };
        println!(
            "  {:<30} {:>7.0} req/s  p50 {:>5.2} ms  p90 {:>5.2} ms  p99 {:>5.2} ms  max {:>6.2} ms  \
             CPU/req: server {:>3.0} µs, load generator {:>3.0} µs",
            target.name,
            run.rate,
            run.p50,
            run.p90,
            run.p99,
            run.max,
            run.server_cpu,
            run.client_cpu
        );
        run
    }
}

/// The median over runs of one figure (the lower middle for an even count): one run
/// disturbed by the rest of a shared machine does not move it.
fn median(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(f).collect();
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}

/// The highest value over runs of one figure.
fn highest(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    runs.iter().map(f).fold(0.0, f64::max)
}

/// User + system CPU time of a process (all its threads) so far, in seconds; `pid` may
/// be `self`. /proc counts in clock ticks, 100 per second on Linux.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses: utime and stime are
    // the 14th and 15th of the line, the 12th and 13th after the name.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    ticks(11).unwrap_or(0.0) / 100.0 + ticks(12).unwrap_or(0.0) / 100.0
}

/// Peak and current resident memory of a process, in MiB, from /proc.
fn memory(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((kib("VmHWM:")? / 1024.0, kib("VmRSS:")? / 1024.0))
}

fn addr_of(base: &str) -> SocketAddr {
    base.strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .expect("an http://host:port base URL")
}

async fn bench() {
    let load = Load {
        connections: env_num("BENCH_CONNECTIONS", 64),
        warmup: Duration::from_secs_f64(env_num("BENCH_WARMUP", 2.0)),
        measure: Duration::from_secs_f64(env_num("BENCH_SECONDS", 10.0)),
    };
    let rounds: usize = env_num("BENCH_ROUNDS", 3).max(1);

    let files = tempfile::tempdir().expect("tempdir");
    let policies = files.path().join("policies.cedar");
    std::fs::write(&policies, include_str!("policies.cedar")).expect("writing the policies");
    let s = Server::with_config(&format!(
        "policy_file = {:?}\n{PURPOSES}",
        policies.display().to_string()
    ))
    .await;
    let backend = if s.database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    let r = s
        .post(
            "/v1/users",
            Some(&s.service_key),
            json!({"username": "bench", "password": PASSWORD, "roles": ["editor", "viewer"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s.login("bench", PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let decision = json!({
        "access_token": token,
        "action": "write",
        "resource": "doc-42",
        "resource_attributes": {"env": "prod", "owner_team": "payments", "frozen": false, "replicas": 3},
        "context": {"ip": "127.0.0.1"},
    });
    let first = s
        .post("/v1/decisions", Some(&s.service_key), decision.clone())
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["decision"], "allow", "{}", first.text);

    let hello = Hello::start();
    let stepgate = addr_of(&s.base);
    let hello_target = Arc::new(Target::new(
        "hello-world: POST /hello",
        hello.addr,
        hello.child.id(),
        "POST /hello",
        Some(&s.service_key),
        Some(&decision),
        b"\"allow\"",
    ));
    let decide_target = Arc::new(Target::new(
        "stepgate: POST /v1/decisions",
        stepgate,
        s.pid(),
        "POST /v1/decisions",
        Some(&s.service_key),
        Some(&decision),
        b"\"decision\":\"allow\"",
    ));
    let healthz_target = Arc::new(Target::new(
        "stepgate: GET /healthz",
        stepgate,
        s.pid(),
        "GET /healthz",
        None,
        None,
        b"\"ok\"",
    ));

    println!(
        "backend: {backend}; {} keep-alive connections; {:?} warm-up + {:?} per run; \
         load generator on the same {} cores",
        load.connections,
        load.warmup,
        load.measure,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "decision: write on doc-42 by an editor ({} policies); answer: {}",
        include_str!("policies.cedar").matches("@id(").count(),
        first.body["decision"]
    );
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        // For profiling one side: `BENCH_ONLY=decisions` (or hello, healthz) runs just
        // that, once, and prints the server's pid to attach a profiler to.
        println!("stepgate pid {}, hello pid {}", s.pid(), hello.child.id());
        let target = match only.as_str() {
            "hello" => &hello_target,
            "healthz" => &healthz_target,
            _ => &decide_target,
        };
        load.run(target).await;
        return;
    }
    let mut hellos = Vec::new();
    let mut decisions = Vec::new();
    for _ in 0..rounds {
        hellos.push(load.run(&hello_target).await);
        decisions.push(load.run(&decide_target).await);
    }
    let healthz = load.run(&healthz_target).await;

    // Each decisions run is paired with the hello-world run just before it.
    let ratios: Vec<f64> = hellos
        .iter()
        .zip(&decisions)
        .map(|(h, d)| 100.0 * d.rate / h.rate)
        .collect();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let ratio = sorted[(sorted.len() - 1) / 2];
    println!("summary (median of {rounds} runs each; worst run in brackets):");
    println!(
        "  hello-world baseline:  {:>7.0} req/s        p99 {:>5.2} ms; server CPU {:.0} µs/req",
        median(&hellos, |r| r.rate),
        median(&hellos, |r| r.p99),
        median(&hellos, |r| r.server_cpu)
    );
    println!(
        "  POST /v1/decisions:    {:>7.0} decisions/s  p50 {:>5.2} ms  p90 {:>5.2} ms  p99 {:>5.2} ms \
         [{:.2} ms]; server CPU {:.0} µs/req",
        median(&decisions, |r| r.rate),
        median(&decisions, |r| r.p50),
        median(&decisions, |r| r.p90),
        median(&decisions, |r| r.p99),
        highest(&decisions, |r| r.p99),
        median(&decisions, |r| r.server_cpu)
    );
    println!(
        "  GET /healthz:          {:>7.0} req/s        p99 {:>5.2} ms; server CPU {:.0} µs/req",
        healthz.rate, healthz.p99, healthz.server_cpu
    );
    let p99 = median(&decisions, |r| r.p99);
    println!(
        "  decisions / hello-world (pairwise): {ratio:.1}% [{:.1}%] (target >= 40%), \
         decision p99 {p99:.2} ms (target <= 5 ms): {}",
        sorted[0],
        if ratio >= 40.0 && p99 <= 5.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    if let Some((peak, now)) = memory(s.pid()) {
        println!("  stepgate memory: peak RSS {peak:.1} MiB, now {now:.1} MiB");
    }
}

fn main() {
    if std::env::var_os(HELLO_ENV).is_some() {
        serve_hello();
        return;
    }
    tokio::runtime::Runtime::new()
        .expect("a tokio runtime")
        .block_on(bench());
}
