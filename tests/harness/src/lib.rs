//! Test harness for ShiftGuard: each test starts its own emulator (moto server plus ShiftGuard's
//! extension, `tests/emulator/shiftguard_emulator.py`) on a free loopback port, so tests run in
//! parallel without sharing state, faults or call logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod apigateway;
pub mod calls;
pub mod fixtures;
pub mod lattice;
pub mod runtime;

use serde_json::{json, Value};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
/// An execution role the emulator creates at start-up.
pub const LAMBDA_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/shiftguard-lambda-role";
/// The smallest valid zip archive (an empty one): code is never run by the emulator.
pub const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// The workspace root (where `events/`, `tests/` and `.venv/` live).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// A sample event from `events/`, the one source of truth for event shapes.
pub fn event(relative: &str) -> Value {
    let path = workspace_root().join("events").join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Now, as alarm notifications write it (`2026-11-21T14:57:14.419+0000`), and as ISO 8601
/// (`2026-11-21T14:57:14.419Z`).
pub fn now_texts() -> (String, String) {
    use aws_smithy_types::date_time::{DateTime, Format};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let millis = DateTime::from_millis(now.as_millis() as i64);
    let iso = millis.fmt(Format::DateTime).expect("format");
    // Whole seconds print without a fraction: the notifications always carry milliseconds.
    let iso = if iso.contains('.') {
        iso
    } else {
        iso.replace('Z', ".000Z")
    };
    (iso.replace('Z', "+0000"), iso)
}

/// A sample event from `events/` as if its alarm changed state just now: the sample alarm's
/// times (2026-11-21T14:57:1…) become the current time, in the same format. Rules about an
/// alarm's age (a rollout or stage changed after the alarm is not what it is about) then see a
/// fresh alarm, as production does.
pub fn fresh_event(relative: &str) -> Value {
    let text = event(relative).to_string();
    let (notification, iso) = now_texts();
    let mut out = text;
    for old in [
        "2026-11-21T14:57:14.419+0000",
        "2026-11-21T14:57:15.002+0000",
    ] {
        out = out.replace(old, &notification);
    }
    for old in ["2026-11-21T14:57:14.419Z", "2026-11-21T14:57:14.465Z"] {
        out = out.replace(old, &iso);
    }
    out = out.replace("2026-11-21T14:57:14Z", &format!("{}Z", &iso[..19]));
    serde_json::from_str(&out).expect("still JSON")
}

/// The Python that has moto installed: `SHIFTGUARD_PYTHON`, else the project's `.venv`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("SHIFTGUARD_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `make venv` (or `make test`, which installs it) first",
        venv.display()
    );
    venv
}

/// The synthesized rehearsal stack (`make cdk-synth`): the roles the construct gives the demo's
/// and the sequences' functions.
/// Where `make cdk-synth` writes the rehearsal stack's template (its cloud assembly beside it).
pub fn rehearsal_template_path() -> std::path::PathBuf {
    workspace_root().join("target/cdk.out/ShiftGuardRehearsal.template.json")
}

pub fn rehearsal_template() -> Value {
    let path = rehearsal_template_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: synthesize the CDK app first (make cdk-synth; make test does)",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("the synthesized template is JSON")
}

/// An emulator and one crate's clients on it: where every crate's emulator tests start (the
/// hooks' and rollback's `support` modules name their own `World` as this with their clients).
pub struct World<C> {
    pub emu: Emulator,
    pub clients: C,
    /// The driver's SDK configuration: the test kit's fixtures build their clients from it.
    pub sdk: aws_config::SdkConfig,
}

impl<C> World<C> {
    /// A fresh emulator, and the clients `make` builds from its SDK configuration.
    pub async fn start(make: impl FnOnce(&aws_config::SdkConfig) -> C) -> Self {
        let emu = Emulator::start();
        let sdk = emu.sdk_config().await;
        let clients = make(&sdk);
        World { emu, clients, sdk }
    }
}

/// A running emulator, stopped when dropped.
pub struct Emulator {
    child: Child,
    pub url: String,
    addr: String,
}

