//! A tree rebuilt from a restore point: the whole snapshot it rests on, then its incremental
//! snapshots in order.

use super::DataTree;
use crate::storage::WholeSnapshot;
use ensemble_messages::Snapshot;

impl DataTree {
    /// Rebuilds the tree of the restore point `whole` + `deltas`: the whole snapshot's image
    /// streams into the tree (its file is checked again as it is read), then each incremental
    /// snapshot is applied and let go. At a million znodes a whole image is 117 MB beside the
    /// tree it builds; it is never held.
    pub fn from_restore_point(
        whole: &WholeSnapshot,
        deltas: Vec<Snapshot>,
    ) -> Result<Self, String> {
        let mut tree = whole.read(DataTree::read_image)?;
        for d in deltas {
            let fail = |e| format!("the incremental snapshot {}: {e}", d.last_zxid);
            tree.apply_delta(&d.state).map_err(fail)?;
            if tree.last_applied() != d.last_zxid {
                return Err(fail(format!("its image ends at {}", tree.last_applied())));
            }
        }
        Ok(tree)
    }
}
