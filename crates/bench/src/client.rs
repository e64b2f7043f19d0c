//! A minimal HTTP/1.1 client over one keep-alive connection: enough to drive roster at full
//! speed without a client library's overhead in the figures; it returns the status only. It
//! sends `Content-Length` bodies, and reads `Content-Length` and chunked responses (a long bulk
//! removal's answer is written in parts).

use roster_core::ids::{MembershipId, OrganizationId};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Conn {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Conn {
    pub async fn open(addr: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            host: addr.to_owned(),
        })
    }

    /// The native removal of `membership` from `org`, as `auth` (`Bearer …`): its status.
    pub async fn remove_member(
        &mut self,
        org: OrganizationId,
        membership: MembershipId,
        auth: &str,
    ) -> std::io::Result<u16> {
        let path = format!("/v1/organizations/{org}/memberships/{membership}");
        self.send("DELETE", &path, auth, None).await
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<u16> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: {auth}\r\n",
            self.host
        );
        match body {
            Some(b) => head.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                b.len()
            )),
            None => head.push_str("content-length: 0\r\n\r\n"),
        }
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        if let Some(b) = body {
            s.write_all(b).await?;
        }
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad status line: {line:?}"),
                )
            })?;
        let (mut length, mut chunked) = (0usize, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.trim().eq_ignore_ascii_case("chunked");
                }
            }
        }
        // The body is read to keep the connection usable; its content is not needed.
        if chunked {
            self.skip_chunks().await?;
        } else {
            self.skip(length).await?;
        }
        Ok(status)
    }

    async fn skip(&mut self, n: usize) -> std::io::Result<()> {
        let copied = tokio::io::copy(
            &mut (&mut self.stream).take(n as u64),
            &mut tokio::io::sink(),
        )
        .await?;
        if copied < n as u64 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Each chunk is its size in hex on a line, the bytes and a line end; size 0 ends the body
    /// (roster sends no trailers).
    async fn skip_chunks(&mut self) -> std::io::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let hex = line.trim_end().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(hex, 16).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("bad chunk size line: {line:?}"),
                )
            })?;
            self.skip(size + 2).await?;
            if size == 0 {
                return Ok(());
            }
        }
    }
}

/// `GET path` on a connection of its own, returning the body as text (for `/metrics`).
pub async fn get_text(addr: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned()))
}