impl Emulator {
    /// Starts `tests/emulator/shiftguard_emulator.py`, or the script `SHIFTGUARD_EMULATOR` names
    /// (to run the tests against another copy of the emulator).
    pub fn start() -> Self {
        let script = std::env::var_os("SHIFTGUARD_EMULATOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("tests/emulator/shiftguard_emulator.py"));
        // Strict model conformance: an answer of the extension that does not match botocore's
        // service model fails the call (and so the test). `SHIFTGUARD_STRICT=0` turns it off.
        let strict = std::env::var("SHIFTGUARD_STRICT").unwrap_or_else(|_| "1".into());
        let mut child = Command::new(python())
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env("SHIFTGUARD_STRICT", strict)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reading the emulator's ready line");
        let url = line
            .trim()
            .strip_prefix("SHIFTGUARD_EMULATOR_READY ")
            .unwrap_or_else(|| panic!("the emulator did not start: {line:?}"))
            .to_string();
        let addr = url.trim_start_matches("http://").to_string();
        Emulator { child, url, addr }
    }

    /// SDK configuration for this emulator: fixed test credentials, `us-east-1`, and the same
    /// HTTP client, retry and timeout settings the functions use.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        shiftguard_common::aws_config_loader()
            .endpoint_url(&self.url)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .load()
            .await
    }

    /// Environment variables that point a function process at this emulator. The key is not the
    /// driver's (`sdk_config`): under strict IAM ([`Emulator::strict_iam`]) it is refused, so a
    /// binary must be given its role ([`Emulator::role_env`]); without strict IAM it has full access.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "SHIFTGUARDNOROLE"),
            ("AWS_SECRET_ACCESS_KEY", "notrealrnrELgWzOk3IfjzDKtFBhDby"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Strict IAM from now on: every call is authorized; the test's own clients (`sdk_config`'s
    /// fixed test key) are the operator, allowed everything; a binary gets exactly its role's
    /// statements ([`Emulator::role_env`]); any other key is refused.
    pub fn strict_iam(&self) {
        let test_key = aws_credential_types::Credentials::for_tests()
            .access_key_id()
            .to_string();
        self.control(
            "POST",
            "/_shiftguard/iam",
            Some(&json!({"enforce": true, "strict": true, "operatorKeys": [test_key]})),
        );
    }

    /// [`Emulator::aws_env`] with the credentials of `function`'s role as the CDK construct
    /// deploys it: the rehearsal stack (`cdk/lib/rehearsal.ts`, synthesized by `make cdk-synth`
    /// into `target/cdk.out`) loaded into this emulator, its references resolved against the
    /// resources that exist now (create the world first). Use with [`Emulator::strict_iam`].
    pub fn role_env(&self, function: &str) -> Vec<(String, String)> {
        self.role_env_from(&rehearsal_template(), "ShiftGuardRehearsal", function)
    }

    /// Like [`Emulator::role_env`] for any synthesized template (e.g. one a test trimmed), loaded
    /// as the stack `stack` (the least-privilege report counts only the rehearsal stack's calls:
    /// give a trimmed template another name).
    pub fn role_env_from(
        &self,
        template: &Value,
        stack: &str,
        function: &str,
    ) -> Vec<(String, String)> {
        let out = self.control(
            "POST",
            "/_shiftguard/iam/stack",
            Some(&json!({"template": template, "stack": stack,
                         "functions": [function], "unresolved": "placeholder"})),
        );
        self.with_role(&out, function)
    }

    /// The emulator's environment with the credentials the stack loader gave `function`'s role.
    fn with_role(&self, out: &Value, function: &str) -> Vec<(String, String)> {
        let creds = &out["functions"][function]["credentials"];
        let mut env = self.aws_env();
        env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
        for (var, field) in [
            ("AWS_ACCESS_KEY_ID", "AccessKeyId"),
            ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
            ("AWS_SESSION_TOKEN", "SessionToken"),
        ] {
            let value = creds[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} for {function}'s role: {out}"));
            env.push((var.to_string(), value.to_string()));
        }
        env
    }

    /// The rehearsal stack's function `function` exactly as deployed: its role's credentials and
    /// its whole environment from the template, with `SHIFTGUARD_CONFIG_FILE` naming the settings
    /// file's copy in the cloud assembly (so the binary reads its check sets and target maps from
    /// the file the construct ships, as on Lambda). Strict IAM should be on.
    pub fn stack_env(&self, function: &str) -> Vec<(String, String)> {
        let template = rehearsal_template_path();
        let out = self.control(
            "POST",
            "/_shiftguard/iam/stack",
            Some(
                &json!({"templatePath": template, "stack": "ShiftGuardRehearsal",
                         "functions": [function], "unresolved": "placeholder"}),
            ),
        );
        let mut env = self.with_role(&out, function);
        for (k, v) in out["functions"][function]["environment"]
            .as_object()
            .expect("environment")
        {
            env.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
        }
        env
    }

    /// Every call the emulator judged under IAM and did not allow: `{principal, action, resources, decision}`.
    pub fn denied_calls(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter_map(|c| c.get("iam").cloned())
            .filter(|iam| !matches!(iam["decision"].as_str(), Some("allowed") | Some("operator")))
            .collect()
    }

    /// Arms a fault, e.g. `{"service":"lambda","operation":"UpdateAlias","kind":"throttle","count":2}`.
    /// Kinds: `throttle`, `error500`, `latency` (`delay_ms`), `error` (`status`, `code`, `message`),
    /// `concurrent_alias_update` (`function_version`, `routing_config`).
    pub fn arm_fault(&self, spec: Value) {
        self.control("POST", "/_shiftguard/faults", Some(&spec));
    }

    /// Every AWS call the emulator received, in order: `{service, operation, path, time}`.
    pub fn calls(&self) -> Vec<Value> {
        match self.control("GET", "/_shiftguard/calls", None) {
            Value::Array(calls) => calls,
            other => panic!("unexpected call log {other}"),
        }
    }

    /// How many calls of one operation were received.
    pub fn count(&self, service: &str, operation: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c["service"] == service && c["operation"] == operation)
            .count()
    }

