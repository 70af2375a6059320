//! `store-roundtrip`: what one Redis GET costs the *client* in CPU, for each way a target could talk
//! to Redis, at a given concurrency. Run by `scripts/store-roundtrip`, which pins this process to one
//! core and the redis-server to another.
//!
//! Every client runs on the runtime a pinned one-worker target runs on (tokio's current-thread runtime;
//! `--runtime multi` for the multi-thread runtime with one worker, which targets with more workers use),
//! with `--concurrency` tasks each issuing GETs back to back on its own key (a 43-byte key and a
//! 24-byte value, the size of a session lookup), until `--ops` GETs completed in all. The figure is
//! the process's CPU time (user + system, `getrusage`) over the measured GETs divided by their
//! number, after a warm-up of a tenth as many. Clients:
//! - `raw`: one TCP connection, hand-written RESP, `concurrency` GETs written in one batch then read
//!   back: the floor for one pipelined connection;
//! - `redis-mux`: the `redis` crate's multiplexed connection, shared by every task;
//! - `fred-pool-N`: a bare `fred` pool of N clients (defaults, no timeouts);
//! - `tuned-pool-N`: the pool inside authbench's [`RedisStore`] (the target's connection settings:
//!   timeouts, unresponsive-connection detection, reconnect policy), called directly, without the
//!   store's per-command options and timeout guard: separates the settings' cost from the wrapper's;
//! - `store-pool-N`: authbench's own [`RedisStore`] (fred, with the target's timeouts, fail-fast and
//!   reconnect policy) behind [`Store`] (per-command metrics), pool of N: what a target pays.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authbench_targets::metrics::Metrics;
use authbench_targets::store::{Backend, RedisStore, RedisStoreOptions, Store};
use bytes::Bytes;
use fred::prelude::{Builder, ClientLike, Config, KeysInterface, Pool};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const VALUE: &[u8] = b"bench-user-0001\nuser,adm";
const USAGE: &str = "usage: store-roundtrip --url redis://HOST:PORT [--concurrency N] [--ops N] [--runtime current|multi] CLIENT...\n\
    clients: raw, redis-mux, fred-pool-N, tuned-pool-N, store-pool-N";

