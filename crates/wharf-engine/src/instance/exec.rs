//! `exec`: start a process in the app (in the actor's turn), then collect its output and exit
//! code outside the turn, so a long exec holds nothing up.

use bytes::BytesMut;
use futures_util::StreamExt;

use super::Instance;
use crate::Error;
use crate::docker::{DockerApi, ExecSession, ExecSpec, Output};
use crate::metrics::Metrics;
use crate::params::ExecParams;

/// A finished exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code.
    pub exit_code: i64,
    /// stdout (with stderr when combined).
    pub stdout: Vec<u8>,
    /// stderr (empty when combined).
    pub stderr: Vec<u8>,
}

impl Instance {
    pub(super) async fn open_exec(&mut self, params: ExecParams) -> Result<ExecSession, Error> {
        if !self.snapshot().status.is_running() {
            return Err(self.not_running());
        }
        let spec = ExecSpec {
            cmd: params.cmd,
            env: params.env.iter().map(ToString::to_string).collect(),
            cwd: params.cwd,
            user: params.user,
            stdin: false,
            tty: None,
        };
        let name = self.names.app.clone();
        let session =
            self.docker().exec(&name, &spec).await.map_err(Error::docker("exec", &name))?;
        Metrics::inc(&self.ctx.metrics.execs);
        Ok(session)
    }
}

/// Reads a session to its end and fetches the exit code.
pub(crate) async fn collect_exec(
    docker: &dyn DockerApi,
    mut session: ExecSession,
    combined: bool,
    limit: usize,
) -> Result<ExecOutput, Error> {
    // No stdin for run-to-completion: the process sees EOF at once.
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut session.input).await;
    let (mut out, mut err) = (BytesMut::new(), BytesMut::new());
    while let Some(chunk) = session.output.next().await {
        match chunk.map_err(Error::docker("exec output", &session.id))? {
            Output::Stdout(b) => out.extend_from_slice(&b),
            Output::Stderr(b) if combined => out.extend_from_slice(&b),
            Output::Stderr(b) => err.extend_from_slice(&b),
        }
        if out.len() + err.len() > limit {
            return Err(Error::OutputTooLarge { limit });
        }
    }
    let exit_code = exit_code(docker, &session.id).await?;
    Ok(ExecOutput { exit_code, stdout: out.to_vec(), stderr: err.to_vec() })
}

/// The exit code, once Docker reports the process ended (briefly after the stream closes).
async fn exit_code(docker: &dyn DockerApi, id: &str) -> Result<i64, Error> {
    for _ in 0..100 {
        let state = docker.inspect_exec(id).await.map_err(Error::docker("exec inspect", id))?;
        if !state.running {
            return Ok(state.exit_code.unwrap_or(0));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err(Error::docker("exec inspect", id)(crate::docker::Error::Other {
        status: 0,
        message: "exec output ended but the process still runs after 2s".to_owned(),
    }))
}

/// The last `max` bytes of a container's logs, for error messages.
pub(crate) async fn log_tail(docker: &dyn DockerApi, name: &str, max: usize) -> String {
    let mut stream = docker.logs(name, false);
    let mut all = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let (Output::Stdout(b) | Output::Stderr(b)) = chunk;
        all.extend_from_slice(&b);
    }
    let start = all.len().saturating_sub(max);
    String::from_utf8_lossy(&all[start..]).into_owned()
}
