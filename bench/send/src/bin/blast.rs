//! A plain pipelining SMTP client: the practical limit of a sink, for comparison with
//! `newsdesk send --subscribers`.
//!
//! `blast --port P --eml FILE --messages N [--connections C] [--host 127.0.0.1]`
//!
//! The message is read once, turned into wire form once (CRLF line ends, dot-stuffed,
//! terminated), and sent N times over C connections (N/C each), each copy with its own
//! envelope recipient `sNNNNNN@example.org`. With the server's PIPELINING (RFC 2920) a
//! message costs one round trip: the body and its `.` go out together with the next
//! message's `MAIL FROM`, `RCPT TO` and `DATA`, and the client then reads the four
//! replies (250 for the message, 250, 250, 354). No rendering, no ledger, no fsync.
//!
//! `--lockstep` does without PIPELINING, as lettre and newsdesk do: MAIL FROM, RCPT TO,
//! DATA and the body each wait for their reply (four round trips per message). The
//! difference between the two modes is the cost of the round trips alone.
//!
//! Prints one line: `messages=N connections=C mode=M seconds=S per_second=R bytes=B`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Args {
    host: String,
    port: u16,
    eml: String,
    messages: usize,
    connections: usize,
    from: String,
    lockstep: bool,
}

fn args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 0,
        eml: String::new(),
        messages: 1000,
        connections: 4,
        from: "lwkd@example.org".into(),
        lockstep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage(&format!("{k} needs a value")));
        match k.as_str() {
            "--host" => a.host = v(),
            "--port" => a.port = v().parse().unwrap_or_else(|_| usage("--port N")),
            "--eml" => a.eml = v(),
            "--messages" => a.messages = v().parse().unwrap_or_else(|_| usage("--messages N")),
            "--connections" => a.connections = v().parse().unwrap_or_else(|_| usage("--connections C")),
            "--from" => a.from = v(),
            "--lockstep" => a.lockstep = true,
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if a.port == 0 || a.eml.is_empty() || a.connections == 0 {
        usage("--port and --eml are required; --connections must be at least 1");
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "blast: {msg}\nusage: blast --port P --eml FILE --messages N [--connections C] [--lockstep] [--host H] [--from ADDR]"
    );
    std::process::exit(2)
}

/// The message as it goes after DATA: CRLF line ends, leading dots doubled, `.` line.
fn wire_form(raw: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let mut out = Vec::with_capacity(text.len() + text.len() / 40 + 8);
    for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
}

impl Conn {
    fn open(host: &str, port: u16) -> Conn {
        let s = TcpStream::connect((host, port)).unwrap_or_else(|e| fail(&format!("connect {host}:{port}: {e}")));
        s.set_nodelay(true).expect("TCP_NODELAY");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        let writer = s.try_clone().expect("clone the socket");
        let mut c = Conn { reader: BufReader::with_capacity(64 * 1024, s), writer, line: String::new() };
        c.expect(220);
        c.send(b"EHLO blast.localhost\r\n");
        let ehlo = c.expect(250);
        if !ehlo.iter().any(|l| l[4..].trim().eq_ignore_ascii_case("PIPELINING")) {
            fail("the server does not offer PIPELINING");
        }
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap_or_else(|e| fail(&format!("write: {e}")));
    }

    /// Reads one (possibly multi-line) reply and checks its code.
    fn expect(&mut self, code: u16) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            self.line.clear();
            match self.reader.read_line(&mut self.line) {
                Ok(0) => fail("the server closed the connection"),
                Ok(_) => {}
                Err(e) => fail(&format!("read: {e}")),
            }
            let l = self.line.trim_end().to_string();
            if !l.starts_with(&code.to_string()) {
                fail(&format!("expected {code}, got {l:?}"));
            }
            let more = l.as_bytes().get(3) == Some(&b'-');
            lines.push(l);
            if !more {
                return lines;
            }
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("blast: {msg}");
    std::process::exit(1)
}

fn envelope(from: &str, i: usize) -> Vec<u8> {
    format!("MAIL FROM:<{from}>\r\nRCPT TO:<s{i:06}@example.org>\r\nDATA\r\n").into_bytes()
}

/// One command or body at a time, each waiting for its reply.
fn run_lockstep(a: &Args, body: &[u8], first: usize, count: usize) -> u64 {
    let mut c = Conn::open(&a.host, a.port);
    for i in first..first + count {
        c.send(format!("MAIL FROM:<{}>\r\n", a.from).as_bytes());
        c.expect(250);
        c.send(format!("RCPT TO:<s{i:06}@example.org>\r\n").as_bytes());
        c.expect(250);
        c.send(b"DATA\r\n");
        c.expect(354);
        c.send(body);
        c.expect(250);
    }
    c.send(b"QUIT\r\n");
    c.expect(221);
    (body.len() * count) as u64
}

/// Sends messages `first..first + count` on one connection; returns the bytes sent.
fn run(a: &Args, body: &[u8], first: usize, count: usize) -> u64 {
    if count == 0 {
        return 0;
    }
    if a.lockstep {
        return run_lockstep(a, body, first, count);
    }
    let mut c = Conn::open(&a.host, a.port);
    let mut bytes = 0u64;
    let mut out: Vec<u8> = Vec::with_capacity(body.len() + 256);
    c.send(&envelope(&a.from, first));
    c.expect(250);
    c.expect(250);
    c.expect(354);
    for i in first..first + count {
        out.clear();
        out.extend_from_slice(body);
        let last = i + 1 == first + count;
        if last {
            out.extend_from_slice(b"QUIT\r\n");
        } else {
            out.extend_from_slice(&envelope(&a.from, i + 1));
        }
        c.send(&out);
        bytes += body.len() as u64;
        c.expect(250);
        if last {
            c.expect(221);
        } else {
            c.expect(250);
            c.expect(250);
            c.expect(354);
        }
    }
    bytes
}

fn main() {
    let a = args();
    let raw = std::fs::read(&a.eml).unwrap_or_else(|e| fail(&format!("{}: {e}", a.eml)));
    let body = wire_form(&raw);
    let start = Instant::now();
    let per = a.messages / a.connections;
    let extra = a.messages % a.connections;
    let bytes: u64 = std::thread::scope(|s| {
        let mut handles = Vec::new();
        let mut first = 0;
        for k in 0..a.connections {
            let count = per + usize::from(k < extra);
            let (a, body) = (&a, &body);
            handles.push(s.spawn(move || run(a, body, first, count)));
            first += count;
        }
        handles.into_iter().map(|h| h.join().expect("a client thread panicked")).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "messages={} connections={} mode={} seconds={secs:.3} per_second={:.1} bytes={bytes} message_bytes={}",
        a.messages,
        a.connections,
        if a.lockstep { "lockstep" } else { "pipelining" },
        a.messages as f64 / secs,
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_uses_crlf_stuffs_dots_and_terminates() {
        assert_eq!(wire_form(b"A: b\n\n.x\r\ny\n"), b"A: b\r\n\r\n..x\r\ny\r\n.\r\n");
    }
}
