//! Shared by the integration tests: a real SMTP server ([`smtp`]) and a throw-away copy
//! of the bundled example site to run the `newsdesk` binary on ([`Site`]).

#![allow(dead_code)]

pub mod dovecot;
pub mod http;
pub mod postfix;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `Date` of every test render: 2020-05-12T20:00:00Z (the newest issue's date).
pub const EPOCH: &str = "1589313600";

/// The repository's own `config.toml` up to its `[email]` section: `[site]` and `[feeds]`.
pub fn bundled_site_config() -> String {
    let text = std::fs::read_to_string(repo().join("config.toml")).unwrap();
    match text.find("\n[email]") {
        Some(i) => text[..i + 1].to_string(),
        None => text,
    }
}

/// `[email]` and `[smtp]` for a plain (loopback) SMTP server on `port`.
pub fn mail_config(port: u16) -> String {
    format!(
        r#"
[email]
from = "LWKD <lwkd@example.org>"
to = "kubernetes-dev@example.org"
reply_to = "lwkd@example.org"
templates = "email-templates"
transport = "smtp"
list_id = "LWKD <lwkd.example.org>"
unsubscribe_url = "https://lwkd.example.org/unsubscribe"
unsubscribe_mailto = "lwkd+unsubscribe@example.org"

[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout_secs = 5
max_attempts = 3
retry_delay_secs = 0.05
"#
    )
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A temporary copy of the bundled posts and email templates with its own config.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    /// The bundled site with `mail` (`[email]`, `[smtp]`, ...) appended to its config.
    pub fn new(mail: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("posts"), &dir.path().join("posts"));
        copy_dir(&repo().join("email-templates"), &dir.path().join("email-templates"));
        let site = Site { dir };
        site.write_config(mail);
        site
    }

    pub fn write_config(&self, mail: &str) {
        std::fs::write(self.path("config.toml"), format!("{}{mail}", bundled_site_config())).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts `newsdesk -c CONFIG args...` in the background (output piped, stdin
    /// closed), for tests that act while it runs or run several at once.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }

    /// `newsdesk -c CONFIG args...` in the site's folder, with a fixed render date and
    /// none of the caller's SMTP password, display or MTA variables.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
        cmd.arg("-c")
            .arg(self.path("config.toml"))
            .args(args)
            .current_dir(self.dir.path())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env_remove("NEWSDESK_SMTP_PASSWORD")
            .env_remove("NEWSDESK_NOW")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("RECIPIENT")
            .env_remove("ORIGINAL_RECIPIENT");
        cmd
    }

    /// Runs `newsdesk -c CONFIG args...` with stdin closed (not a terminal).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    /// Runs `newsdesk -c CONFIG args...` with `input` on stdin (an MTA pipe), in the
    /// site's folder.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        self.run_stdin_env(args, input, &[])
    }

    /// [`Self::run_stdin`] with `env` set (an MTA's `RECIPIENT`, say).
    pub fn run_stdin_env(&self, args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Output {
        use std::io::Write;
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args).stdin(Stdio::null()).envs(env.iter().copied()).output().unwrap()
    }
}

/// stdout and stderr of a run, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
