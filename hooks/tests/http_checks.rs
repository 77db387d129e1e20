//! `http` checks against a local server that verifies the API key, the HMAC-SHA256 signature and
//! the freshness of the timestamp, as partner APIs in this style do.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use hooks::Phase;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves until dropped; answers 200 only to requests signed with `secret`, carrying `key`, with a
/// timestamp within 5 minutes of the server's clock (its clock is `skew_s` ahead of ours).
async fn signing_server(key: &'static str, secret: &'static str, skew_s: i64) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/ping", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while buf.len() < end + 4 + length {
                            let n = socket.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break (head, String::from_utf8_lossy(&buf[end + 4..]).to_string());
                    }
                };
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case(name)
                            .then(|| v.trim().to_string())
                    })
                };
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64
                    + skew_s;
                let verdict = (|| {
                    if header("x-api-key").as_deref() != Some(key) {
                        return Err("bad api key");
                    }
                    let ts = header("x-timestamp").ok_or("no timestamp")?;
                    let ts_num: i64 = ts.parse().map_err(|_| "bad timestamp")?;
                    if (now - ts_num).abs() > 300 {
                        return Err("stale timestamp");
                    }
                    let mut mac =
                        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
                    mac.update(ts.as_bytes());
                    mac.update(body.as_bytes());
                    if header("x-signature").as_deref()
                        != Some(hex::encode(mac.finalize().into_bytes()).as_str())
                    {
                        return Err("bad signature");
                    }
                    if header("authorization").as_deref() != Some("Bearer health-token") {
                        return Err("bad bearer token");
                    }
                    Ok(())
                })();
                let (status, payload) = match verdict {
                    Ok(()) => ("200 OK", json!({"ok": true, "echo": body}).to_string()),
                    Err(why) => (
                        "401 Unauthorized",
                        json!({"ok": false, "error": why}).to_string(),
                    ),
                };
                let response = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}", payload.len());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn signed_check(url: &str) -> serde_json::Value {
    json!({"checks": [{"name": "partner-api", "kind": "http", "method": "POST", "url": url,
        "headers": {"Content-Type": "application/json"}, "body": "{\"ping\":true}",
        "secretHeaders": {"Authorization": "SG_TEST_BEARER"},
        "signing": {"apiKeyEnv": "SG_TEST_API_KEY", "secretEnv": "SG_TEST_API_SECRET"},
        "expect": {"status": 200, "json": {"/ok": true}, "bodyContains": "ping"}}]})
}

fn secrets(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SG_TEST_BEARER", "Bearer health-token".into()),
        ("SG_TEST_API_KEY", "key-123".into()),
        ("SG_TEST_API_SECRET", secret.into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_pass_and_bad_or_stale_signatures_fail() {
    // The hook reads secrets from its environment at request time, as in Lambda.
    for (k, v) in secrets("s3cr3t") {
        std::env::set_var(k, v);
    }
    let vars: Vec<(&str, &str)> = vec![
        ("SG_TEST_BEARER", "x"),
        ("SG_TEST_API_KEY", "x"),
        ("SG_TEST_API_SECRET", "x"),
    ];
    let w = world().await;
    let d = deployment(&w, 2, "2").await;

    let good = signing_server("key-123", "s3cr3t", 0).await;
    let run1 = run(
        &w,
        Phase::PreTraffic,
        &d,
        &config_with(signed_check(&good), &vars),
    )
    .await;
    run1.assert_reported("Succeeded");
    assert_eq!(run1.summary().checks[0].details["status"], 200);

    let other_secret = signing_server("key-123", "another-secret", 0).await;
    let run2 = run(
        &w,
        Phase::PreTraffic,
        &d,
        &config_with(signed_check(&other_secret), &vars),
    )
    .await;
    run2.assert_reported("Failed");
    let reason = run2.summary().reason.clone().unwrap();
    assert!(
        reason.contains("status 401")
            && run2.summary().checks[0].details["body"]
                .as_str()
                .unwrap()
                .contains("bad signature"),
        "{reason}"
    );

    // The server's clock is ten minutes ahead: our timestamp is stale to it.
    let skewed = signing_server("key-123", "s3cr3t", 600).await;
    let run3 = run(
        &w,
        Phase::PreTraffic,
        &d,
        &config_with(signed_check(&skewed), &vars),
    )
    .await;
    run3.assert_reported("Failed");
    assert!(run3.summary().checks[0].details["body"]
        .as_str()
        .unwrap()
        .contains("stale timestamp"));

    // Nothing secret is in the summary or the check's record.
    let text = serde_json::to_string(run1.summary()).unwrap();
    assert!(
        !text.contains("s3cr3t") && !text.contains("health-token"),
        "{text}"
    );
}

#[test]
fn a_secret_that_is_not_in_the_environment_is_a_start_up_error() {
    let checks = signed_check("https://partner.example.com/v1/ping").to_string();
    let err = hooks::HookConfig::from_vars(
        &[("HOOK_CHECKS", checks.as_str()), ("SG_TEST_BEARER", "x")][..],
    )
    .unwrap_err();
    assert_eq!(err.variable, "SG_TEST_API_KEY");
    assert!(err.problem.contains("partner-api"), "{err}");
}
