//! A hook set as an operator names it — registered names, `name@version`, component files —
//! with per-hook configs and limit overrides, resolved into [`Plan`]s: what `host run HOOK…`
//! asks for, as a library call.
//!
//! [`HookSetSpec::resolve`] reads every release in one registry read (so a live move meanwhile
//! cannot mix versions), loads each component (a release's blob re-hashed; a file's bytes kept
//! in the blob store, so its runs can be traced and replayed), names each hook (a release by
//! its hook name, a file by its stem), gives each its config and applies the overrides on top
//! of the release's limits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::component::Host;
use crate::error::Error;
use crate::exec::Plan;
use crate::limits::Limits;
use crate::registry::{Registry, RegistryLocation, parse_reference};

/// A hook named on the command line: a registered hook or a component file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookArg {
    /// `name` (its live release) or `name@version`.
    Release(String),
    /// A path to a component.
    File(PathBuf),
}

impl HookArg {
    /// Reads `text`: anything with a `.`, `/` or `\` is a file (hook names have none of
    /// them); anything else must be a valid `name` or `name@version`.
    pub fn parse(text: &str) -> Result<HookArg, Error> {
        if text.is_empty() {
            return Err(Error::InvalidHookName {
                name: String::new(),
                reason: "give a hook name or a path to a .wasm file",
            });
        }
        if text.contains(['.', '/', '\\']) {
            return Ok(HookArg::File(PathBuf::from(text)));
        }
        parse_reference(text)?;
        Ok(HookArg::Release(text.to_owned()))
    }

    /// The name the hook's outputs go under: a release's hook name, a file's stem.
    pub fn name(&self) -> Option<String> {
        match self {
            HookArg::Release(reference) => {
                let name = reference
                    .split_once('@')
                    .map_or(reference.as_str(), |(n, _)| n);
                Some(name.to_owned())
            }
            HookArg::File(path) => Some(path.file_stem()?.to_string_lossy().into_owned()),
        }
    }
}

/// Limits given for one run, each replacing the release's (or the default) when set; the
/// result is clamped to the host's ceilings when planned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// Fuel per record.
    pub fuel_per_record: Option<u64>,
    /// The starting memory cap.
    pub memory_bytes: Option<u64>,
    /// How many times the cap may double.
    pub max_oom_retries: Option<u32>,
    /// Wall-clock time per record.
    pub timeout: Option<Duration>,
}

impl LimitOverrides {
    /// `base` with every override given put on top.
    pub fn apply(&self, base: Limits) -> Limits {
        Limits {
            fuel_per_record: self.fuel_per_record.unwrap_or(base.fuel_per_record),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            max_oom_retries: self.max_oom_retries.unwrap_or(base.max_oom_retries),
            timeout: self.timeout.unwrap_or(base.timeout),
        }
    }
}

/// What an operator asks to run.
#[derive(Debug, Clone, Default)]
pub struct HookSetSpec {
    /// The hooks, in order. At least one; no hook twice.
    pub hooks: Vec<HookArg>,
    /// Configs as given: `JSON` or `@FILE` for a single hook (or `NAME=JSON` with its name);
    /// `NAME=JSON` or `NAME=@FILE` per hook with several. A hook without one runs with its
    /// release's config, or `{}`.
    pub configs: Vec<String>,
    /// Limits replacing each hook's own.
    pub overrides: LimitOverrides,
    /// The most the memory cap may double to, never above the host's ceiling. `None`: the
    /// host's ceiling.
    pub memory_ceiling: Option<u64>,
}

impl HookSetSpec {
    /// Whether running this set may create the registry: a component file's bytes are kept in
    /// the blob store (so its runs can be traced and replayed), which needs one; hooks named
    /// only by name need a registry that already exists.
    pub fn stores_components(&self) -> bool {
        self.hooks.iter().any(|h| matches!(h, HookArg::File(_)))
    }

    /// Opens the registry at `location` (this machine's files under `root`) for this set:
    /// created if the set runs component files, otherwise it must exist already
    /// ([`Error::RegistryNotFound`] for a local root).
    pub fn open_registry(
        &self,
        location: &RegistryLocation,
        root: &Path,
    ) -> Result<Registry, Error> {
        if self.stores_components() {
            Registry::open_at(location, root)
        } else {
            Registry::open_existing_at(location, root)
        }
    }