/// What to measure, from the command line.
struct Args {
    /// `redis://host:port` of a redis-server with nothing else on it.
    url: String,
    /// GETs in flight at once.
    concurrency: usize,
    /// Measured GETs per client (after a warm-up of a tenth as many).
    ops: u64,
    /// The clients to measure, in order.
    clients: Vec<String>,
    /// Run on the multi-thread runtime (one worker) instead of the current-thread one.
    multi_thread: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { url: String::new(), concurrency: 16, ops: 200_000, clients: Vec::new(), multi_thread: false };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--url" => args.url = value("--url")?,
            "--concurrency" => {
                args.concurrency = value("--concurrency")?.parse().map_err(|e| format!("--concurrency: {e}"))?
            }
            "--ops" => args.ops = value("--ops")?.parse().map_err(|e| format!("--ops: {e}"))?,
            "--runtime" => {
                args.multi_thread = match value("--runtime")?.as_str() {
                    "current" => false,
                    "multi" => true,
                    other => return Err(format!("--runtime: expected current or multi, got `{other}`")),
                }
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => args.clients.push(a),
        }
    }
    if args.url.is_empty() || args.clients.is_empty() || args.concurrency == 0 || args.ops == 0 {
        return Err("--url, a concurrency and ops above 0 and at least one client are required".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("store-roundtrip: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let rt = if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }
    .expect("tokio runtime");
    println!("| client | concurrency | GETs | client CPU µs/GET | GETs/s (wall) |");
    println!("|---|---:|---:|---:|---:|");
    for client in &args.clients {
        match rt.block_on(measure(&args, client)) {
            Ok(m) => println!(
                "| {client} | {} | {} | {:.2} | {:.0} |",
                args.concurrency,
                args.ops,
                m.cpu_us / args.ops as f64,
                args.ops as f64 / m.wall_s
            ),
            Err(e) => {
                eprintln!("store-roundtrip: {client}: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// One client's measured window.
struct Measured {
    /// Process CPU (user + system) over the measured GETs, µs.
    cpu_us: f64,
    /// Wall time of the measured GETs, seconds.
    wall_s: f64,
}

/// A way of issuing GETs, shared by the tasks.
#[derive(Clone)]
enum Client {
    RedisMux(redis::aio::MultiplexedConnection),
    Fred(Pool),
    /// Kept whole (not just its pool): dropping the store aborts its connection tasks.
    Tuned(RedisStore),
    Store(Store),
}

impl Client {
    async fn connect(url: &str, name: &str) -> Result<Client, String> {
        let pool_size = |prefix: &str| name.strip_prefix(prefix).and_then(|n| n.parse::<usize>().ok());
        if name == "redis-mux" {
            let c = redis::Client::open(url).map_err(|e| e.to_string())?;
            return c.get_multiplexed_async_connection().await.map(Client::RedisMux).map_err(|e| e.to_string());
        }
        if let Some(n) = pool_size("fred-pool-") {
            let config = Config::from_url(url).map_err(|e| e.to_string())?;
            let pool = Builder::from_config(config).build_pool(n).map_err(|e| e.to_string())?;
            pool.init().await.map_err(|e| e.to_string())?;
            return Ok(Client::Fred(pool));
        }
        let store = |n: usize| async move {
            let opts = RedisStoreOptions {
                urls: vec![url.to_owned()],
                pool_size: n,
                command_timeout: Duration::from_millis(250),
            };
            RedisStore::connect(opts).await.map_err(|e| e.to_string())
        };
        if let Some(n) = pool_size("tuned-pool-") {
            return Ok(Client::Tuned(store(n).await?));
        }
        if let Some(n) = pool_size("store-pool-") {
            return Ok(Client::Store(Store::new(Backend::Redis(store(n).await?), Arc::new(Metrics::new()))));
        }
        Err(format!("unknown client `{name}`\n{USAGE}"))
    }

    async fn get(&mut self, key: &str) -> Result<Option<Bytes>, String> {
        match self {
            Client::RedisMux(c) => redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Vec<u8>>>(c)
                .await
                .map(|v| v.map(Bytes::from))
                .map_err(|e| e.to_string()),
            Client::Fred(p) => p.get::<Option<Bytes>, _>(key).await.map_err(|e| e.to_string()),
            Client::Tuned(s) => s.pool().get::<Option<Bytes>, _>(key).await.map_err(|e| e.to_string()),
            Client::Store(s) => s.get(key).await.map_err(|e| e.to_string()),
        }
    }
}

async fn measure(args: &Args, name: &str) -> Result<Measured, String> {
    let keys: Vec<String> = (0..args.concurrency).map(|i| format!("s:{i:0>41}")).collect();
    seed(&args.url, &keys).await?;
    let warmup = (args.ops / 10).max(1);
    if name == "raw" {
        let mut conn = RawConnection::connect(&args.url).await?;
        conn.run(&keys, warmup).await?;
        let start = Usage::now();
        conn.run(&keys, args.ops).await?;
        return Ok(start.elapsed());
    }
    let client = Client::connect(&args.url, name).await?;
    run_tasks(&client, &keys, warmup).await?;
    let start = Usage::now();
    run_tasks(&client, &keys, args.ops).await?;
    Ok(start.elapsed())
}

/// `keys.len()` tasks issuing GETs until `ops` completed in all.
async fn run_tasks(client: &Client, keys: &[String], ops: u64) -> Result<(), String> {
    let remaining = Arc::new(AtomicU64::new(ops));
    let mut tasks = tokio::task::JoinSet::new();
    for key in keys {
        let (mut client, key, remaining) = (client.clone(), key.clone(), Arc::clone(&remaining));
        tasks.spawn(async move {
            while remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok() {
                match client.get(&key).await? {
                    Some(v) if v.as_ref() == VALUE => {}
                    other => return Err(format!("GET {key}: unexpected {other:?}")),
                }
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// SET every key to [`VALUE`] (outside the measured window).
async fn seed(url: &str, keys: &[String]) -> Result<(), String> {
    let c = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = c.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    for k in keys {
        redis::cmd("SET").arg(k).arg(VALUE).query_async::<()>(&mut conn).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One connection speaking RESP by hand: the least a client can do per GET.
struct RawConnection {
    stream: BufReader<TcpStream>,
    /// The encoded GETs of one batch, reused while the batch size stays the same.
    request: Vec<u8>,
    /// How many GETs `request` holds.
    request_batch: usize,
    /// Reused for every reply line.
    line: Vec<u8>,
}

impl RawConnection {
    async fn connect(url: &str) -> Result<RawConnection, String> {
        let addr = url.strip_prefix("redis://").ok_or("the URL must be redis://HOST:PORT")?;
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(RawConnection { stream: BufReader::new(stream), request: Vec::new(), request_batch: 0, line: Vec::new() })
    }

    /// `ops` GETs, `keys.len()` per batch written at once.
    async fn run(&mut self, keys: &[String], ops: u64) -> Result<(), String> {
        let mut done = 0u64;
        while done < ops {
            let batch = keys.len().min((ops - done) as usize);
            // Encoded once: the requests of a full batch never change.
            if self.request_batch != batch {
                self.request.clear();
                for k in &keys[..batch] {
                    self.request.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n${}\r\n{k}\r\n", k.len()).as_bytes());
                }
                self.request_batch = batch;
            }
            self.stream.get_mut().write_all(&self.request).await.map_err(|e| e.to_string())?;
            for _ in 0..batch {
                self.read_bulk().await?;
            }
            done += batch as u64;
        }
        Ok(())
    }

    async fn read_bulk(&mut self) -> Result<(), String> {
        self.line.clear();
        self.stream.read_until(b'\n', &mut self.line).await.map_err(|e| e.to_string())?;
        let len: usize = std::str::from_utf8(self.line.strip_prefix(b"$").ok_or("not a bulk reply")?)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or("bad bulk length")?;
        let mut body = [0u8; 64];
        let body = body.get_mut(..len + 2).ok_or("reply longer than expected")?;
        self.stream.read_exact(body).await.map_err(|e| e.to_string())?;
        if &body[..len] == VALUE { Ok(()) } else { Err("unexpected value".into()) }
    }
}

/// Process CPU and wall clock at one instant.
struct Usage {
    cpu_us: f64,
    at: Instant,
}

impl Usage {
    fn now() -> Usage {
        Usage { cpu_us: process_cpu_us(), at: Instant::now() }
    }

    fn elapsed(&self) -> Measured {
        Measured { cpu_us: process_cpu_us() - self.cpu_us, wall_s: self.at.elapsed().as_secs_f64() }
    }
}

/// User + system CPU of this process (all threads), µs.
fn process_cpu_us() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(ru.ru_utime) + us(ru.ru_stime)
}
