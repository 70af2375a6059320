//! Test fixtures: a target served in-process on port 0, a private redis-server on a free port,
//! and an HTTP client.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authbench_targets::TargetArgs;
use authbench_targets::config::StrategyKind;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A free loopback port (bound then released; good enough for a child that binds it next).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A redis-server of the test's own, on a free port, with nothing persisted. Killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RedisServer { port: free_port(), child: None, dir };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/setup installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis_ping(self.port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Kill the server (SIGKILL): the store is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port (empty: nothing was persisted).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// PING over a raw socket; true on `+PONG`.
pub fn redis_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) =
        std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// A target served in-process on 127.0.0.1:0. Shut down on drop.
pub struct TestTarget {
    pub base: String,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The admin key every test target is started with.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// Default args for a strategy as tests use them: admin key set, a fixed HS secret.
pub fn args(strategy: StrategyKind) -> TargetArgs {
    let mut a = TargetArgs::new(strategy);
    a.admin_key = Some(ADMIN_KEY.to_owned());
    a.secret = Some("a-test-secret-that-is-at-least-32-bytes-long".to_owned());
    a
}

impl TestTarget {
    pub async fn start(args: TargetArgs) -> Self {
        let config = args.validate().expect("valid test config");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(authbench_targets::serve(config, listener, async move {
            let _ = rx.await;
        }));
        TestTarget { base: format!("http://{addr}"), addr, shutdown: Some(tx), task: Some(task) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stop the server and wait for it to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestTarget {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An HTTP client that keeps cookies out of it (tests set `Cookie` by hand) and never follows redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Send raw bytes and return the raw response (for requests a well-behaved client cannot send).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A Redis Cluster of the test's own: `n` (>= 3) redis-server processes in cluster mode on free
/// loopback ports, all masters, slots spread by `redis-cli --cluster create`. Killed on drop.
///
/// A mirror of the harness's `collect::cluster::RedisCluster` (target tests cannot depend on the
/// harness), kept short: it panics instead of returning errors.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start(n: usize) -> Self {
        assert!(n >= 3, "a Redis Cluster needs at least 3 masters");
        let nodes: Vec<RedisServer> = (0..n).map(|_| Self::start_node()).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed");
        assert!(out.status.success(), "redis-cli --cluster create: {}", String::from_utf8_lossy(&out.stdout));
        for node in &nodes {
            while !redis_command(node.port, "CLUSTER INFO").contains("cluster_state:ok") {
                assert!(Instant::now() < deadline + Duration::from_secs(10), "cluster not ok on {}", node.port);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes }
    }

    /// One cluster-mode node on free ports, answering PING. A port taken between `free_port` and the
    /// server's bind (a parallel test won the race) makes the server exit: try again on new ports.
    fn start_node() -> RedisServer {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                // The bus port must be free too (the default, port + 10000, may not even exist).
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args(["--cluster-port", &free_port().to_string()])
                .arg("--cluster-config-file")
                .arg(dir.path().join(format!("nodes-{port}.conf")))
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (scripts/setup installs it)");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if redis_ping(port) {
                    return RedisServer { port, child: Some(child), dir };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("no cluster node answered PING after 5 attempts");
    }

    /// Comma-joined `redis://` URLs of every node: what `--store` takes for a cluster.
    pub fn urls(&self) -> String {
        self.url_list().join(",")
    }

    pub fn url_list(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// Keys held by each node (`DBSIZE`), to check that records spread over the nodes.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| {
                let reply = redis_command(n.port, "DBSIZE");
                reply.trim().trim_start_matches(':').parse().unwrap_or(0)
            })
            .collect()
    }
}

/// Send one inline command over a raw socket and return whatever one read brings back.
pub fn redis_command(port: u16, command: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) =
        std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200))
    else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(format!("{command}\r\n").as_bytes()).is_err() {
        return String::new();
    }
    let mut buf = vec![0u8; 64 * 1024];
    match s.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    }
}

/// Opt-out: with this set to `1`, PostgreSQL tests return early (saying so) when no server is
/// reachable. Without it an unreachable server fails them: a silent pass would hide that the
/// PostgreSQL store was never tested.
pub const POSTGRES_OPT_OUT_ENV: &str = "AUTHBENCH_SKIP_POSTGRES";

