//! Fixed binary layouts of the ledger's order records.

use super::StoreError;

/// One event's place in the consensus order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    pub position: u64,
    pub event_id: [u8; 32],
    pub creator: [u8; 32],
    pub round_received: u64,
    pub consensus_time_ns: u64,
    /// Running hash of the order after this event.
    pub running_hash: [u8; 32],
    /// Position of the event's first transaction in the transaction order.
    pub first_tx: u64,
    pub tx_count: u32,
}

/// One ordered transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRecord {
    pub position: u64,
    pub event_id: [u8; 32],
    pub consensus_time_ns: u64,
    pub tx: Vec<u8>,
}

/// How much one page of ordered transactions may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit {
    /// Records at most.
    pub records: usize,
    /// Transaction bytes at most; a page holds at least one record
    /// whatever its size.
    pub bytes: usize,
}

impl PageLimit {
    /// Only a record count.
    pub const fn records(records: usize) -> PageLimit {
        PageLimit {
            records,
            bytes: usize::MAX,
        }
    }

    /// The records of `iter` that fit, in order.
    pub fn take<E>(
        self,
        iter: impl IntoIterator<Item = Result<TxRecord, E>>,
    ) -> Result<Vec<TxRecord>, E> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for record in iter.into_iter().take(self.records) {
            let record = record?;
            bytes = bytes.saturating_add(record.tx.len());
            if bytes > self.bytes && !out.is_empty() {
                break;
            }
            out.push(record);
        }
        Ok(out)
    }
}

impl From<usize> for PageLimit {
    fn from(records: usize) -> PageLimit {
        PageLimit::records(records)
    }
}

const ORDER_LEN: usize = 8 + 32 + 32 + 8 + 8 + 32 + 8 + 4;

fn corrupt(table: &'static str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        reason: reason.to_string(),
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(a)
}

fn id_at(bytes: &[u8], at: usize) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(&bytes[at..at + 32]);
    a
}

impl OrderRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ORDER_LEN);
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.event_id);
        out.extend_from_slice(&self.creator);
        out.extend_from_slice(&self.round_received.to_le_bytes());
        out.extend_from_slice(&self.consensus_time_ns.to_le_bytes());
        out.extend_from_slice(&self.running_hash);
        out.extend_from_slice(&self.first_tx.to_le_bytes());
        out.extend_from_slice(&self.tx_count.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<OrderRecord, StoreError> {
        if bytes.len() != ORDER_LEN {
            return Err(corrupt("order", "wrong record length"));
        }
        let mut count = [0u8; 4];
        count.copy_from_slice(&bytes[128..132]);
        Ok(OrderRecord {
            position: u64_at(bytes, 0),
            event_id: id_at(bytes, 8),
            creator: id_at(bytes, 40),
            round_received: u64_at(bytes, 72),
            consensus_time_ns: u64_at(bytes, 80),
            running_hash: id_at(bytes, 88),
            first_tx: u64_at(bytes, 120),
            tx_count: u32::from_le_bytes(count),
        })
    }
}

impl TxRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.tx.len());
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&self.event_id);
        out.extend_from_slice(&self.consensus_time_ns.to_le_bytes());
        out.extend_from_slice(&self.tx);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<TxRecord, StoreError> {
        if bytes.len() < 48 {
            return Err(corrupt("txs", "record shorter than its header"));
        }
        Ok(TxRecord {
            position: u64_at(bytes, 0),
            event_id: id_at(bytes, 8),
            consensus_time_ns: u64_at(bytes, 40),
            tx: bytes[48..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_reject_bad_lengths() {
        let order = OrderRecord {
            position: 7,
            event_id: [1; 32],
            creator: [2; 32],
            round_received: 9,
            consensus_time_ns: 11,
            running_hash: [3; 32],
            first_tx: 13,
            tx_count: 4,
        };
        assert_eq!(OrderRecord::decode(&order.encode()).unwrap(), order);
        assert!(OrderRecord::decode(&order.encode()[1..]).is_err());
        let tx = TxRecord {
            position: 1,
            event_id: [5; 32],
            consensus_time_ns: 6,
            tx: b"hello".to_vec(),
        };
        assert_eq!(TxRecord::decode(&tx.encode()).unwrap(), tx);
        assert!(TxRecord::decode(&[0; 47]).is_err());
    }
}
