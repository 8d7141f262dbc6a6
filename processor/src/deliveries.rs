//! Delivery acknowledgements of the member's producer, counted per worker and
//! output kind instead of a future per output.
//!
//! Why: a worker only needs to know how many of its outputs are still in flight
//! (backpressure, `max_in_flight`), whether one failed (fatal), and how many of
//! each kind were acknowledged (metrics). rdkafka's `FutureProducer` gives every
//! record a boxed oneshot channel that the producer's polling thread completes and
//! the worker polls: two allocations, a wake-up and a poll per output, on the two
//! cores the step itself needs. Here the delivery callback adds one to a counter
//! of the worker's [`Acks`] (its `Arc` travels as the record's opaque pointer, the
//! output kind in the pointer's low bits: no allocation) and wakes the worker only
//! when it waits.
//!
//! Exactly-once does not depend on these counters: a commit waits until the
//! producer has nothing in flight (`txn`).

use rdkafka::client::ClientContext;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::util::IntoOpaque;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::output::OutputKind;

/// The member's transactional producer.
pub type MemberProducer = ThreadedProducer<Deliveries>;

/// The producer's context: routes each delivery report to its worker's [`Acks`].
#[derive(Debug, Default)]
pub struct Deliveries;

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Tagged;

    fn delivery(&self, result: &DeliveryResult<'_>, tagged: Tagged) {
        let Tagged(acks, kind) = tagged;
        match result {
            Ok(_) => {
                acks.delivered[kind as usize].fetch_add(1, Ordering::SeqCst);
            }
            Err((e, _)) => {
                acks.failed.lock().unwrap().get_or_insert_with(|| (kind, e.to_string()));
                acks.failures.fetch_add(1, Ordering::SeqCst);
            }
        }
        // SeqCst here and in `wait_until` (a store then a load on each side): with
        // weaker orderings both loads may miss the other side's store, and the
        // worker would sleep through this report.
        if acks.waiting.load(Ordering::SeqCst) {
            acks.wake.notify_one();
        }
    }
}

/// One worker's delivery counts (aligned so that an output kind fits in the low
/// bits of a pointer to it).
#[derive(Debug, Default)]
#[repr(align(8))]
pub struct Acks {
    delivered: [AtomicU64; OutputKind::COUNT],
    failures: AtomicU64,
    /// The first failed delivery: its kind and error.
    failed: Mutex<Option<(OutputKind, String)>>,
    /// Set while the worker waits for acknowledgements; the callback then wakes it.
    waiting: AtomicBool,
    wake: tokio::sync::Notify,
}

const _: () = assert!(OutputKind::COUNT <= 8, "the kind must fit in 3 low bits");

impl Acks {
    /// Acknowledged outputs of `kind` so far.
    pub fn delivered(&self, kind: OutputKind) -> u64 {
        self.delivered[kind as usize].load(Ordering::Acquire)
    }

    /// Outputs whose delivery ended, acknowledged or failed.
    pub fn done(&self) -> u64 {
        self.delivered.iter().map(|d| d.load(Ordering::SeqCst)).sum::<u64>() + self.failures.load(Ordering::SeqCst)
    }

    /// The first failed delivery, if any: its kind and error.
    pub fn failure(&self) -> Option<(OutputKind, String)> {
        self.failed.lock().unwrap().clone()
    }

    /// Wait until `ready()` holds, woken by delivery reports.
    pub async fn wait_until(&self, mut ready: impl FnMut(&Acks) -> bool) {
        while !ready(self) {
            self.waiting.store(true, Ordering::SeqCst);
            // Checked again after raising the flag: a report in between left a permit.
            if ready(self) {
                break;
            }
            self.wake.notified().await;
        }
        self.waiting.store(false, Ordering::Release);
    }

    /// The opaque a record of `kind` carries to its delivery report.
    pub fn tag(self: &Arc<Self>, kind: OutputKind) -> Tagged {
        Tagged(self.clone(), kind)
    }
}

/// A worker's [`Acks`] and an output kind, carried through librdkafka as one
/// tagged pointer.
pub struct Tagged(Arc<Acks>, OutputKind);

impl IntoOpaque for Tagged {
    fn into_ptr(self) -> *mut c_void {
        let p = Arc::into_raw(self.0) as usize;
        debug_assert_eq!(p & 7, 0);
        (p | self.1 as usize) as *mut c_void
    }

    unsafe fn from_ptr(ptr: *mut c_void) -> Self {
        let p = ptr as usize;
        // SAFETY: `ptr` came from `into_ptr`: an `Arc::into_raw` pointer (8-aligned)
        // with the kind in its 3 low bits; librdkafka hands each back exactly once.
        let acks = unsafe { Arc::from_raw((p & !7) as *const Acks) };
        Tagged(acks, OutputKind::ALL[p & 7])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tag_round_trips_and_a_waiter_wakes_on_a_report() {
        let acks = Arc::new(Acks::default());
        for kind in OutputKind::ALL {
            let Tagged(a, k) = unsafe { Tagged::from_ptr(acks.tag(kind).into_ptr()) };
            assert!(Arc::ptr_eq(&a, &acks) && k == kind);
        }
        assert_eq!(Arc::strong_count(&acks), 1, "every tag's reference came back");
        let a = acks.clone();
        let waiter = tokio::spawn(async move { a.wait_until(|a| a.done() >= 2).await });
        tokio::task::yield_now().await;
        acks.delivered[OutputKind::Alert as usize].fetch_add(1, Ordering::Release);
        acks.failures.fetch_add(1, Ordering::Release);
        acks.wake.notify_one();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!((acks.delivered(OutputKind::Alert), acks.done()), (1, 2));
    }
}
