//! The `artifact` check's decision: is the version under deployment exactly the artifact that was
//! tested? Pure: the hashes come in, a verdict goes out. Build once, promote the same bytes.

use aws_smithy_types::base64;

/// What the deployed version must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// A zip, by `CodeSha256` (kept as Lambda shows it: base64 of the SHA-256).
    Code(String),
    /// A container image, by digest `sha256:<64 lowercase hex>`.
    Image(String),
}

/// What a function version is, as `GetFunction` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployed {
    Code { code_sha256: String },
    Image { resolved_uri: String },
}

impl Expected {
    /// `sha256:<hex>` is an image digest; anything else a zip's `CodeSha256` (base64 or hex).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.starts_with("sha256:") {
            Self::image(raw)
        } else {
            Self::code(raw)
        }
    }

    /// Base64 as Lambda's `CodeSha256` (`openssl dgst -sha256 -binary f.zip | base64`), or the 64
    /// hex digits `sha256sum f.zip` prints.
    pub fn code(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = hex::decode(raw).map_err(|e| e.to_string())?;
            return Ok(Expected::Code(base64::encode(bytes)));
        }
        match base64::decode(raw) {
            Ok(bytes) if bytes.len() == 32 => Ok(Expected::Code(base64::encode(bytes))),
            // The value itself is not repeated: it may come from an environment variable that
            // was never meant to be logged.
            _ => Err(format!(
                "expected a SHA-256 as Lambda's CodeSha256 shows it (44 characters of base64) or as sha256sum prints it (64 hex digits), got {} characters that are neither",
                raw.chars().count()
            )),
        }
    }

    /// `sha256:<64 hex>`.
    pub fn image(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        match raw.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(
                Expected::Image(format!("sha256:{}", hex.to_ascii_lowercase())),
            ),
            _ => Err(format!(
                "expected an image digest sha256:<64 hex digits>, got {} characters that are not one",
                raw.chars().count()
            )),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Expected::Code(sha) => format!("zip with CodeSha256 {sha}"),
            Expected::Image(digest) => format!("image {digest}"),
        }
    }
}

impl Deployed {
    /// An image's digest: what follows `@` in `ResolvedImageUri`.
    pub fn image_digest(&self) -> Option<String> {
        match self {
            Deployed::Image { resolved_uri } => resolved_uri
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase()),
            Deployed::Code { .. } => None,
        }
    }

    /// The same thing as an [`Expected`], to compare two deployed versions (`sameAs`).
    pub fn as_expected(&self) -> Result<Expected, String> {
        match self {
            Deployed::Code { code_sha256 } => Expected::code(code_sha256),
            Deployed::Image { resolved_uri } => match self.image_digest() {
                Some(d) => Expected::image(&d),
                None => Err(format!(
                    "the image URI {resolved_uri:?} has no digest (@sha256:…)"
                )),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Deployed::Code { code_sha256 } => format!("zip with CodeSha256 {code_sha256}"),
            Deployed::Image { resolved_uri } => format!("image {resolved_uri}"),
        }
    }
}

/// `Ok(())` when the deployed version is the expected artifact; else why not, with both hashes.
pub fn matches(expected: &Expected, deployed: &Deployed) -> Result<(), String> {
    let same = match (expected, deployed) {
        (Expected::Code(want), Deployed::Code { code_sha256 }) => {
            Expected::code(code_sha256).is_ok_and(|got| got == Expected::Code(want.clone()))
        }
        (Expected::Image(want), Deployed::Image { .. }) => {
            deployed.image_digest().as_deref() == Some(want.as_str())
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "the version under deployment is not the artifact that was tested: expected {}, deployed {}",
            expected.describe(),
            deployed.describe()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // printf 'hello' | sha256sum → 2cf24dba…; the same bytes in base64 (checked with
    // `printf hello | openssl dgst -sha256 -binary | base64`).
    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const B64: &str = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";

    #[test]
    fn hex_and_base64_are_the_same_hash() {
        assert_eq!(Expected::code(HEX).unwrap(), Expected::code(B64).unwrap());
        assert_eq!(Expected::parse(HEX).unwrap(), Expected::Code(B64.into()));
        let deployed = Deployed::Code {
            code_sha256: B64.into(),
        };
        assert_eq!(matches(&Expected::code(HEX).unwrap(), &deployed), Ok(()));
    }

    #[test]
    fn a_mismatch_names_both_hashes() {
        let deployed = Deployed::Code {
            code_sha256: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
        };
        let why = matches(&Expected::code(B64).unwrap(), &deployed).unwrap_err();
        assert!(why.contains(B64) && why.contains("AAAA"), "{why}");
    }

    #[test]
    fn images_compare_by_digest_and_never_match_a_zip() {
        let digest = format!("sha256:{HEX}");
        let image = Deployed::Image {
            resolved_uri: format!("1.dkr.ecr.us-east-1.amazonaws.com/app@{digest}"),
        };
        assert_eq!(matches(&Expected::parse(&digest).unwrap(), &image), Ok(()));
        assert!(matches(&Expected::code(HEX).unwrap(), &image).is_err());
        let zip = Deployed::Code {
            code_sha256: B64.into(),
        };
        assert!(matches(&Expected::image(&digest).unwrap(), &zip).is_err());
        assert_eq!(image.as_expected().unwrap(), Expected::Image(digest));
    }

    #[test]
    fn malformed_expectations_are_errors() {
        for bad in ["", "abc", "sha256:xyz", &HEX[..63], "bm90IGEgaGFzaA=="] {
            assert!(Expected::parse(bad).is_err(), "{bad:?}");
        }
    }
}
