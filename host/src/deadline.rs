//! Deadlines for store calls in flight: one watcher thread per process
//! instead of a runtime timer per call.
//!
//! A `tokio::time::timeout` arms a timer entry in the runtime's timer wheel
//! for every call that waits, and disarms it when the call returns: about
//! 2,700 instructions per call, a third of the host's own path on a
//! networked store (docs/benchmarks.md, part 9). Store calls almost never
//! time out, so the host keeps their deadlines in a slab instead (a lock, a
//! slot and a clone of the waker: a few hundred instructions) and one
//! thread looks at the slab every [`TICK`], waking the calls whose deadline
//! has passed. A deadline therefore fires between its time and one tick
//! later (plus scheduling delay), never before it.
//!
//! The watcher is a plain thread, not a task, so it does not depend on the
//! runtime a call happens to run on (an embedding host may use several).
//! It parks after [`IDLE_TICKS`] ticks without a call in flight and is
//! unparked by the next registration; a steady stream of calls, even one
//! at a time, keeps it ticking rather than waking it per call.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How often the watcher looks for expired deadlines: a deadline's
/// resolution.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// Ticks without a call in flight after which the watcher parks (1 s).
const IDLE_TICKS: u32 = 100;

/// Slabs of registrations; a thread registers in one of them, so callers on
/// different threads rarely take the same lock.
const SHARDS: usize = 8;

/// The outcome of [`run`]: the call's own output, or its deadline passed
/// first.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    Done(T),
    TimedOut,
}

/// Runs `fut`, ending it with [`Outcome::TimedOut`] once `limit` has passed
/// (within [`TICK`]). A future that is ready on its first poll (an
/// in-process store) never registers a deadline.
pub(crate) async fn run<T>(limit: Duration, fut: impl Future<Output = T>) -> Outcome<T> {
    let mut fut = pin!(fut);
    let mut registration: Option<Registration> = None;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(output) = fut.as_mut().poll(cx) {
            // Dropping the registration (with the closure) frees its slot.
            return Poll::Ready(Outcome::Done(output));
        }
        match &registration {
            None => {
                registration = Some(Registration::new(Instant::now() + limit, cx.waker()));
                Poll::Pending
            }
            Some(r) if r.expired_or_rewake(cx.waker()) => Poll::Ready(Outcome::TimedOut),
            Some(_) => Poll::Pending,
        }
    })
    .await
}

/// One call's place in a shard, freed when dropped.
struct Registration {
    shard: usize,
    slot: usize,
}

impl Registration {
    fn new(deadline: Instant, waker: &Waker) -> Self {
        let watcher = watcher();
        let shard = shard_of_this_thread();
        let slot = {
            let mut slab = watcher.lock(shard);
            let entry = Entry {
                deadline,
                waker: Some(waker.clone()),
                expired: false,
            };
            match slab.free.pop() {
                Some(slot) => {
                    slab.entries[slot] = Some(entry);
                    slot
                }
                None => {
                    slab.entries.push(Some(entry));
                    slab.entries.len() - 1
                }
            }
        };
        // Pairs with the watcher's store of `parked` before its last look
        // at the slabs: either it sees this entry, or this sees it parked.
        if watcher.parked.load(Ordering::SeqCst) && watcher.parked.swap(false, Ordering::SeqCst) {
            watcher.thread.unpark();
        }
        Self { shard, slot }
    }

    /// Whether the deadline has passed; if not, makes sure the watcher
    /// would wake the task polling now.
    fn expired_or_rewake(&self, waker: &Waker) -> bool {
        let mut slab = watcher().lock(self.shard);
        let entry = slab.entries[self.slot]
            .as_mut()
            .expect("a registration's slot stays taken until it is dropped");
        if entry.expired {
            return true;
        }
        if !entry.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            entry.waker = Some(waker.clone());
        }
        false
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut slab = watcher().lock(self.shard);
        slab.entries[self.slot] = None;
        slab.free.push(self.slot);
    }
}

struct Entry {
    deadline: Instant,
    /// Taken by the watcher when it marks the entry expired.
    waker: Option<Waker>,
    expired: bool,
}

#[derive(Default)]
struct Slab {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
}

impl Slab {
    fn live(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}

struct Watcher {
    shards: [Mutex<Slab>; SHARDS],
    /// Set by the watcher before it parks; a registration that clears it
    /// unparks the watcher.
    parked: AtomicBool,
    thread: Thread,
}

impl Watcher {
    fn lock(&self, shard: usize) -> MutexGuard<'_, Slab> {
        // The slab is consistent at every await-free step, so a panic
        // elsewhere while it was held cannot leave it half-changed.
        self.shards[shard]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live(&self) -> usize {
        (0..SHARDS).map(|s| self.lock(s).live()).sum()
    }

