//! `wharf fallback serve` and `wharf fallback resolve`: the reference module fallback server,
//! and a one-shot query through the pooled client.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use wharf_fallback::client::{Client, ClientConfig};
use wharf_fallback::server::{Server, ServerConfig, ServerError};
use wharf_fallback::{Answer, ModuleKind, Request, ResolveMethod, V1Request, V2Kind, V2Request};

use crate::cli::{FallbackResolveArgs, FallbackServeArgs};
use crate::{UsageError, output};

/// `wharf fallback serve`: serves until Ctrl-C.
pub(crate) async fn serve(args: FallbackServeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let mut config = ServerConfig::new(&args.root, args.listen);
    config.idle_close = args.idle_close.map(Duration::from_millis);
    let server = Server::bind(config).await.map_err(|e| match e {
        ServerError::Root { .. } => anyhow::Error::new(UsageError(e.to_string())),
        other => anyhow::Error::new(other),
    })?;
    let addr = server.local_addr();
    if json {
        output::json(&json!({ "listen": addr.to_string(), "root": args.root }));
    } else {
        output::line(&format!(
            "serving {} on {addr} (V1 and V2); Ctrl-C stops",
            args.root.display()
        ));
    }
    tokio::signal::ctrl_c().await?;
    let stats = server.stats();
    server.shutdown().await;
    output::note(&format!(
        "stopped: {} connections, {} requests ({} from the cache, {} redirects)",
        stats.connections_accepted, stats.requests, stats.cache_hits, stats.redirects
    ));
    Ok(ExitCode::SUCCESS)
}

/// `wharf fallback resolve`: one question, following redirects unless told not to.
pub(crate) async fn resolve(args: FallbackResolveArgs, json: bool) -> anyhow::Result<ExitCode> {
    let request = request(&args)?;
    let client = Client::new(ClientConfig::new(args.server));
    let (answer, chain) = if args.no_follow {
        (client.resolve(&request).await?, vec![request.specifier().to_owned()])
    } else {
        let followed = client.resolve_following(&request).await?;
        (followed.answer, followed.chain)
    };
    client.close_idle();
    let found = !matches!(answer, Answer::NotFound(_));
    if json {
        output::json(&describe(&answer, &chain));
    } else {
        print(&answer, &chain);
    }
    Ok(if found { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn request(args: &FallbackResolveArgs) -> Result<Request, UsageError> {
    let raw = args.raw.as_deref();
    if args.v2 {
        let scheme = args.specifier.split_once(':').map_or("", |(scheme, _)| scheme);
        if scheme.is_empty()
            || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(UsageError(format!(
                "with --v2 the specifier must be a URL like file:///bundle/x.js, not {:?}",
                args.specifier
            )));
        }
        return Ok(Request::V2(V2Request {
            kind: if args.require { V2Kind::Require } else { V2Kind::Import },
            specifier: args.specifier.clone(),
            raw_specifier: raw.map(str::to_owned),
            referrer: args.referrer.clone().unwrap_or_else(|| "file:///bundle/main.js".to_owned()),
            attributes: Vec::new(),
        }));
    }
    if !args.specifier.starts_with('/') {
        return Err(UsageError(format!(
            "the V1 specifier must be an absolute path like /lib/dep, not {:?} (use --v2 for URLs)",
            args.specifier
        )));
    }
    let method = if args.require { ResolveMethod::Require } else { ResolveMethod::Import };
    let referrer = args.referrer.as_deref().unwrap_or("/main.js");
    Ok(Request::V1(V1Request::new(&args.specifier, referrer, raw.unwrap_or(""), method)))
}

fn print(answer: &Answer, chain: &[String]) {
    if chain.len() > 1 {
        output::line(&format!("redirects: {}", chain.join(" -> ")));
    }
    match answer {
        Answer::Module(module) => {
            output::line(&format!(
                "module {} ({}):",
                module.name.as_deref().unwrap_or("?"),
                module.kind.key()
            ));
            match &module.kind {
                ModuleKind::EsModule(s) | ModuleKind::Text(s) | ModuleKind::Json(s) => {
                    output::line(s)
                }
                ModuleKind::CommonJs { source, named_exports } => {
                    if !named_exports.is_empty() {
                        output::line(&format!("// named exports: {}", named_exports.join(", ")));
                    }
                    output::line(source);
                }
                ModuleKind::Data(b) | ModuleKind::Wasm(b) => {
                    output::line(&format!("{} bytes", b.len()))
                }
            }
        }
        Answer::Redirect(location) => output::line(&format!("301 -> {location}")),
        Answer::NotFound(nf) => output::line(&format!("not found ({}): {}", nf.status, nf.message)),
    }
}

fn describe(answer: &Answer, chain: &[String]) -> serde_json::Value {
    match answer {
        Answer::Module(module) => json!({
            "answer": "module",
            "name": module.name,
            "type": module.kind.key(),
            "chain": chain,
        }),
        Answer::Redirect(location) => {
            json!({ "answer": "redirect", "location": location, "chain": chain })
        }
        Answer::NotFound(nf) => json!({
            "answer": "not_found",
            "status": nf.status,
            "message": nf.message,
            "chain": chain,
        }),
    }
}
