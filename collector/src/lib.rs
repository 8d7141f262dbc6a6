//! kevents collector.
