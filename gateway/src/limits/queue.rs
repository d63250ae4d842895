//! Burst control at the door: a concurrency limit with a bounded, timed wait queue (DESIGN.md §7).

use freerouter::metrics as m;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a request got no slot.
#[derive(Debug, PartialEq, Eq)]
pub enum QueueRefusal {
    /// The queue was already at its cap.
    Full,
    /// The request waited its whole allowance.
    TimedOut,
}

/// A slot upstream; dropping it lets the next request in.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
    }
}

/// A place in the wait queue, given back however the wait ends (a slot, a timeout, or the
/// client leaving while queued).
struct QueuePlace<'a> {
    waiting: &'a AtomicUsize,
}

impl<'a> QueuePlace<'a> {
    fn take(waiting: &'a AtomicUsize, max_queue: usize) -> Option<Self> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= max_queue {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        metrics::gauge!(m::QUEUED).increment(1.0);
        Some(Self { waiting })
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(m::QUEUED).decrement(1.0);
    }
}

pub struct ConcurrencyLimiter {
    semaphore: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queue: usize,
    queue_timeout: Duration,
}

impl ConcurrencyLimiter {
    pub fn new(max_concurrent: usize, max_queue: usize, queue_timeout: Duration) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(max_concurrent)),
            waiting: AtomicUsize::new(0),
            max_queue,
            queue_timeout,
        }
    }

    /// Takes a slot at once, or waits in the queue for one.
    pub async fn acquire(&self) -> Result<Slot, QueueRefusal> {
        let permit = match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let Some(_place) = QueuePlace::take(&self.waiting, self.max_queue) else {
                    return Err(QueueRefusal::Full);
                };
                match tokio::time::timeout(
                    self.queue_timeout,
                    self.semaphore.clone().acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(QueueRefusal::TimedOut),
                }
            }
        };
        metrics::gauge!(m::IN_FLIGHT).increment(1.0);
        Ok(Slot { _permit: permit })
    }

    /// A fair `Retry-After` for a refused request: about one queue allowance, at least a second.
    pub fn retry_after_secs(&self) -> u64 {
        self.queue_timeout.as_secs().clamp(1, 30)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_long_wait_times_out() {
        let limiter = ConcurrencyLimiter::new(1, 1, Duration::from_millis(50));
        let held = limiter.acquire().await.unwrap();
        let waiter = limiter.acquire();
        let (waited, refused) = tokio::join!(waiter, async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            limiter.acquire().await
        });
        assert_eq!(refused.err(), Some(QueueRefusal::Full));
        assert_eq!(waited.err(), Some(QueueRefusal::TimedOut));
        drop(held);
        assert!(limiter.acquire().await.is_ok());
    }

    #[tokio::test]
    async fn a_client_leaving_the_queue_gives_its_place_back() {
        let limiter = ConcurrencyLimiter::new(1, 1, Duration::from_secs(60));
        let _held = limiter.acquire().await.unwrap();
        for _ in 0..3 {
            let waiting = limiter.acquire();
            // The client goes away while queued.
            assert!(
                tokio::time::timeout(Duration::from_millis(5), waiting)
                    .await
                    .is_err()
            );
        }
        let queued_again = tokio::time::timeout(Duration::from_millis(5), limiter.acquire()).await;
        assert!(
            queued_again.is_err(),
            "still queued (not refused as full): the places came back"
        );
    }
}
