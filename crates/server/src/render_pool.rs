//! Card faces are drawn on a small pool of threads of their own, with a time budget, so that no
//! drawing ever holds one of the async workers that serve `/healthz`, sign-ins, the API and the
//! stations' WebSockets, and no layout keeps the renderer busy for ever.
//!
//! [`CardRenderer`] is a synchronous port of tessera-core, called from inside the issuance use case
//! (`print_card`) as well as from the portal. So the pool is a property of the renderer the server
//! wires in rather than of each caller: [`PooledRenderer`] wraps the real renderer and implements
//! the same trait by handing every call to one of its threads and waiting for the answer. When the
//! caller is a task on the multi-thread runtime, the wait runs in
//! [`tokio::task::block_in_place`], which first hands the worker's other tasks to another thread;
//! from a blocking thread (`spawn_blocking`) or outside a runtime it is a plain wait.
//!
//! ```text
//!  async task ──render()──▶ block_in_place ─┐           ┌─▶ thread 1 ─┐
//!                                           ├─ queue ───┤             ├─▶ answer, or "took
//!  spawn_blocking ─render()─▶ plain wait ───┘  (bounded) └─▶ thread 2 ─┘    longer than 20 s"
//! ```
//!
//! A drawing cannot be cancelled: one that overruns its budget is answered with an error and
//! finishes in the background, holding its thread; a request that waited the whole budget in the
//! queue is answered "busy" and dropped before it starts. The layout limits of tessera-print keep
//! the worst layout they accept near a second a side, so the budget is for what they did not
//! foresee.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_core::model::Layout;
use tessera_core::ports::{CardData, CardRenderer, PortError, RenderedCard};

/// How many cards are drawn at once: one per core of the small servers Tessera runs on. More would
/// only share the same cores, and leave none to the async workers.
pub const THREADS: usize = 2;
/// How many drawings may wait for a thread before callers are told the renderer is busy. A
/// replica serving hundreds of stations has about as many cards coming to print at a burst; at
/// ~30 ms a card on two threads the last of 256 waits about 4 s, well within the budget, where a
/// shorter queue turned a burst into Print failed cards (`tessera bench-load`, 200 stations).
pub const QUEUE: usize = 256;
/// How long a drawing (or a layout check) may take, and how long one may wait for a thread.
pub const BUDGET: Duration = Duration::from_secs(20);
/// usvg and resvg recurse once per level of nesting; the limits bound the levels, this leaves
/// a wide margin (a thread's default is 2 MiB).
const STACK_BYTES: usize = 8 * 1024 * 1024;

type Job = Box<dyn FnOnce() + Send>;

/// A [`CardRenderer`] that draws on its own threads within a time budget. Cheap to clone: clones
/// share the threads.
#[derive(Clone)]
pub struct PooledRenderer {
    inner: Arc<dyn CardRenderer>,
    queue: mpsc::SyncSender<Job>,
    budget: Duration,
}

impl std::fmt::Debug for PooledRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledRenderer")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

enum Progress<T> {
    Started,
    Done(Result<T, PortError>),
}

impl PooledRenderer {
    /// [`THREADS`] threads, [`QUEUE`] places, [`BUDGET`] per drawing.
    pub fn new(inner: Arc<dyn CardRenderer>) -> Self {
        Self::with(inner, THREADS, QUEUE, BUDGET)
    }

    /// A pool of `threads` threads and `queue` places, and a budget per drawing.
    pub fn with(
        inner: Arc<dyn CardRenderer>,
        threads: usize,
        queue: usize,
        budget: Duration,
    ) -> Self {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("tessera-render-{i}"))
                .stack_size(STACK_BYTES)
                .spawn(move || loop {
                    // The lock is held only while taking a job, not while running it.
                    let job = match receiver.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        // Every PooledRenderer is gone.
                        Err(_) => return,
                    }
                })
                .expect("the operating system starts a thread");
        }
        Self {
            inner,
            queue: sender,
            budget,
        }
    }

    /// Runs `work` on a pool thread and waits for it, without holding an async worker.
    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        layout: &str,
        work: impl FnOnce() -> Result<T, PortError> + Send + 'static,
    ) -> Result<T, PortError> {
        let (tell, progress) = mpsc::channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let given_up = abandoned.clone();
        let job: Job = Box::new(move || {
            if given_up.load(Ordering::Relaxed) {
                return;
            }
            let _ = tell.send(Progress::Started);
            let result = std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
                Err(PortError::new(format!(
                    "{what} failed: the renderer stopped on an internal error"
                )))
            });
            let _ = tell.send(Progress::Done(result));
        });
        let busy =
            || PortError::new("the card renderer is busy with other cards; try again in a moment");
        let stopped = || PortError::new("the card renderer has stopped");
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(busy()),
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        let budget = self.budget;
        off_the_async_worker(move || {
            match progress.recv_timeout(budget) {
                Ok(Progress::Started) => {}
                Ok(Progress::Done(result)) => return result,
                Err(RecvTimeoutError::Timeout) => {
                    abandoned.store(true, Ordering::Relaxed);
                    return Err(busy());
                }
                Err(RecvTimeoutError::Disconnected) => return Err(stopped()),
            }
            match progress.recv_timeout(budget) {
                Ok(Progress::Done(result)) => result,
                Ok(Progress::Started) | Err(RecvTimeoutError::Disconnected) => Err(stopped()),
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!(layout, ?budget, "{what} overran its budget");
                    Err(PortError::new(format!(
                        "{what} took longer than {} s; simplify the layout",
                        budget.as_secs_f32()
                    )))
                }
            }
        })
    }
}

