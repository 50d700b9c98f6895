//! Node's resolution, over a [`Probe`]: the file itself, relative paths with extensions and
//! index files, directories through `package.json` `main`, and bare packages through
//! `node_modules` and `package.json` `exports` (with conditions and `*` patterns).

use serde_json::Value;

use super::paths::{join, normalize, parent};
use super::probe::Probe;

/// Extensions tried after the exact path, in order. workerd's runtime asks for what the source
/// wrote, often without an extension, so both `import` and `require` probe them (vitest probes
/// for `require` only).
const EXTENSIONS: [&str; 4] = [".js", ".mjs", ".cjs", ".json"];

/// How the module is loaded: picks the `import` or `require` export condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Load {
    Import,
    Require,
}

/// What to resolve.
#[derive(Debug)]
pub(super) struct Target<'a> {
    /// The requested path, normalized.
    pub(super) path: String,
    /// The specifier as written; decides whether this is a bare package.
    pub(super) raw: &'a str,
    /// The directory of the importing module, where a `node_modules` search starts.
    pub(super) referrer_dir: String,
    pub(super) load: Load,
}

/// Resolves `target` to a file's virtual path, or says why not.
pub(super) fn resolve(probe: &mut Probe<'_>, target: &Target<'_>) -> Result<String, String> {
    if probe.is_file(&target.path) {
        return Ok(target.path.clone());
    }
    if is_bare(target.raw) {
        return package(probe, target.raw, &target.referrer_dir, target.load);
    }
    file_or_dir(probe, &target.path).ok_or_else(|| format!("no file at {}", target.path))
}

/// A specifier that names a package: not relative, not absolute, not a URL.
fn is_bare(raw: &str) -> bool {
    !raw.is_empty()
        && !raw.starts_with(['.', '/', '#'])
        && !raw.contains(':')
        && raw.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}

/// `path` as a file, with extensions, or as a directory.
fn file_or_dir(probe: &mut Probe<'_>, path: &str) -> Option<String> {
    if probe.is_file(path) {
        return Some(path.to_owned());
    }
    with_extension(probe, path).or_else(|| directory(probe, path))
}

fn with_extension(probe: &mut Probe<'_>, path: &str) -> Option<String> {
    EXTENSIONS.iter().map(|ext| format!("{path}{ext}")).find(|p| probe.is_file(p))
}

/// A directory: its `package.json` `main`, then `index` with each extension.
fn directory(probe: &mut Probe<'_>, dir: &str) -> Option<String> {
    if !probe.is_dir(dir) {
        return None;
    }
    let manifest = package_json(probe, dir);
    if let Some(main) = manifest.get("main").and_then(Value::as_str) {
        let main = join(dir, main);
        if main.starts_with(dir) {
            let found = (probe.is_file(&main).then(|| main.clone()))
                .or_else(|| with_extension(probe, &main))
                .or_else(|| index(probe, &main));
            if found.is_some() {
                return found;
            }
        }
    }
    index(probe, dir)
}

fn index(probe: &mut Probe<'_>, dir: &str) -> Option<String> {
    with_extension(probe, &join(dir, "index"))
}

/// A bare specifier: the nearest `node_modules/<name>` from `from` up, then the subpath through
/// `exports`, or `main` and plain files when there is no `exports`.
fn package(probe: &mut Probe<'_>, raw: &str, from: &str, load: Load) -> Result<String, String> {
    let (name, rest) = split_package(raw);
    let subpath = if rest.is_empty() { ".".to_owned() } else { format!("./{rest}") };
    let mut dir = normalize(from);
    loop {
        if !dir.ends_with("/node_modules") {
            let root = join(&dir, &format!("node_modules/{name}"));
            if probe.is_dir(&root) {
                return in_package(probe, &root, &subpath, load);
            }
        }
        if dir == "/" {
            return Err(format!("no package {name} in node_modules above {from}"));
        }
        dir = parent(&dir).to_owned();
    }
}

/// `@scope/name/sub` → (`@scope/name`, `sub`); `name/sub` → (`name`, `sub`).
fn split_package(raw: &str) -> (&str, &str) {
    let cut = if raw.starts_with('@') { 2 } else { 1 };
    match raw.match_indices('/').nth(cut - 1) {
        Some((i, _)) => (&raw[..i], &raw[i + 1..]),
        None => (raw, ""),
    }
}

