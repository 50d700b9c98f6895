//! Reading `\n`-terminated lines from a byte stream, for the greeter and `/tcp-greeting`.
//!
//! [`take_line`] is the sans-IO part: it splits one line off a buffer, or says it needs more
//! bytes. [`LineReader`] feeds it from an `AsyncRead`.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest line read, terminator included; longer lines are an error.
pub const MAX_LINE: usize = 8 * 1024;

/// A line longer than [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {MAX_LINE} bytes")]
pub struct LineTooLong;

/// Splits the first line, `\n` included, off the front of `buf`. `Ok(None)` means no complete
/// line yet.
pub fn take_line(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, LineTooLong> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end < MAX_LINE => {
            let rest = buf.split_off(end + 1);
            Ok(Some(std::mem::replace(buf, rest)))
        }
        Some(_) => Err(LineTooLong),
        None if buf.len() >= MAX_LINE => Err(LineTooLong),
        None => Ok(None),
    }
}

/// A line without its `\n` or `\r\n`.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads lines from `R`.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
}

// === impl LineReader ===

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Reads lines from `inner`.
    pub fn new(inner: R) -> LineReader<R> {
        LineReader { inner, buf: Vec::new() }
    }

    /// The next line, terminator included. At the end of the stream, a last unterminated line
    /// is returned as is, then `None`.
    pub async fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut chunk = [0; 1024];
        loop {
            match take_line(&mut self.buf) {
                Ok(Some(line)) => return Ok(Some(line)),
                Ok(None) => {}
                Err(err) => return Err(io::Error::new(io::ErrorKind::InvalidData, err)),
            }
            let len = self.inner.read(&mut chunk).await?;
            if len == 0 {
                let rest = std::mem::take(&mut self.buf);
                return Ok((!rest.is_empty()).then_some(rest));
            }
            self.buf.extend_from_slice(chunk.get(..len).unwrap_or_default());
        }
    }

    /// The stream, to write to. Bytes already read but not yet returned stay buffered.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in two chunks split at every point, and returns the lines found.
    fn check_all_splits(input: &[u8], expect: &[&str]) {
        for split in 0..=input.len() {
            let mut buf = Vec::new();
            let mut lines = Vec::new();
            for chunk in [&input[..split], &input[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(line) = take_line(&mut buf).unwrap() {
                    lines.push(String::from_utf8(line).unwrap());
                }
            }
            assert_eq!(lines, expect, "split at {split}");
        }
    }

    #[test]
    fn lines_at_every_split() {
        check_all_splits(
            b"220 wharf-greeter ready\r\nHELO x\nQUIT\r\npartial",
            &["220 wharf-greeter ready\r\n", "HELO x\n", "QUIT\r\n"],
        );
        check_all_splits(b"\n\r\n", &["\n", "\r\n"]);
        check_all_splits(b"", &[]);
    }

    #[test]
    fn long_lines_are_refused() {
        let mut exact = vec![b'a'; MAX_LINE - 1];
        exact.push(b'\n');
        assert_eq!(take_line(&mut exact.clone()).unwrap().map(|l| l.len()), Some(MAX_LINE));
        let mut over = vec![b'a'; MAX_LINE];
        assert_eq!(take_line(&mut over), Err(LineTooLong));
        over.push(b'\n');
        assert_eq!(take_line(&mut over), Err(LineTooLong));
    }

    #[test]
    fn trims_line_ends() {
        assert_eq!(trim_eol(b"QUIT\r\n"), b"QUIT");
        assert_eq!(trim_eol(b"QUIT\n"), b"QUIT");
        assert_eq!(trim_eol(b"QUIT"), b"QUIT");
        assert_eq!(trim_eol(b"a\r\r\n"), b"a\r");
    }

    #[tokio::test]
    async fn reader_returns_the_unterminated_tail() {
        let mut reader = LineReader::new(&b"one\r\ntwo"[..]);
        assert_eq!(reader.next_line().await.unwrap().as_deref(), Some(&b"one\r\n"[..]));
        assert_eq!(reader.next_line().await.unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(reader.next_line().await.unwrap(), None);
    }
}
