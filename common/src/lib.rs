//! Plumbing shared by every ShiftGuard function: one AWS SDK configuration (one rustls/ring HTTP
//! stack, bounded retries and timeouts), JSON logs, and readable SDK error text.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

pub mod codedeploy;
pub mod deadline;
pub mod doctor;
pub mod duration;
pub mod emf;
pub mod env;
pub mod init_trace;
pub mod lambda;
pub mod tls;

pub use deadline::{Deadline, OutOfTime};

/// Loads the SDK configuration once per process (region, credentials and `AWS_ENDPOINT_URL` from
/// the environment, as every AWS SDK does).
///
/// Retries are the SDK's standard mode with short backoffs: a Lambda function has seconds, not
/// minutes, and a throttled call should be retried inside the same invocation.
///
/// Built from what Lambda puts in the environment — credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), `AWS_REGION` and, locally, `AWS_ENDPOINT_URL` —
/// and nothing else: the SDK's default chain (profiles, SSO, web identity through STS, IMDS) is
/// never reached on Lambda, and not linking it keeps it out of the zip and off the start-up path.
/// Outside Lambda, export credentials as environment variables (`cargo lambda watch` does).
pub async fn aws_config() -> SdkConfig {
    sdk_config_from(&operators_env)
}

/// The environment as the operator set it: `SSL_CERT_FILE` only when they did, not when
/// [`prefer_ca_bundle`] chose the bundle (the choice of [`tls::sdk_roots`] depends on it).
fn operators_env(name: &str) -> Option<String> {
    if name == "SSL_CERT_FILE" && CA_BUNDLE_CHOSEN.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    std::env::var(name).ok()
}

static CA_BUNDLE_CHOSEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(test)]
mod sdk_config_tests {
    use super::*;
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::runtime_components::{
        RuntimeComponents, RuntimeComponentsBuilder,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts validations; never asked for a connector here.
    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>);

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("not asked in this test")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &aws_smithy_types::config_bag::ConfigBag,
        ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn the_shared_client_is_validated_once_however_many_clients_are_built() {
        let count = Arc::new(AtomicUsize::new(0));
        let client = ValidatedOnce {
            inner: SharedHttpClient::new(Counting(count.clone())),
            validated: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let (components, cfg) = (
            RuntimeComponentsBuilder::new("test"),
            aws_smithy_types::config_bag::ConfigBag::base(),
        );
        for _ in 0..5 {
            client
                .validate_base_client_config(&components, &cfg)
                .unwrap();
        }
        // A clone (each SDK client holds one) shares the flag.
        client
            .clone()
            .validate_base_client_config(&components, &cfg)
            .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    /// The bundle `prefer_ca_bundle` chose is not the operator's: it must not turn the Amazon
    /// roots off (every function sets it at start-up).
    #[test]
    fn a_ca_bundle_shiftguard_chose_is_not_the_operators() {
        // As `prefer_ca_bundle` leaves the process (no test here reads SSL_CERT_FILE otherwise).
        std::env::set_var("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt");
        CA_BUNDLE_CHOSEN.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(operators_env("SSL_CERT_FILE"), None);
        let env = |name: &str| match name {
            "SSL_CERT_FILE" => operators_env(name),
            _ => None,
        };
        assert_eq!(tls::sdk_roots(&env), Ok(tls::SdkRoots::AmazonTrustServices));
    }

    /// Building a client validates the HTTPS client, which builds a TLS configuration from the
    /// roots (the SDK panics on a certificate it cannot read): each choice of roots must build.
    #[tokio::test]
    async fn a_client_builds_with_either_choice_of_roots() {
        for vars in [&[][..], &[("SHIFTGUARD_TLS_ROOTS", "system")][..]] {
            let env = |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            };
            let sdk = sdk_config_from(&env);
            let _ = aws_sdk_codedeploy::Client::new(&sdk);
        }
    }

    #[test]
    fn every_sdk_client_gets_the_validated_once_client() {
        let sdk = sdk_config_from(&|_| None);
        let debug = format!("{:?}", sdk.http_client());
        assert!(debug.contains("ValidatedOnce"), "{debug}");
    }

    #[test]
    fn the_environment_gives_region_endpoint_and_credentials() {
        let env = |name: &str| match name {
            "AWS_REGION" => Some("eu-west-1".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:5005".to_string()),
            _ => None,
        };
        let c = sdk_config_from(&env);
        assert_eq!(c.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(c.endpoint_url(), Some("http://127.0.0.1:5005"));
        assert!(
            c.credentials_provider().is_some()
                && c.sleep_impl().is_some()
                && c.time_source().is_some()
        );
        let fallback = |name: &str| (name == "AWS_DEFAULT_REGION").then(|| "us-west-2".to_string());
        assert_eq!(
            sdk_config_from(&fallback).region().map(|r| r.as_ref()),
            Some("us-west-2")
        );
        assert_eq!(sdk_config_from(&|_| Some(" ".into())).endpoint_url(), None);
    }
}

/// [`aws_config`] with the environment given (testable).
pub fn sdk_config_from(var: &dyn Fn(&str) -> Option<String>) -> SdkConfig {
    let roots = tls::sdk_roots(var).unwrap_or_else(|e| {
        // The wider trust: a typo must not cut the functions off from AWS.
        tracing::error!(variable = tls::ROOTS_VARIABLE, error = %e, "invalid TLS roots setting: using the system bundle");
        tls::SdkRoots::System(e)
    });
    // One line a cold start: a TLS failure (UnknownIssuer) is then read beside the roots in force.
    let why = match &roots {
        tls::SdkRoots::AmazonTrustServices => {
            "the default for AWS endpoints (SHIFTGUARD_TLS_ROOTS=system: the system bundle)"
        }
        tls::SdkRoots::System(why) => why.as_str(),
    };
    tracing::info!(tls_roots = roots.name(), why = %why, "TLS roots of the SDK's HTTPS client");
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client(&roots))
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ),
        );
    let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if let Some(region) = non_empty("AWS_REGION").or_else(|| non_empty("AWS_DEFAULT_REGION")) {
        builder = builder.region(aws_config::Region::new(region));
    }
    if let Some(url) = non_empty("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

fn http_client(roots: &tls::SdkRoots) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_runtime_api::client::http::SharedHttpClient::new(ValidatedOnce {
        inner: aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(roots.tls_context())
            .build_https(),
        validated: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    })
}

/// The one HTTPS client every SDK client of the process shares, validated once.
///
/// The SDK asks the HTTP client to validate itself as each service client is built; the rustls
/// client answers by building a whole connector — every root certificate parsed into a new store,
/// a new TLS configuration — and throws it away (`make bench`, tests/README.md "Performance":
/// ~0.5 ms a client, 3–5 clients a function). The first validation does it once (with the roots
/// [`tls::sdk_roots`] chose); connectors themselves are built on first use and cached by the inner
/// client as before, so every client still gets the same TLS stack and trust.
#[derive(Debug, Clone)]
struct ValidatedOnce {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    validated: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl aws_smithy_runtime_api::client::http::HttpClient for ValidatedOnce {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder,
        cfg: &aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if self
            .validated
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(());
        }
        init_trace::mark("tls-roots:start");
        let validated = self.inner.validate_base_client_config(components, cfg);
        init_trace::mark("tls-roots:end");
        validated
    }

