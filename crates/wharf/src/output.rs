//! Everything the CLI prints goes through here: human text or `--json`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // This module is the CLI's output.

use std::io::Write;

use serde::Serialize;

/// Prints a line to stdout.
pub fn line(text: &str) {
    println!("{text}");
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode output: {e}"),
    }
}

/// Prints an error line to stderr.
pub fn error(text: &str) {
    eprintln!("error: {text}");
}

/// Prints a progress or note line to stderr, so stdout stays clean for scripts.
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// Writes raw bytes to stdout.
pub fn stdout_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// Writes raw bytes to stderr.
pub fn stderr_bytes(bytes: &[u8]) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(bytes);
    let _ = err.flush();
}
