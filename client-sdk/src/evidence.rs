//! Equivocation evidence: two event headers signed by one node key that
//! cannot both lie on one honest chain. Nodes serve what they find at
//! `GET /evidence` in the JSON form below; [`Evidence::check`] tells a
//! reporter, before it pays for a transaction, whether the program will
//! accept the pair, and why not.
//!
//! ```json
//! { "first":  { "header": "<hex>", "signature": "<hex>" },
//!   "second": { "header": "<hex>", "signature": "<hex>" } }
//! ```
//! `header` is the header's canonical encoding (the bytes its event id
//! hashes), `signature` the creator's ed25519 signature over
//! `signing_message(network_id, id)`. Nodes add `creator` and `evidence`
//! (the pair's hash) for people; they are not trusted when read back.

use anchor_lang::prelude::Pubkey;
pub use dagger_event_header::{evidence_hash, EventHeader, EventId, HeaderError, PairError};
use ed25519_dalek::{Signature, VerifyingKey};

/// One signed header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "rpc", derive(serde::Serialize, serde::Deserialize))]
pub struct SignedHeader {
    #[cfg_attr(feature = "rpc", serde(with = "hex_bytes"))]
    pub header: Vec<u8>,
    #[cfg_attr(feature = "rpc", serde(with = "hex_signature"))]
    pub signature: [u8; 64],
}

impl SignedHeader {
    /// The id of the event this header belongs to.
    pub fn id(&self) -> EventId {
        EventId(*blake3::hash(&self.header).as_bytes())
    }
}

/// Two signed headers claimed to prove an equivocation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "rpc", derive(serde::Serialize, serde::Deserialize))]
pub struct Evidence {
    pub first: SignedHeader,
    pub second: SignedHeader,
}

/// Which of the two headers a problem is with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    First,
    Second,
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Which::First => "first",
            Which::Second => "second",
        })
    }
}

/// Why a pair is not evidence the program would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    #[error("the {0} header does not decode: {1}")]
    Header(Which, HeaderError),
    #[error("not an equivocation: {0}")]
    Pair(PairError),
    #[error("the creator {0} is not a valid ed25519 public key")]
    BadCreatorKey(Pubkey),
    #[error("the {0} signature does not verify for the creator under network id {1}")]
    BadSignature(Which, String),
}

/// A pair that passed [`Evidence::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedEvidence {
    /// The node key that signed both events (the operator's `node_key`).
    pub node_key: Pubkey,
    pub first: EventHeader,
    pub second: EventHeader,
    /// The pair's order-independent hash (the program's record is at
    /// `pda::evidence(&hash)`).
    pub hash: [u8; 32],
}

impl Evidence {
    /// Decodes both headers, applies the consensus crate's evidence rule
    /// (the code the program runs) and verifies both signatures for
    /// `network_id`: exactly what `report_equivocation` will check.
    pub fn check(&self, network_id: &[u8; 32]) -> Result<CheckedEvidence, EvidenceError> {
        let first = EventHeader::decode(&self.first.header)
            .map_err(|e| EvidenceError::Header(Which::First, e))?;
        let second = EventHeader::decode(&self.second.header)
            .map_err(|e| EvidenceError::Header(Which::Second, e))?;
        let (first_id, second_id) =
            dagger_event_header::pair_ids(&first, &second).map_err(EvidenceError::Pair)?;
        let node_key = Pubkey::new_from_array(first.creator.0);
        let key = VerifyingKey::from_bytes(&first.creator.0)
            .map_err(|_| EvidenceError::BadCreatorKey(node_key))?;
        for (which, signed, id) in [
            (Which::First, &self.first, &first_id),
            (Which::Second, &self.second, &second_id),
        ] {
            let message = dagger_event_header::signing_message(network_id, id);
            key.verify_strict(&message, &Signature::from_bytes(&signed.signature))
                .map_err(|_| EvidenceError::BadSignature(which, hex::encode(network_id)))?;
        }
        let hash = evidence_hash(&first_id, &second_id);
        Ok(CheckedEvidence {
            node_key,
            first,
            second,
            hash,
        })
    }

