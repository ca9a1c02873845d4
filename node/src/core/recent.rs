//! The latest ordered transactions, in memory: `/order` serves them the
//! moment consensus decides them, without waiting for the ledger writer to
//! apply the round to redb (which it does lazily, see `writer`). The order
//! is final once decided: a crash before it reaches the disk re-derives the
//! same records by replay.

use std::collections::VecDeque;

use crate::store::{PageLimit, TxRecord};

/// Records kept at most...
const MAX_RECORDS: usize = 200_000;
/// ...and transaction bytes.
const MAX_BYTES: usize = 64 << 20;

/// A window of the order: consecutive positions from `first`.
#[derive(Debug, Default)]
pub struct RecentOrder {
    first: u64,
    txs: VecDeque<TxRecord>,
    bytes: usize,
}

impl RecentOrder {
    /// An empty window whose next record will be at `next`.
    pub fn starting_at(next: u64) -> RecentOrder {
        RecentOrder {
            first: next,
            ..RecentOrder::default()
        }
    }

    /// Position of the next record to come.
    pub fn next(&self) -> u64 {
        self.first + self.txs.len() as u64
    }

    /// Up to `limit` records from `from`; `None` if `from` is older than
    /// the window (read the ledger instead).
    pub fn page(&self, from: u64, limit: impl Into<PageLimit>) -> Option<Vec<TxRecord>> {
        let skip = usize::try_from(from.checked_sub(self.first)?).ok()?;
        let records = self.txs.iter().skip(skip).cloned().map(Ok::<_, ()>);
        limit.into().take(records).ok()
    }

    /// Appends a decided round's records. Records that do not follow on
    /// (a state sync moved the order) start a new window.
    pub fn extend(&mut self, records: &[TxRecord]) {
        let Some(head) = records.first() else {
            return;
        };
        if head.position != self.next() {
            *self = RecentOrder::starting_at(head.position);
        }
        for record in records {
            self.bytes += record.tx.len();
            self.txs.push_back(record.clone());
        }
        while self.txs.len() > MAX_RECORDS || self.bytes > MAX_BYTES {
            let Some(old) = self.txs.pop_front() else {
                break;
            };
            self.bytes -= old.tx.len();
            self.first += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(from: u64, n: u64, size: usize) -> Vec<TxRecord> {
        (from..from + n)
            .map(|position| TxRecord {
                position,
                event_id: [1; 32],
                consensus_time_ns: position,
                tx: vec![position as u8; size],
            })
            .collect()
    }

    #[test]
    fn a_page_stops_at_its_byte_bound_but_holds_at_least_one_record() {
        let mut order = RecentOrder::starting_at(0);
        order.extend(&records(0, 10, 100));
        let limit = |bytes| PageLimit { records: 8, bytes };
        assert_eq!(order.page(0, limit(250)).unwrap().len(), 2);
        assert_eq!(order.page(0, limit(300)).unwrap().len(), 3);
        assert_eq!(order.page(0, limit(1)).unwrap().len(), 1);
        assert_eq!(order.page(0, limit(usize::MAX)).unwrap().len(), 8);
        assert_eq!(order.page(9, limit(1)).unwrap().len(), 1);
    }

    #[test]
    fn pages_come_from_the_window_and_older_positions_are_refused() {
        let mut order = RecentOrder::starting_at(10);
        assert_eq!(order.page(10, 5), Some(Vec::new()));
        assert_eq!(order.page(9, 5), None);
        order.extend(&records(10, 5, 8));
        order.extend(&records(15, 5, 8));
        assert_eq!(order.next(), 20);
        let page = order.page(12, 3).unwrap();
        assert_eq!(
            page.iter().map(|r| r.position).collect::<Vec<_>>(),
            [12, 13, 14]
        );
        assert_eq!(order.page(20, 10), Some(Vec::new()));
        assert_eq!(order.page(u64::MAX, 10), Some(Vec::new()));
    }

    #[test]
    fn a_jump_starts_a_new_window_and_the_window_is_bounded() {
        let mut order = RecentOrder::starting_at(0);
        order.extend(&records(0, 3, 8));
        // A state sync: the order continues elsewhere.
        order.extend(&records(1_000, 2, 8));
        assert_eq!(order.page(0, 10), None);
        assert_eq!(order.page(1_000, 10).unwrap().len(), 2);
        // Bounded by bytes: 64 KiB transactions, 64 MiB at most.
        let mut order = RecentOrder::starting_at(0);
        order.extend(&records(0, 2_000, 64 << 10));
        assert!(order.bytes <= MAX_BYTES);
        assert_eq!(order.next(), 2_000);
        assert_eq!(order.page(0, 1), None);
        assert_eq!(order.page(1_999, 10).unwrap().len(), 1);
    }
}
