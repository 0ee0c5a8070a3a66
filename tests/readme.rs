//! The README's "Try it" block, run as written against the binary started as the README
//! starts it (no config, a fresh directory), so that the walk-through cannot rot.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::BIN;

/// The first `sh` block after the "## Try it" heading.
fn try_it_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("reading README.md");
    let section = readme
        .split_once("## Try it\n")
        .expect("the README has a Try it section")
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("Try it has an sh block")
        .1;
    block
        .split_once("```")
        .expect("the block is closed")
        .0
        .to_owned()
}

/// Issue 11, defect 8: the walk-through sets its own tokens and goes on to the three
/// decisions (a known device signs in with the password, a new device steps up with a
/// TOTP code, a delete needs a fresh single-use step-up).
#[test]
fn the_readme_walk_through_runs_as_written() {
    let block = try_it_block();
    // The block runs the CLI through cargo, as a reader would; here it is the binary
    // under test (the only change made to the block).
    let cli = "cargo run -q --release --";
    assert!(block.contains(cli), "the block no longer runs `{cli}`");
    let script = block.replace(cli, BIN);

    let cwd = tempfile::tempdir().unwrap();
    let clean = |cmd: &mut Command| common::fresh_machine(cmd, cwd.path());
    let mut serve = Command::new(BIN);
    clean(&mut serve);
    let mut server = serve
        .arg("serve")
        .env("STEPGATE_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.split("listening on http://").nth(1)?;
            Some(rest.split_whitespace().next()?.to_owned())
        })
        .expect("the server announced its address");

    let mut bash = Command::new("bash");
    clean(&mut bash);
    let out = bash
        .args(["-e", "-o", "pipefail", "-c", &script])
        .env("SG", format!("http://{addr}"))
        .output()
        .expect("running bash");
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // 1. The known device: a session at low risk, twice (laptop, then the phone once
    //    remembered).
    assert_eq!(
        stdout
            .matches(r#"{"token_type":"Bearer","risk":"low"}"#)
            .count(),
        2,
        "{stdout}"
    );
    // 2. The new device: a login challenge, completed with TOTP.
    assert!(stderr.contains("STEPUP_REQUIRED"), "{stderr}");
    assert!(
        stdout.contains(r#"{"token_type":"Bearer","risk":"medium"}"#),
        "{stdout}"
    );
    // 3. The delete: step_up, then allow once, then step_up again.
    assert!(stderr.contains(r#""decision":"step_up""#), "{stderr}");
    let allow = stdout
        .find(r#"{"decision":"allow""#)
        .expect("the delete was allowed after the step-up");
    assert!(
        stdout[allow..].contains(r#"{"decision":"step_up""#),
        "the elevation worked twice: {stdout}"
    );
    assert!(stdout.contains("logout: 204"), "{stdout}");
}
