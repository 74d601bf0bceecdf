//! A private `redis-server` for tests: started on a free loopback port, stopped by PID (SIGKILL)
//! when dropped, also when the test fails. Without `redis-server` on PATH, [`Redis::start`]
//! prints a notice and gives `None` (the test passes), unless `ROOMCAST_REQUIRE_REDIS=1`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Redis {
    pub port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

fn redis_binary() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

impl Redis {
    pub fn start() -> Option<Redis> {
        Self::start_with(&[])
    }

    /// With `extra` arguments for `redis-server`.
    pub fn start_with(extra: &[&str]) -> Option<Redis> {
        if redis_binary().is_none() {
            if std::env::var("ROOMCAST_REQUIRE_REDIS").as_deref() == Ok("1") {
                panic!("redis-server is not on PATH and ROOMCAST_REQUIRE_REDIS=1");
            }
            eprintln!("notice: redis-server is not on PATH, skipping a Redis test");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        redis.spawn();
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Killed and started again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// One command on a fresh raw connection; the reply as text (a bulk string or a line; a
    /// nil bulk string as its `$-1` line).
    pub fn raw(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut command = format!("*{}\r\n", args.len());
        for arg in args {
            command.push_str(&format!("${}\r\n{}\r\n", arg.len(), arg));
        }
        stream.write_all(command.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        match line.strip_prefix('$') {
            Some(len) if !len.starts_with('-') => {
                let len: usize = len.trim().parse().unwrap();
                let mut body = vec![0; len + 2];
                reader.read_exact(&mut body).unwrap();
                String::from_utf8_lossy(&body[..len]).into_owned()
            }
            _ => line.trim().to_owned(),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