/// The server PostgreSQL tests use: `AUTHBENCH_TEST_POSTGRES_URL`, else the one `scripts/setup`
/// provides (role and database `authbench`, password `authbench`; on a trust-auth server the
/// password is ignored).
pub fn postgres_server_url() -> String {
    std::env::var("AUTHBENCH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://authbench:authbench@127.0.0.1:5432/authbench".to_owned())
}

/// A schema of the test's own on the machine's PostgreSQL, with a unique name; dropped (with
/// everything in it) on drop. Nothing outside it is touched.
pub struct PgSchema {
    pub name: String,
    server_url: String,
}

impl PgSchema {
    /// Create a fresh schema. `None` only when the server is unreachable and the opt-out is set;
    /// unreachable without the opt-out panics with what to do.
    pub async fn create() -> Option<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let server_url = postgres_server_url();
        let client = match pg_connect(&server_url).await {
            Ok(c) => c,
            Err(e) if std::env::var(POSTGRES_OPT_OUT_ENV).as_deref() == Ok("1") => {
                eprintln!("SKIPPED: no PostgreSQL at {server_url} ({e}) and {POSTGRES_OPT_OUT_ENV}=1");
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL tests need a server at {server_url} ({e}). Run scripts/setup (installs and \
                 starts one), set AUTHBENCH_TEST_POSTGRES_URL, or set {POSTGRES_OPT_OUT_ENV}=1 to skip them."
            ),
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("authbench_test_{}_{nanos}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        client.batch_execute(&format!("CREATE SCHEMA \"{name}\"")).await.expect("create the test schema");
        Some(PgSchema { name, server_url })
    }

    /// The `--store` URL of this schema.
    pub fn url(&self) -> String {
        with_schema(&self.server_url, &self.name)
    }

    /// The `--store` URL of this schema, reached through `port` on 127.0.0.1 (a proxy).
    pub fn url_via(&self, port: u16) -> String {
        let cfg: tokio_postgres::Config = self.server_url.parse().expect("valid test URL");
        let user = cfg.get_user().unwrap_or("postgres");
        let db = cfg.get_dbname().unwrap_or(user);
        let password = cfg.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
        format!("postgres://{user}{password}@127.0.0.1:{port}/{db}?schema={}", self.name)
    }

    /// Run one SQL statement on the server (for assertions on the table itself).
    pub async fn query_count(&self, sql: &str) -> i64 {
        let client = pg_connect(&self.server_url).await.expect("connect");
        client.query_one(sql, &[]).await.expect("query").get(0)
    }

    /// The address of the server, for proxies.
    pub fn server_addr(&self) -> SocketAddr {
        let cfg: tokio_postgres::Config = self.server_url.parse().expect("valid test URL");
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        use std::net::ToSocketAddrs;
        (host.as_str(), port).to_socket_addrs().expect("resolve").next().expect("an address")
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.server_url.clone();
        let name = self.name.clone();
        // Drop is synchronous and may run inside a runtime: drop the schema from a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(c) = pg_connect(&url).await {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")).await;
                }
            });
        });
        let _ = done.join();
    }
}

/// `url` with `schema=NAME` added to its query.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// One plain connection (its driver task spawned), bounded to 3 s.
pub async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let connect = tokio_postgres::connect(url, tokio_postgres::NoTls);
    let (client, conn) = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| authbench_targets::store::postgres::describe(&e))?;
    tokio::spawn(conn);
    Ok(client)
}

/// A TCP forwarder in front of a server, which a test can cut (every connection closed, new ones
/// refused) and restore: a store outage without stopping a server other tests share.
pub struct CutProxy {
    pub port: u16,
    /// Bumped on each cut; forwarding tasks of an older generation end themselves.
    generation: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    upstream: SocketAddr,
    accept: Option<tokio::task::JoinHandle<()>>,
}

impl CutProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let mut p = CutProxy { port: 0, generation: std::sync::Arc::new(tx), upstream, accept: None };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        p.port = listener.local_addr().unwrap().port();
        p.listen(listener);
        p
    }

    fn listen(&mut self, listener: TcpListener) {
        let generation = self.generation.clone();
        let upstream = self.upstream;
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let mut cut = generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        }));
    }

    /// Close every forwarded connection and stop accepting (connects are refused).
    pub fn cut(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accept and forward again, on the same port.
    pub async fn restore(&mut self) {
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.listen(listener);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
