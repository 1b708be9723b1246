//! A tiny HTTP/1.1 server on 127.0.0.1 for download tests: each path answers with a
//! fixed behaviour (serve bytes, 404, truncated body, connection dropped mid-transfer).
//! One thread serves connections one after another and closes each after a response.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the server does for one path.
#[derive(Clone, Debug)]
pub enum Route {
    /// 200 with these bytes and a correct Content-Length.
    Ok(Vec<u8>),
    /// 404 Not Found.
    NotFound,
    /// Advertises `advertised` bytes of Content-Length, sends `body` (shorter), closes.
    Truncated { body: Vec<u8>, advertised: usize },
    /// Chunked transfer (no Content-Length): sends the first half of the bytes as a
    /// chunk, then closes the connection without the final chunk.
    DropChunked(Vec<u8>),
    /// Accepts the connection and closes it without answering.
    Hangup,
    /// 200 with a correct Content-Length, then the body `chunk` bytes at a time with
    /// a pause of `every` between chunks (a mirror that is alive but far too slow).
    Trickle {
        body: Vec<u8>,
        chunk: usize,
        every: std::time::Duration,
    },
    /// Sends the headers of a 200 (with a length), then nothing, for `for_`.
    Silent {
        len: usize,
        for_: std::time::Duration,
    },
}

pub struct Server {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server answering `routes`; any other path gets a 404.
    pub fn start(routes: Vec<(&str, Route)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let routes: HashMap<String, Route> = routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &routes, &h);
            }
        });
        Server { addr, hits }
    }

    /// Like [`Server::start`], but each connection is served by its own thread (for
    /// slow routes that must not hold up the next request).
    pub fn start_threaded(routes: Vec<(&str, Route)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let routes: Arc<HashMap<String, Route>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        );
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (routes, h) = (routes.clone(), h.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &routes, &h);
                });
            }
        });
        Server { addr, hits }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Paths requested so far, in order.
    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits lock").clone()
    }
}

/// A URL on 127.0.0.1 where nothing listens (the port was bound, then released).
pub fn closed_port_url(path: &str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local addr");
    drop(l);
    format!("http://{addr}{path}")
}

fn serve(
    mut stream: TcpStream,
    routes: &HashMap<String, Route>,
    hits: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l)? == 0 || l == "\r\n" || l == "\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    hits.lock().expect("hits lock").push(path.clone());
    match routes.get(&path).cloned().unwrap_or(Route::NotFound) {
        Route::Ok(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)?;
        }
        Route::NotFound => {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")?;
        }
        Route::Truncated { body, advertised } => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {advertised}\r\nConnection: close\r\n\r\n"
            )?;
            stream.write_all(&body)?;
        }
        Route::DropChunked(body) => {
            let half = &body[..body.len() / 2];
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            )?;
            write!(stream, "{:x}\r\n", body.len())?;
            stream.write_all(half)?;
        }
        Route::Hangup => {}
        Route::Trickle { body, chunk, every } => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.flush()?;
            for c in body.chunks(chunk.max(1)) {
                std::thread::sleep(every);
                stream.write_all(c)?;
                stream.flush()?;
            }
        }
        Route::Silent { len, for_ } => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            )?;
            stream.flush()?;
            std::thread::sleep(for_);
        }
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}
