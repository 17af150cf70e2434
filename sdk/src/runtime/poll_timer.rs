//! [`PollTimer`]: how long a handler held its thread in one go. A handler
//! that blocks (a sync call, a CPU loop) cannot be interrupted by
//! `job_timeout`, which can only act when the handler yields; the timer
//! lets the report say so instead of claiming a timeout stopped it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A future that records the longest single poll of the one it wraps.
pub(crate) struct PollTimer<'a, F: ?Sized> {
    inner: Pin<Box<F>>,
    longest_us: &'a AtomicU64,
}

impl<'a, F: Future + ?Sized> PollTimer<'a, F> {
    pub(crate) fn new(inner: Pin<Box<F>>, longest_us: &'a AtomicU64) -> Self {
        Self { inner, longest_us }
    }
}

impl<F: Future + ?Sized> Future for PollTimer<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = Instant::now();
        let out = self.inner.as_mut().poll(cx);
        let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.longest_us.fetch_max(us, Ordering::Relaxed);
        out
    }
}

/// The longest poll recorded in `longest_us`.
pub(crate) fn longest(longest_us: &AtomicU64) -> Duration {
    Duration::from_micros(longest_us.load(Ordering::Relaxed))
}
