//! Which module type a file is answered as: ES module or CommonJS by extension and the nearest
//! `package.json` `type`, then json, wasm, text, and data for everything else.

use super::paths::parent;
use super::probe::Probe;
use super::resolve::package_json;
use crate::protocol::ModuleKind;

/// Extensions answered as `text`.
const TEXT: [&str; 14] = [
    "txt", "md", "html", "htm", "css", "svg", "csv", "xml", "yaml", "yml", "toml", "sql",
    "graphql", "map",
];

/// The module for the file at `path`.
pub(super) fn module_kind(probe: &mut Probe<'_>, path: &str) -> Result<ModuleKind, String> {
    let bytes = probe.read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let text =
        |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| format!("{path} is not UTF-8 text"));
    Ok(match extension.as_str() {
        "mjs" => ModuleKind::EsModule(text(bytes)?),
        "cjs" => common_js(text(bytes)?),
        "js" if nearest_type_is_module(probe, parent(path)) => ModuleKind::EsModule(text(bytes)?),
        "js" => common_js(text(bytes)?),
        "json" => ModuleKind::Json(text(bytes)?),
        "wasm" => ModuleKind::Wasm(bytes),
        e if TEXT.contains(&e) => match String::from_utf8(bytes) {
            Ok(s) => ModuleKind::Text(s),
            Err(e) => ModuleKind::Data(e.into_bytes()),
        },
        _ => ModuleKind::Data(bytes),
    })
}

/// Node's rule: the nearest `package.json` up the tree decides; `"type": "module"` means ESM.
fn nearest_type_is_module(probe: &mut Probe<'_>, dir: &str) -> bool {
    let mut dir = dir.to_owned();
    loop {
        let manifest = package_json(probe, &dir);
        if !manifest.is_null() {
            return manifest.get("type").and_then(|t| t.as_str()) == Some("module");
        }
        if dir == "/" {
            return false;
        }
        dir = parent(&dir).to_owned();
    }
}

fn common_js(source: String) -> ModuleKind {
    let named_exports = named_exports(&source);
    ModuleKind::CommonJs { source, named_exports }
}

/// The names assigned as `exports.NAME =` or `module.exports.NAME =`, in order, once each: a
/// cheap stand-in for `cjs-module-lexer`, enough for `import { name } from "./x.cjs"`.
pub(super) fn named_exports(source: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (at, _) in source.match_indices("exports.") {
        let before = source[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &source[at + "exports.".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        let after = after.trim_start();
        let assigned = after.starts_with('=') && !after.starts_with("==");
        if assigned && !name.is_empty() && name != "default" && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_exports_are_found() {
        let source = "exports.a = 1;\nmodule.exports.b=2; exports.a = 3; myexports.c = 4; exports.d == 5; exports.default = 6;";
        assert_eq!(named_exports(source), ["a", "b"]);
    }
}
