//! CPU-heavy work of a request (validating and compiling a rule, evaluating and
//! rendering it in a dry run, simulating a backtest) runs here: on the blocking
//! pool, never on the threads that serve requests, so probes and cheap requests stay
//! fast while a hostile regex grinds; and at most one such job per core at once, so
//! a burst of them queues instead of starving the machine.

use std::sync::LazyLock;
use tokio::sync::Semaphore;

use crate::error::ApiError;

static CORES: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
});

/// Runs `work` off the request threads and waits for its result.
pub async fn cpu<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let _core = CORES
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("offload semaphore: {e}")))?;
    actix_web::web::block(work)
        .await
        .map_err(|e| ApiError::internal(format!("offloaded work failed: {e}")))
}
