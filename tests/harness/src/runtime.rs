//! A function binary behind a local Lambda Runtime API: the shipped `main` (configuration from
//! the environment, clients built once, `lambda_runtime::run`), invoked with events and answering
//! with its result or its `errorType` — as Lambda runs it, without `cargo lambda`.
//!
//! Each [`Function`] is one execution environment (one process, one invocation at a time); two
//! instances of a binary invoked at once are two concurrent environments, as Lambda scales out.
//! Only what the `lambda_runtime` crate uses is served: `GET …/invocation/next`,
//! `POST …/invocation/{id}/response|error` and `POST …/init/error`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::{free_port, kill_tree, workspace_root, ACCOUNT, REGION};

/// What an invocation answered: the function's result, or its error.
pub type Answer = Result<Value, Failure>;

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error_type: String,
    pub error_message: String,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value, u64)>,
    answers: HashMap<String, Answer>,
    init_error: Option<Failure>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// One running function process behind its own Runtime API.
pub struct Function {
    child: Child,
    shared: Arc<Shared>,
    name: String,
    /// Everything the function printed (its JSON logs, EMF lines).
    pub log_path: PathBuf,
    next_id: Mutex<u64>,
}

/// A workspace binary built beside the running test (`target/debug/NAME`). `cargo test
/// --workspace` builds every binary of the packages under test; a binary older than its crate's
/// sources would test old code, so that is refused. `SHIFTGUARD_BIN_DIR` names another build's
/// directory instead (e.g. an older commit's, to watch a test fail on the code it fixes).
pub fn binary(name: &str, sources: &[&str]) -> PathBuf {
    // Another build's binaries (an older commit's, to see a test fail on the code it fixes).
    if let Some(dir) = std::env::var_os("SHIFTGUARD_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let path = dir.join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: build it (`cargo build --bin {name}`, or run `cargo test --workspace`)",
                path.display()
            )
        });
    for dir in sources {
        let newest = newest_source(&workspace_root().join(dir));
        assert!(
            newest <= built,
            "{} is older than {dir}: rebuild it (`cargo build --bin {name}`, or `cargo test --workspace`)",
            path.display()
        );
    }
    path
}

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = UNIX_EPOCH;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let t = if p.is_dir() {
                newest_source(&p)
            } else if p.extension().is_some_and(|x| x == "rs") {
                e.metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(UNIX_EPOCH)
            } else {
                UNIX_EPOCH
            };
            newest = newest.max(t);
        }
    }
    newest
}

impl Function {
    /// Starts `binary` as function `name` with `env` (the emulator's AWS variables and the
    /// function's configuration).
    pub fn start(binary: &Path, name: &str, env: &[(String, String)]) -> Function {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Runtime API");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared::default());
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
        {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let shared = shared.clone();
                    let arn = arn.clone();
                    std::thread::spawn(move || serve(stream, &shared, &arn));
                }
            });
        }
        let log_path = std::env::temp_dir().join(format!(
            "shiftguard-{name}-{}-{}.log",
            std::process::id(),
            free_port()
        ));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/04/[$LATEST]local")
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Function {
            child,
            shared,
            name: name.to_string(),
            log_path,
            next_id: Mutex::new(0),
        }
    }

    /// Invokes the function with `event` (a deadline `timeout` from now) and waits for its
    /// answer: blocking — from async tests, call it inside `tokio::task::spawn_blocking`.
    pub fn invoke(&self, event: &Value, timeout: Duration) -> Answer {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            format!("{}-{}", self.name, *n)
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + timeout.as_millis() as u64;
        let mut state = self.shared.state.lock().unwrap();
        state.queue.push_back((id.clone(), event.clone(), deadline));
        self.shared.changed.notify_all();
        // Lambda's own timeout, plus time for the answer to come back.
        let until = std::time::Instant::now() + timeout + Duration::from_secs(5);
        loop {
            if let Some(answer) = state.answers.remove(&id) {
                return answer;
            }
            if let Some(e) = &state.init_error {
                return Err(e.clone());
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "{} did not answer invocation {id} in time; its log: {}",
                self.name,
                std::fs::read_to_string(&self.log_path).unwrap_or_default()
            );
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    /// What the function printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        kill_tree(self.child.id());
        let _ = self.child.wait();
    }
}

/// One connection of the runtime client (kept alive across requests).
fn serve(stream: TcpStream, shared: &Shared, arn: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let path = path.trim_start_matches("/2018-06-01/runtime");
        let reply = |w: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]| {
            let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            w.write_all(head.as_bytes())
                .and_then(|_| w.write_all(body))
                .and_then(|_| w.flush())
                .is_ok()
        };
        let ok = match (method, path) {
            ("GET", "/invocation/next") => {
                let mut state = shared.state.lock().unwrap();
                let (id, event, deadline) = loop {
                    if let Some(next) = state.queue.pop_front() {
                        break next;
                    }
                    state = shared.changed.wait(state).unwrap();
                };
                drop(state);
                let body = event.to_string();
                reply(
                    &mut writer,
                    "200 OK",
                    &[
                        ("Content-Type".into(), "application/json".into()),
                        ("Lambda-Runtime-Aws-Request-Id".into(), id),
                        ("Lambda-Runtime-Deadline-Ms".into(), deadline.to_string()),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn".into(),
                            arn.to_string(),
                        ),
                        (
                            "Lambda-Runtime-Trace-Id".into(),
                            "Root=1-00000000-000000000000000000000000".into(),
                        ),
                    ],
                    body.as_bytes(),
                )
            }
            ("POST", "/init/error") => {
                let mut state = shared.state.lock().unwrap();
                state.init_error = Some(failure_of(&body));
                shared.changed.notify_all();
                drop(state);
                reply(&mut writer, "202 Accepted", &[], b"{}")
            }
            ("POST", p) if p.starts_with("/invocation/") => {
                let rest = &p["/invocation/".len()..];
                let (id, kind) = rest.rsplit_once('/').unwrap_or((rest, ""));
                let answer = match kind {
                    "response" => Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)),
                    _ => Err(failure_of(&body)),
                };
                let mut state = shared.state.lock().unwrap();
                state.answers.insert(id.to_string(), answer);
                shared.changed.notify_all();
                drop(state);
                reply(&mut writer, "202 Accepted", &[], b"{}")
            }
            _ => reply(&mut writer, "404 Not Found", &[], b"{}"),
        };
        if !ok {
            return;
        }
    }
}

fn failure_of(body: &[u8]) -> Failure {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    Failure {
        error_type: v["errorType"].as_str().unwrap_or("").to_string(),
        error_message: v["errorMessage"].as_str().unwrap_or("").to_string(),
    }
}