    pub fn reset_calls(&self) {
        self.control("DELETE", "/_shiftguard/calls", None);
    }

    /// Plays CodeDeploy's part: sets a deployment's status and how it behaves when stopped
    /// (`auto_rollback`: whether its rollback restores the alias; `rollback_delay` in seconds).
    pub fn set_deployment(&self, deployment_id: &str, body: Value) -> Value {
        self.control(
            "POST",
            &format!("/_shiftguard/codedeploy/deployments/{deployment_id}"),
            Some(&body),
        )
    }

    /// Registers a lifecycle hook execution for a deployment (what CodeDeploy does before it
    /// invokes a hook) and returns its id.
    pub fn new_hook_execution(&self, deployment_id: &str, lifecycle_event: &str) -> String {
        let out = self.control(
            "POST",
            &format!("/_shiftguard/codedeploy/deployments/{deployment_id}/hook-executions"),
            Some(&json!({ "lifecycleEvent": lifecycle_event })),
        );
        out["lifecycleEventHookExecutionId"]
            .as_str()
            .expect("hook execution id")
            .to_string()
    }

    /// The status and every report received for a hook execution.
    pub fn hook_execution(&self, id: &str) -> Value {
        self.control(
            "GET",
            &format!("/_shiftguard/codedeploy/hook-executions/{id}"),
            None,
        )
    }

    /// The `StopDeployment` calls that succeeded: `{deploymentId, autoRollbackEnabled}`.
    pub fn stopped_deployments(&self) -> Vec<Value> {
        match self.control("GET", "/_shiftguard/codedeploy/stopped", None) {
            Value::Array(v) => v,
            other => panic!("unexpected {other}"),
        }
    }

