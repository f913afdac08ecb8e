//! The registry from async code: [`AsyncRegistry`], a [`Registry`] whose calls run on tokio's
//! blocking threads ([`blocking`]), never on the async workers, for a service and for
//! [`embed`](crate::embed).
//!
//! [`Registry`]'s methods are synchronous and may block: on SQLite's locks, on a PostgreSQL
//! server (whose store blocks its calling thread on a runtime of its own), on guest code when
//! publishing. On an async worker that would stall every task of the worker, and tokio panics
//! when a thread that drives tasks blocks on a runtime; so a PostgreSQL store called there
//! answers [`StoreFailure::InsideAsyncRuntime`](crate::error::StoreFailure) instead. Through
//! [`blocking`] (which [`AsyncRegistry`] uses for every call) it runs where blocking is
//! allowed.

use std::cell::Cell;
use std::sync::Arc;

use futures_core::Stream;

use super::Registry;
use super::actor::Actor;
use super::types::{
    BlobPut, HookSummary, ImportedRun, LiveHistory, LiveMoved, LiveRequest, PublishRequest,
    Published, ReleaseHistory, ReleaseView, RunFilter, RunPage, StoredRun,
};
use crate::component::Host;
use crate::error::Error;
use crate::provenance::RunRecord;

thread_local! {
    /// Whether this thread runs inside [`blocking`].
    static IN_BLOCKING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread may block on a store's own runtime: it is not in a tokio runtime's
/// context at all, or it runs inside [`blocking`].
pub(crate) fn may_block() -> bool {
    IN_BLOCKING.with(Cell::get) || tokio::runtime::Handle::try_current().is_err()
}

/// Runs blocking work (guest code, files, the registry) on tokio's blocking threads, off the
/// runtime's async workers, and awaits its result. A registry called inside it may block:
/// this is where [`AsyncRegistry`] runs every call. A panic in `work` is
/// [`Error::Internal`].
///
/// ```no_run
/// # async fn f(registry: std::sync::Arc<hookhost::registry::Registry>) -> Result<(), hookhost::Error> {
/// let hooks = hookhost::registry::blocking(move || registry.hooks()).await?;
/// # Ok(())
/// # }
/// ```
pub async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    let work = move || {
        let outer = IN_BLOCKING.with(|flag| flag.replace(true));
        let result = work();
        IN_BLOCKING.with(|flag| flag.set(outer));
        result
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(Error::Internal(format!("a blocking task failed: {join}"))),
    }
}

/// A [`Registry`] for async code: each method runs the registry's own on a blocking thread
/// ([`blocking`]) and awaits it, with the same answers and errors. Cheap to clone.
///
/// ```no_run
/// use std::sync::Arc;
/// use hookhost::registry::{Actor, AsyncRegistry, LiveRequest, Registry};
///
/// # async fn f() -> Result<(), hookhost::Error> {
/// let registry = AsyncRegistry::new(Arc::new(Registry::open(".hookhost")?));
/// let hook = registry.hook("text_stats").await?;
/// let by = Actor::token("hookhost", "ci-text", "0193aa00-7c1e-7000-8000-000000000001");
/// let moved = registry
///     .set_live("text_stats", hook.live_version - 1, LiveRequest::new(by).because("bad build"))
///     .await?;
/// println!("v{} -> v{}", moved.from, moved.to);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AsyncRegistry(Arc<Registry>);

impl AsyncRegistry {
    /// The async face of `registry`.
    pub fn new(registry: Arc<Registry>) -> AsyncRegistry {
        AsyncRegistry(registry)
    }

