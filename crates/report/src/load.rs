//! Reading a results document back: the schema version is checked before the layout, and a
//! document of the previous version (2) is converted to the current one as it is read (see
//! [`crate::upgrade`]).

use callwall_results::{Results, SCHEMA_VERSION};
use serde::Deserialize;

/// Schema versions this build reads (older ones are converted to [`SCHEMA_VERSION`]).
pub const SUPPORTED_SCHEMA_VERSIONS: &[u32] = &[2, SCHEMA_VERSION];

/// Why a results document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not valid JSON: {0}")]
    Syntax(serde_json::Error),
    #[error("not a callwall results file: it has no numeric \"schema_version\" field")]
    NoSchemaVersion,
    #[error("results schema version {found} is not supported; this callwall reads version(s) {}; re-run the scenarios with this callwall or use the callwall that wrote the file", list(.supported))]
    UnsupportedSchema { found: u64, supported: &'static [u32] },
    #[error("the results do not match schema version {version}: {source}")]
    Layout { version: u32, source: serde_json::Error },
    #[error("the results of schema version {version} could not be converted to version {}: {source}; re-run the scenarios with this callwall", SCHEMA_VERSION)]
    Upgrade { version: u32, source: crate::upgrade::UpgradeError },
}

fn list(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

#[derive(Deserialize)]
struct Header {
    schema_version: Option<serde_json::Value>,
}

/// Parses a results document (the output of `callwall run --json`).
pub fn parse_results(text: &str) -> Result<Results, LoadError> {
    let header: Header = serde_json::from_str(text).map_err(LoadError::Syntax)?;
    let found = header
        .schema_version
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .ok_or(LoadError::NoSchemaVersion)?;
    let Some(&version) = SUPPORTED_SCHEMA_VERSIONS.iter().find(|v| u64::from(**v) == found) else {
        return Err(LoadError::UnsupportedSchema { found, supported: SUPPORTED_SCHEMA_VERSIONS });
    };
    if version == SCHEMA_VERSION {
        return serde_json::from_str(text).map_err(|source| LoadError::Layout { version, source });
    }
    let mut doc: serde_json::Value = serde_json::from_str(text).map_err(LoadError::Syntax)?;
    crate::upgrade::from_v2(&mut doc).map_err(|source| LoadError::Upgrade { version, source })?;
    serde_json::from_value(doc).map_err(|source| LoadError::Layout { version, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_empty_document() {
        let r =
            parse_results(r#"{"schema_version":3,"callwall_version":"0.1.0","runs":[]}"#).unwrap();
        assert!(r.runs.is_empty());
        let r =
            parse_results(r#"{"schema_version":2,"callwall_version":"0.1.0","runs":[]}"#).unwrap();
        assert_eq!(r.schema_version, SCHEMA_VERSION);
    }

    #[test]
    fn names_an_unknown_schema_version() {
        let e =
            parse_results(r#"{"schema_version":99,"callwall_version":"9","runs":[]}"#).unwrap_err();
        assert!(matches!(e, LoadError::UnsupportedSchema { found: 99, .. }), "{e}");
        assert!(e.to_string().contains("version(s) 2, 3"), "{e}");
        // Version 1 (censor flows as formatted strings) is named as unsupported, not misread.
        let e = parse_results(r#"{"schema_version":1,"callwall_version":"0.1.0","runs":[]}"#)
            .unwrap_err();
        assert!(matches!(e, LoadError::UnsupportedSchema { found: 1, .. }), "{e}");
    }

    #[test]
    fn rejects_bad_json_and_other_documents() {
        assert!(matches!(parse_results("{not json"), Err(LoadError::Syntax(_))));
        assert!(matches!(parse_results("[1,2]"), Err(LoadError::Syntax(_))));
        assert!(matches!(parse_results(r#"{"name":"x"}"#), Err(LoadError::NoSchemaVersion)));
        assert!(matches!(
            parse_results(r#"{"schema_version":3,"runs":3}"#),
            Err(LoadError::Layout { .. })
        ));
        assert!(matches!(
            parse_results(r#"{"schema_version":2,"runs":3}"#),
            Err(LoadError::Upgrade { version: 2, .. })
        ));
    }
}
