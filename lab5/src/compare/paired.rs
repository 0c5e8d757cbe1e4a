//! Both models on the same test photos: on how many photos each is right where the other
//! is wrong, and McNemar's exact test of "both are equally accurate"
//! ([`crate::train::metrics::mcnemar_exact`]).

use crate::data::SplitName;
use crate::train::metrics::{mcnemar_exact, THRESHOLD};
use crate::train::record::Scored;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The two models' answers on the photos both scored, paired by manifest id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    /// Photos both models scored.
    pub photos: usize,
    /// Photos both got right.
    pub both_right: usize,
    /// Photos only the CNN got right.
    pub only_cnn: usize,
    /// Photos only the transfer model got right.
    pub only_transfer: usize,
    /// Photos both got wrong.
    pub both_wrong: usize,
    /// McNemar's exact two-sided p-value from `only_cnn` and `only_transfer`.
    pub p_value: f64,
}

impl Paired {
    /// The counts of photos by who got them right (CNN and transfer, in that order), with
    /// the test's p-value.
    pub fn from_counts(
        both_right: usize,
        only_cnn: usize,
        only_transfer: usize,
        both_wrong: usize,
    ) -> Paired {
        Paired {
            photos: both_right + only_cnn + only_transfer + both_wrong,
            both_right,
            only_cnn,
            only_transfer,
            both_wrong,
            p_value: mcnemar_exact(only_cnn as u64, only_transfer as u64),
        }
    }

    /// The test-split predictions of both runs (`predictions.csv`), paired by id; photos
    /// only one run scored are left out.
    pub(crate) fn of_test(cnn: &[Scored], transfer: &[Scored]) -> Paired {
        let right = |s: &Scored| (s.p_dog > THRESHOLD) == (s.label.index() == 1);
        let of_cnn: HashMap<&str, bool> = cnn
            .iter()
            .filter(|s| s.split == SplitName::Test)
            .map(|s| (s.id.as_str(), right(s)))
            .collect();
        let mut counts = [0usize; 4];
        for t in transfer.iter().filter(|s| s.split == SplitName::Test) {
            if let Some(&c) = of_cnn.get(t.id.as_str()) {
                counts[match (c, right(t)) {
                    (true, true) => 0,
                    (true, false) => 1,
                    (false, true) => 2,
                    (false, false) => 3,
                }] += 1;
            }
        }
        Paired::from_counts(counts[0], counts[1], counts[2], counts[3])
    }

    /// Photos on which the two disagree.
    pub fn disagreements(&self) -> usize {
        self.only_cnn + self.only_transfer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Class;

    use crate::train::board::tests::row;

    #[test]
    fn photos_are_paired_by_id_on_the_test_split_only() {
        use Class::{Cat, Dog};
        use SplitName::{Test, Train};
        let cnn = [
            row("a", Test, Dog, 0.9),  // right
            row("b", Test, Cat, 0.8),  // wrong
            row("c", Test, Cat, 0.2),  // right
            row("d", Test, Dog, 0.3),  // wrong
            row("e", Train, Dog, 0.1), // another split
            row("f", Test, Dog, 0.9),  // the transfer model has no f
        ];
        let transfer = [
            row("d", Test, Dog, 0.3),  // wrong: both wrong
            row("c", Test, Cat, 0.7),  // wrong: only the CNN right
            row("b", Test, Cat, 0.1),  // right: only the transfer model right
            row("a", Test, Dog, 0.95), // right: both right
            row("e", Train, Dog, 0.9),
        ];
        let p = Paired::of_test(&cnn, &transfer);
        assert_eq!(
            (
                p.photos,
                p.both_right,
                p.only_cnn,
                p.only_transfer,
                p.both_wrong
            ),
            (4, 1, 1, 1, 1)
        );
        assert_eq!((p.disagreements(), p.p_value), (2, 1.0));
        let q = Paired::from_counts(89, 1, 9, 1);
        assert_eq!(q.photos, 100);
        assert!((q.p_value - 22.0 / 1024.0).abs() < 1e-12);
    }
}
