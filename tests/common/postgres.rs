//! A throwaway PostgreSQL server for tests and benches: `initdb` + `pg_ctl` from Debian's
//! `/usr/lib/postgresql/*/bin`, its data and unix socket inside a temporary folder, listening on a
//! free loopback port, trust authentication for the `scopegate` superuser, durability off (fsync)
//! since the folder is thrown away. Stopped (`pg_ctl stop -m immediate`) and removed on drop; a
//! system service is never touched.
//!
//! initdb refuses to run as root: when the tests run as root (CI), the folder is given to the
//! `postgres` user (which Debian's package creates) and the binaries run through
//! `runuser -u postgres --`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running PostgreSQL server, stopped and removed on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The loopback port it listens on.
    pub port: u16,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// Makes a cluster in a fresh folder and starts it (a few seconds).
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scopegate-pg-")
            .tempdir()
            .unwrap();
        let as_postgres = is_root();
        let mut pg = Self {
            dir,
            bin: bin_dir(),
            as_postgres,
            port: 0,
        };
        if as_postgres {
            let owner = Command::new("chown")
                .args(["postgres:", pg.dir.path().to_str().unwrap()])
                .status()
                .unwrap();
            assert!(owner.success(), "cannot give the folder to the postgres user");
        }
        let data = pg.data();
        pg.run_ok(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "scopegate",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        // a port taken between the probe and the start: try another
        for attempt in 0..5 {
            pg.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
                 -c full_page_writes=off -c shared_buffers=16MB -c max_connections=60",
                pg.port,
                pg.dir.path().display()
            );
            let log = pg.dir.path().join("postgres.log");
            let out = pg.run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-l",
                    log.to_str().unwrap(),
                    "-o",
                    &options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if out.status.success() {
                return pg;
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                attempt < 4,
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        unreachable!()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder holding the data and the socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(self.dir.path()).output().unwrap()
    }

    fn run_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The URL of database `name` (the cluster has `postgres`; others come from [`Self::create`]).
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://scopegate@127.0.0.1:{}/{name}", self.port)
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// Creates database `name` and returns its URL.
    pub fn create(&self, name: &str) -> String {
        let port = self.port.to_string();
        self.run_ok(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "scopegate", name],
        );
        self.url_of(name)
    }

    /// `pg_dump --data-only` of database `name`: every row, in a stable order.
    pub fn dump(&self, name: &str) -> String {
        let port = self.port.to_string();
        let out = self.run_ok(
            "pg_dump",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "scopegate",
                "--data-only",
                "--inserts",
                "--rows-per-insert=1",
                name,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with("INSERT")).collect();
        lines.sort_unstable();
        lines.join("\n")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap_or_default(), "stop", "-m", "immediate"],
        );
    }
}
