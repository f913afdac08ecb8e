//! A hook's config: JSON text handed to `configure`, kept canonical so that the same config
//! always has the same digest (in releases, snapshots and `run.json`).

use crate::error::Error;

/// Checks that the config is JSON and renders it canonically (sorted keys, no spaces); `None`
/// is the empty object `{}`.
///
/// ```
/// assert_eq!(hookhost::config::canonical_config(Some(r#"{ "b": 1, "a": [true] }"#))?,
///     r#"{"a":[true],"b":1}"#);
/// assert_eq!(hookhost::config::canonical_config(None)?, "{}");
/// # Ok::<(), hookhost::Error>(())
/// ```
pub fn canonical_config(config: Option<&str>) -> Result<String, Error> {
    let text = config.unwrap_or("{}");
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::InvalidConfig(e.to_string()))?;
    Ok(value.to_string())
}
