//! kevents sink.
