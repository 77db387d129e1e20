//! Which root certificates the SDK's HTTPS client trusts.
//!
//! AWS service endpoints present certificates from Amazon Trust Services (AWS moved every service
//! to its own CA; its guidance for pinned trust stores is to include the ATS roots:
//! <https://www.amazontrust.com/repository/>). On Lambda the functions talk to nothing else over
//! the SDK, so by default they trust exactly those five roots, compiled in: no CA bundle read and
//! decoded at start-up (145 roots, 1.1–1.6 ms of a cold start — tests/README.md "Performance"),
//! and no other CA able to vouch for an AWS endpoint. The system bundle is kept wherever something other
//! than an AWS endpoint may answer, or the operator says so — see [`sdk_roots`]. The hooks' HTTP
//! checks (reqwest, users' own endpoints) always use the system bundle.

use aws_smithy_http_client::tls::{TlsContext, TrustStore};

/// The Amazon Trust Services roots (Amazon Root CA 1–4, Starfield Services Root G2), PEM.
pub const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("tls/amazon-trust-services.pem");

/// The variable that overrides the choice: `system` or `amazon`.
pub const ROOTS_VARIABLE: &str = "SHIFTGUARD_TLS_ROOTS";

/// The roots the SDK's HTTPS client trusts, and why (logged once at start-up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkRoots {
    /// The compiled-in Amazon Trust Services roots.
    AmazonTrustServices,
    /// The system's CA bundle (`SSL_CERT_FILE`, or the platform's), for the reason given.
    System(String),
}

impl SdkRoots {
    /// The TLS context of the SDK's HTTPS client.
    pub fn tls_context(&self) -> TlsContext {
        let store = match self {
            SdkRoots::AmazonTrustServices => TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(AMAZON_TRUST_SERVICES),
            SdkRoots::System(_) => TrustStore::default(),
        };
        TlsContext::builder()
            .with_trust_store(store)
            .build()
            .expect("a TLS context with a trust store always builds")
    }

    /// How the start-up log names the choice.
    pub fn name(&self) -> &'static str {
        match self {
            SdkRoots::AmazonTrustServices => "amazon-trust-services",
            SdkRoots::System(_) => "system",
        }
    }
}

/// Chooses the roots from the environment (pure: `var` reads it). In order:
/// - `SHIFTGUARD_TLS_ROOTS=system` or `=amazon` decides (anything else is an error naming it);
/// - `SSL_CERT_FILE` or `SSL_CERT_DIR` set by the operator: the system bundle (a private CA);
/// - `AWS_ENDPOINT_URL` over `https://`: the system bundle (not necessarily an AWS endpoint; an
///   `http://` one, such as the local emulator, uses no TLS at all);
/// - a region not known to be in the `aws` or `aws-us-gov` partition (`cn-…`, the ISO regions,
///   the European Sovereign Cloud's `eusc-…`, any partition to come), whose endpoints may be
///   certified by other CAs: the system bundle;
/// - otherwise the Amazon Trust Services roots.
///
/// (The SDK's client is given no proxy, so `HTTPS_PROXY` does not reach it: aws-smithy-http-client
/// uses a proxy only when one is configured.)
pub fn sdk_roots(var: &dyn Fn(&str) -> Option<String>) -> Result<SdkRoots, String> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    match set(ROOTS_VARIABLE).as_deref().map(str::trim) {
        None => {}
        Some("amazon") => return Ok(SdkRoots::AmazonTrustServices),
        Some("system") => return Ok(SdkRoots::System(format!("{ROOTS_VARIABLE}=system"))),
        Some(other) => {
            return Err(format!(
                "{ROOTS_VARIABLE}: expected \"system\" or \"amazon\", got {other:?}"
            ))
        }
    }
    for name in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        if set(name).is_some() {
            return Ok(SdkRoots::System(format!("{name} is set")));
        }
    }
    if let Some(url) = set("AWS_ENDPOINT_URL") {
        if !url.trim().to_ascii_lowercase().starts_with("http://") {
            return Ok(SdkRoots::System(format!(
                "AWS_ENDPOINT_URL {url} may be certified by any CA"
            )));
        }
    }
    let region = set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"));
    if let Some(region) = region.filter(|r| !in_ats_partition(r)) {
        return Ok(SdkRoots::System(format!(
            "region {region} is not known to be in the aws or aws-us-gov partition"
        )));
    }
    Ok(SdkRoots::AmazonTrustServices)
}

