//! A real SMTP server on loopback (Python's `aiosmtpd`, installed by
//! `scripts/test-deps`) that keeps every mail it receives in a maildir, for the tests
//! to read the codes stepgate sends.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct SmtpSink {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl SmtpSink {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (run scripts/test-deps)");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the SMTP sink did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            dir,
            port,
        }
    }

    /// The `[smtp]` table that sends through this sink.
    pub fn config(&self) -> String {
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"stepgate@example.test\"\n",
            self.port
        )
    }

    /// Stops the sink: later sends fail.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir").join("new")
    }

    /// Every mail received so far, oldest first.
    pub fn mails(&self) -> Vec<String> {
        mails_in(&self.maildir())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The mails (files) in `dir`, oldest first.
pub fn mails_in(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let modified = e.metadata().and_then(|m| m.modified()).unwrap();
            (modified, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    files.sort_by_key(|(at, _)| *at);
    files.into_iter().map(|(_, text)| text).collect()
}

/// The code in a mail stepgate sent ("Your stepgate code is 123456").
pub fn code_in(mail: &str) -> String {
    let rest = mail
        .split("Your stepgate code is ")
        .nth(1)
        .unwrap_or_else(|| panic!("no code in the mail:\n{mail}"));
    rest.chars().take_while(char::is_ascii_digit).collect()
}