/// Runs `wait` so that it does not hold an async worker: in `block_in_place` on a worker of the
/// multi-thread runtime (its other tasks move to another thread first), as it is anywhere else.
/// A current-thread runtime has no other thread to hand its tasks to; there the wait blocks it,
/// as any synchronous call would.
fn off_the_async_worker<R>(wait: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

impl CardRenderer for PooledRenderer {
    fn render(&self, layout: &Layout, data: &CardData) -> Result<RenderedCard, PortError> {
        let (inner, owned, data) = (self.inner.clone(), layout.clone(), data.clone());
        self.run("rendering the layout", &layout.name, move || {
            inner.render(&owned, &data)
        })
    }

    fn check(&self, layout: &Layout) -> Result<(), PortError> {
        let (inner, owned) = (self.inner.clone(), layout.clone());
        self.run("checking the layout", &layout.name, move || {
            inner.check(&owned)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Draws nothing, slowly, or panics, as told by the layout's name.
    struct Fake;

    impl CardRenderer for Fake {
        fn render(&self, layout: &Layout, _: &CardData) -> Result<RenderedCard, PortError> {
            match layout.name.as_str() {
                "panics" => panic!("a bug in the renderer"),
                slow if slow.starts_with("sleeps ") => {
                    let ms = slow[7..].parse().unwrap();
                    std::thread::sleep(Duration::from_millis(ms));
                }
                _ => {}
            }
            Ok(RenderedCard {
                front_png: vec![1],
                back_png: None,
                pdf: vec![2],
            })
        }

        fn check(&self, layout: &Layout) -> Result<(), PortError> {
            self.render(layout, &CardData::default()).map(|_| ())
        }
    }

    fn named(name: &str) -> Layout {
        let mut l = tessera_print::corporate_badge();
        l.name = name.into();
        l
    }

    #[test]
    fn answers_are_passed_through() {
        let r = PooledRenderer::with(Arc::new(Fake), 1, 1, Duration::from_secs(5));
        assert_eq!(
            r.render(&named("quick"), &CardData::default()).unwrap().pdf,
            [2]
        );
        r.check(&named("quick")).unwrap();
    }

    #[test]
    fn an_overrun_is_an_error_that_says_so() {
        let r = PooledRenderer::with(Arc::new(Fake), 2, 4, Duration::from_millis(100));
        let err = r
            .render(&named("sleeps 1000"), &CardData::default())
            .unwrap_err();
        assert_eq!(
            err.message,
            "rendering the layout took longer than 0.1 s; simplify the layout"
        );
        // The overrun still holds the first thread; the second checks.
        let err = r.check(&named("sleeps 1000")).unwrap_err();
        assert_eq!(
            err.message,
            "checking the layout took longer than 0.1 s; simplify the layout"
        );
        // Both threads are still busy: the next caller waits its budget in the queue, and is
        // told so.
        let err = r.render(&named("quick"), &CardData::default()).unwrap_err();
        assert!(err.message.contains("busy"), "{}", err.message);
    }

    #[test]
    fn a_panic_is_an_error_and_the_thread_lives_on() {
        let r = PooledRenderer::with(Arc::new(Fake), 1, 1, Duration::from_secs(5));
        let err = r
            .render(&named("panics"), &CardData::default())
            .unwrap_err();
        assert!(err.message.contains("internal error"), "{}", err.message);
        r.render(&named("quick"), &CardData::default()).unwrap();
    }

    #[test]
    fn a_full_queue_is_busy_not_a_pile_up() {
        let r = PooledRenderer::with(Arc::new(Fake), 1, 1, Duration::from_secs(5));
        let call = |name: &'static str| {
            let r = r.clone();
            let t = std::thread::spawn(move || r.render(&named(name), &CardData::default()));
            std::thread::sleep(Duration::from_millis(50));
            t
        };
        // One drawing on the thread, one in the queue; the third is told to come back.
        let (drawing, queued) = (call("sleeps 500"), call("quick"));
        let err = r.render(&named("quick"), &CardData::default()).unwrap_err();
        assert_eq!(
            err.message,
            "the card renderer is busy with other cards; try again in a moment"
        );
        drawing.join().unwrap().unwrap();
        queued.join().unwrap().unwrap();
    }

    /// The point of the pool: with one async worker, a drawing called from a task does not stop
    /// the runtime's other tasks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn other_tasks_run_while_a_task_waits_for_a_drawing() {
        let r = PooledRenderer::with(Arc::new(Fake), 1, 1, Duration::from_secs(5));
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        let started = Instant::now();
        let before = ticks.load(Ordering::Relaxed);
        let drawn = tokio::spawn(async move {
            r.render(&named("sleeps 300"), &CardData::default())
                .map(|_| ticks.load(Ordering::Relaxed))
        })
        .await
        .unwrap()
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            drawn > before + 1,
            "the ticker stood still: {before} -> {drawn}"
        );
        ticker.abort();
    }
}