/// Whether a region is in the `aws` or `aws-us-gov` partition (the SDK's partitions table:
/// `^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$` and `^us-gov-\w+-\d+$`), whose endpoints Amazon Trust
/// Services certifies. The ISO regions (`us-iso-…`, `eu-isoe-…`) share those prefixes and are not.
fn in_ats_partition(region: &str) -> bool {
    const AWS_PREFIXES: [&str; 9] = ["us", "eu", "ap", "sa", "ca", "me", "af", "il", "mx"];
    let parts: Vec<&str> = region.split('-').collect();
    let (first, middle, last) = match parts.as_slice() {
        [first, middle @ .., last] if !middle.is_empty() => (*first, middle, *last),
        _ => return false,
    };
    let word = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric());
    AWS_PREFIXES.contains(&first)
        && middle.iter().all(word)
        && !middle.iter().any(|p| p.starts_with("iso"))
        && !last.is_empty()
        && last.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    fn roots(vars: &[(&str, &str)]) -> Result<SdkRoots, String> {
        sdk_roots(&|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The environment's variables, and the roots they choose.
    type Case = (
        &'static [(&'static str, &'static str)],
        Result<SdkRoots, String>,
    );

    #[test]
    #[rustfmt::skip]
    fn the_environment_chooses_the_roots() {
        let amazon = Ok(SdkRoots::AmazonTrustServices);
        let system = |why: &str| Ok(SdkRoots::System(why.into()));
        let cases: &[Case] = &[
            // On Lambda: a region, credentials, nothing else.
            (&[("AWS_REGION", "eu-west-1")], amazon.clone()),
            (&[("AWS_REGION", "us-gov-west-1")], amazon.clone()),
            (&[], amazon.clone()),
            // The local emulator: plain HTTP, no TLS.
            (&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5005")], amazon.clone()),
            (&[("AWS_ENDPOINT_URL", "https://localhost.localstack.cloud:4566")], system("AWS_ENDPOINT_URL https://localhost.localstack.cloud:4566 may be certified by any CA")),
            (&[("AWS_REGION", "ap-southeast-7")], amazon.clone()),
            (&[("AWS_REGION", "mx-central-1")], amazon.clone()),
            (&[("AWS_REGION", "cn-north-1")], system("region cn-north-1 is not known to be in the aws or aws-us-gov partition")),
            (&[("AWS_DEFAULT_REGION", "us-iso-east-1")], system("region us-iso-east-1 is not known to be in the aws or aws-us-gov partition")),
            (&[("AWS_REGION", "us-isob-east-1")], system("region us-isob-east-1 is not known to be in the aws or aws-us-gov partition")),
            (&[("AWS_REGION", "eu-isoe-west-1")], system("region eu-isoe-west-1 is not known to be in the aws or aws-us-gov partition")),
            (&[("AWS_REGION", "eusc-de-east-1")], system("region eusc-de-east-1 is not known to be in the aws or aws-us-gov partition")),
            (&[("AWS_REGION", "local")], system("region local is not known to be in the aws or aws-us-gov partition")),
            (&[("SSL_CERT_FILE", "/opt/ca.pem")], system("SSL_CERT_FILE is set")),
            (&[("SSL_CERT_DIR", "/opt/certs")], system("SSL_CERT_DIR is set")),
            // The SDK's client uses no proxy: HTTPS_PROXY changes nothing.
            (&[("HTTPS_PROXY", "http://proxy:3128")], amazon.clone()),
            (&[("SSL_CERT_FILE", " ")], amazon.clone()),
            // The operator decides over everything else.
            (&[("SHIFTGUARD_TLS_ROOTS", "system")], system("SHIFTGUARD_TLS_ROOTS=system")),
            (&[("SHIFTGUARD_TLS_ROOTS", "amazon"), ("SSL_CERT_FILE", "/opt/ca.pem")], amazon.clone()),
            (&[("SHIFTGUARD_TLS_ROOTS", "mozilla")], Err("SHIFTGUARD_TLS_ROOTS: expected \"system\" or \"amazon\", got \"mozilla\"".into())),
        ];
        for (vars, want) in cases {
            assert_eq!(&roots(vars), want, "{vars:?}");
        }
    }

    fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
        CertificateDer::pem_slice_iter(pem)
            .map(|c| c.expect("a PEM certificate").to_vec())
            .collect()
    }

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_roots() {
        let certs = pem_certificates(AMAZON_TRUST_SERVICES);
        assert_eq!(certs.len(), 5);
        // Each is a trust anchor, as the SDK's client adds them.
        let mut store = rustls::RootCertStore::empty();
        for der in certs {
            store
                .add(CertificateDer::from(der))
                .expect("a trust anchor");
        }
        assert_eq!(store.len(), 5);
    }

    /// An independent source for the copied roots: the machine's own CA bundle (Mozilla's set on
    /// Debian and Amazon Linux) holds each of them, byte for byte.
    #[test]
    fn each_compiled_in_root_is_in_the_system_bundle() {
        let bundles = [
            "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu
            "/etc/pki/tls/certs/ca-bundle.crt",   // Amazon Linux, Fedora
            "/etc/ssl/cert.pem",                  // macOS, Alpine
        ];
        let bundle = bundles
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .unwrap_or_else(|| panic!("no system CA bundle at any of {bundles:?} to compare with"));
        let system = pem_certificates(&bundle);
        for der in pem_certificates(AMAZON_TRUST_SERVICES) {
            assert!(
                system.contains(&der),
                "a compiled-in root is not in the system bundle"
            );
        }
    }
}