    /// Resolves the set into one plan per hook, in order (see the module docs).
    pub fn resolve(&self, registry: &Registry, host: &Host) -> Result<Vec<Plan>, Error> {
        if self.hooks.is_empty() {
            return Err(Error::InvalidHookName {
                name: String::new(),
                reason: "a run needs at least one hook",
            });
        }
        let mut configs = self.configs_by_name()?;
        // Every release in one registry read: a live move meanwhile cannot mix versions.
        let references: Vec<&str> = self
            .hooks
            .iter()
            .filter_map(|h| match h {
                HookArg::Release(reference) => Some(reference.as_str()),
                HookArg::File(_) => None,
            })
            .collect();
        let mut releases = registry.resolve_all(&references)?.into_iter();
        let mut plans: Vec<Plan> = Vec::with_capacity(self.hooks.len());
        for hook in &self.hooks {
            let name = hook.name().ok_or_else(|| Error::InvalidHookName {
                name: format!("{hook:?}"),
                reason: "a component file needs a file name",
            })?;
            if plans.iter().any(|p| p.name() == name) {
                return Err(Error::DuplicateHook { name });
            }
            let (component, release, config, limits) = match hook {
                HookArg::Release(_) => {
                    let release = releases.next().map(|view| view.release).ok_or_else(|| {
                        Error::Internal("one release per reference was expected".into())
                    })?;
                    let component = registry.load(host, &release)?;
                    let limits = release.limits.to_limits();
                    let id = Some((release.hook.clone(), release.version));
                    (component, id, Some(release.config), limits)
                }
                HookArg::File(path) => {
                    let component = registry.load_file(host, path)?;
                    (component, None, None, Limits::default())
                }
            };
            let config = match configs.remove(&name) {
                Some(given) => Some(given),
                None => config,
            };
            let limits = self.overrides.apply(limits);
            plans.push(Plan::new(
                name,
                component,
                release,
                config.as_deref(),
                &limits,
                self.memory_ceiling,
            )?);
        }
        if let Some(name) = configs.keys().next() {
            return Err(Error::InvalidConfigArg {
                arg: format!("{name}=…"),
                reason: format!("it names `{name}`, which is not one of the hooks of this run"),
            });
        }
        Ok(plans)
    }

    /// The configs given, by hook name, their `@FILE`s read.
    fn configs_by_name(&self) -> Result<HashMap<String, String>, Error> {
        let mut by_name = HashMap::new();
        if let [hook] = self.hooks.as_slice() {
            let name = hook.name().unwrap_or_default();
            match self.configs.as_slice() {
                [] => {}
                [given] => {
                    let text = match given.split_once('=') {
                        Some((prefix, json)) if prefix == name => json,
                        _ => given.as_str(),
                    };
                    by_name.insert(name, read_config(text)?);
                }
                _ => {
                    return Err(Error::InvalidConfigArg {
                        arg: self.configs.join(" "),
                        reason: "a config is given more than once for one hook".into(),
                    });
                }
            }
            return Ok(by_name);
        }
        for given in &self.configs {
            let (name, text) = given
                .split_once('=')
                .ok_or_else(|| Error::InvalidConfigArg {
                    arg: given.clone(),
                    reason: "with several hooks, write NAME=JSON or NAME=@FILE".into(),
                })?;
            if by_name
                .insert(name.to_owned(), read_config(text)?)
                .is_some()
            {
                return Err(Error::InvalidConfigArg {
                    arg: given.clone(),
                    reason: format!("a config is given more than once for `{name}`"),
                });
            }
        }
        Ok(by_name)
    }
}

/// Config text, or the contents of the file after `@`.
pub fn read_config(text: &str) -> Result<String, Error> {
    match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e)),
        None => Ok(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_args_tell_files_from_names() {
        assert_eq!(
            HookArg::parse("text_stats@2").unwrap(),
            HookArg::Release("text_stats@2".into())
        );
        assert_eq!(
            HookArg::parse("./hook").unwrap(),
            HookArg::File("./hook".into())
        );
        assert_eq!(
            HookArg::parse("dir/text_stats.wasm").unwrap().name(),
            Some("text_stats".into())
        );
        assert!(HookArg::parse("Bad").is_err());
        assert!(HookArg::parse("").is_err());
    }

    #[test]
    fn overrides_replace_only_what_is_given() {
        let base = Limits::default();
        let given = LimitOverrides {
            fuel_per_record: Some(5),
            ..LimitOverrides::default()
        };
        let applied = given.apply(base);
        assert_eq!(applied.fuel_per_record, 5);
        assert_eq!(applied.memory_bytes, base.memory_bytes);
    }

    #[test]
    fn configs_are_matched_to_hooks_by_name() {
        let one = HookSetSpec {
            hooks: vec![HookArg::Release("a".into())],
            configs: vec![r#"a={"x":1}"#.into()],
            ..HookSetSpec::default()
        };
        assert_eq!(one.configs_by_name().unwrap()["a"], r#"{"x":1}"#);
        let plain = HookSetSpec {
            configs: vec![r#"{"y":2}"#.into()],
            ..one.clone()
        };
        assert_eq!(plain.configs_by_name().unwrap()["a"], r#"{"y":2}"#);
        let two = HookSetSpec {
            hooks: vec![HookArg::Release("a".into()), HookArg::Release("b".into())],
            configs: vec!["{}".into()],
            ..HookSetSpec::default()
        };
        let error = two.configs_by_name().unwrap_err().to_string();
        assert!(error.contains("NAME=JSON"), "{error}");
        let twice = HookSetSpec {
            configs: vec!["a={}".into(), "a={}".into()],
            ..two
        };
        assert!(
            twice
                .configs_by_name()
                .unwrap_err()
                .to_string()
                .contains("more than once")
        );
    }
}