    fn validate_final_config(
        &self,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(5)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(2))
}

fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(20))
        .build()
}

/// The SDK's default loader with the same client, retry and timeout settings, for callers that
/// add settings (tests point it at the emulator with fixed credentials). Not used by the
/// functions: see [`aws_config`].
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client(&tls::SdkRoots::System(
            "the SDK's default loader".into(),
        )))
        .retry_config(retry_config())
        .timeout_config(timeout_config())
}

/// Every function's `main`: the runtime, the CA bundle, JSON logs, the configuration `read`s
/// (an error is logged naming its variable and kept: the runtime starts anyway and every
/// invocation answers with it, where it shows), the SDK configuration; then `serve` with them.
/// Each step is an [`init_trace::mark`] (`make bench`'s breakdown).
pub fn main<C, E, Fut>(
    read: impl FnOnce() -> Result<C, env::EnvError>,
    serve: impl FnOnce(Result<C, env::EnvError>, SdkConfig) -> Fut,
) -> Result<(), E>
where
    Fut: std::future::Future<Output = Result<(), E>>,
    E: From<std::io::Error>,
{
    init_trace::mark("main");
    let runtime = runtime()?;
    init_trace::mark("runtime");
    runtime.block_on(async move {
        prefer_ca_bundle();
        init_logging();
        init_trace::mark("logging");
        let config = read().inspect_err(|e| {
            tracing::error!(variable = %e.variable, error = %e, "invalid configuration: every invocation answers with this error");
        });
        init_trace::mark("config");
        let sdk = aws_config().await;
        init_trace::mark("sdk-config");
        serve(config, sdk).await
    })
}

/// The functions' runtime: one thread, since Lambda hands a function one invocation at a time
/// (the checks run concurrently on it), with timers and I/O. Built by each `main` itself, between
/// [`init_trace::mark`]s, so that `make bench` can say what it costs.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
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
        CA_BUNDLE_CHOSEN.store(true, std::sync::atomic::Ordering::Relaxed);
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

/// A read that may find nothing: `Ok(None)` when the service answers ResourceNotFoundException
/// (Lambda, VPC Lattice and CloudWatch Logs all name a missing resource so), the error otherwise.
/// One place for "does this exist", so that every caller tells "missing" from "could not read".
pub fn found<T, E, R>(
    result: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
) -> Result<Option<T>, aws_smithy_runtime_api::client::result::SdkError<E, R>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    found_or_why(result).map(Result::ok)
}

/// [`found`], keeping the service's words when the resource is missing (`Ok(Err(message))`): VPC
/// Lattice, for one, says whether the service or the listener was not found.
pub fn found_or_why<T, E, R>(
    result: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
) -> Result<Result<T, String>, aws_smithy_runtime_api::client::result::SdkError<E, R>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match result {
        Ok(t) => Ok(Ok(t)),
        Err(e) => match e.as_service_error() {
            Some(s) if s.code() == Some("ResourceNotFoundException") => Ok(Err(s
                .message()
                .unwrap_or("ResourceNotFoundException")
                .to_string())),
            _ => Err(e),
        },
    }
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
