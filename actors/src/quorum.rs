//! Majority quorums.

/// Whether `count` voters out of `voters` form a majority.
pub fn is_quorum(count: usize, voters: usize) -> bool {
    count > voters / 2
}
