//! A private Postfix instance on 127.0.0.1 for TLS tests: Debian's Postfix, started by
//! the test with its own configuration folder, queue and maildir, and certificates
//! made by the test with rcgen (a CA, and server certificates signed by it).
//!
//! Listeners, each on a free port:
//! - `starttls`: STARTTLS offered, a certificate for 127.0.0.1 signed by the CA;
//! - `wrong_name`: the same, but the certificate names only `mail.example.org`;
//! - `expired`: a certificate for 127.0.0.1 that expired in 2020;
//! - `tls`: TLS from the first byte (port-465 style), the good certificate;
//! - `plain`: no STARTTLS at all.
//!
//! Every message for example.org, example.net or example.com lands in one maildir.
//! Needs root and `/usr/sbin/postfix` (`.ci/run` installs it and sets
//! `NEWSDESK_REQUIRE_POSTFIX=1`, so that a missing Postfix fails there); elsewhere,
//! without them, [`Postfix::start`] says so and returns `None`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The listeners' ports.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub starttls: u16,
    pub wrong_name: u16,
    pub expired: u16,
    pub tls: u16,
    pub plain: u16,
}

pub struct Postfix {
    pub dir: tempfile::TempDir,
    pub ports: Ports,
    /// The test CA's certificate (PEM): what `[smtp] ca_file` names.
    pub ca_file: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `id -u postfix` or `id -g postfix`: the owner of every instance's mail.
fn id(flag: &str) -> String {
    String::from_utf8(Command::new("id").args([flag, "postfix"]).output().unwrap().stdout).unwrap().trim().to_string()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A CA, and the server certificates the listeners use, written into `dir`.
fn make_certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "newsdesk test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let ymd = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    let today = chrono::Utc::now().date_naive();
    for (name, names, expired) in [
        ("good", vec!["127.0.0.1".to_string(), "localhost".to_string()], false),
        ("wrong", vec!["mail.example.org".to_string()], false),
        ("expired", vec!["127.0.0.1".to_string()], true),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, format!("newsdesk test {name}"));
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        } else {
            params.not_before = ymd(today - chrono::Days::new(1));
            params.not_after = ymd(today + chrono::Days::new(30));
        }
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
}

/// Debian's master.cf services, none chrooted, without the port-25 listener: an
/// instance's own listeners are appended to it.
fn stock_master() -> String {
    let stock = std::fs::read_to_string("/etc/postfix/master.cf").unwrap();
    let mut master = String::new();
    for line in stock.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with(|c: char| c.is_ascii_alphanumeric()) && fields.len() >= 8 {
            if fields[0] == "smtp" && fields[1] == "inet" {
                continue;
            }
            let mut f = fields.clone();
            f[4] = "n";
            master.push_str(&f.join(" "));
        } else {
            master.push_str(line);
        }
        master.push('\n');
    }
    master
}

/// Whether Postfix can run here; when it cannot, says so (or fails the test when
/// `NEWSDESK_REQUIRE_POSTFIX` is set).
pub fn available() -> bool {
    let available = Path::new("/usr/sbin/postfix").exists() && is_root();
    if !available {
        assert!(
            std::env::var_os("NEWSDESK_REQUIRE_POSTFIX").is_none(),
            "NEWSDESK_REQUIRE_POSTFIX is set but Postfix cannot run here (needs /usr/sbin/postfix and root)"
        );
        eprintln!("note: Postfix test skipped: needs /usr/sbin/postfix (apt install postfix) and root");
    }
    available
}

/// A fresh folder for an instance, with `etc`, `queue`, `data` and `mail` in it, that
/// the postfix user can reach.
fn new_root() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("newsdesk-postfix-").tempdir_in("/tmp").unwrap();
    let root = dir.path();
    for sub in ["etc", "queue", "data", "mail"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    Command::new("chmod").arg("755").arg(root).status().unwrap();
    Command::new("chown").args(["postfix:postfix"]).arg(root.join("data")).arg(root.join("mail")).status().unwrap();
    dir
}

/// The settings every instance has: its own queue, data, maildir base and log, on
/// loopback only, no aliases, mail delivered as the test's user.
fn base_main_cf(root: &Path) -> String {
    let r = root.display();
    format!(
        "compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
smtputf8_enable = no
virtual_mailbox_base = {r}/mail
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
maillog_file_prefixes = /tmp, {r}
maillog_file = {r}/maillog
",
        uid = id("-u"),
        gid = id("-g"),
    )
}

