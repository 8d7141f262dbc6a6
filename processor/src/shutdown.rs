//! How a member stops: one signal, and every task or thread owned by someone who
//! reacts to its end. The mechanism is every stage's (`runtime::shutdown`); this
//! module says what cancels it in the processor and who owns which thread.
//!
//! The signal is one [`CancellationToken`] per member (`stop`), made in
//! [`crate::start`]. Four things cancel it:
//! - the caller's `shutdown` future resolving (SIGTERM in the binaries);
//! - a failure anywhere: a partition worker that returned an error or panicked, a
//!   failed transaction commit, a notifier whose send task panicked (each records
//!   the error first, the first one wins);
//! - the end of a thread, by any path, panics included: the consume loop's and each
//!   notifier's thread hold a [`DropGuard`](tokio_util::sync::DropGuard) of it, so a
//!   thread that unwinds takes the member down with it instead of leaving it
//!   half-alive with a green `/healthz`. (The notifiers are the `kevents-notify`
//!   crate: `crate::start` passes them this token, the same type, and they hold
//!   their guards and check it themselves; their errors and panics come back as
//!   `notify::NotifyError`, wrapped in [`ProcessorError::Notify`].)
//! - a stall: the supervisor watches the member's progress probes, and one stale for
//!   `stall_timeout_secs` ends the member with [`ProcessorError::Stalled`] instead of
//!   leaving it alive behind a red `/healthz` that only Kubernetes acts on. This is
//!   what happens when the consume loop is stuck inside librdkafka:
//!   `send_offsets_to_transaction` can block past its own timeout while the group
//!   coordinator's broker is gone (librdkafka issues #5456, #5511; seen in 6 of 17
//!   runs of `cli/tests/kafka_cluster_faults.rs` before this). The supervisor then
//!   waits for the consume loop at most the drain plus one transaction timeout and
//!   returns without it: the process exits, the broker aborts the open transaction.
//!
//! Everyone who runs checks it: the consume loop and the notifier threads test
//! [`CancellationToken::is_cancelled`] on every round (their blocking `poll`s last
//! at most 100 ms), and the supervisor task (`crate::start`) waits on it.
//!
//! Who owns which handle:
//! - the supervisor owns the consume thread's, the notifier threads' (through
//!   `notify::Notifier`) and the ops endpoint's; once `stop` is cancelled it
//!   joins them in that order, keeps the first error (a panic becomes
//!   [`ProcessorError::Panicked`] with the panic's message), and returns it: the
//!   binary exits non-zero, the supervisor (Kubernetes) restarts it and the group
//!   rebalances its partitions to the other members meanwhile;
//! - the consume loop owns each partition worker's `JoinHandle` and looks at them on
//!   every round: a worker that ended without being told to drain is a failure. On
//!   a revoke it joins the drained workers. A handle dropped unjoined (the loop
//!   unwinding) aborts its worker;
//! - each notifier thread owns the `JoinHandle` of its one send task in flight.
//!
//! After a clean stop the consume loop drains every worker and commits (see
//! [`crate::consume`]). After a failure nothing more is committed: the workers are
//! aborted, the member's open transaction is aborted (so `read_committed` readers
//! are not held up until the transaction timeout), and the next owner of each
//! partition resumes from the committed offsets, making the same outputs again.

pub use runtime::shutdown::CancellationToken;

use crate::ProcessorError;
use std::any::Any;

pub use runtime::shutdown::panic_message;

/// What a thread's end means: its own result, or [`ProcessorError::Panicked`].
pub fn thread_result(what: &str, r: std::thread::Result<Result<(), ProcessorError>>) -> Result<(), ProcessorError> {
    r.unwrap_or_else(|payload| Err(panicked(what, payload.as_ref())))
}

/// What a task's end means: its own result, [`ProcessorError::Panicked`], or
/// [`ProcessorError::Ended`] when it was cancelled.
pub fn task_result<E: Into<ProcessorError>>(what: &str, r: Result<Result<(), E>, tokio::task::JoinError>) -> Result<(), ProcessorError> {
    match r {
        Ok(r) => r.map_err(Into::into),
        Err(e) if e.is_panic() => Err(panicked(what, e.into_panic().as_ref())),
        Err(_) => Err(ProcessorError::Ended { what: what.to_owned() }),
    }
}

/// Logs the panic (its text is also on stderr, from the panic hook) and names it.
pub fn panicked(what: &str, payload: &(dyn Any + Send)) -> ProcessorError {
    let message = panic_message(payload);
    tracing::error!(%what, panic = %message, "panicked: the member stops");
    ProcessorError::Panicked { what: what.to_owned(), message }
}

/// Join a thread without blocking the runtime.
pub async fn join_thread(what: &str, handle: std::thread::JoinHandle<Result<(), ProcessorError>>) -> Result<(), ProcessorError> {
    match tokio::task::spawn_blocking(move || handle.join()).await {
        Ok(r) => thread_result(what, r),
        Err(e) => task_result::<ProcessorError>(what, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_panics_cancels_the_signal_and_names_its_panic() {
        let stop = CancellationToken::new();
        let guard = stop.clone();
        let t = std::thread::spawn(move || -> Result<(), ProcessorError> {
            let _g = guard.drop_guard();
            panic!("boom at {}", 7)
        });
        let r = thread_result("the test thread", t.join());
        assert!(stop.is_cancelled(), "the unwinding thread's guard cancels the member");
        match r {
            Err(ProcessorError::Panicked { what, message }) => assert_eq!((what.as_str(), message.as_str()), ("the test thread", "boom at 7")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_task_that_panics_or_is_aborted_is_a_failure() {
        let t = tokio::spawn(async { if true { panic!("task boom") } Ok::<(), ProcessorError>(()) });
        assert!(matches!(task_result("w", t.await), Err(ProcessorError::Panicked { message, .. }) if message == "task boom"));
        let t = tokio::spawn(async { std::future::pending::<Result<(), ProcessorError>>().await });
        t.abort();
        assert!(matches!(task_result("w", t.await), Err(ProcessorError::Ended { .. })));
    }
}
