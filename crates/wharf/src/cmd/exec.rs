//! `wharf exec`: run a command to its end; its output is ours and its exit code is ours.

use std::process::ExitCode;

use http::Method;
use serde_json::json;
use wharf_api::dto::ExecResult;

use super::container_path;
use crate::cli::ExecArgs;
use crate::client::Client;
use crate::output;

pub(crate) async fn exec(client: &Client, args: ExecArgs, json: bool) -> anyhow::Result<ExitCode> {
    let body = json!({
        "cmd": args.cmd,
        "env": args.env,
        "cwd": args.cwd,
        "user": args.user,
        "combinedOutput": args.combined,
    });
    let r: ExecResult =
        client.json(Method::POST, &container_path(&args.id, "/exec")?, Some(&body)).await?;
    if json {
        output::json(&r);
        return Ok(ExitCode::SUCCESS);
    }
    output::stdout_bytes(r.stdout.as_bytes());
    output::stderr_bytes(r.stderr.as_bytes());
    Ok(ExitCode::from(u8::try_from(r.exit_code).unwrap_or(1)))
}
