//! An HTTP client built on first use. Building a reqwest client loads and parses the system's
//! root certificates (about 300 files on a Debian machine): that cost every `lazyops serve` start
//! several milliseconds and the idle process its certificate store, though most processes make
//! no outbound call for a long time, or ever (slash commands answered in the HTTP response).

use std::sync::{Arc, OnceLock};

type Builder = dyn Fn() -> reqwest::ClientBuilder + Send + Sync;

/// The client could not be built (no usable TLS backend or root certificates). Nothing is
/// cached, so the next call tries again.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

/// Cheap to clone: clones share one client.
#[derive(Clone)]
pub struct LazyClient {
    client: Arc<OnceLock<reqwest::Client>>,
    builder: Arc<Builder>,
}

impl LazyClient {
    /// `builder` configures the client (timeouts, user agent); it runs once, on first use.
    pub fn new(builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static) -> LazyClient {
        LazyClient { client: Arc::default(), builder: Arc::new(builder) }
    }

    /// The client, built now if this is the first call. A failed build is an error, never a
    /// client without the builder's timeouts, user agent or redirect policy.
    pub fn get(&self) -> Result<&reqwest::Client, ClientError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = (self.builder)().build().map_err(|e| ClientError(e.to_string()))?;
        Ok(self.client.get_or_init(|| built))
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient").field("built", &self.client.get().is_some()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A lazy client from `configure`, and how many times its builder has run.
    fn counted(configure: fn() -> reqwest::ClientBuilder) -> (LazyClient, Arc<AtomicUsize>) {
        let built = Arc::new(AtomicUsize::new(0));
        let counter = built.clone();
        let lazy = LazyClient::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            configure()
        });
        (lazy, built)
    }

    #[test]
    fn the_client_is_built_once_on_first_use_and_shared_by_clones() {
        let (lazy, built) = counted(reqwest::Client::builder);
        let other = lazy.clone();
        assert_eq!(built.load(Ordering::SeqCst), 0, "nothing built before use");
        assert!(lazy.get().is_ok());
        assert!(other.get().is_ok());
        assert_eq!(built.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_and_is_tried_again() {
        // rustls has no TLS 1.0, so this builder cannot produce a client.
        let (lazy, built) = counted(|| reqwest::Client::builder().max_tls_version(reqwest::tls::Version::TLS_1_0));
        let err = lazy.get().expect_err("no TLS version left");
        assert!(err.to_string().starts_with("cannot build the HTTP client"), "{err}");
        assert!(lazy.get().is_err());
        assert_eq!(built.load(Ordering::SeqCst), 2, "a failure is not cached");
    }
}
