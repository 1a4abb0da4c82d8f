//! A private Dovecot (Debian's) on 127.0.0.1 for the IMAP tests: IMAP over TLS only
//! (port-993 style, on a free port), one user with a maildir, a certificate for
//! 127.0.0.1 signed by a CA made by the test with rcgen.
//!
//! Needs root and `/usr/sbin/dovecot` (`.ci/run` installs dovecot-imapd and sets
//! `NEWSDESK_REQUIRE_DOVECOT=1`, so that a missing Dovecot fails there); elsewhere
//! [`Dovecot::start`] says why it cannot run and returns `None`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "bounces@lwkd.example.org";
pub const PASSWORD: &str = "imap-test-secret";

pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The test CA (PEM): what `[bounces.imap] ca_file` names.
    pub ca_file: PathBuf,
    child: Child,
    written: usize,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Dovecot {
    pub fn start() -> Option<Dovecot> {
        if !(Path::new("/usr/sbin/dovecot").exists() && is_root()) {
            assert!(
                std::env::var_os("NEWSDESK_REQUIRE_DOVECOT").is_none(),
                "NEWSDESK_REQUIRE_DOVECOT is set but Dovecot cannot run here (needs /usr/sbin/dovecot and root)"
            );
            eprintln!("note: Dovecot test skipped: needs /usr/sbin/dovecot (apt install dovecot-imapd) and root");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("newsdesk-dovecot-").tempdir_in("/tmp").unwrap();
        let root = dir.path().to_path_buf();
        Command::new("chmod").arg("755").arg(&root).status().unwrap();
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "newsdesk test IMAP CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        std::fs::write(root.join("ca.pem"), ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "newsdesk test IMAP server");
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(root.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(root.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let home = root.join("home");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(home.join("Maildir").join(sub)).unwrap();
        }
        Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&home).status().unwrap();
        let port = free_port();
        let r = root.display();
        std::fs::write(
            root.join("dovecot.conf"),
            format!(
                "instance_name = newsdesk-test-{port}
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {r}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={r}/home
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
"
            ),
        )
        .unwrap();
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let dovecot = Dovecot { ca_file: root.join("ca.pem"), dir, port, child, written: 0 };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Dovecot did not listen on {port}:\n{}", dovecot.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(dovecot)
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("home/Maildir")
    }

    /// Delivers `raw` into the user's INBOX (a new maildir file, as an MDA would).
    pub fn deliver(&mut self, raw: &[u8]) {
        self.written += 1;
        let name = format!("{}.M{}P1.newsdesk-test", 1_785_160_000 + self.written, self.written);
        let tmp = self.maildir().join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap();
        Command::new("chown").arg("nobody:nogroup").arg(&tmp).status().unwrap();
        std::fs::rename(&tmp, self.maildir().join("new").join(&name)).unwrap();
    }

    /// How many messages carry the `\Seen` flag (maildir: `:2,...S...` in the name),
    /// and how many are in the mailbox at all.
    pub fn seen_and_total(&self) -> (usize, usize) {
        let mut seen = 0;
        let mut total = 0;
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(self.maildir().join(sub)).unwrap().flatten() {
                total += 1;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.split_once(":2,").is_some_and(|(_, flags)| flags.contains('S')) {
                    seen += 1;
                }
            }
        }
        (seen, total)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// A TCP relay on 127.0.0.1 to `port` that closes the connection once `limit` bytes
/// have come back from the server: a connection lost half-way through a mailbox.
pub struct CuttingProxy {
    pub port: u16,
}

impl CuttingProxy {
    pub fn start(port: u16, limit: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else { return };
            let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let (mut s_read, mut c_write) = (server.try_clone().unwrap(), client.try_clone().unwrap());
            let mut passed = 0;
            let mut buf = [0u8; 1024];
            while let Ok(n) = s_read.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let take = n.min(limit.saturating_sub(passed));
                if c_write.write_all(&buf[..take]).is_err() {
                    break;
                }
                passed += take;
                if passed >= limit {
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        });
        CuttingProxy { port: proxy_port }
    }
}
