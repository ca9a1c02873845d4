//! End to end with real virtual machines: a customer pays, the assigned
//! node boots a QEMU micro-VM with the customer's key, the quorum attests
//! its endpoint, the customer SSHes in and finds the machine it paid for;
//! closing the lease destroys the VM and its disk. A VM killed from outside
//! gets its lease terminated by the quorum, and accrual stops.
//!
//! Needs QEMU and the default image's packages (`scripts/setup-vm-host.sh`).
//! Without them the tests say so and pass, except under CI (`CI` set),
//! where they fail: CI installs them.

mod e2e;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anchor_lang::prelude::Pubkey;
use dagger_client::{endpoint, instructions as ix, pda, Request, RequestStatus, VmSpec};
use dagger_devnet::devnet::{ssh_run, Devnet, DevnetOptions};
use dagger_node::config::ProvisionerChoice;
use e2e::{funded_customer, spec as small_vm};
use solana_sdk::signer::Signer;

/// A devnet whose nodes boot real VMs, or `None` where that is impossible.
async fn devnet(dir: &Path) -> Option<Devnet> {
    match Devnet::start(DevnetOptions {
        data_dir: dir.to_path_buf(),
        provisioner: ProvisionerChoice::Qemu,
        ..DevnetOptions::default()
    })
    .await
    {
        Ok(devnet) => Some(devnet),
        Err(err) if err.to_string().contains("real VMs are not possible here") => {
            if std::env::var_os("CI").is_some() {
                panic!("real-VM tests cannot run under CI: {err}");
            }
            eprintln!("skipping real-VM test: {err}");
            None
        }
        Err(err) => panic!("devnet: {err}"),
    }
}

