//! Temporary compile shim (not committed).
use std::sync::{Arc, Mutex};
pub struct FramingLimits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_url_len: usize,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    BareLf,
}
impl Violation {
    pub fn reason(&self) -> &'static str {
        "x"
    }
    pub fn status(&self) -> u16 {
        400
    }
}
#[derive(Clone, Default, Debug)]
pub struct FramingSignal(Arc<Mutex<Option<Violation>>>);
impl FramingSignal {
    pub fn take(&self) -> Option<Violation> {
        self.0.lock().ok()?.take()
    }
    pub fn peek(&self) -> Option<Violation> {
        *self.0.lock().ok()?
    }
}
pin_project_lite::pin_project! { pub struct StrictH1<S> { #[pin] inner: S } }
impl<S> StrictH1<S> {
    pub fn new(inner: S, _l: FramingLimits, _s: FramingSignal) -> Self {
        StrictH1 { inner }
    }
}
impl<S: tokio::io::AsyncRead> tokio::io::AsyncRead for StrictH1<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        b: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().inner.poll_read(cx, b)
    }
}
impl<S: tokio::io::AsyncWrite> tokio::io::AsyncWrite for StrictH1<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        b: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.project().inner.poll_write(cx, b)
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
