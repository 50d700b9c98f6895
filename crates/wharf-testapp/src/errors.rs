//! Error reporting helpers shared by the routes.

use std::error::Error;

/// An error and its sources, joined with `: `, for logs and response bodies.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Wrappers often repeat their source's message; say it once.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io;

    #[derive(Debug, thiserror::Error)]
    #[error("connect to 127.0.0.1:1")]
    struct Outer(#[source] io::Error);

    #[test]
    fn joins_sources() {
        let err = Outer(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        assert_eq!(super::chain(&err), "connect to 127.0.0.1:1: refused");
    }
}
