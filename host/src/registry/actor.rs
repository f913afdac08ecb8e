//! Who did it: [`Actor`], recorded with every release (`published_by`), every move of a live
//! pointer (`moved_by`, with an optional reason) and every run recorded (`recorded_by`).
//!
//! An actor is never taken from what a caller *says* about itself (that is `built_by`, kept as
//! given): over the storage directly (the CLI, the library) it is the operating-system account
//! and machine, [`Actor::local`]; behind the HTTP service it is the verified token's issuer,
//! subject and id, [`Actor::token`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The longest reason a live move may carry, in bytes (UTF-8). Longer is refused with
/// [`Error::ReasonTooLong`], not cut.
pub const MAX_REASON_BYTES: usize = 1024;

/// Who published a release, moved a live pointer or recorded a run.
///
/// In JSON, an object with a `kind`:
///
/// ```
/// use hookhost::registry::Actor;
/// let ci = Actor::token("hookhost", "ci-text", "0193aa00-7c1e-7000-8000-000000000001");
/// assert_eq!(ci.to_string(), "token:hookhost/ci-text");
/// assert_eq!(ci.audit(), "token:hookhost/ci-text#0193aa00-7c1e-7000-8000-000000000001");
/// assert_eq!(
///     serde_json::to_value(&ci).unwrap(),
///     serde_json::json!({"kind": "token", "issuer": "hookhost", "subject": "ci-text",
///                        "token_id": "0193aa00-7c1e-7000-8000-000000000001"}),
/// );
/// let me = Actor::Local { user: "root".into(), host: "build-7".into() };
/// assert_eq!(me.to_string(), "local:root@build-7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A caller of the HTTP service, as its verified token names it.
    Token {
        /// The token's issuer (`iss`): which key signed it.
        issuer: String,
        /// The token's subject (`sub`): the machine or person it was minted for.
        subject: String,
        /// The token's id (`jti`): which token it was, to find it in the issuer's log.
        token_id: String,
    },
    /// A user of the storage itself (the CLI or the library on a root or a database URL).
    Local {
        /// The operating-system account: the name of the process's effective user, or
        /// `uid:<n>` when it has no passwd entry.
        user: String,
        /// The machine's host name.
        host: String,
    },
}

impl Actor {
    /// The caller a verified token names.
    pub fn token(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        token_id: impl Into<String>,
    ) -> Actor {
        Actor::Token {
            issuer: issuer.into(),
            subject: subject.into(),
            token_id: token_id.into(),
        }
    }

    /// This process's user and machine: the passwd entry of the effective uid (as `id -un`
    /// says) and the kernel's host name. No environment variable is read: `USER` says what a
    /// caller set, not who it is.
    pub fn local() -> Actor {
        Actor::Local {
            user: whoami::username().unwrap_or_else(|_| format!("uid:{}", effective_uid())),
            host: crate::component::host_name(),
        }
    }

    /// The actor as a full audit line shows it: [`Display`](fmt::Display), and for a token
    /// its id too (`token:hookhost/ci-text#<jti>`).
    pub fn audit(&self) -> String {
        match self {
            Actor::Token { token_id, .. } => format!("{self}#{token_id}"),
            Actor::Local { .. } => self.to_string(),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Token {
                issuer, subject, ..
            } => write!(f, "token:{issuer}/{subject}"),
            Actor::Local { user, host } => write!(f, "local:{user}@{host}"),
        }
    }
}

/// [`Actor::local`], found once per process: who records the runs this process runs.
pub(crate) fn this_process() -> &'static Actor {
    static THIS_PROCESS: std::sync::OnceLock<Actor> = std::sync::OnceLock::new();
    THIS_PROCESS.get_or_init(Actor::local)
}

/// The effective uid, from the owner of `/proc/self` (which the kernel gives the process's
/// effective uid); 4294967295 (the kernel's "no uid") if that cannot be read.
fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// A live move's reason, checked: `None` for none (or only white space), the text trimmed,
/// and [`Error::ReasonTooLong`] over [`MAX_REASON_BYTES`].
pub(crate) fn check_reason(reason: Option<&str>) -> Result<Option<String>, Error> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.len() > MAX_REASON_BYTES {
        return Err(Error::ReasonTooLong {
            bytes: reason.len(),
            max: MAX_REASON_BYTES,
        });
    }
    Ok(Some(reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_actor_is_this_process_user_and_machine() {
        let Actor::Local { user, host } = Actor::local() else {
            panic!("local")
        };
        // `id -un` reads the same passwd entry of the same uid.
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        assert_eq!(user, String::from_utf8_lossy(&id.stdout).trim());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host, kernel.trim());
    }

    #[test]
    fn actors_round_trip_through_json() {
        for actor in [
            Actor::token("hookhost", "ci", "j1"),
            Actor::Local {
                user: "alice".into(),
                host: "h".into(),
            },
        ] {
            let json = serde_json::to_string(&actor).unwrap();
            assert_eq!(serde_json::from_str::<Actor>(&json).unwrap(), actor);
        }
        assert!(serde_json::from_str::<Actor>(r#"{"kind":"root"}"#).is_err());
    }

    #[test]
    fn reasons_are_trimmed_and_capped() {
        assert_eq!(check_reason(None).unwrap(), None);
        assert_eq!(check_reason(Some("  ")).unwrap(), None);
        assert_eq!(
            check_reason(Some(" bad v3 \n")).unwrap().as_deref(),
            Some("bad v3")
        );
        let exactly = "é".repeat(MAX_REASON_BYTES / 2);
        assert_eq!(check_reason(Some(&exactly)).unwrap(), Some(exactly));
        let error = check_reason(Some(&"x".repeat(MAX_REASON_BYTES + 1))).unwrap_err();
        assert!(
            matches!(error, Error::ReasonTooLong { bytes, max }
                if bytes == MAX_REASON_BYTES + 1 && max == MAX_REASON_BYTES),
            "{error:?}"
        );
    }
}
