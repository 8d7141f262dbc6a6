//! The writer: batches go into ClickHouse on a thread of their own while the consume
//! loop polls and decodes the next ones.
//!
//! Why a thread and not a task: the consume loop must be able to wait for the
//! in-flight batches from inside librdkafka's revoke callback (see below), which runs
//! synchronously on the task that polls; a task on the same runtime could be stuck
//! behind it (a current-thread runtime, or tokio's not-stealable LIFO slot). The
//! writer owns a current-thread runtime on its own OS thread, so waiting for it from a
//! callback always ends.
//!
//! Guarantees the consume loop builds on:
//! - **in order per lane**: the loop hands a lane (a table's share of the Kafka
//!   partitions) its next batch only after the previous one is done, and batches of
//!   different lanes run concurrently. Per (table, Kafka partition, raw partition) the
//!   rows therefore land in position order, so a high-water mark in `sink_progress`
//!   never moves past a row that is not stored (see `progress`).
//! - **revocation waits**: [`InFlight::wait_idle`] returns once every submitted batch
//!   has landed (or was dead-lettered, or the sink stopped). The revoke callback calls
//!   it before it returns, so no INSERT of a revoked partition can land after the new
//!   owner loaded its marks — which would store its rows twice.
//! - **done before idle**: a batch's [`Done`] is queued before the in-flight count
//!   drops, so the loop sees every result that `wait_idle` waited for.
//! - **dies with its owner**: dropping the [`Writer`] (the consume loop ended or was
//!   aborted) cancels the batch being written and drops the queued ones, as a crash
//!   of the process would; a graceful stop waits for every batch before that.

use crate::batch::{Job, WriteCtx, Written};
use crate::insert::InsertError;
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::mpsc;

/// A batch's result, for the loader it came from.
#[derive(Debug)]
pub struct Done {
    pub loader: usize,
    pub result: Result<Written, InsertError>,
}

/// The number of batches submitted and not yet finished, and a way to wait for none.
#[derive(Clone, Default)]
pub struct InFlight {
    inner: Arc<(Mutex<usize>, Condvar)>,
}

impl InFlight {
    fn add(&self) {
        *self.inner.0.lock().unwrap() += 1;
    }

    fn finish(&self) {
        let mut n = self.inner.0.lock().unwrap();
        *n -= 1;
        if *n == 0 {
            self.inner.1.notify_all();
        }
    }

    /// Batches submitted and not finished.
    pub fn count(&self) -> usize {
        *self.inner.0.lock().unwrap()
    }

    /// Block the calling thread until no batch is in flight.
    pub fn wait_idle(&self) {
        let mut n = self.inner.0.lock().unwrap();
        while *n > 0 {
            n = self.inner.1.wait(n).unwrap();
        }
    }
}

struct Submitted {
    loader: usize,
    job: Box<dyn Job>,
}

/// Sends a batch's [`Done`] and lowers the in-flight count when dropped: after the
/// write, or while unwinding from a panic in it.
struct Report {
    loader: usize,
    table: &'static str,
    done_tx: mpsc::UnboundedSender<Done>,
    flight: InFlight,
    result: Option<Result<Written, InsertError>>,
}

impl Drop for Report {
    fn drop(&mut self) {
        let result = self.result.take().unwrap_or_else(|| Err(InsertError::Panicked { table: self.table.to_string() }));
        let _ = self.done_tx.send(Done { loader: self.loader, result });
        self.flight.finish();
    }
}

