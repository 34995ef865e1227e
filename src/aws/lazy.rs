//! SDK clients built on first use. Building one (`Client::new`) assembles and validates its runtime
//! plugins; at cold start, only the clients the first delivery needs should pay that: the dead-letter
//! queue's, S3's and DynamoDB's clients are built when first called.

use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;

/// An AWS SDK client (`C`), either given built or built from the shared configuration on first use.
/// Clones share the one client.
pub struct LazyClient<C> {
    inner: Arc<Inner<C>>,
}

enum Inner<C> {
    Built(C),
    OnFirstUse {
        cell: OnceLock<C>,
        // Boxed: the configuration is large and the client is usually smaller.
        sdk: Box<SdkConfig>,
        build: fn(&SdkConfig) -> C,
    },
}

impl<C> LazyClient<C> {
    /// A client built by `build(sdk)` the first time [`Self::get`] is called.
    pub fn new(sdk: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        LazyClient {
            inner: Arc::new(Inner::OnFirstUse {
                cell: OnceLock::new(),
                sdk: Box::new(sdk.clone()),
                build,
            }),
        }
    }

    /// The client, built now if it was not yet.
    pub fn get(&self) -> &C {
        match &*self.inner {
            Inner::Built(client) => client,
            Inner::OnFirstUse { cell, sdk, build } => cell.get_or_init(|| build(sdk)),
        }
    }

    /// Whether the client has been built.
    pub fn is_built(&self) -> bool {
        match &*self.inner {
            Inner::Built(_) => true,
            Inner::OnFirstUse { cell, .. } => cell.get().is_some(),
        }
    }
}

impl<C> From<C> for LazyClient<C> {
    /// A client given built.
    fn from(client: C) -> Self {
        LazyClient {
            inner: Arc::new(Inner::Built(client)),
        }
    }
}

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        LazyClient {
            inner: self.inner.clone(),
        }
    }
}

impl<C> std::fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient").field("built", &self.is_built()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static BUILDS: AtomicUsize = AtomicUsize::new(0);

    fn build(_: &SdkConfig) -> String {
        BUILDS.fetch_add(1, Ordering::SeqCst);
        "client".to_owned()
    }

    #[test]
    fn a_lazy_client_is_built_on_first_use_once_and_shared_by_clones() {
        let lazy = LazyClient::new(&SdkConfig::builder().build(), build);
        let clone = lazy.clone();
        assert!(!lazy.is_built(), "nothing is built at construction");
        assert_eq!(BUILDS.load(Ordering::SeqCst), 0);
        assert_eq!(clone.get(), "client");
        assert_eq!(lazy.get(), "client");
        assert!(lazy.is_built());
        assert_eq!(BUILDS.load(Ordering::SeqCst), 1, "built once, for both clones");
    }

    #[test]
    fn a_client_given_built_is_used_as_is() {
        let given = LazyClient::from("given".to_owned());
        assert!(given.is_built());
        assert_eq!(given.get(), "given");
        assert_eq!(format!("{given:?}"), "LazyClient { built: true }");
    }
}
