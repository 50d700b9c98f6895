//! The byte relay every tunnel ends in, with buffers larger than tokio's default.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use wharf_wire::RELAY_BUFFER_BYTES;

/// Copies both ways until both sides are done, with [`RELAY_BUFFER_BYTES`] buffers; answers the
/// bytes `a` sent and the bytes `b` sent.
pub async fn relay<A, B>(a: &mut A, b: &mut B) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    tokio::io::copy_bidirectional_with_sizes(a, b, RELAY_BUFFER_BYTES, RELAY_BUFFER_BYTES).await
}