    /// The watcher thread's loop: wake expired calls every tick, park when
    /// idle.
    fn watch(&self) -> ! {
        let mut idle_ticks = 0;
        let mut due = Vec::new();
        loop {
            let now = Instant::now();
            let mut live = 0;
            for shard in 0..SHARDS {
                let mut slab = self.lock(shard);
                live += slab.live();
                for entry in slab.entries.iter_mut().flatten() {
                    if !entry.expired && entry.deadline <= now {
                        entry.expired = true;
                        due.extend(entry.waker.take());
                    }
                }
            }
            // Woken outside the locks: a waker may run code that registers.
            due.drain(..).for_each(Waker::wake);
            idle_ticks = if live == 0 { idle_ticks + 1 } else { 0 };
            if idle_ticks >= IDLE_TICKS {
                self.parked.store(true, Ordering::SeqCst);
                if self.live() == 0 {
                    // Until a registration clears `parked` (a spurious
                    // return looks at it again).
                    while self.parked.load(Ordering::SeqCst) {
                        std::thread::park();
                    }
                } else {
                    self.parked.store(false, Ordering::SeqCst);
                }
                idle_ticks = 0;
            } else {
                std::thread::park_timeout(TICK);
            }
        }
    }
}

fn watcher() -> &'static Watcher {
    static WATCHER: OnceLock<Watcher> = OnceLock::new();
    WATCHER.get_or_init(|| {
        let thread = std::thread::Builder::new()
            .name("wasikv-deadlines".into())
            .spawn(|| watcher().watch())
            .expect("the deadline watcher thread starts");
        Watcher {
            shards: Default::default(),
            parked: AtomicBool::new(false),
            thread: thread.thread().clone(),
        }
    })
}

fn shard_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registrations still in the slabs (other tests may run alongside, so
    /// tests compare their own before/after only where they run alone).
    fn live() -> usize {
        watcher().live()
    }

    #[tokio::test]
    async fn a_call_that_never_answers_times_out_after_its_limit() {
        let limit = Duration::from_millis(50);
        let started = Instant::now();
        let outcome = run(limit, std::future::pending::<()>()).await;
        let took = started.elapsed();
        assert!(matches!(outcome, Outcome::TimedOut));
        assert!(took >= limit, "fired early: after {took:?}");
        // Generous: a loaded CI machine delays the watcher's tick.
        assert!(
            took < limit + Duration::from_secs(5),
            "fired late: {took:?}"
        );
    }

    #[tokio::test]
    async fn a_call_that_answers_in_time_keeps_its_output() {
        let outcome = run(Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            7
        })
        .await;
        assert!(matches!(outcome, Outcome::Done(7)));
        // Ready at once: no registration at all.
        assert!(matches!(
            run(Duration::from_millis(1), async { 8 }).await,
            Outcome::Done(8)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_each_get_their_own_deadline_and_free_their_slots() {
        let tasks: Vec<_> = (0..64u64)
            .map(|i| {
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        // Answers well before its limit.
                        run(Duration::from_secs(10), async {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            i
                        })
                        .await
                    } else {
                        run(Duration::from_millis(20 + i), std::future::pending::<u64>()).await
                    }
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Outcome::Done(v) => assert_eq!((i % 2, v), (0, i as u64)),
                Outcome::TimedOut => assert_eq!(i % 2, 1, "call {i} timed out"),
            }
        }
    }

    #[tokio::test]
    async fn a_dropped_call_frees_its_slot_and_the_watcher_wakes_after_idling() {
        // Cancelled while waiting (as `select!` or a dropped request does).
        let cancelled = tokio::time::timeout(
            Duration::from_millis(20),
            run(Duration::from_secs(60), std::future::pending::<()>()),
        )
        .await;
        assert!(cancelled.is_err());
        // Let the watcher go idle and park (no other test holds a slot for
        // long), then check that a new deadline still fires.
        let quiet = Instant::now();
        while live() > 0 && quiet.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(live(), 0, "a dropped call left its slot taken");
        tokio::time::sleep(TICK * (IDLE_TICKS + 20)).await;
        let outcome = run(Duration::from_millis(30), std::future::pending::<()>()).await;
        assert!(matches!(outcome, Outcome::TimedOut));
    }
}