    /// The pair's order-independent hash (no checks).
    pub fn hash(&self) -> [u8; 32] {
        evidence_hash(&self.first.id(), &self.second.id())
    }
}

#[cfg(feature = "rpc")]
mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "rpc")]
mod hex_signature {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        super::hex_bytes::serialize(bytes, s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes = super::hex_bytes::deserialize(d)?;
        <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| {
            serde::de::Error::custom(format!("a signature is 64 bytes, got {}", bytes.len()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dagger_event_header::{CreatorId, ParentRef};
    use ed25519_dalek::{Signer, SigningKey};

    const NET: [u8; 32] = [6; 32];

    fn signed(key: &SigningKey, header: &EventHeader) -> SignedHeader {
        SignedHeader {
            header: header.encode().to_vec(),
            signature: key
                .sign(&dagger_event_header::signing_message(&NET, &header.id()))
                .to_bytes(),
        }
    }

    fn header(key: &SigningKey, created_at_ns: u64) -> EventHeader {
        EventHeader {
            creator: CreatorId(key.verifying_key().to_bytes()),
            seq: 3,
            birth_round: 2,
            self_parent: Some(ParentRef {
                id: EventId([1; 32]),
                birth_round: 2,
            }),
            other_parent: None,
            created_at_ns,
            txs_root: [0; 32],
            tx_count: 0,
        }
    }

    #[test]
    fn a_fork_checks_and_every_kind_of_bad_pair_is_named() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let fork = Evidence {
            first: signed(&key, &header(&key, 1)),
            second: signed(&key, &header(&key, 2)),
        };
        let checked = fork.check(&NET).expect("a fork is evidence");
        assert_eq!(checked.node_key.to_bytes(), key.verifying_key().to_bytes());
        assert_eq!(checked.hash, fork.hash());

        assert!(matches!(
            fork.check(&[7; 32]),
            Err(EvidenceError::BadSignature(Which::First, _))
        ));
        let mut forged = fork.clone();
        forged.second.signature[0] ^= 1;
        assert!(matches!(
            forged.check(&NET),
            Err(EvidenceError::BadSignature(Which::Second, _))
        ));
        let same = Evidence {
            first: fork.first.clone(),
            second: fork.first.clone(),
        };
        assert_eq!(
            same.check(&NET),
            Err(EvidenceError::Pair(PairError::SameEvent))
        );
        let other = SigningKey::from_bytes(&[8; 32]);
        let strangers = Evidence {
            first: fork.first.clone(),
            second: signed(&other, &header(&other, 2)),
        };
        assert_eq!(
            strangers.check(&NET),
            Err(EvidenceError::Pair(PairError::DifferentCreators))
        );
        let mut truncated = fork.clone();
        truncated.second.header.pop();
        assert_eq!(
            truncated.check(&NET),
            Err(EvidenceError::Header(Which::Second, HeaderError::Truncated))
        );
    }

    #[cfg(feature = "rpc")]
    #[test]
    fn json_round_trips_and_refuses_bad_hex() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let fork = Evidence {
            first: signed(&key, &header(&key, 1)),
            second: signed(&key, &header(&key, 2)),
        };
        let text = serde_json::to_string(&fork).unwrap();
        assert_eq!(serde_json::from_str::<Evidence>(&text).unwrap(), fork);
        let short = text.replacen(&hex::encode(fork.first.signature), "abcd", 1);
        assert!(serde_json::from_str::<Evidence>(&short)
            .unwrap_err()
            .to_string()
            .contains("64 bytes"));
        let odd = text.replacen(&hex::encode(&fork.first.header), "xyz", 1);
        assert!(serde_json::from_str::<Evidence>(&odd).is_err());
    }
}
