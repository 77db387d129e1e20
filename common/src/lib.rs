//! Plumbing shared by every ShiftGuard function: one AWS SDK configuration (one rustls/ring HTTP
//! stack, bounded retries and timeouts), JSON logs, and readable SDK error text.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

pub mod codedeploy;
pub mod deadline;
pub mod emf;
pub mod env;

pub use deadline::{Deadline, OutOfTime};

/// Loads the SDK configuration once per process (region, credentials and `AWS_ENDPOINT_URL` from
/// the environment, as every AWS SDK does).
///
/// Retries are the SDK's standard mode with short backoffs: a Lambda function has seconds, not
/// minutes, and a throttled call should be retried inside the same invocation.
pub async fn aws_config() -> SdkConfig {
    aws_config_loader().load().await
}

/// The loader behind [`aws_config`], for callers that add settings (tests point it at the
/// emulator).
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(2)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
}

/// Points TLS root loading at the system's single CA bundle file when nothing else is configured.
///
/// rustls-native-certs otherwise reads the bundle *and* every file of the hashed certificate
/// directory (about 280 files here): measured with `make bench`, that was 3–8 ms of a 10 ms init
/// budget. The bundle holds the same roots, so trust does not change. Call it first thing in
/// `main`, before any thread exists.
pub fn prefer_ca_bundle() {
    const BUNDLES: [&str; 2] = [
        "/etc/pki/tls/certs/ca-bundle.crt", // Amazon Linux 2023 (provided.al2023)
        "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
    ];
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return;
    }
    if let Some(bundle) = BUNDLES.iter().find(|b| std::path::Path::new(b).is_file()) {
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

/// Structured JSON logs on stdout, one object per line, which CloudWatch Logs indexes as JSON.
/// `RUST_LOG` (or `AWS_LAMBDA_LOG_LEVEL`) sets the level; the default is `info`.
pub fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL").map(|l| l.to_lowercase()))
        .unwrap_or_else(|_| "info".to_string());
    // `Targets` takes `info` or `info,hooks=debug` (level per target) without the regex engine
    // EnvFilter brings (~0.4 MB in every zip); span and field filters are not needed here.
    let filter: tracing_subscriber::filter::Targets = level
        .parse()
        .unwrap_or_else(|_| "info".parse().expect("a level parses"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .with_max_level(tracing::Level::TRACE)
        .finish()
        .with(filter)
        .try_init();
}

/// The whole cause chain of an SDK error. Plain `Display` of an SDK error says only
/// "service error" or "dispatch failure", which tells an on-call engineer nothing.
pub fn error_text<E: std::error::Error>(err: &E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(err).to_string()
}

/// The invocation deadline the Lambda runtime gives (milliseconds since the Unix epoch) as an
/// `Instant`; see [`Deadline::from_epoch_ms`].
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<std::time::Instant> {
    Deadline::from_epoch_ms(deadline_ms).0
}

/// An invocation payload that always decodes: JSON, or why it is not. The runtime's own decoding
/// error would reach callers as `errorType` `&lambda_runtime::deserializer::DeserializeError`;
/// with this, each function answers with its own documented `errorType` instead.
#[derive(Debug, Clone, PartialEq)]
pub enum RawEvent {
    Json(serde_json::Value),
    Invalid(String),
}

impl<'de> serde::Deserialize<'de> for RawEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(d) {
            Ok(v) => RawEvent::Json(v),
            Err(e) => RawEvent::Invalid(e.to_string()),
        })
    }
}