/// A plain Postfix instance (no TLS) with its own folder: `main_cf` is added to the
/// settings every instance has (queue, data, maildir base `ROOT/mail`, loopback only),
/// `ROOT` in it replaced by the instance's folder, and `files` (name, text) are written
/// to `ROOT/etc` first (texthash: tables need no postmap); it listens on `port` for SMTP.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Instance {
    pub fn start(main_cf: &str, files: &[(&str, &str)]) -> Instance {
        let dir = new_root();
        let root = dir.path();
        let etc = root.join("etc");
        for (name, text) in files {
            std::fs::write(etc.join(name), text).unwrap();
        }
        let port = free_port();
        let main = format!("{}{}\n", base_main_cf(root), main_cf.replace("ROOT", &root.display().to_string()));
        std::fs::write(etc.join("main.cf"), main).unwrap();
        let mut master = stock_master();
        master.push_str(&format!("127.0.0.1:{port} inet n - n - - smtpd\n"));
        std::fs::write(etc.join("master.cf"), master).unwrap();
        let run = |args: &[&str]| Command::new("/usr/sbin/postfix").arg("-c").arg(&etc).args(args).output().unwrap();
        let instance = Instance { dir, port };
        let check = run(&["check"]);
        assert!(check.status.success(), "postfix check: {}{}", String::from_utf8_lossy(&check.stderr), instance.log());
        let started = run(&["start"]);
        assert!(
            started.status.success(),
            "postfix start: {}{}",
            String::from_utf8_lossy(&started.stderr),
            instance.log()
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Postfix did not listen on {port}:\n{}", instance.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        instance
    }

    /// The instance's folder (`ROOT` in its settings).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The messages in the maildir `ROOT/mail/NAME/new`, oldest first.
    pub fn maildir(&self, name: &str) -> Vec<Vec<u8>> {
        let new = self.root().join("mail").join(name).join("new");
        let mut files: Vec<_> =
            std::fs::read_dir(&new).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// Waits until the maildir NAME holds `n` messages.
    pub fn wait_for(&self, name: &str, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let m = self.maildir(name);
            if m.len() >= n {
                return m;
            }
            assert!(Instant::now() < deadline, "{} of {n} messages in {name}:\n{}", m.len(), self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix").arg("-c").arg(self.root().join("etc")).arg("abort").output();
    }
}

impl Postfix {
    /// Starts the instance, or says why it cannot and returns `None`.
    pub fn start() -> Option<Postfix> {
        if !available() {
            return None;
        }
        let dir = new_root();
        let root = dir.path().to_path_buf();
        let root = root.as_path();
        let etc = root.join("etc");
        make_certificates(&etc);
        let ports = Ports {
            starttls: free_port(),
            wrong_name: free_port(),
            expired: free_port(),
            tls: free_port(),
            plain: free_port(),
        };
        let e = etc.display();
        std::fs::write(
            etc.join("main.cf"),
            format!(
                "{}myhostname = mx.test
virtual_mailbox_domains = example.org example.net example.com
virtual_mailbox_maps = static:inbox/
smtpd_tls_cert_file = {e}/good.pem
smtpd_tls_key_file = {e}/good.key
smtpd_tls_security_level = may
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
",
                base_main_cf(root)
            ),
        )
        .unwrap();
        let mut master = stock_master();
        let p = ports;
        master.push_str(&format!(
            "127.0.0.1:{} inet n - n - - smtpd
127.0.0.1:{} inet n - n - - smtpd -o smtpd_tls_cert_file={e}/wrong.pem -o smtpd_tls_key_file={e}/wrong.key
127.0.0.1:{} inet n - n - - smtpd -o smtpd_tls_cert_file={e}/expired.pem -o smtpd_tls_key_file={e}/expired.key
127.0.0.1:{} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes
127.0.0.1:{} inet n - n - - smtpd -o smtpd_tls_security_level=none
",
            p.starttls, p.wrong_name, p.expired, p.tls, p.plain
        ));
        std::fs::write(etc.join("master.cf"), master).unwrap();
        let run = |args: &[&str]| Command::new("/usr/sbin/postfix").arg("-c").arg(&etc).args(args).output().unwrap();
        let check = run(&["check"]);
        assert!(
            check.status.success(),
            "postfix check failed (its reasons go to syslog): {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let started = run(&["start"]);
        let maillog = root.join("maillog");
        let log = || std::fs::read_to_string(&maillog).unwrap_or_default();
        assert!(started.status.success(), "postfix start: {}{}", String::from_utf8_lossy(&started.stderr), log());
        let postfix = Postfix { ca_file: etc.join("ca.pem"), dir, ports };
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [p.starttls, p.wrong_name, p.expired, p.tls, p.plain] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "Postfix did not listen on {port}:\n{}", log());
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(postfix)
    }

    /// The maildir's delivered messages, oldest first (as Postfix wrote them: LF line
    /// ends, its own `Return-Path`, `Delivered-To` and `Received` headers on top).
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("mail/inbox/new");
        let mut files: Vec<_> =
            std::fs::read_dir(&new).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// Waits until `n` messages are delivered (Postfix's queue runs after the 250).
    pub fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(Instant::now() < deadline, "{} of {n} messages delivered:\n{}", m.len(), self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix").arg("-c").arg(self.dir.path().join("etc")).arg("abort").output();
    }
}
