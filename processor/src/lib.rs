//! kevents processor.
//!
//! Layout:
//! - `classify`: category and severity of each event, from the ordered rules of
//!   `rules/classify.yaml` plus users' rule files (where severity is decided).
//! - `metadata`: facts pulled out of each event (container, image, node, exit
//!   code, scheduling breakdown, owner, ...), extractors in `rules/metadata.yaml`.
//! - `memo`: the bounded per-worker memo both of them cache results in.

pub mod classify;
pub mod memo;
pub mod metadata;