fn in_package(
    probe: &mut Probe<'_>,
    root: &str,
    subpath: &str,
    load: Load,
) -> Result<String, String> {
    let manifest = package_json(probe, root);
    match manifest.get("exports").filter(|e| !e.is_null()) {
        Some(exports) => {
            let target = exports_target(exports, subpath, load)
                .ok_or_else(|| format!("{subpath} is not exported by {root}/package.json"))?;
            let path = join(root, &target);
            if path.starts_with(root) && probe.is_file(&path) {
                Ok(path)
            } else {
                Err(format!(
                    "{root}/package.json exports {subpath} as {target}, which is not a file"
                ))
            }
        }
        None if subpath == "." => {
            directory(probe, root).ok_or_else(|| format!("{root} has no main and no index file"))
        }
        None => {
            let path = join(root, subpath);
            file_or_dir(probe, &path).ok_or_else(|| format!("no file at {path}"))
        }
    }
}

/// The parsed `package.json` in `dir`, or `null`.
pub(super) fn package_json(probe: &mut Probe<'_>, dir: &str) -> Value {
    probe
        .read(&join(dir, "package.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// `PACKAGE_EXPORTS_RESOLVE`, simplified: the target (`./…`) that `exports` maps `subpath` to.
pub(super) fn exports_target(exports: &Value, subpath: &str, load: Load) -> Option<String> {
    let conditions = match load {
        Load::Import => ["workerd", "worker", "import", "default"],
        Load::Require => ["workerd", "worker", "require", "default"],
    };
    let sugar = match exports {
        Value::Object(map) => !map.keys().any(|k| k.starts_with('.')),
        _ => true,
    };
    if sugar {
        return (subpath == ".").then(|| target(exports, None, &conditions)).flatten();
    }
    let map = exports.as_object()?;
    if let Some(value) = map.get(subpath).filter(|_| !subpath.contains('*')) {
        return target(value, None, &conditions);
    }
    // The pattern with the longest prefix wins.
    let (key, star) = map
        .keys()
        .filter_map(|key| {
            let (prefix, suffix) = key.split_once('*')?;
            let middle = subpath.strip_prefix(prefix)?.strip_suffix(suffix)?;
            Some((key, prefix.len(), middle))
        })
        .max_by_key(|(_, prefix, _)| *prefix)
        .map(|(key, _, middle)| (key, middle))?;
    target(map.get(key)?, Some(star), &conditions)
}

/// A target: a `./` string (with `*` replaced), the first of an array that works, or the first
/// matching condition of an object, in the object's own key order.
fn target(value: &Value, star: Option<&str>, conditions: &[&str]) -> Option<String> {
    match value {
        Value::String(s) if s.starts_with("./") => {
            Some(star.map_or_else(|| s.clone(), |star| s.replace('*', star)))
        }
        Value::Array(items) => items.iter().find_map(|v| target(v, star, conditions)),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| conditions.contains(&k.as_str()))
            .find_map(|(_, v)| target(v, star, conditions)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bare_specifiers() {
        assert!(is_bare("lodash") && is_bare("@s/p/x.js") && is_bare("p/sub"));
        assert!(
            !is_bare("./x")
                && !is_bare("/x")
                && !is_bare("node:fs")
                && !is_bare("")
                && !is_bare("#x")
        );
        assert_eq!(split_package("@s/p/x/y.js"), ("@s/p", "x/y.js"));
        assert_eq!(split_package("p/x"), ("p", "x"));
        assert_eq!(split_package("@s/p"), ("@s/p", ""));
    }

    #[test]
    fn exports() {
        let exports = json!({
            ".": {"node": "./node.js", "import": "./esm/index.js", "require": "./cjs/index.js"},
            "./feature": [{"worker": "./w.js"}, "./f.js"],
            "./lib/*": "./dist/lib/*.js",
            "./lib/private/*": null,
        });
        let t = |sub, load| exports_target(&exports, sub, load);
        assert_eq!(t(".", Load::Import).as_deref(), Some("./esm/index.js"));
        assert_eq!(t(".", Load::Require).as_deref(), Some("./cjs/index.js"));
        assert_eq!(t("./feature", Load::Import).as_deref(), Some("./w.js"));
        assert_eq!(t("./lib/a/b", Load::Import).as_deref(), Some("./dist/lib/a/b.js"));
        assert_eq!(t("./lib/private/x", Load::Import), None);
        assert_eq!(t("./nope", Load::Import), None);
        assert_eq!(
            exports_target(&json!("./main.js"), ".", Load::Import).as_deref(),
            Some("./main.js")
        );
        assert_eq!(
            exports_target(&json!({"default": "./d.js"}), ".", Load::Require).as_deref(),
            Some("./d.js")
        );
        assert_eq!(exports_target(&json!("../escape.js"), ".", Load::Import), None);
    }
}
