//! ZooKeeper's AdminServer: its HTTP commands (`/commands/...`) with Apache's JSON shapes.

pub mod commands;
pub mod http;
