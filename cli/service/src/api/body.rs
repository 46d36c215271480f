//! Request bodies are read to their end before a handler answers. An answer given while
//! the client is still sending — a refusal decided from the headers alone, or a 413 —
//! makes the server reset the stream (HTTP/2) or close the connection (HTTP/1.1), and a
//! client such as curl then reports "(92) Stream error in the HTTP/2 framing layer"
//! instead of the answer. So the whole body is read first (bounded by the request
//! timeout, which wraps this), and an oversized one is read and discarded up to
//! [`DRAIN_BYTES`] beyond the limit, so that its sender too sees the 413.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use futures::StreamExt;

/// How far beyond the limit an oversized body is still read (and thrown away) so that its
/// sender finishes and reads the 413; a larger one is cut off.
pub(crate) const DRAIN_BYTES: usize = 1 << 20;

/// The marker error of a body over the limit, found by [`is_too_large`].
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body is over the size limit")
    }
}

impl std::error::Error for TooLarge {}

/// `request` with its body read into memory: the same bytes when at most `limit`, else a
/// body whose reading fails with [`TooLarge`] (the handler answers 413); a body that
/// could not be read fails with the transport's error.
#[cfg(test)]
pub(crate) async fn read_whole(request: Request, limit: usize) -> Request {
    read_whole_kept(request, limit).await.0
}

/// [`read_whole`], and the body's bytes when it was within the limit (for the request log).
pub(crate) async fn read_whole_kept(request: Request, limit: usize) -> (Request, Option<Bytes>) {
    let (parts, body) = request.into_parts();
    let mut chunks = body.into_data_stream();
    let mut kept: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return (Request::from_parts(parts, failing(e)), None),
        };
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        } else if seen > limit.saturating_add(DRAIN_BYTES) {
            break;
        } else {
            kept = Vec::new();
        }
    }
    if seen <= limit {
        let bytes = Bytes::from(kept);
        return (
            Request::from_parts(parts, Body::from(bytes.clone())),
            Some(bytes),
        );
    }
    (
        Request::from_parts(parts, failing(axum::Error::new(TooLarge))),
        None,
    )
}

fn failing(error: axum::Error) -> Body {
    Body::from_stream(futures::stream::once(async move {
        Err::<Bytes, axum::Error>(error)
    }))
}

/// Whether reading a body failed because [`read_whole`] found it over the limit.
pub(crate) fn is_too_large(error: axum::Error) -> bool {
    let inner = error.into_inner();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(e) = cause {
        if e.is::<TooLarge>() {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(body: Body, limit: usize) -> Result<Bytes, bool> {
        let request = Request::builder().body(body).unwrap();
        let body = read_whole(request, limit).await.into_body();
        axum::body::to_bytes(body, limit)
            .await
            .map_err(is_too_large)
    }

    fn chunked(chunks: Vec<&'static [u8]>) -> Body {
        Body::from_stream(futures::stream::iter(
            chunks.into_iter().map(Ok::<_, std::io::Error>),
        ))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_arrives_whole_however_it_was_chunked() {
        let body = chunked(vec![b"{\"csr\"", b":", b"\"x\"}"]);
        assert_eq!(read(body, 11).await.unwrap(), &b"{\"csr\":\"x\"}"[..]);
        assert_eq!(read(Body::empty(), 0).await.unwrap(), &b""[..]);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_too_large_and_read_to_its_end() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let chunks: Vec<&'static [u8]> = vec![b"0123456789"; 5];
        let consumed = Arc::new(AtomicUsize::new(0));
        let counter = consumed.clone();
        let body = Body::from_stream(
            futures::stream::iter(chunks)
                .inspect(move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                })
                .map(Ok::<_, std::io::Error>),
        );
        assert_eq!(read(body, 20).await, Err(true));
        assert_eq!(
            consumed.load(std::sync::atomic::Ordering::SeqCst),
            5,
            "drained"
        );
    }

    #[tokio::test]
    async fn a_body_that_fails_to_arrive_is_not_called_too_large() {
        let body = Body::from_stream(futures::stream::once(async {
            Err::<Bytes, _>(std::io::Error::other("connection reset"))
        }));
        assert_eq!(read(body, 20).await, Err(false));
    }
}
