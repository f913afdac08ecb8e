//! A PostgreSQL server for tests: the one `HOOKHOST_TEST_POSTGRES` names, or a throwaway
//! cluster this test process starts on first use (initdb into a temporary directory, a unix
//! socket there, no TCP) and that is stopped when the process ends, however it ends.
//!
//! Each test asks [`fresh_database`] for a database of its own (`CREATE DATABASE t_<uuid>`), so
//! tests run in parallel without seeing each other. Without server binaries and without
//! `HOOKHOST_TEST_POSTGRES` the tests fail, saying how to get PostgreSQL: they never skip.
//!
//! Shared by the library's unit tests (`registry/postgres/tests.rs` includes this file) and
//! the integration tests under `tests/` (through `tests/common`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// What the tests say when there is no server to use.
const NO_POSTGRES: &str = "the PostgreSQL tests need a server: install Debian's PostgreSQL \
    (`apt-get install -y postgresql`, which puts initdb under /usr/lib/postgresql/<version>/bin; \
    `make test` does it) or set HOOKHOST_TEST_POSTGRES=postgres://user@host/db to a server the \
    tests may create databases on";

/// The server the tests of this process use.
#[derive(Debug)]
pub struct TestServer {
    /// The URL of its maintenance database (`postgres`), to create test databases from.
    pub admin_url: String,
    /// A URL of another database on the same server: `admin_url` with the database replaced.
    url_of: fn(&TestServer, &str) -> String,
    /// The cluster's data directory and `pg_ctl`, when this process started it.
    cluster: Option<Cluster>,
    // Held open until the process exits: the watchdog stops the cluster when it reads EOF.
    _watchdog: Option<Mutex<(Child, ChildStdin)>>,
}

/// A cluster this process started.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Its data directory.
    pub data: PathBuf,
    /// The directory of its unix socket.
    pub socket_dir: PathBuf,
    /// The server binaries.
    pub bin: PathBuf,
}

impl TestServer {
    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        (self.url_of)(self, name)
    }

    /// The cluster, when this process started it (not for `HOOKHOST_TEST_POSTGRES`).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }
}

impl Cluster {
    /// Runs `pg_ctl ARGS` on the cluster as its owner.
    pub fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .output()
            .expect("pg_ctl runs")
    }

    /// Stops the server now (`-m immediate`: as if it went away).
    pub fn stop(&self) {
        let out = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    /// Starts it again on the same socket.
    pub fn start(&self) {
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c max_connections=400",
            self.socket_dir.display()
        );
        let log = self.data.parent().unwrap().join("server.log");
        let out = self.pg_ctl(&["-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }
}

/// Whether this process runs as root (then the cluster runs as `postgres`, which initdb
/// requires).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program` as the cluster's owner: `postgres` when we are root, else ourselves.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The directory of the newest `initdb` under `/usr/lib/postgresql/*/bin`.
pub fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The server of this process, started on first use.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("HOOKHOST_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => TestServer {
            admin_url: url,
            url_of: |server, name| replace_database(&server.admin_url, name),
            cluster: None,
            _watchdog: None,
        },
        _ => start_cluster(),
    })
}

/// `url` with its database replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |at| at + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

fn start_cluster() -> TestServer {
    let bin = server_bin().unwrap_or_else(|| panic!("{NO_POSTGRES}"));
    let dir = tempfile::Builder::new()
        .prefix("hookhost-pg-")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    let data = dir.join("data");
    if is_root() {
        let out = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&dir)
            .output()
            .expect("chown runs");
        assert!(out.status.success(), "chown: {out:?}");
    }
    let out = as_owner(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        .output()
        .expect("initdb runs");
    assert!(out.status.success(), "initdb: {out:?}");
    let cluster = Cluster {
        data: data.clone(),
        socket_dir: dir.clone(),
        bin: bin.clone(),
    };
    cluster.start();
    let watchdog = watchdog(&cluster, &dir);
    TestServer {
        admin_url: format!("postgres://postgres@/postgres?host={}", dir.display()),
        url_of: |server, name| {
            let dir = &server.cluster.as_ref().unwrap().socket_dir;
            format!("postgres://postgres@/{name}?host={}", dir.display())
        },
        cluster: Some(cluster),
        _watchdog: Some(Mutex::new(watchdog)),
    }
}

/// A process of its own group (so a Ctrl-C to the tests does not reach it) that waits for EOF
/// on its stdin — which comes when this process exits, whether it returns, panics or is
/// killed — then stops the cluster and removes its directory.
fn watchdog(cluster: &Cluster, dir: &Path) -> (Child, ChildStdin) {
    use std::os::unix::process::CommandExt;
    let pg_ctl = cluster.bin.join("pg_ctl");
    let stop = if is_root() {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate -w stop",
            pg_ctl.display(),
            cluster.data.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate -w stop",
            pg_ctl.display(),
            cluster.data.display()
        )
    };
    let script = format!(
        "cat >/dev/null; {stop} >/dev/null 2>&1; rm -rf {}",
        dir.display()
    );
    let mut child: Child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("the watchdog starts");
    // Never written to and never waited for: the pipe closing at exit is its whole message,
    // and the watchdog outlives this process.
    let stdin = child.stdin.take().expect("piped");
    (child, stdin)
}

/// A new, empty database on the test server; its URL.
pub fn fresh_database() -> String {
    let server = server();
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    admin_execute(&format!("CREATE DATABASE {name}"));
    server.url(&name)
}

/// Runs `statement` on the server's maintenance database.
pub fn admin_execute(statement: &str) {
    let statement = statement.to_owned();
    with_client(&server().admin_url, move |client| async move {
        client
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e:?}"));
    })
}

/// Runs `work` with a client connected to `url`, on a runtime of its own on a thread of its
/// own: callers may be inside another runtime.
fn with_client<T, F, Fut>(url: &str, work: F) -> T
where
    T: Send + 'static,
    F: FnOnce(tokio_postgres::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let url = url.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("connecting to {url}: {e:?}"));
            tokio::spawn(connection);
            work(client).await
        })
    })
    .join()
    .unwrap()
}

/// The test database for registry root `root`, created (and remembered in the root) on first
/// use, so a root names one registry for every handle opened on it, as a file would.
pub fn database_for_root(root: &Path) -> String {
    static CREATING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    let file = root.join("postgres-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    std::fs::create_dir_all(root).unwrap();
    let url = fresh_database();
    std::fs::write(&file, &url).unwrap();
    url
}

/// The rows of `sql` on the database at `url`, every column as text (`None` for null).
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let sql = sql.to_owned();
    with_client(url, move |client| async move {
        let messages = client
            .simple_query(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// The one number `sql` selects on the database at `url`.
pub fn scalar(url: &str, sql: &str) -> i64 {
    query(url, sql)[0][0]
        .as_deref()
        .expect("not null")
        .parse()
        .expect("a number")
}

/// A cluster of the caller's own, apart from the shared one, for a test that stops and starts
/// its server; stopped (by its watchdog) when the process ends, like the shared one.
pub fn private_server() -> TestServer {
    start_cluster()
}

/// Runs `sql` (one or more statements, one transaction per statement unless it says
/// otherwise) on the database at `url`; the server's message when it refuses.
pub fn try_execute(url: &str, sql: &str) -> Result<(), String> {
    let sql = sql.to_owned();
    with_client(url, move |client| async move {
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => e.to_string(),
            })
    })
}