    /// A plain HTTP/1.1 request to the control plane (no client library needed for loopback).
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(&self.addr).expect("connecting to the emulator");
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("writing to the emulator");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("reading from the emulator");
        let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "{method} {path}: {head}\n{payload}"
        );
        serde_json::from_str(payload)
            .unwrap_or_else(|e| panic!("{method} {path}: bad JSON {e}: {payload}"))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (for servers the tests start, such as `cargo lambda watch`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A valid, empty zip archive whose comment makes it distinct, so each publish is a new version.
pub fn distinct_zip(tag: &str) -> Vec<u8> {
    let mut zip = EMPTY_ZIP[..20].to_vec();
    zip.extend_from_slice(&(tag.len() as u16).to_le_bytes());
    zip.extend_from_slice(tag.as_bytes());
    zip
}

/// `cargo lambda watch` serving this workspace's functions behind a local Lambda Runtime API,
/// the way users run them; stopped when dropped.
pub struct LambdaWatch {
    child: Child,
    pub port: u16,
    /// Everything `cargo lambda watch` and the functions printed.
    pub log_path: PathBuf,
}

/// The `cargo-lambda` binary installed in the project's venv (or `CARGO_LAMBDA`).
pub fn cargo_lambda() -> PathBuf {
    if let Ok(p) = std::env::var("CARGO_LAMBDA") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/cargo-lambda");
    assert!(
        venv.exists(),
        "{} is missing: run `make venv` first",
        venv.display()
    );
    venv
}

impl LambdaWatch {
    /// Starts the server with `env` written to an env file (values may hold JSON).
    pub fn start(env: &[(String, String)]) -> Self {
        let port = free_port();
        let env_file = std::env::temp_dir().join(format!("shiftguard-watch-{port}.env"));
        let mut text = String::new();
        for (k, v) in env {
            assert!(
                !v.contains('\''),
                "{k}: single quotes cannot be passed through an env file"
            );
            text.push_str(&format!("{k}='{v}'\n"));
        }
        std::fs::write(&env_file, text).expect("writing the env file");
        // The functions' own logs, for a test that needs to know why something failed.
        let log_path = std::env::temp_dir().join(format!("shiftguard-watch-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("creating the log file");
        let child = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            .current_dir(workspace_root())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting cargo lambda watch");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "cargo lambda watch did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        LambdaWatch {
            child,
            port,
            log_path,
        }
    }

    /// `cargo lambda invoke FUNCTION --data-file events/FILE`: (succeeded, output).
    pub fn invoke(&self, function: &str, event_file: &str) -> (bool, String) {
        self.invoke_file(function, &workspace_root().join("events").join(event_file))
    }

    /// `event` (JSON) through `cargo lambda invoke FUNCTION`, by way of a temporary file.
    pub fn invoke_value(&self, function: &str, event: &Value) -> (bool, String) {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("shiftguard-event-{}-{n}.json", std::process::id()));
        std::fs::write(&path, event.to_string()).expect("writing the event");
        let out = self.invoke_file(function, &path);
        let _ = std::fs::remove_file(&path);
        out
    }

    /// `cargo lambda invoke FUNCTION --data-file PATH`: (succeeded, output).
    pub fn invoke_file(&self, function: &str, path: &Path) -> (bool, String) {
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(path)
            .args(["--output-format", "json"])
            .current_dir(workspace_root())
            .output()
            .expect("running cargo lambda invoke");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl LambdaWatch {
    /// Every Embedded Metric Format document the functions printed so far: each line of their
    /// output that mentions `_aws`, which must then be one whole JSON object (CloudWatch Logs
    /// extracts nothing from a line with anything before or after the object).
    pub fn emf_documents(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("\"_aws\""))
            .map(|l| {
                serde_json::from_str(l.trim_end()).unwrap_or_else(|e| {
                    panic!("an EMF line that is not one JSON object ({e}): {l}")
                })
            })
            .collect()
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // cargo-lambda leaves the function process running when it is stopped: end the whole tree,
        // or a stray function keeps CI's output pipe open.
        kill_tree(self.child.id());
        let _ = self.child.wait();
    }
}

/// Sends SIGKILL to `root` and every process descended from it (found through /proc).
pub fn kill_tree(root: u32) {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command: state, ppid, ...
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u32>().ok())
            {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    for pid in tree.into_iter().filter(|p| *p > 1) {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
}
