//! The floor: the least a Rust Lambda function can do before its first `GET /next` — no async
//! runtime, no SDK, no TLS, no logging, std only. `make bench` starts it beside each function in
//! the same run (interleaved), so that start-up is reported as the functions' and the floor's on
//! the same machine at the same moment.

use std::io::{Read, Write};
use std::net::TcpStream;

fn request(api: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(api)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

fn main() -> std::io::Result<()> {
    let api =
        std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API is set by Lambda");
    loop {
        let next = request(&api, "GET", "/2018-06-01/runtime/invocation/next", b"")?;
        let text = String::from_utf8_lossy(&next);
        let id = text
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("lambda-runtime-aws-request-id")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default();
        request(
            &api,
            "POST",
            &format!("/2018-06-01/runtime/invocation/{id}/response"),
            b"{}",
        )?;
    }
}
