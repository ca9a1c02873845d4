//! Commits to an event's transaction batch with a blake3 Merkle tree shaped
//! as in RFC 6962 / RFC 9162, and proves a transaction's inclusion. (The
//! node batches from its durable mempool: a batch must survive a crash.)
//!
//! Leaves are `blake3(0x00 || tx)`, inner nodes `blake3(0x01 || left ||
//! right)`, the empty batch `blake3("")`: the prefixes keep a leaf from ever
//! being read as an inner node (no second-preimage confusion), and the
//! RFC 6962 split (left subtree = largest power of two below n) avoids the
//! duplicated-last-leaf ambiguity of Bitcoin-style trees.

/// Hash of one transaction as a leaf.
pub fn leaf_hash(tx: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[0x00]);
    h.update(tx);
    *h.finalize().as_bytes()
}

/// Hash of an inner node.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// Root over already-hashed leaves (non-empty).
fn root_of(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => *blake3::hash(b"").as_bytes(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// Largest power of two strictly below `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Merkle root of a batch.
pub fn merkle_root<T: AsRef<[u8]>>(txs: &[T]) -> [u8; 32] {
    let leaves: Vec<[u8; 32]> = txs.iter().map(|t| leaf_hash(t.as_ref())).collect();
    root_of(&leaves)
}

/// Proof that one transaction sits at `index` in a batch of `leaf_count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub leaf_count: u64,
    /// Sibling hashes from the leaf upwards.
    pub path: Vec<[u8; 32]>,
}

fn path_of(index: usize, leaves: &[[u8; 32]], out: &mut Vec<[u8; 32]>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if index < k {
        path_of(index, &leaves[..k], out);
        out.push(root_of(&leaves[k..]));
    } else {
        path_of(index - k, &leaves[k..], out);
        out.push(root_of(&leaves[..k]));
    }
}

/// Build the inclusion proof of `txs[index]`.
pub fn prove<T: AsRef<[u8]>>(txs: &[T], index: usize) -> Option<InclusionProof> {
    if index >= txs.len() {
        return None;
    }
    let leaves: Vec<[u8; 32]> = txs.iter().map(|t| leaf_hash(t.as_ref())).collect();
    let mut path = Vec::new();
    path_of(index, &leaves, &mut path);
    Some(InclusionProof {
        index: index as u64,
        leaf_count: txs.len() as u64,
        path,
    })
}

impl InclusionProof {
    /// Check that `tx` is the leaf at `self.index` of the tree with `root`
    /// (RFC 9162 section 2.1.3.2). Total: never panics on any proof.
    pub fn verify(&self, tx: &[u8], root: &[u8; 32]) -> bool {
        if self.index >= self.leaf_count {
            return false;
        }
        let mut fnode = self.index;
        let mut snode = self.leaf_count - 1;
        let mut r = leaf_hash(tx);
        for p in &self.path {
            if snode == 0 {
                return false;
            }
            if fnode & 1 == 1 || fnode == snode {
                r = node_hash(p, &r);
                if fnode & 1 == 0 {
                    while fnode & 1 == 0 && fnode != 0 {
                        fnode >>= 1;
                        snode >>= 1;
                    }
                }
            } else {
                r = node_hash(&r, p);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        snode == 0 && &r == root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_of_every_small_tree_proves_and_nothing_else_does() {
        for n in 1..=17usize {
            let txs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i + 1]).collect();
            let root = merkle_root(&txs);
            for i in 0..n {
                let p = prove(&txs, i).expect("in range");
                assert!(p.verify(&txs[i], &root), "n={n} i={i}");
                assert!(!p.verify(b"other", &root));
                let mut wrong = p.clone();
                wrong.index = (i as u64 + 1) % n as u64;
                assert!(n == 1 || !wrong.verify(&txs[i], &root));
            }
            assert!(prove(&txs, n).is_none());
        }
    }

    #[test]
    fn leaf_and_node_domains_differ() {
        // An inner node's preimage submitted as a "transaction" must not
        // produce the same hash as the node.
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        let mut forged = Vec::new();
        forged.extend_from_slice(&a);
        forged.extend_from_slice(&b);
        assert_ne!(leaf_hash(&forged), node_hash(&a, &b));
        assert_ne!(merkle_root::<Vec<u8>>(&[]), leaf_hash(b""));
    }
}
