//! The server of `tidings run` against clients that stall: request heads
//! and bodies that never arrive whole, idle keep-alive connections, more
//! connections than `[http] max_connections`, and a stop with hundreds of
//! stalled connections open. Raw TCP, so that the test controls every
//! byte and sees when the server closes.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{SECRET, Service, Site, sample_site_to_serve as site, web_site};

/// How many stalled connections the tests open: a few hundred, under the
/// common 1024 file descriptors of a test process.
const STALLED: usize = 300;

/// Adds `lines` to the site's `[http]` table (made, on a free port, if
/// there is none).
fn http_settings(site: &Site, lines: &str) {
    let config = std::fs::read_to_string(site.config_path()).unwrap();
    let config = match config.find("[http]\n") {
        Some(at) => {
            let end = at + "[http]\n".len();
            format!("{}{lines}\n{}", &config[..end], &config[end..])
        }
        None => format!("{config}\n[http]\nlisten = \"127.0.0.1:0\"\n{lines}\n"),
    };
    std::fs::write(site.config_path(), config).unwrap();
}

fn connect(service: &Service) -> TcpStream {
    let s = TcpStream::connect(service.address()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Connections that sent half a request line and nothing more.
fn stall(service: &Service, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = connect(service);
            s.write_all(b"GET /feeds/atom.xml HT").unwrap();
            s
        })
        .collect()
}

/// One answer read off a keep-alive connection: its status code and body
/// (by `Content-Length`).
fn read_answer(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("an answer");
        assert_eq!(n, 1, "closed before the answer's head ended: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    (status, body)
}

/// Whether the server closed `s` (end of stream, or a reset) within the
/// stream's read timeout, reading and dropping anything before that.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// A whole `GET` on a connection of its own: the status code and body.
fn get(service: &Service, path: &str) -> (u16, Vec<u8>) {
    let mut s = connect(service);
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    read_answer(&mut s)
}

#[test]
fn stalled_request_heads_are_closed_after_the_header_timeout_while_others_are_served() {
    let site = site();
    http_settings(&site, "header_timeout_seconds = 2");
    let service = site.serve(&[]);
    let mut stalled = stall(&service, STALLED);
    for _ in 0..10 {
        let (status, body) = get(&service, "/feeds/atom.xml");
        assert_eq!(status, 200);
        assert!(body.ends_with(b"</feed>\n"), "the whole feed");
    }
    let started = Instant::now();
    for (i, s) in stalled.iter_mut().enumerate() {
        assert!(
            closed_by_server(s),
            "stalled connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    // Served still, and by now free of them.
    assert_eq!(get(&service, "/healthz"), (200, b"ok".to_vec()));
    let (code, log) = service.stop();
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_stop_closes_stalled_connections_at_once() {
    let site = site();
    // They would be closed in a minute; the stop must not wait for that,
    // nor for its grace period (30 s).
    http_settings(&site, "header_timeout_seconds = 60");
    let service = site.serve(&[]);
    let mut stalled = stall(&service, STALLED);
    // Every one of them accepted and handed to a thread before the stop.
    let mut probe = connect(&service);
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut probe).0, 200);

    let asked = Instant::now();
    let (code, log) = service.stop();
    let took = asked.elapsed();
    eprintln!("SIGTERM with {STALLED} stalled connections: stopped in {took:?}");
    assert_eq!(code, 0, "{log}");
    assert!(
        took < Duration::from_secs(15),
        "{took:?} to stop, with a grace period of 30 s:\n{log}"
    );
    for s in &mut stalled {
        assert!(closed_by_server(s));
    }
}

#[test]
fn idle_keepalive_connections_are_kept_for_keepalive_seconds_then_closed() {
    let site = site();
    http_settings(&site, "header_timeout_seconds = 2\nkeepalive_seconds = 10");
    let service = site.serve(&[]);
    let mut s = connect(&service);
    let ask = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(ask).unwrap();
    assert_eq!(read_answer(&mut s), (200, b"ok".to_vec()));
    // Idle for longer than the header timeout: still open between requests.
    std::thread::sleep(Duration::from_secs(3));
    s.write_all(ask).unwrap();
    assert_eq!(read_answer(&mut s), (200, b"ok".to_vec()));
    let idle = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    assert!(closed_by_server(&mut s), "idle for a minute and still open");
    assert!(
        idle.elapsed() >= Duration::from_secs(5),
        "closed after {:?}, before its keep-alive time",
        idle.elapsed()
    );

    // A request head that starts between requests and stalls is closed
    // after the header timeout, not the keep-alive time.
    let mut s = connect(&service);
    s.write_all(ask).unwrap();
    assert_eq!(read_answer(&mut s), (200, b"ok".to_vec()));
    s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    assert!(closed_by_server(&mut s));
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes() {
    let site = web_site("file:outbox");
    http_settings(&site, "body_timeout_seconds = 2");
    let service = site.serve(&[("TIDINGS_SECRET", SECRET)]);
    let mut s = connect(&service);
    s.write_all(
        b"POST /api/subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 200\r\n\r\n{\"email\": \"slow@",
    )
    .unwrap();
    let (status, body) = read_answer(&mut s);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&body));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "timeout");
    assert!(closed_by_server(&mut s));

    // A body that comes whole is taken.
    let json = br#"{"email": "quick@example.org", "themes": ["alpha"]}"#;
    let mut s = connect(&service);
    s.write_all(
        format!(
            "POST /api/subscribe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            json.len()
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(json).unwrap();
    assert_eq!(read_answer(&mut s).0, 202);
}

#[test]
fn connections_over_the_limit_are_closed_at_once_and_the_others_served() {
    let site = site();
    http_settings(&site, "max_connections = 10\nheader_timeout_seconds = 60");
    let service = site.serve(&[]);
    let ask = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    // Ten open connections, each answered once (so surely taken), kept.
    let mut held: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = connect(&service);
            s.write_all(ask).unwrap();
            assert_eq!(read_answer(&mut s).0, 200);
            s
        })
        .collect();
    // The eleventh is closed without an answer.
    let mut over = connect(&service);
    let _ = over.write_all(ask);
    let mut answer = Vec::new();
    match over.read_to_end(&mut answer) {
        Ok(_) => assert!(
            answer.is_empty(),
            "answered: {}",
            String::from_utf8_lossy(&answer)
        ),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    // Those under the limit are still served.
    for s in &mut held {
        s.write_all(ask).unwrap();
        assert_eq!(read_answer(s), (200, b"ok".to_vec()));
    }
    // One closes: a new one is taken again (once the server has seen it go).
    drop(held.pop());
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let mut s = connect(&service);
        let _ = s.write_all(ask);
        let mut first = [0u8; 12];
        if s.read_exact(&mut first).is_ok() {
            assert_eq!(&first, b"HTTP/1.1 200");
            break;
        }
        assert!(Instant::now() < end, "no connection taken after one closed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        service.log().contains("too many connections"),
        "{}",
        service.log()
    );
}
