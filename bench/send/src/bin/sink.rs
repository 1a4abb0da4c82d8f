//! An SMTP sink for throughput benchmarks: accepts every message on 127.0.0.1 and
//! throws it away.
//!
//! `sink [--port P] [--stats FILE]`
//!
//! - Prints `listening on 127.0.0.1:PORT` on stdout once bound (`--port 0`, the default,
//!   takes a free port).
//! - One thread per connection, blocking I/O. Offers PIPELINING (RFC 2920): replies are
//!   collected while pipelined input is waiting in the buffer and written in one go
//!   before the next blocking read, so a pipelining client gets one round trip per
//!   message.
//! - DATA is scanned for the `CRLF.CRLF` terminator with memchr's SIMD search; nothing
//!   is parsed or kept.
//! - `--delay-ms D`: every reply is written D ms after the read that brought the
//!   command that caused it, in order, by a writer thread, so reading goes on meanwhile:
//!   a relay D ms away (one way). `0` (the default) answers at once.
//! - `--stats FILE`: rewritten (atomically) every 100 ms while counts change, as
//!   `messages=N bytes=N connections=N commands=N`.

use memchr::memmem;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    bytes: AtomicU64,
    connections: AtomicU64,
    commands: AtomicU64,
}

impl Counters {
    fn line(&self) -> String {
        format!(
            "messages={} bytes={} connections={} commands={}\n",
            self.messages.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.connections.load(Ordering::Relaxed),
            self.commands.load(Ordering::Relaxed)
        )
    }
}

fn main() {
    let mut port = 0u16;
    let mut stats: Option<PathBuf> = None;
    let mut delay = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--stats" => stats = Some(args.next().expect("--stats FILE").into()),
            "--delay-ms" => {
                delay = Duration::from_millis(args.next().and_then(|d| d.parse().ok()).expect("--delay-ms D"))
            }
            other => {
                eprintln!("sink: unknown argument {other}\nusage: sink [--port P] [--stats FILE] [--delay-ms D]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
    println!("listening on {}", listener.local_addr().expect("local address"));
    std::io::stdout().flush().ok();
    let counters = Arc::new(Counters::default());
    if let Some(path) = stats {
        let c = counters.clone();
        std::thread::spawn(move || {
            let mut last = String::new();
            let tmp = path.with_extension("tmp");
            loop {
                let line = c.line();
                if line != last {
                    if std::fs::write(&tmp, &line).and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
                        eprintln!("sink: cannot write {}", path.display());
                    }
                    last = line;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        counters.connections.fetch_add(1, Ordering::Relaxed);
        let c = counters.clone();
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, &c, delay) {
                // A client that goes away without QUIT is not our concern.
                if e.kind() != std::io::ErrorKind::ConnectionReset {
                    eprintln!("sink: {e}");
                }
            }
        });
    }
}

const TERMINATOR: &[u8] = b"\r\n.\r\n";

/// Finds the end of a message's data across reads.
struct DataEnd<'f> {
    finder: &'f memmem::Finder<'static>,
    /// The last (up to 4) bytes seen, so a terminator split across reads is found.
    tail: Vec<u8>,
}

impl<'f> DataEnd<'f> {
    /// After `DATA`: the CRLF that ended the command counts as the start of the
    /// terminator (an empty message is just `.\r\n`).
    fn new(finder: &'f memmem::Finder<'static>) -> DataEnd<'f> {
        DataEnd { finder, tail: b"\r\n".to_vec() }
    }

    /// The offset in `chunk` just past the terminator, or `None` when it is not in it yet.
    fn feed(&mut self, chunk: &[u8]) -> Option<usize> {
        // A terminator that begins in `tail` ends within the first 5 bytes of `chunk`.
        let t = self.tail.len();
        let mut joined = [0u8; 9];
        joined[..t].copy_from_slice(&self.tail);
        let k = chunk.len().min(9 - t);
        joined[t..t + k].copy_from_slice(&chunk[..k]);
        let found = match self.finder.find(&joined[..t + k]) {
            Some(i) => Some(i + TERMINATOR.len() - t),
            None => self.finder.find(chunk).map(|i| i + TERMINATOR.len()),
        };
        if found.is_none() {
            self.tail.extend_from_slice(&chunk[chunk.len() - chunk.len().min(4)..]);
            let drop = self.tail.len().saturating_sub(4);
            self.tail.drain(..drop);
        }
        found
    }
}

const EHLO: &[u8] =
    b"250-sink.localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 0\r\n";

/// Writes replies: at once, or each batch `delay` after the read it answers.
struct Replies {
    stream: TcpStream,
    delayed: Option<(std::sync::mpsc::Sender<(std::time::Instant, Vec<u8>)>, std::thread::JoinHandle<()>)>,
    delay: Duration,
}

impl Replies {
    fn new(stream: &TcpStream, delay: Duration) -> std::io::Result<Replies> {
        let delayed = if delay.is_zero() {
            None
        } else {
            let (tx, rx) = std::sync::mpsc::channel::<(std::time::Instant, Vec<u8>)>();
            let mut w = stream.try_clone()?;
            let handle = std::thread::spawn(move || {
                for (due, bytes) in rx {
                    let now = std::time::Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if w.write_all(&bytes).is_err() {
                        return;
                    }
                }
            });
            Some((tx, handle))
        };
        Ok(Replies { stream: stream.try_clone()?, delayed, delay })
    }

