//! A real browser for the hosted-page tests: Debian's headless chromium with a fresh
//! profile, driven through `tests/browser/driver.mjs` (playwright-core), one JSON
//! command per line. Screenshots go to `target/tmp/pages/`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _profile: tempfile::TempDir,
}

/// Where screenshots are saved.
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pages");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    pub fn launch() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/driver.mjs");
        let mut child = Command::new("node")
            .arg(driver)
            .arg(profile.path())
            .arg(screenshot_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs tests/browser/driver.mjs (scripts/test-deps installs it)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            _profile: profile,
        }
    }

    /// Runs one command; panics with the browser's error if it failed.
    pub fn call(&mut self, command: Value) -> Value {
        match self.try_call(command.clone()) {
            Ok(v) => v,
            Err(e) => panic!("browser: {command} failed: {e}"),
        }
    }

    pub fn try_call(&mut self, command: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let reply: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the driver answered {line:?} (did it start?)"));
        match reply.get("error") {
            Some(e) => Err(e.as_str().unwrap_or_default().to_owned()),
            None => Ok(reply["ok"].clone()),
        }
    }

    /// Opens `url`; returns the response's status.
    pub fn goto(&mut self, url: &str) -> u16 {
        let r = self.call(json!({"op": "goto", "url": url}));
        r["status"].as_u64().unwrap_or(0) as u16
    }

    pub fn url(&mut self) -> String {
        self.call(json!({"op": "url"})).as_str().unwrap().to_owned()
    }

    pub fn fill(&mut self, selector: &str, value: &str) {
        self.call(json!({"op": "fill", "selector": selector, "value": value}));
    }

    pub fn click(&mut self, selector: &str) {
        self.call(json!({"op": "click", "selector": selector}));
    }

    pub fn press(&mut self, key: &str) {
        self.call(json!({"op": "press", "key": key}));
    }

    pub fn type_text(&mut self, text: &str) {
        self.call(json!({"op": "type", "text": text}));
    }

    /// The text of the first element `selector` finds (waiting for it).
    pub fn text(&mut self, selector: &str) -> String {
        self.call(json!({"op": "text", "selector": selector}))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn count(&mut self, selector: &str) -> u64 {
        self.call(json!({"op": "count", "selector": selector}))
            .as_u64()
            .unwrap()
    }

    pub fn attribute(&mut self, selector: &str, name: &str) -> Option<String> {
        self.call(json!({"op": "attribute", "selector": selector, "name": name}))
            .as_str()
            .map(str::to_owned)
    }

    pub fn wait_for(&mut self, selector: &str) {
        self.call(json!({"op": "waitFor", "selector": selector}));
    }

    /// The element with keyboard focus: `{id, name, tag, text}`.
    pub fn focused(&mut self) -> Value {
        self.call(json!({"op": "focused"}))
    }

    /// Every response since the last call: `[{url, status, location}]`.
    pub fn responses(&mut self) -> Vec<Value> {
        self.call(json!({"op": "responses"}))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn cookies(&mut self) -> Vec<Value> {
        self.call(json!({"op": "cookies"}))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Bytes the current page took over the network (document and assets), asserted
    /// under 60 KB and printed.
    pub fn assert_weight(&mut self, name: &str) -> u64 {
        let bytes = self.call(json!({"op": "weight"})).as_u64().unwrap();
        eprintln!("page weight {name}: {bytes} bytes");
        assert!(bytes > 0 && bytes < 60 * 1024, "{name}: {bytes} bytes");
        bytes
    }

    /// Saves `<name>-phone.png` (360 px wide) and `<name>-desktop.png`.
    pub fn screenshot(&mut self, name: &str) {
        self.call(json!({"op": "screenshot", "name": name}));
    }

    /// Adds Chromium's virtual authenticator (a passkey with user verification);
    /// returns its id.
    pub fn add_virtual_authenticator(&mut self) -> String {
        self.call(json!({"op": "addVirtualAuthenticator"}))
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The credentials the virtual authenticator holds: `[{credentialId, signCount, rpId}]`.
    pub fn credentials(&mut self, authenticator: &str) -> Vec<Value> {
        self.call(json!({"op": "credentials", "authenticatorId": authenticator}))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A request sent by the page itself (its cookies, its origin): `{status, type, text}`.
    pub fn fetch(
        &mut self,
        url: &str,
        method: &str,
        body: Option<&str>,
        content_type: Option<&str>,
    ) -> Value {
        self.call(json!({"op": "fetch", "url": url, "method": method, "body": body, "contentType": content_type}))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.try_call(json!({"op": "close"}));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
