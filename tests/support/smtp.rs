//! A real SMTP server for tests, listening on 127.0.0.1 only.
//!
//! The protocol (command parsing, the SMTP state machine, dot-unstuffing, AUTH PLAIN
//! and LOGIN decoding, replies) is the `mailin` library's; this file adds the socket
//! loop around it, which is what lets a test misbehave the way real servers do: refuse
//! some recipients for good (550), ask to try later (451 at the end of DATA, 421 at
//! MAIL FROM), cut a connection in the middle of DATA, demand a login, or stop and
//! start again on the same port mid-send.
//!
//! Every accepted message is kept (envelope and bytes), every connection and login
//! attempt counted, for the test to assert on. Shared by the email and delivery tests:
//! `#[path = "support/smtp.rs"] mod smtp;` or `mod support;` then `support::smtp`.

#![allow(dead_code)]

use mailin::{Action, Handler, Response, SessionBuilder};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A message the server accepted (answered 250 to).
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// Order of acceptance, from 1.
    pub seq: u64,
}

/// What the server does wrong, set by the test (addresses compared lowercased).
#[derive(Debug, Default)]
pub struct Faults {
    /// RCPT TO these addresses is refused with this reply, every time (e.g. 550).
    pub reject: HashMap<String, (u16, String)>,
    /// Messages to these addresses get `451` at the end of DATA this many more times.
    pub defer: HashMap<String, u32>,
    /// Messages to these addresses have their connection cut in the middle of DATA
    /// (no reply at all) this many more times.
    pub cut: HashMap<String, u32>,
    /// The next this-many transactions get `421` at MAIL FROM and the connection closed.
    pub busy: u32,
    /// Every accepted message is stored at once but its `250` is written only this long
    /// after the end of DATA: a slow server, or (longer than the client's timeout) a
    /// reply lost after the message was taken.
    pub reply_delay: Duration,
    /// Do not offer PIPELINING in the EHLO reply (a server that does not pipeline).
    pub no_pipelining: bool,
    /// Refuse every MAIL FROM with this reply (a sender the server will not take).
    pub refuse_sender: Option<(u16, String)>,
    /// The next this-many MAIL FROMs get `454 4.7.0 Throttling failure` (as SES
    /// answers a sender over its rate) and the connection stays open.
    pub throttle: u32,
    /// Connections beyond this many at once are greeted with `421 4.7.0 Too many
    /// connections` and closed.
    pub max_connections: Option<usize>,
}

/// A login the server was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: &'static str,
    pub username: String,
    /// Whether the credentials matched the ones the server requires.
    pub accepted: bool,
}

/// Tallies of the faults the server actually applied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub rejected: u64,
    pub deferred: u64,
    pub cut: u64,
    pub busy: u64,
    /// MAIL commands that arrived with the next command already behind them in the
    /// same read: the client pipelined (RFC 2920).
    pub pipelined: u64,
    /// MAIL commands that arrived alone.
    pub lockstep: u64,
    /// MAIL commands that arrived in the same read as the previous message's final
    /// `.`: the client wrote the next envelope together with the body (one round trip
    /// per message).
    pub after_body: u64,
    /// `454` throttling replies given.
    pub throttled: u64,
    /// Connections turned away with `421` for being too many.
    pub turned_away: u64,
}

struct Inner {
    messages: Mutex<Vec<Received>>,
    faults: Mutex<Faults>,
    applied: Mutex<Applied>,
    live: Mutex<Vec<TcpStream>>,
    connections: AtomicU64,
    /// Sessions open now.
    open: AtomicU64,
    /// Required credentials: with them set, MAIL FROM needs a successful AUTH first.
    credentials: Option<(String, String)>,
    logins: Mutex<Vec<Login>>,
    /// Accepted messages so far (numbers them).
    seq: AtomicU64,
}

