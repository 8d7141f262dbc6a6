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
//! - **one at a time, in order**: batches are written strictly in submission order,
//!   one after the other. Per (table, Kafka partition, raw partition) the rows
//!   therefore land in position order, so a high-water mark in `sink_progress` never
//!   moves past a row that is not stored (see `progress`).
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
    pub fn start(mut ctx: WriteCtx) -> std::io::Result<Writer> {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Submitted>();
        let (done_tx, done) = mpsc::unbounded_channel();
        let in_flight = InFlight::default();
        let flight = in_flight.clone();
        let (abandon, mut abandoned) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new().name("sink-writer".into()).spawn(move || {
            rt.block_on(async move {
                loop {
                    let Submitted { loader, job } = tokio::select! {
                        biased;
                        _ = &mut abandoned => return,
                        next = rx.recv() => match next {
                            Some(s) => s,
                            None => return,
                        },
                    };
                    let (table, rows) = (job.table(), job.rows());
                    let result = tokio::select! {
                        biased;
                        _ = &mut abandoned => return,
                        r = job.write(&mut ctx) => r,
                    };
                    tracing::debug!(table, rows, ?result, "batch written");
                    let _ = done_tx.send(Done { loader, result });
                    flight.finish();
                }
            })
        })?;
        Ok(Writer { jobs: Some(jobs), abandon: Some(abandon), done, in_flight, thread: Some(thread) })
    }

    /// The in-flight count (shared with the revoke callback).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// Queue a batch; it is written after every batch submitted before it.
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