/// The handle the consume loop holds.
pub struct Writer {
    jobs: Option<mpsc::UnboundedSender<Submitted>>,
    /// Dropped with the handle: the thread abandons what it is doing.
    abandon: Option<tokio::sync::oneshot::Sender<()>>,
    done: mpsc::UnboundedReceiver<Done>,
    in_flight: InFlight,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Start the writer thread.
    pub fn start(ctx: WriteCtx) -> std::io::Result<Writer> {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Submitted>();
        let (done_tx, done) = mpsc::unbounded_channel();
        let in_flight = InFlight::default();
        let flight = in_flight.clone();
        let (abandon, mut abandoned) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("sink-writer".into()).spawn(move || {
            rt.block_on(async move {
                // Batches run concurrently: the consume loop never submits a lane's
                // next batch before the previous one is done, so two batches at once
                // are always of different lanes (disjoint Kafka partitions).
                let mut running = tokio::task::JoinSet::new();
                loop {
                    let Submitted { loader, job } = tokio::select! {
                        biased;
                        _ = &mut abandoned => return, // dropping `running` aborts its batches
                        Some(_) = running.join_next(), if !running.is_empty() => continue,
                        next = rx.recv() => match next {
                            Some(s) => s,
                            None => {
                                while running.join_next().await.is_some() {}
                                return;
                            }
                        },
                    };
                    let (mut ctx, done_tx, flight) = (ctx.clone(), done_tx.clone(), flight.clone());
                    running.spawn(async move {
                        // Reports the batch even if writing it panics (a bug): the
                        // loop then stops loudly instead of waiting for it forever.
                        let mut report = Report { loader, table: job.table(), done_tx, flight, result: None };
                        let rows = job.rows();
                        let result = job.write(&mut ctx).await;
                        tracing::debug!(table = report.table, rows, ?result, "batch written");
                        report.result = Some(result);
                    });
                }
            })
        })?;
        Ok(Writer { jobs: Some(jobs), abandon: Some(abandon), done, in_flight, thread: Some(thread) })
    }

    /// The in-flight count (shared with the revoke callback).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// Queue a batch; it is written at once, beside the batches of other lanes.
    pub fn submit(&self, loader: usize, job: Box<dyn Job>) {
        self.in_flight.add();
        if let Some(jobs) = &self.jobs {
            if jobs.send(Submitted { loader, job }).is_ok() {
                return;
            }
        }
        // The writer thread is gone (it cannot be: it lives as long as this handle).
        self.in_flight.finish();
        unreachable!("the sink writer thread ended early");
    }

    /// The next finished batch, waiting for it.
    pub async fn next_done(&mut self) -> Option<Done> {
        self.done.recv().await
    }

    /// A finished batch, if one is there.
    pub fn try_done(&mut self) -> Option<Done> {
        self.done.try_recv().ok()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Cancel what is being written (a crash would), close the queue, and wait
        // for the thread, so nothing of this owner lands after it is gone.
        self.abandon.take();
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::BoxFuture;
    use crate::insert::InsertCtx;
    use std::time::Duration;

    /// A batch whose write panics (a bug stand-in) or stores `n` rows without I/O.
    enum Fake {
        Panics,
        Stores(usize),
    }

    impl Job for Fake {
        fn table(&self) -> &'static str {
            "events"
        }
        fn rows(&self) -> usize {
            1
        }
        fn write<'a>(self: Box<Self>, _w: &'a mut WriteCtx) -> BoxFuture<'a, Result<Written, InsertError>> {
            Box::pin(async move {
                match *self {
                    Fake::Panics => panic!("a bug while writing"),
                    Fake::Stores(n) => Ok(Written { stored: n, rejected: 0 }),
                }
            })
        }
    }

    #[tokio::test]
    async fn a_batch_that_panics_is_reported_and_never_left_in_flight() {
        let ctx = WriteCtx {
            insert: InsertCtx {
                client: clickhouse::Client::default(),
                metrics: crate::metrics::Metrics::register(&mut Default::default()),
                health: Default::default(),
                failing: crate::retrying::Failing::detached(),
                max_backoff: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                stop: runtime::shutdown::CancellationToken::new(),
            },
            producer: rdkafka::ClientConfig::new().set("bootstrap.servers", "127.0.0.1:1").create().unwrap(),
            dlq_topic: "dlq".into(),
        };
        let mut w = Writer::start(ctx).unwrap();
        w.submit(3, Box::new(Fake::Panics));
        w.submit(4, Box::new(Fake::Stores(7)));
        let mut got = [w.next_done().await.unwrap(), w.next_done().await.unwrap()];
        got.sort_by_key(|d| d.loader);
        assert!(matches!(&got[0], Done { loader: 3, result: Err(InsertError::Panicked { .. }) }), "{:?}", got[0]);
        assert!(matches!(&got[1], Done { loader: 4, result: Ok(Written { stored: 7, rejected: 0 }) }), "{:?}", got[1]);
        w.in_flight().wait_idle();
        assert_eq!(w.in_flight().count(), 0);
    }
}