/// The running server. Dropping it stops it.
pub struct SmtpServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl SmtpServer {
    /// Starts on a free port of 127.0.0.1, accepting mail without a login.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(None)
    }

    /// Starts a server that offers AUTH PLAIN and LOGIN (over plain TCP, as test
    /// servers on loopback may) and accepts mail only after a login with these
    /// credentials.
    pub fn with_login(username: &str, password: &str) -> SmtpServer {
        SmtpServer::start_with(Some((username.to_string(), password.to_string())))
    }

    fn start_with(credentials: Option<(String, String)>) -> SmtpServer {
        let inner = Arc::new(Inner {
            messages: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
            applied: Mutex::new(Applied::default()),
            live: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
            open: AtomicU64::new(0),
            credentials,
            logins: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let mut s = SmtpServer { addr, inner, running: None };
        s.serve(listener);
        s
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes the faults; applies to commands received from now on.
    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.inner.faults.lock().unwrap());
    }

    pub fn applied(&self) -> Applied {
        *self.inner.applied.lock().unwrap()
    }

    /// Every accepted message so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.inner.messages.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.inner.messages.lock().unwrap().len()
    }

    /// Accepted messages per envelope recipient (lowercased).
    pub fn per_recipient(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in self.inner.messages.lock().unwrap().iter() {
            for to in &r.to {
                *m.entry(to.to_ascii_lowercase()).or_insert(0) += 1;
            }
        }
        m
    }

    /// Every login attempt so far, in order.
    pub fn logins(&self) -> Vec<Login> {
        self.inner.logins.lock().unwrap().clone()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// Stops listening and cuts every open connection, as a crashed or restarted
    /// server would. Accepted messages are kept.
    pub fn stop(&mut self) {
        if let Some((flag, handle)) = self.running.take() {
            flag.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
        for s in self.inner.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Listens again on the same port after [`stop`](Self::stop).
    pub fn restart(&mut self) {
        assert!(self.running.is_none(), "stop the server first");
        let listener = TcpListener::bind(self.addr).expect("rebind the same port");
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, inner) = (stop.clone(), self.inner.clone());
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, peer)) => {
                        stream.set_nonblocking(false).unwrap();
                        // Replies are written in several small pieces: without this,
                        // Nagle and delayed ACKs add ~40 ms to every command.
                        let _ = stream.set_nodelay(true);
                        // Bounded: a stuck client cannot hold a test forever.
                        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        inner.connections.fetch_add(1, Ordering::Relaxed);
                        if let Ok(clone) = stream.try_clone() {
                            inner.live.lock().unwrap().push(clone);
                        }
                        let inner = inner.clone();
                        std::thread::spawn(move || session(inner, stream, peer.ip()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        self.running = Some((stop, handle));
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Per-connection handler state, shared with the socket loop.
#[derive(Default)]
struct Conn {
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    /// Cut the connection now, without a reply.
    cut: bool,
    /// Close the connection once the reply is written. mailin stays in its DATA state
    /// after an error reply to the end of data, so the client's next command (RSET,
    /// QUIT) would be read as message text and go unanswered until the client timed
    /// out; closing, as many real servers do after a failed DATA, keeps tests fast.
    close_after_reply: bool,
    cut_planned: bool,
}

struct ConnHandler {
    inner: Arc<Inner>,
    conn: Arc<Mutex<Conn>>,
}

impl ConnHandler {
    fn login(&mut self, mechanism: &'static str, username: &str, password: &str) -> Response {
        let accepted = self.inner.credentials.as_ref().is_some_and(|(u, p)| u == username && p == password);
        self.inner.logins.lock().unwrap().push(Login { mechanism, username: username.to_string(), accepted });
        if accepted { mailin::response::AUTH_OK } else { mailin::response::INVALID_CREDENTIALS }
    }
}

impl Handler for ConnHandler {
    fn auth_plain(&mut self, _authorization_id: &str, authentication_id: &str, password: &str) -> Response {
        self.login("PLAIN", authentication_id, password)
    }

    fn auth_login(&mut self, username: &str, password: &str) -> Response {
        self.login("LOGIN", username, password)
    }

    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        let mut faults = self.inner.faults.lock().unwrap();
        if faults.busy > 0 {
            faults.busy -= 1;
            self.inner.applied.lock().unwrap().busy += 1;
            return Response::custom(421, "4.3.2 Service busy, closing connection".into());
        }
        if faults.throttle > 0 {
            faults.throttle -= 1;
            self.inner.applied.lock().unwrap().throttled += 1;
            return Response::custom(454, "4.7.0 Throttling failure: Maximum sending rate exceeded.".into());
        }
        if let Some((code, text)) = &faults.refuse_sender {
            return Response::custom(*code, text.clone());
        }
        let mut c = self.conn.lock().unwrap();
        c.from = from.to_string();
        c.to.clear();
        c.data.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let key = to.to_ascii_lowercase();
        if let Some((code, text)) = self.inner.faults.lock().unwrap().reject.get(&key) {
            self.inner.applied.lock().unwrap().rejected += 1;
            return Response::custom(*code, text.clone());
        }
        self.conn.lock().unwrap().to.push(to.to_string());
        mailin::response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        let mut faults = self.inner.faults.lock().unwrap();
        let mut c = self.conn.lock().unwrap();
        c.data.clear();
        c.cut_planned = false;
        for t in to {
            if let Some(n) = faults.cut.get_mut(&t.to_ascii_lowercase())
                && *n > 0
            {
                *n -= 1;
                c.cut_planned = true;
            }
        }
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let mut c = self.conn.lock().unwrap();
        c.data.extend_from_slice(buf);
        // Cut once some of the message has arrived: the client is mid-DATA.
        if c.cut_planned && c.data.len() > 200 {
            c.cut = true;
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut c = self.conn.lock().unwrap();
        if c.cut_planned {
            c.cut = true;
            return Response::custom(451, "never sent".into());
        }
        let mut faults = self.inner.faults.lock().unwrap();
        for t in &c.to {
            if let Some(n) = faults.defer.get_mut(&t.to_ascii_lowercase())
                && *n > 0
            {
                *n -= 1;
                self.inner.applied.lock().unwrap().deferred += 1;
                c.close_after_reply = true;
                return Response::custom(451, "4.3.0 Temporary local problem, try again later".into());
            }
        }
        drop(faults);
        let seq = self.inner.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let msg = Received { from: c.from.clone(), to: c.to.clone(), data: std::mem::take(&mut c.data), seq };
        self.inner.messages.lock().unwrap().push(msg);
        drop(c);
        let delay = self.inner.faults.lock().unwrap().reply_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Response::custom(250, format!("2.0.0 Ok: queued as T{seq}"))
    }
}

fn session(inner: Arc<Inner>, stream: TcpStream, ip: IpAddr) {
    let conn = Arc::new(Mutex::new(Conn::default()));
    let handler = ConnHandler { inner: inner.clone(), conn: conn.clone() };
    let mut builder = SessionBuilder::new("newsdesk-test-smtp");
    if inner.credentials.is_some() {
        builder
            .enable_auth(mailin::AuthMechanism::Plain)
            .enable_auth(mailin::AuthMechanism::Login)
            .insecure_enable_plaintext_auth();
    }
    let mut session = builder.build(ip, handler);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    struct Open<'a>(&'a AtomicU64);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let now_open = inner.open.fetch_add(1, Ordering::SeqCst) + 1;
    let _open = Open(&inner.open);
    let limit = inner.faults.lock().unwrap().max_connections;
    if limit.is_some_and(|m| now_open > m as u64) {
        inner.applied.lock().unwrap().turned_away += 1;
        let _ = writer.write_all(b"421 4.7.0 Too many connections from your host\r\n");
        let _ = writer.shutdown(Shutdown::Both);
        return;
    }
    if session.greeting().write_to(&mut writer).is_err() {
        return;
    }
    let mut line = Vec::with_capacity(1024);
    // The previous line was a message's final `.` with more input already read.
    let mut behind_body = false;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let res = session.process(&line);
        if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"MAIL") {
            let mut applied = inner.applied.lock().unwrap();
            if reader.buffer().is_empty() {
                applied.lockstep += 1
            } else {
                applied.pipelined += 1
            }
            if behind_body {
                applied.after_body += 1;
            }
        }
        behind_body = line == b".\r\n" && !reader.buffer().is_empty();
        if conn.lock().unwrap().cut {
            inner.applied.lock().unwrap().cut += 1;
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        match res.action {
            Action::Reply => {
                let mut reply = Vec::new();
                let _ = res.write_to(&mut reply);
                // mailin does not offer PIPELINING; this server does, like most.
                let ehlo = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"EHLO");
                if ehlo && reply.starts_with(b"250") && !inner.faults.lock().unwrap().no_pipelining {
                    let first_end = reply.iter().position(|b| *b == b'\n').map_or(reply.len(), |i| i + 1);
                    let mut with = reply[..first_end].to_vec();
                    if with.get(3) == Some(&b' ') {
                        with[3] = b'-';
                    }
                    let last_is_first = first_end == reply.len();
                    with.extend_from_slice(if last_is_first { b"250 PIPELINING\r\n" } else { b"250-PIPELINING\r\n" });
                    with.extend_from_slice(&reply[first_end..]);
                    reply = with;
                }
                if writer.write_all(&reply).and_then(|_| writer.flush()).is_err() {
                    break;
                }
                if std::mem::take(&mut conn.lock().unwrap().close_after_reply) {
                    break;
                }
            }
            Action::Close => {
                let _ = res.write_to(&mut writer);
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Action::NoReply | Action::UpgradeTls => {}
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}
