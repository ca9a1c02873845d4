//! The wire decoder is total: 10^5+ random and mutated inputs per run, and
//! none may panic; valid messages round-trip.

use dagger_consensus::{Event, EventId, UnsignedEvent};
use dagger_node::{
    core::Checkpoint,
    net::wire::{Message, WireError, MAX_CHECKPOINTS, MAX_FRAME_BYTES, MAX_ORDER_IDS, MAX_TIPS},
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

fn event(seed: u8, txs: Vec<Vec<u8>>) -> Event {
    let key = SigningKey::from_bytes(&[seed; 32]);
    UnsignedEvent {
        seq: 0,
        birth_round: 1,
        self_parent: None,
        other_parent: None,
        created_at_ns: 1 + seed as u64,
        txs,
    }
    .sign(&key, &[9; 32])
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(round, ordered, running_hash, next_tx, digest)| Checkpoint {
                round,
                ordered,
                running_hash,
                next_tx,
                digest,
            },
        )
}

fn message() -> impl Strategy<Value = Message> {
    let txs = proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..4);
    prop_oneof![
        Just(Message::Behind),
        Just(Message::CheckpointsRequest),
        Just(Message::Unavailable),
        proptest::collection::vec(checkpoint(), 0..5).prop_map(Message::Checkpoints),
        any::<u64>().prop_map(|round| Message::StateRequest { round }),
        (checkpoint(), any::<u64>())
            .prop_map(|(checkpoint, total)| Message::StateHeader { checkpoint, total }),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Message::Chunk),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Message::Forward),
        (any::<u64>(), any::<u32>()).prop_map(|(from, max)| Message::OrderIdsRequest { from, max }),
        proptest::collection::vec(any::<[u8; 32]>(), 0..5).prop_map(Message::OrderIds),
        (
            proptest::collection::vec(any::<[u8; 32]>(), 0..8),
            any::<u64>(),
            proptest::collection::vec((any::<[u8; 32]>(), any::<u64>()), 0..4)
        )
            .prop_map(|(t, ordered, missing)| Message::SyncRequest {
                tips: t.into_iter().map(EventId).collect(),
                ordered,
                missing: missing
                    .into_iter()
                    .map(|(id, b)| (EventId(id), b))
                    .collect(),
            }),
        (any::<u8>(), txs.clone()).prop_map(|(s, t)| Message::Push(event(s, t))),
        proptest::collection::vec((any::<u8>(), txs), 0..3)
            .prop_map(|v| Message::Events(v.into_iter().map(|(s, t)| event(s, t)).collect())),
        Just(Message::SyncDone),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60_000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let _ = Message::decode_frame(&bytes);
        let _ = Message::decode_body(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 50_000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_frames_never_panic_and_valid_ones_round_trip(
        message in message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let frame = message.encode_frame();
        prop_assert_eq!(Message::decode_frame(&frame).unwrap(), message);
        let mut mutated = frame.clone();
        for (at, byte) in flips {
            let i = at.index(mutated.len());
            mutated[i] ^= byte;
        }
        let _ = Message::decode_frame(&mutated);
        let _ = Message::decode_frame(&frame[..cut.index(frame.len())]);
    }
}

#[test]
fn limits_are_enforced_before_reading_bodies() {
    let mut frame = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&[1, 3]);
    assert_eq!(
        Message::decode_frame(&frame),
        Err(WireError::FrameTooLarge(MAX_FRAME_BYTES + 1))
    );
    // A tip count above the limit is refused without allocating for it.
    let mut body = vec![1u8, 1];
    body.extend_from_slice(&7u64.to_be_bytes());
    body.extend_from_slice(&((MAX_TIPS + 1) as u32).to_be_bytes());
    assert_eq!(
        Message::decode_body(&body),
        Err(WireError::TooManyTips(MAX_TIPS + 1))
    );
    // A huge event count with no data is just truncated.
    let mut body = vec![1u8, 2];
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(Message::decode_body(&body), Err(WireError::Truncated));
    assert_eq!(Message::decode_body(&[2, 3]), Err(WireError::Version(2)));
    assert_eq!(Message::decode_body(&[1, 99]), Err(WireError::Kind(99)));
    // Counts above the limits are refused before anything is allocated.
    let mut body = vec![1u8, 7];
    body.extend_from_slice(&(MAX_CHECKPOINTS as u32 + 1).to_be_bytes());
    assert!(matches!(
        Message::decode_body(&body),
        Err(WireError::TooMany { .. })
    ));
    let mut body = vec![1u8, 12];
    body.extend_from_slice(&(MAX_ORDER_IDS as u32 + 1).to_be_bytes());
    assert!(matches!(
        Message::decode_body(&body),
        Err(WireError::TooMany { .. })
    ));
    // A huge id count with no data is just truncated.
    let mut body = vec![1u8, 12];
    body.extend_from_slice(&(MAX_ORDER_IDS as u32).to_be_bytes());
    assert_eq!(Message::decode_body(&body), Err(WireError::Truncated));
    assert_eq!(Message::decode_body(&[1, 3, 0]), Err(WireError::Trailing));
}

#[tokio::test]
async fn streams_refuse_oversized_frames_without_reading_them() {
    use dagger_node::net::wire::read_message;
    let mut data: &[u8] = &[0x00, 0x10, 0x00, 0x00, 1, 3];
    assert_eq!(
        read_message(&mut data, 1024).await,
        Err(WireError::FrameTooLarge(0x0010_0000))
    );
    let frame = Message::SyncDone.encode_frame();
    let mut data: &[u8] = &frame;
    assert_eq!(
        read_message(&mut data, 1024).await,
        Ok(Some(Message::SyncDone))
    );
    assert_eq!(read_message(&mut data, 1024).await, Ok(None));
    let mut truncated: &[u8] = &frame[..5];
    assert_eq!(
        read_message(&mut truncated, 1024).await,
        Err(WireError::Truncated)
    );
    // A header announcing 8 MiB followed by a few bytes: the reader holds
    // what arrived, not what was announced, and says the frame broke off.
    let mut announced = (8u32 << 20).to_be_bytes().to_vec();
    announced.extend_from_slice(&[1, 2, 3]);
    let mut data: &[u8] = &announced;
    assert_eq!(
        read_message(&mut data, dagger_node::net::wire::MAX_FRAME_BYTES).await,
        Err(WireError::Truncated)
    );
}