    /// `bytes` answer what the read at `read_at` brought.
    fn send(&mut self, bytes: &[u8], read_at: std::time::Instant) -> std::io::Result<()> {
        match &self.delayed {
            None => self.stream.write_all(bytes),
            Some((tx, _)) => {
                tx.send((read_at + self.delay, bytes.to_vec())).map_err(|_| std::io::Error::other("writer gone"))
            }
        }
    }

    /// Waits until every reply is written.
    fn finish(self) {
        if let Some((tx, handle)) = self.delayed {
            drop(tx);
            let _ = handle.join();
        }
    }
}

fn serve(mut s: TcpStream, c: &Counters, delay: Duration) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut replies = Replies::new(&s, delay)?;
    let mut read_at = std::time::Instant::now();
    let finder = memmem::Finder::new(TERMINATOR);
    let mut buf = vec![0u8; 256 * 1024];
    // Bytes of the buffer not yet consumed: [start, end).
    let (mut start, mut end) = (0usize, 0usize);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    out.extend_from_slice(b"220 sink.localhost ESMTP\r\n");
    let mut in_data = false;
    let mut data = DataEnd::new(&finder);
    let mut data_bytes = 0u64;
    let mut queued = 0u64;
    loop {
        // Consume everything that is complete in the buffer.
        loop {
            if in_data {
                let chunk = &buf[start..end];
                match data.feed(chunk) {
                    Some(after) => {
                        data_bytes += after as u64;
                        start += after;
                        in_data = false;
                        queued += 1;
                        c.messages.fetch_add(1, Ordering::Relaxed);
                        c.bytes.fetch_add(data_bytes, Ordering::Relaxed);
                        data_bytes = 0;
                        out.extend_from_slice(format!("250 2.0.0 Ok: queued as S{queued}\r\n").as_bytes());
                    }
                    None => {
                        data_bytes += chunk.len() as u64;
                        start = end;
                        break;
                    }
                }
            } else {
                let Some(nl) = memchr::memchr(b'\n', &buf[start..end]) else { break };
                let line = &buf[start..start + nl + 1];
                start += nl + 1;
                c.commands.fetch_add(1, Ordering::Relaxed);
                let verb: Vec<u8> = line.iter().take(4).map(u8::to_ascii_uppercase).collect();
                match &verb[..] {
                    b"EHLO" => out.extend_from_slice(EHLO),
                    b"HELO" => out.extend_from_slice(b"250 sink.localhost\r\n"),
                    b"MAIL" => out.extend_from_slice(b"250 2.1.0 Ok\r\n"),
                    b"RCPT" => out.extend_from_slice(b"250 2.1.5 Ok\r\n"),
                    b"DATA" => {
                        out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                        in_data = true;
                        data = DataEnd::new(&finder);
                        data_bytes = 0;
                    }
                    b"RSET" => out.extend_from_slice(b"250 2.0.0 Ok\r\n"),
                    b"NOOP" => out.extend_from_slice(b"250 2.0.0 Ok\r\n"),
                    b"QUIT" => {
                        out.extend_from_slice(b"221 2.0.0 Bye\r\n");
                        replies.send(&out, read_at)?;
                        replies.finish();
                        return Ok(());
                    }
                    _ => out.extend_from_slice(b"502 5.5.2 Command not recognized\r\n"),
                }
            }
        }
        // Nothing complete is left: answer everything at once, then wait for more.
        if !out.is_empty() {
            replies.send(&out, read_at)?;
            out.clear();
        }
        if start == end {
            start = 0;
            end = 0;
        } else if start > 0 && end == buf.len() {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            // A command line longer than the buffer: refuse it and drop it.
            end = 0;
            start = 0;
            replies.send(b"500 5.5.2 Line too long\r\n", read_at)?;
        }
        let n = s.read(&mut buf[end..])?;
        read_at = std::time::Instant::now();
        if n == 0 {
            replies.finish();
            return Ok(());
        }
        end += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` in pieces of `size` bytes; returns where the message ended.
    fn end_of(data: &[u8], size: usize) -> Option<usize> {
        let finder = memmem::Finder::new(TERMINATOR);
        let mut d = DataEnd::new(&finder);
        let mut at = 0;
        for chunk in data.chunks(size) {
            if let Some(i) = d.feed(chunk) {
                return Some(at + i);
            }
            at += chunk.len();
        }
        None
    }

    #[test]
    fn the_terminator_is_found_however_the_reads_split_it() {
        let msg = b"Subject: x\r\n\r\nbody\r\n..stuffed\r\nlast.\r\n.\r\nMAIL FROM:<a@b>\r\n";
        let end = msg.windows(5).position(|w| w == TERMINATOR).unwrap() + 5;
        for size in 1..msg.len() {
            assert_eq!(end_of(msg, size), Some(end), "pieces of {size}");
        }
        // An empty message, and no terminator at all.
        for size in 1..4 {
            assert_eq!(end_of(b".\r\nQUIT\r\n", size), Some(3));
            assert_eq!(end_of(b"a\r\n..\r\nb", size), None);
        }
    }
}
