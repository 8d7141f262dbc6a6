//! How every stage stops: one [`CancellationToken`] per process, and every task or
//! thread owned by someone who reacts to its end.
//!
//! - Who cancels it: the stage's `shutdown` future resolving (SIGTERM or Ctrl-C in
//!   the `kevents` binary, a test's own future in tests), and, in the processor, any
//!   failure of a part (a worker's error or panic, a failed commit, a notifier).
//! - Who watches it: every loop that runs, between units of work —
//!   `token.cancelled().await` in a `select!` next to the work, or
//!   `token.is_cancelled()` between blocking polls. A cancelled stage stops taking
//!   new work, finishes or hands back what is in flight, commits what is done, and
//!   returns.
//! - The collector and the sink get theirs from [`crate::ops::serve`], which also
//!   stops the ops endpoint once the stage returns; the processor makes its own in
//!   `kevents_processor::start`, because failures cancel it too (see its `shutdown`
//!   module for who owns which thread there).
//!
//! One mechanism, so a reader of any stage knows where to look, and no stage can be
//! half-stopped: there is no second flag to forget.

pub use tokio_util::sync::{CancellationToken, DropGuard};

/// The text of a panic's payload (`panic!` with a literal or a format string).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}
