//! Shared by the end-to-end tests (`mod e2e;` in each).

use dagger_client::VmSpec;
use dagger_node::chain::ChainReader;
use solana_sdk::{native_token::LAMPORTS_PER_SOL, signature::Keypair, signer::Signer};

/// A small VM every devnet operator can host.
pub fn spec() -> VmSpec {
    VmSpec {
        vcpus: 1,
        memory_mib: 1_024,
        disk_gib: 10,
        region: 1,
        image_id: [4; 32],
        ssh_key: [42; 32],
    }
}

/// A new customer wallet holding 10 SOL.
pub async fn funded_customer(reader: &ChainReader) -> Keypair {
    let customer = Keypair::new();
    reader
        .airdrop(&customer.pubkey(), 10 * LAMPORTS_PER_SOL)
        .await
        .unwrap();
    customer
}
