//! A value built in the background from a function's init on, awaited by
//! the first invocation that needs it.
//!
//! Why: a function's init waited for the root secret (a DynamoDB read and a
//! KMS decrypt) before it asked Lambda for its first event, so every cold
//! start paid those round trips in series with the process start and the
//! runtime's own setup. Started here, they overlap with the rest of init and
//! with the runtime's first poll; Lambda's init phase ends sooner and an
//! invocation that arrives while they are in flight waits only for what is
//! left. A build that failed (a store unreachable for a while) is logged by
//! the caller and built again by the next invocation, instead of failing
//! every invocation of the process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

type Build<T, E> = dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, E>> + Send>> + Send + Sync;

/// A value whose build started when this was made. Cheap to clone; every
/// clone sees the same value.
pub struct Deferred<T, E> {
    inner: Arc<Inner<T, E>>,
}

struct Inner<T, E> {
    value: OnceCell<T>,
    started: Mutex<Option<JoinHandle<Result<T, E>>>>,
    build: Box<Build<T, E>>,
}

impl<T, E> Clone for Deferred<T, E> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<T, E> Deferred<T, E>
where
    T: Send + Sync + 'static,
    E: Send + 'static,
{
    /// Spawns `build` now (on the current Tokio runtime); it is called again
    /// only if a build fails.
    pub fn start<F, Fut>(build: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let build: Box<Build<T, E>> = Box::new(move || Box::pin(build()));
        let started = tokio::spawn(build());
        Self { inner: Arc::new(Inner { value: OnceCell::new(), started: Mutex::new(Some(started)), build }) }
    }

    /// The value, once built: the started build's result the first time, a
    /// new build after a failed one. Concurrent callers wait for one build.
    pub async fn get(&self) -> Result<&T, E> {
        let inner = &self.inner;
        inner
            .value
            .get_or_try_init(|| async {
                let started = inner.started.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
                match started {
                    Some(handle) => match handle.await {
                        Ok(result) => result,
                        // A panicking build panics the invocation that waited for it, as it would have the init.
                        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                        Err(_) => (inner.build)().await,
                    },
                    None => (inner.build)().await,
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    #[tokio::test]
    async fn the_build_runs_before_anything_asks_for_it() {
        let built = Arc::new(Notify::new());
        let signal = built.clone();
        let deferred: Deferred<u32, String> = Deferred::start(move || {
            let signal = signal.clone();
            async move {
                signal.notify_one();
                Ok(7)
            }
        });

        built.notified().await;

        assert_eq!(deferred.get().await, Ok(&7));
    }

    #[tokio::test]
    async fn many_callers_share_one_build() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let deferred: Deferred<u32, String> = Deferred::start(move || {
            let counter = counter.clone();
            async move {
                tokio::task::yield_now().await;
                Ok(counter.fetch_add(1, Ordering::SeqCst) as u32 + 1)
            }
        });

        let (a, b) = (deferred.clone(), deferred.clone());
        let (a, b) = tokio::join!(a.get(), b.get());

        assert_eq!((a, b), (Ok(&1), Ok(&1)));
        assert_eq!(deferred.get().await, Ok(&1));
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_build_is_reported_and_built_again_by_the_next_caller() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let deferred: Deferred<&'static str, String> = Deferred::start(move || {
            let attempt = counter.fetch_add(1, Ordering::SeqCst);
            async move { if attempt == 0 { Err("the store is unreachable".to_owned()) } else { Ok("built") } }
        });

        let first = deferred.get().await;
        let second = deferred.get().await;

        assert_eq!(first, Err("the store is unreachable".to_owned()));
        assert_eq!(second, Ok(&"built"));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }
}