    /// The registry itself (for what runs on a blocking thread already).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.0
    }

    /// Runs `work` with the registry on a blocking thread: for any call this type has no
    /// method for.
    pub async fn call<T, F>(&self, work: F) -> Result<T, Error>
    where
        F: FnOnce(&Registry) -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let registry = self.0.clone();
        blocking(move || work(&registry)).await
    }

    /// [`Registry::hooks`].
    pub async fn hooks(&self) -> Result<Vec<HookSummary>, Error> {
        self.call(Registry::hooks).await
    }

    /// [`Registry::hook`].
    pub async fn hook(&self, name: &str) -> Result<HookSummary, Error> {
        let name = name.to_owned();
        self.call(move |r| r.hook(&name)).await
    }

    /// [`Registry::releases`].
    pub async fn releases(&self, hook: &str) -> Result<Vec<ReleaseView>, Error> {
        let hook = hook.to_owned();
        self.call(move |r| r.releases(&hook)).await
    }

    /// [`Registry::release_history`].
    pub async fn release_history(&self, hook: &str) -> Result<ReleaseHistory, Error> {
        let hook = hook.to_owned();
        self.call(move |r| r.release_history(&hook)).await
    }

    /// [`Registry::release`].
    pub async fn release(&self, hook: &str, version: Option<u32>) -> Result<ReleaseView, Error> {
        let hook = hook.to_owned();
        self.call(move |r| r.release(&hook, version)).await
    }

    /// [`Registry::live_history`].
    pub async fn live_history(&self, hook: &str) -> Result<LiveHistory, Error> {
        let hook = hook.to_owned();
        self.call(move |r| r.live_history(&hook)).await
    }

    /// [`Registry::set_live`].
    pub async fn set_live(
        &self,
        hook: &str,
        version: u32,
        request: LiveRequest,
    ) -> Result<LiveMoved, Error> {
        let hook = hook.to_owned();
        self.call(move |r| r.set_live(&hook, version, request))
            .await
    }

    /// [`Registry::publish_digest`]: guest code (the component's contract export) runs on the
    /// blocking thread, under `host`'s sandbox limits.
    pub async fn publish_digest(
        &self,
        host: Host,
        digest: &str,
        request: PublishRequest,
    ) -> Result<Published, Error> {
        let digest = digest.to_owned();
        self.call(move |r| r.publish_digest(&host, &digest, request))
            .await
    }

    /// [`Registry::put_blob`] for bytes that arrive as a stream (an HTTP body): each part is
    /// written and hashed as it comes, on a blocking thread, and at most `max_bytes` are
    /// taken — the stream is not read past the cap. A part the stream fails with is
    /// [`Error::UploadFailed`]; as with [`Registry::put_blob`], every error leaves nothing
    /// stored and no temporary file.
    pub async fn put_blob<S, B, E>(
        &self,
        digest: &str,
        stream: S,
        max_bytes: u64,
    ) -> Result<BlobPut, Error>
    where
        S: Stream<Item = Result<B, E>> + Send,
        B: AsRef<[u8]> + Send + 'static,
        E: std::fmt::Display,
    {
        // Parts go to the writing thread through a small channel: a slow disk slows the
        // reading down, and memory holds a few parts at most.
        let (parts, mut received) = tokio::sync::mpsc::channel::<Result<B, String>>(4);
        let digest = digest.to_owned();
        let writer = self.call(move |registry| {
            let mut upload = registry.begin_upload(&digest, max_bytes)?;
            while let Some(part) = received.blocking_recv() {
                match part {
                    Ok(bytes) => upload.write(bytes.as_ref())?,
                    Err(reason) => return Err(upload.failed(reason)),
                }
            }
            upload.finish()
        });
        let reader = async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(part) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                let part = part.map_err(|e| e.to_string());
                let failed = part.is_err();
                // A closed channel: the writer stopped (over the cap); its error is the answer.
                if parts.send(part).await.is_err() || failed {
                    break;
                }
            }
        };
        let ((), written) = tokio::join!(reader, writer);
        written
    }

    /// [`Blobs::get`](super::Blobs::get): the bytes of `digest`, hashed again.
    pub async fn blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let digest = digest.to_owned();
        self.call(move |r| r.blobs().get(&digest)).await
    }

    /// [`Blobs::contains`](super::Blobs::contains).
    pub async fn contains_blob(&self, digest: &str) -> Result<bool, Error> {
        let digest = digest.to_owned();
        self.call(move |r| r.blobs().contains(&digest)).await
    }

    /// [`Registry::runs_page`].
    pub async fn runs_page(
        &self,
        filter: RunFilter,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<RunPage, Error> {
        self.call(move |r| r.runs_page(&filter, limit, cursor.as_deref()))
            .await
    }

    /// [`Registry::run_record`].
    pub async fn run_record(&self, run_id: &str) -> Result<StoredRun, Error> {
        let run_id = run_id.to_owned();
        self.call(move |r| r.run_record(&run_id)).await
    }

    /// [`Registry::import_run`].
    pub async fn import_run(
        &self,
        record: RunRecord,
        config: Option<String>,
        actor: Actor,
    ) -> Result<ImportedRun, Error> {
        self.call(move |r| r.import_run(&record, config.as_deref(), &actor))
            .await
    }

    /// [`Registry::check_store`]: for a health check.
    pub async fn check_store(&self) -> Result<(), Error> {
        self.call(Registry::check_store).await
    }
}
