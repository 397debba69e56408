//! A tree rebuilt from a restore point: the whole snapshot it rests on, then its incremental
//! snapshots in order.

use super::DataTree;
use crate::storage::SnapshotRef;

impl DataTree {
    /// Rebuilds the tree of the restore point `whole` + `deltas`: the whole snapshot's image
    /// streams into the tree, then each incremental snapshot's onto it, its znodes going in as
    /// they are read; files are checked again as they are read. No image of the current
    /// formats is held beside the tree (a whole one is 117 MB at a million znodes); files of
    /// versions 2 and 3 were held by recovery.
    pub fn from_restore_point(whole: &SnapshotRef, deltas: &[SnapshotRef]) -> Result<Self, String> {
        let mut tree = whole.read(DataTree::read_image)?;
        for d in deltas {
            let fail = |e| format!("the incremental snapshot {}: {e}", d.last_zxid());
            d.read(|image, len| tree.apply_delta_from(image, len))
                .map_err(fail)?;
            if tree.last_applied() != d.last_zxid() {
                return Err(fail(format!("its image ends at {}", tree.last_applied())));
            }
        }
        Ok(tree)
    }
}
