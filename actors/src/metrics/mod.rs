//! Metrics: the figures a server keeps, ZooKeeper's Prometheus endpoint, and the Prometheus
//! text format they are rendered in.

mod exposition;
pub mod http;
pub mod process;
mod server;
pub mod spark;
mod summary;
mod text;

pub use exposition::render;
pub use server::{Latency, ServerMetrics};
pub use summary::{Summary, SummarySnapshot, QUANTILES};
pub use text::{Exposition, CONTENT_TYPE};