/// A customer key pair: the private key in a file `ssh -i` reads.
fn ssh_key(dir: &Path, seed: u8) -> ([u8; 32], std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let secret = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let public = secret.verifying_key().to_bytes();
    let path = dir.join(format!("customer-{seed}"));
    std::fs::write(
        &path,
        dagger_client::ssh::format_private_key(&[seed; 32], &public, "customer"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (public, path)
}

async fn wait_for(
    devnet: &Devnet,
    request: &Pubkey,
    what: &str,
    done: impl Fn(&Request) -> bool,
) -> Request {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(r) = devnet.reader.one::<Request>(request).await.unwrap() {
            if done(&r) {
                return r;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assigned_node(devnet: &Devnet, lease: &Request) -> usize {
    devnet
        .keys
        .operators
        .iter()
        .position(|op| pda::operator(&op.node.pubkey()).0 == lease.assigned_operator)
        .expect("an operator of the devnet")
}

fn qemu_alive(dir: &Path) -> bool {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        !zombie && String::from_utf8_lossy(&cmdline).contains(&needle)
    })
}

/// Closes the lease as its customer and waits until its VM (in `vm_dir`)
/// is destroyed: no process, no directory.
async fn close_and_see_vm_destroyed(
    devnet: &Devnet,
    customer: &solana_sdk::signature::Keypair,
    request: &Pubkey,
    lease: &Request,
    vm_dir: &Path,
) {
    devnet
        .reader
        .send(
            &[ix::close_lease(
                &customer.pubkey(),
                request,
                &lease.assigned_operator,
            )],
            customer,
            &[],
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while vm_dir.exists() || qemu_alive(vm_dir) {
        assert!(Instant::now() < deadline, "the VM outlived its lease");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_pays_sshes_into_its_vm_and_closing_destroys_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(devnet) = devnet(dir.path()).await else {
        return;
    };
    let image = devnet.default_image().expect("the devnet boots real VMs");
    let customer = funded_customer(&devnet.reader).await;
    let (key, key_file) = ssh_key(dir.path(), 21);
    let spec = VmSpec {
        vcpus: 2,
        memory_mib: 256,
        disk_gib: 1,
        image_id: image,
        ssh_key: key,
        ..small_vm()
    };
    let request = devnet
        .reader
        .pay_for_vm(&customer, 1, spec, 1_000, 600)
        .await
        .unwrap();
    let lease = wait_for(&devnet, &request, "the lease", |r| {
        r.status == RequestStatus::Active
    })
    .await;

    // Any node says where the VM is; the SDK checks it against the chain.
    let api = format!("http://{}", devnet.api(0).unwrap());
    let vm = endpoint::fetch(&api, &request, &lease).await.unwrap();
    let out = ssh_run(&vm, &key_file, "nproc; grep MemTotal /proc/meminfo")
        .await
        .unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("2"), "{out}");
    let mem_kib: u64 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!((150 * 1024..=256 * 1024).contains(&mem_kib), "{out}");
    // Someone else's key does not get in.
    let (_, intruder) = ssh_key(dir.path(), 22);
    assert!(ssh_run(&vm, &intruder, "true").await.is_err());

    // Closing the lease destroys the VM and its disk.
    let node = assigned_node(&devnet, &lease);
    let vm_dir = devnet.configs[node]
        .data_dir
        .join("vms")
        .join(request.to_string());
    assert!(vm_dir.join("disk.qcow2").exists());
    close_and_see_vm_destroyed(&devnet, &customer, &request, &lease, &vm_dir).await;
    devnet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vm_killed_from_outside_gets_its_lease_terminated() {
    let dir = tempfile::tempdir().unwrap();
    let Some(devnet) = devnet(dir.path()).await else {
        return;
    };
    let image = devnet.default_image().expect("the devnet boots real VMs");
    let customer = funded_customer(&devnet.reader).await;
    let (key, _) = ssh_key(dir.path(), 23);
    let spec = VmSpec {
        memory_mib: 128,
        disk_gib: 1,
        image_id: image,
        ssh_key: key,
        ..small_vm()
    };
    let request = devnet
        .reader
        .pay_for_vm(&customer, 2, spec, 1_000, 600)
        .await
        .unwrap();
    let lease = wait_for(&devnet, &request, "the lease", |r| {
        r.status == RequestStatus::Active
    })
    .await;
    let node = assigned_node(&devnet, &lease);
    let vm_dir = devnet.configs[node]
        .data_dir
        .join("vms")
        .join(request.to_string());
    let pid: i32 = std::fs::read_to_string(vm_dir.join("qemu.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the VM's QEMU process.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    // Its node notices, reports it through consensus, and a quorum ends
    // the lease on-chain: accrual stops there.
    let ended = wait_for(&devnet, &request, "the termination", |r| {
        r.status == RequestStatus::Terminated
    })
    .await;
    assert!(ended.ended_at >= ended.lease_start);
    // What the lease owes no longer grows with time.
    let owed_at_end = ended.accrued(ended.ended_at);
    assert_eq!(ended.accrued(ended.ended_at + 3_600), owed_at_end);
    assert!(
        owed_at_end < ended.deposit,
        "it stopped before the paid time ran out"
    );
    devnet.stop().await;
    assert!(!qemu_alive(&vm_dir));
}

/// The Debian image end to end: the customer picks it by name from the
/// catalog the operators announced through consensus, pays for its id,
/// runs apt in it over SSH (the host key pinned) and closes the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_leases_a_debian_vm_by_name_and_runs_apt() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("skipping: building the Debian image needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let devnet = match Devnet::start(DevnetOptions {
        data_dir: dir.path().to_path_buf(),
        provisioner: ProvisionerChoice::Qemu,
        debian_image: true,
        ..DevnetOptions::default()
    })
    .await
    {
        Ok(devnet) => devnet,
        Err(err) if err.to_string().contains("real VMs are not possible here") => {
            assert!(std::env::var_os("CI").is_none(), "{err}");
            eprintln!("skipping real-VM test: {err}");
            return;
        }
        Err(err) => panic!("devnet: {err}"),
    };
    let debian = devnet.image("debian").expect("the devnet serves Debian");
    // The catalog comes from the nodes' announcements: wait until every
    // operator's names are ordered.
    let api = format!("http://{}", devnet.api(1).unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let chosen = loop {
        let catalog = dagger_client::images::fetch_catalog(&api).await.unwrap();
        let announced = catalog
            .iter()
            .find(|c| c.id == dagger_node::images::hex(&debian))
            .is_some_and(|c| c.operators == 4 && !c.names.is_empty());
        if announced {
            break dagger_client::images::choose(&catalog, "debian").unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the catalog never named Debian: {catalog:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(chosen, debian);

    let customer = funded_customer(&devnet.reader).await;
    let (key, key_file) = ssh_key(dir.path(), 31);
    let spec = VmSpec {
        vcpus: 1,
        memory_mib: 256,
        disk_gib: 2,
        image_id: chosen,
        ssh_key: key,
        ..small_vm()
    };
    let request = devnet
        .reader
        .pay_for_vm(&customer, 7, spec, 1_000, 600)
        .await
        .unwrap();
    let lease = wait_for(&devnet, &request, "the Debian lease", |r| {
        r.status == RequestStatus::Active
    })
    .await;
    let vm = endpoint::fetch(&api, &request, &lease).await.unwrap();
    let out = ssh_run(
        &vm,
        &key_file,
        "apt-get --version | head -1; . /etc/os-release; echo $ID",
    )
    .await
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("apt ")),
        "{out}"
    );
    assert_eq!(lines.get(1), Some(&"debian"), "{out}");

    let node = assigned_node(&devnet, &lease);
    let vm_dir = devnet.configs[node]
        .data_dir
        .join("vms")
        .join(request.to_string());
    close_and_see_vm_destroyed(&devnet, &customer, &request, &lease, &vm_dir).await;
    devnet.stop().await;
}
