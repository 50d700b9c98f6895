//! From a request to a reply: where the specifier points under the root, what Node resolves it
//! to, and whether that is the module itself (200), an alias (301) or nothing (404).

use url::Url;

use super::State;
use super::kind::module_kind;
use super::paths::{self, normalize, parent};
use super::probe::{Dep, Probe};
use super::resolve::{Load, Target, resolve};
use crate::protocol::is_builtin;
use crate::protocol::{Answer, Module, NotFound, Request, V2Kind};

/// The answer to `request`, with every path it depended on.
pub(super) fn respond(state: &State, request: &Request) -> (Answer, Vec<Dep>) {
    let mut probe = Probe::new(&state.root);
    let answer = match target(state, request) {
        Ok(target) => match resolve(&mut probe, &target) {
            Ok(path) => found(state, &mut probe, request, path),
            Err(why) => not_found(why),
        },
        Err(why) => not_found(why),
    };
    (answer, probe.into_deps())
}

/// Where the request points, as a virtual path under the root.
fn target<'a>(state: &State, request: &'a Request) -> Result<Target<'a>, String> {
    let specifier = request.specifier();
    if is_builtin(specifier) {
        return Err(format!("{specifier} is a runtime builtin, not a file"));
    }
    match request {
        Request::V1(r) => {
            if !r.specifier.starts_with('/') {
                return Err(format!("{} is not an absolute path", r.specifier));
            }
            let referrer =
                if r.referrer.is_empty() { "/".to_owned() } else { paths::v1_path(&r.referrer) };
            Ok(Target {
                path: paths::v1_path(&r.specifier),
                raw: builtin_checked(&r.raw_specifier)?,
                referrer_dir: parent(&referrer).to_owned(),
                load: if r.method == crate::ResolveMethod::Require {
                    Load::Require
                } else {
                    Load::Import
                },
            })
        }
        Request::V2(r) => {
            let path = state.bundle_path(&r.specifier).ok_or_else(|| {
                format!("{} is outside the bundle {}", r.specifier, state.bundle_base)
            })?;
            let referrer = state.bundle_path(&r.referrer).unwrap_or_else(|| "/".to_owned());
            Ok(Target {
                path,
                raw: builtin_checked(r.raw_specifier.as_deref().unwrap_or(""))?,
                referrer_dir: parent(&referrer).to_owned(),
                load: if r.kind == V2Kind::Require { Load::Require } else { Load::Import },
            })
        }
    }
}

/// A builtin written without its prefix still reaches here as a raw `node:…`: not found.
fn builtin_checked(raw: &str) -> Result<&str, String> {
    if is_builtin(raw) { Err(format!("{raw} is a runtime builtin, not a file")) } else { Ok(raw) }
}

/// The module at `path`, or a 301 to it when its `Location` is not the specifier as sent (a
/// path change, or the same path spelled another way). Never a self-redirect
/// (workers-sdk#14590): the location is compared with the specifier itself.
fn found(state: &State, probe: &mut Probe<'_>, request: &Request, path: String) -> Answer {
    if !probe.is_inside_root(&path) {
        return not_found(format!("{path} leads outside the root"));
    }
    let location = match request {
        Request::V1(_) => paths::v1_location(&path),
        Request::V2(_) => state.bundle_url(&path),
    };
    if location != request.specifier() {
        return Answer::Redirect(location);
    }
    match module_kind(probe, &path) {
        Ok(kind) => Answer::Module(Module { name: None, kind }),
        Err(why) => not_found(why),
    }
}

fn not_found(why: String) -> Answer {
    Answer::NotFound(NotFound { status: 404, message: why })
}

// === impl State (bundle URLs) ===

impl State {
    /// The virtual path of a URL under the bundle base.
    pub(super) fn bundle_path(&self, specifier: &str) -> Option<String> {
        let url = Url::parse(specifier).ok()?;
        let rest = url.as_str().strip_prefix(self.bundle_base.as_str())?;
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        Some(normalize(&paths::percent_decode(rest)))
    }

    /// The absolute URL of a virtual path.
    pub(super) fn bundle_url(&self, path: &str) -> String {
        let mut url = self.bundle_base.to_string();
        paths::percent_encode_into(path.trim_start_matches('/'), &mut url);
        url
    }
}
