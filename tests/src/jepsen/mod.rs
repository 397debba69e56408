//! A Jepsen-style run on real server processes: a userspace proxy on every peer link, a
//! nemesis that kills, pauses and partitions servers in cycles, concurrent client load, and a
//! linearizability checker over the recorded history.

pub mod linearizability;
pub mod load;
pub mod nemesis;
pub mod proxy;
pub mod run;
