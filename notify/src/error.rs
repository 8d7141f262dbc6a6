//! Why the notifiers could not start or stopped, and how a thread's or task's end
//! becomes one of those reasons (a panic included, with its message). The caller
//! (the processor) owns the stop signal and the decision: every error here ends
//! the member, and a restart is the remedy (the sent-markers make it safe).

use runtime::kafka::FieldError;
use std::any::Any;

/// Why the notifiers stopped with an error. None is retried here: the caller
/// stops and its supervisor restarts it.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Permanent: a setting of `alerts:` is wrong (the field is named).
    #[error("invalid config: {0}")]
    Config(#[from] FieldError),
    /// Creating a consumer, producer or admin client, or subscribing, failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The sent-markers topic could not be created (`create_topic_partitions`).
    #[error("sent-markers topic: {0}")]
    Topic(#[from] runtime::kafka::TopicError),
    /// A notifier thread or its send task panicked: a bug, logged loudly.
    #[error("{what} panicked: {message}")]
    Panicked { what: String, message: String },
    /// A send task ended without an outcome and without panicking (aborted).
    #[error("{what} ended unexpectedly")]
    Ended { what: String },
}

pub use runtime::shutdown::panic_message;

/// Logs the panic (its text is also on stderr, from the panic hook) and names it.
pub fn panicked(what: &str, payload: &(dyn Any + Send)) -> NotifyError {
    let message = panic_message(payload);
    tracing::error!(%what, panic = %message, "panicked: the member stops");
    NotifyError::Panicked { what: what.to_owned(), message }
}

/// What a send task's end means: fine, [`NotifyError::Panicked`], or
/// [`NotifyError::Ended`] when it was cancelled.
pub fn task_result(what: &str, r: Result<(), tokio::task::JoinError>) -> Result<(), NotifyError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_panic() => Err(panicked(what, e.into_panic().as_ref())),
        Err(_) => Err(NotifyError::Ended { what: what.to_owned() }),
    }
}

/// Join a notifier thread without blocking the runtime: its own result, or
/// [`NotifyError::Panicked`].
pub async fn join_thread(what: &str, handle: std::thread::JoinHandle<Result<(), NotifyError>>) -> Result<(), NotifyError> {
    match tokio::task::spawn_blocking(move || handle.join()).await {
        Ok(r) => r.unwrap_or_else(|payload| Err(panicked(what, payload.as_ref()))),
        Err(e) => task_result(what, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_thread_or_task_that_panics_is_named_with_its_message() {
        let t = std::thread::spawn(|| -> Result<(), NotifyError> { panic!("boom at {}", 7) });
        match join_thread("notifier hook", t).await {
            Err(NotifyError::Panicked { what, message }) => assert_eq!((what.as_str(), message.as_str()), ("notifier hook", "boom at 7")),
            other => panic!("unexpected {other:?}"),
        }
        let t = tokio::spawn(async { panic!("task boom") });
        assert!(matches!(task_result("s", t.await), Err(NotifyError::Panicked { message, .. }) if message == "task boom"));
        let t = tokio::spawn(std::future::pending::<()>());
        t.abort();
        assert!(matches!(task_result("s", t.await), Err(NotifyError::Ended { .. })));
        assert!(join_thread("ok", std::thread::spawn(|| Ok(()))).await.is_ok());
    }
}
