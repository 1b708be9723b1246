//! `sanforge serve`: serves a PXE bundle (an output directory) over HTTP so that iPXE
//! can `chain http://HOST:PORT/boot.ipxe` — for operators without a PXE server, and for
//! tests. Read-only: GET and HEAD of the files directly in the directory, nothing else:
//! no subdirectory (so never `secrets/`), no dot file, and no symbolic link that leads
//! anywhere but to a file directly in the directory (403).

use anyhow::{Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};

pub struct Server {
    listener: TcpListener,
    dir: PathBuf,
}

impl Server {
    /// Binds `addr` (e.g. `127.0.0.1:8080`, or a LAN address for real PXE clients).
    pub fn bind(dir: &Path, addr: &str) -> Result<Server> {
        if !dir.join("boot.ipxe").is_file() {
            anyhow::bail!(
                "{} has no boot.ipxe: is it a sanforge output directory?",
                dir.display()
            );
        }
        let listener =
            TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        Ok(Server {
            listener,
            dir: dir.to_path_buf(),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .context("cannot read the listening address")
    }

    /// Serves connections one thread each, forever (or `limit` connections).
    pub fn serve(&self, limit: Option<usize>) -> Result<()> {
        for (n, conn) in self.listener.incoming().enumerate() {
            let Ok(stream) = conn else { continue };
            let dir = self.dir.clone();
            let handle = std::thread::spawn(move || {
                if let Err(e) = handle(stream, &dir) {
                    eprintln!("serve: {e:#}");
                }
            });
            if let Some(l) = limit {
                let _ = handle.join();
                if n + 1 >= l {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn handle(stream: TcpStream, dir: &Path) -> Result<()> {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut reader = BufReader::new(stream.try_clone().context("cannot clone the connection")?);
    let mut request = String::new();
    reader
        .read_line(&mut request)
        .context("cannot read the request")?;
    // Skip the headers.
    loop {
        let mut l = String::new();
        if reader
            .read_line(&mut l)
            .context("cannot read the request headers")?
            == 0
            || l == "\r\n"
            || l == "\n"
        {
            break;
        }
    }
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let name = target
        .split('?')
        .next()
        .unwrap_or("")
        .trim_start_matches('/');
    let mut out = stream;
    let file = resolve(dir, name);
    match (method, file) {
        ("GET" | "HEAD", Served::Forbidden) => {
            out.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .context("cannot write the response")?;
            eprintln!(
                "serve: {peer} {method} /{name} 403 (a link out of {}: not served)",
                dir.display()
            );
        }
        ("GET" | "HEAD", Served::File(path)) => {
            let data = crate::util::fs::read(&path)?;
            write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n", data.len())
                .context("cannot write the response")?;
            if method == "GET" {
                out.write_all(&data).context("cannot write the response")?;
            }
            eprintln!("serve: {peer} {method} /{name} 200 {} bytes", data.len());
        }
        ("GET" | "HEAD", Served::Missing) => {
            out.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .context("cannot write the response")?;
            eprintln!("serve: {peer} {method} {target} 404");
        }
        _ => {
            out.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").context("cannot write the response")?;
        }
    }
    Ok(())
}

/// What a request name resolves to.
#[derive(Debug, PartialEq, Eq)]
enum Served {
    File(PathBuf),
    /// A symbolic link whose target is not a file directly in the directory.
    Forbidden,
    Missing,
}

/// A plain file directly in `dir`; never anything outside it. A symbolic link is
/// followed only to a file directly in `dir` (not into a subdirectory, not out).
fn resolve(dir: &Path, name: &str) -> Served {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Served::Missing;
    }
    let p = dir.join(name);
    let Ok(meta) = std::fs::symlink_metadata(&p) else {
        return Served::Missing;
    };
    if meta.file_type().is_symlink() {
        let (Ok(real), Ok(base)) = (p.canonicalize(), dir.canonicalize()) else {
            return Served::Forbidden;
        };
        return if real.parent() == Some(base.as_path()) && real.is_file() {
            Served::File(real)
        } else {
            Served::Forbidden
        };
    }
    if meta.is_file() {
        Served::File(p)
    } else {
        Served::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r
    }

    #[test]
    fn serves_bundle_files_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("boot.ipxe"), "#!ipxe\nboot\n").unwrap();
        let srv = Server::bind(d.path(), "127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let t = std::thread::spawn(move || srv.serve(Some(3)));
        let ok = get(addr, "/boot.ipxe");
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with("#!ipxe\nboot\n"),
            "{ok}"
        );
        assert!(get(addr, "/../etc/passwd").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "/missing").starts_with("HTTP/1.1 404"));
        t.join().unwrap().unwrap();
    }

    #[test]
    fn links_lead_only_to_files_directly_in_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir_all(out.join("secrets")).unwrap();
        std::fs::write(out.join("boot.ipxe"), "#!ipxe\n").unwrap();
        std::fs::write(out.join("secrets/initrd.cpio"), "secret").unwrap();
        std::fs::write(d.path().join("outside"), "outside").unwrap();
        std::os::unix::fs::symlink("boot.ipxe", out.join("alias.ipxe")).unwrap();
        std::os::unix::fs::symlink("../outside", out.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", out.join("passwd")).unwrap();
        std::os::unix::fs::symlink("secrets/initrd.cpio", out.join("s.cpio")).unwrap();
        assert_eq!(
            resolve(&out, "alias.ipxe"),
            Served::File(out.canonicalize().unwrap().join("boot.ipxe"))
        );
        for n in ["escape", "passwd", "s.cpio"] {
            assert_eq!(resolve(&out, n), Served::Forbidden, "{n}");
        }
        assert_eq!(resolve(&out, "secrets"), Served::Missing);
        assert_eq!(resolve(&out, "secrets/initrd.cpio"), Served::Missing);
    }
}
