//! `wharf logs [-f]`: the app's output, streamed.

use std::process::ExitCode;

use http::Method;
use http_body_util::BodyExt;

use super::container_path;
use crate::cli::LogsArgs;
use crate::client::Client;
use crate::output;

pub(crate) async fn logs(client: &Client, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let path = container_path(&args.id, &format!("/logs?follow={}", args.follow))?;
    let mut body = client.stream(Method::GET, &path).await?.into_body();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            output::stdout_bytes(&data);
        }
    }
    Ok(ExitCode::SUCCESS)
}
