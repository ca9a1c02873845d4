//! The QEMU provisioner with real micro-VMs: boot with the customer's key,
//! SSH in and find the spec, refuse past the budget, notice a VM killed
//! from outside, adopt running VMs after a restart, and leave no process or
//! disk behind.
//!
//! Needs QEMU and the default image's packages (`scripts/setup-vm-host.sh`).
//! Without them these tests say so and pass, except under CI (`CI` set),
//! where they fail: CI installs them.

use std::{path::Path, process::Command, time::Duration};

use anchor_lang::prelude::Pubkey;
use dagger_client::VmSpec;
use dagger_node::{
    images::{build_default, Catalog, DefaultImageSources},
    provisioner::{
        qemu::qemu_available, Accel, ProvisionError, Provisioner, QemuProvisioner, QemuSettings,
        VmStatus,
    },
};
use ed25519_dalek::SigningKey;

/// The default image in a fresh catalog, or `None` (with the reason
/// printed) where this host cannot run VMs.
fn setup(dir: &Path) -> Option<(Catalog, [u8; 32])> {
    let catalog = Catalog::new(dir.join("images"));
    let missing = if !qemu_available(Path::new("qemu-system-x86_64")) {
        Some("QEMU is not installed".to_string())
    } else {
        match build_default(&DefaultImageSources::default(), &catalog) {
            Ok(image) => return Some((catalog, image.id)),
            Err(err) => Some(err.to_string()),
        }
    };
    let reason = missing.expect("set above");
    if std::env::var_os("CI").is_some() {
        panic!("real-VM tests cannot run under CI: {reason}; .ci/run installs what they need");
    }
    eprintln!("skipping real-VM test: {reason} (run scripts/setup-vm-host.sh)");
    None
}

fn settings(dir: &Path, catalog: Catalog) -> QemuSettings {
    QemuSettings {
        ports: 23_100..=23_199,
        max_vcpus: 3,
        max_memory_mib: 640,
        accel: Accel::Auto,
        ..QemuSettings::new(dir, catalog)
    }
}

struct Customer {
    key_file: std::path::PathBuf,
    public: [u8; 32],
}

fn customer(dir: &Path) -> Customer {
    let secret = SigningKey::from_bytes(&[11; 32]);
    let public = secret.verifying_key().to_bytes();
    let key_file = dir.join("id_ed25519");
    std::fs::write(
        &key_file,
        dagger_client::ssh::format_private_key(&[11; 32], &public, "customer"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    Customer { key_file, public }
}

fn spec(image: [u8; 32], key: [u8; 32], vcpus: u16, memory_mib: u32) -> VmSpec {
    VmSpec {
        vcpus,
        memory_mib,
        disk_gib: 1,
        region: 0,
        image_id: image,
        ssh_key: key,
    }
}

/// Runs `command` in the VM over SSH with the system client, trusting only
/// the host key the endpoint pins.
fn ssh(endpoint: &str, key: &Path, command: &str) -> std::process::Output {
    let endpoint = dagger_client::endpoint::VmEndpoint::parse(endpoint).expect("an ssh endpoint");
    ssh_pinned(
        &endpoint,
        &endpoint.known_hosts_line().expect("a pinned host key"),
        key,
        command,
    )
}

/// Runs `command` over SSH trusting only the host key in `known_hosts_line`.
fn ssh_pinned(
    endpoint: &dagger_client::endpoint::VmEndpoint,
    known_hosts_line: &str,
    key: &Path,
    command: &str,
) -> std::process::Output {
    let known = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(known.path(), format!("{known_hosts_line}\n")).unwrap();
    Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", known.path().display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
        ])
        .args(["-o", "ConnectTimeout=10", "-i"])
        .arg(key)
        .args(["-p", &endpoint.port.to_string(), "-l", &endpoint.user, "--"])
        .arg(&endpoint.host)
        .arg(command)
        .output()
        .expect("ssh runs")
}

fn qemu_running(dir: &Path) -> bool {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&needle))
            .unwrap_or(false)
    })
}

#[test]
fn a_vm_boots_with_the_customers_key_and_matches_its_spec() {
    let dir = tempfile::tempdir().unwrap();
    let Some((catalog, image)) = setup(dir.path()) else {
        return;
    };
    let who = customer(dir.path());
    let provisioner = QemuProvisioner::open(settings(dir.path(), catalog.clone())).unwrap();
    let request = Pubkey::new_unique();
    let endpoint = provisioner
        .provision(&request, &spec(image, who.public, 2, 256))
        .expect("the VM boots");
    assert!(
        endpoint.0.starts_with("ssh://root@127.0.0.1:"),
        "{endpoint:?}"
    );
    // Idempotent: the same VM again.
    assert_eq!(
        provisioner
            .provision(&request, &spec(image, who.public, 2, 256))
            .unwrap(),
        endpoint
    );
    assert_eq!(provisioner.status(&request), VmStatus::Running);

    let out = ssh(
        &endpoint.0,
        &who.key_file,
        "nproc; grep MemTotal /proc/meminfo; df -k /data | tail -1",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("2"), "{text}");
    let mem_kib: u64 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // The guest sees the memory asked for, less what its kernel keeps.
    assert!(
        (150 * 1024..=256 * 1024).contains(&mem_kib),
        "MemTotal {mem_kib} kB for a 256 MiB VM"
    );
    let disk_kib: u64 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(disk_kib > 900 * 1024, "a 1 GiB disk on /data: {text}");

    // Another key is refused.
    let intruder = dir.path().join("intruder");
    std::fs::write(
        &intruder,
        dagger_client::ssh::format_private_key(
            &[12; 32],
            &SigningKey::from_bytes(&[12; 32]).verifying_key().to_bytes(),
            "intruder",
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&intruder, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(!ssh(&endpoint.0, &intruder, "true").status.success());

    // Past the budget (3 vCPUs, 640 MiB): refused, nothing started.
    let other = Pubkey::new_unique();
    match provisioner.provision(&other, &spec(image, who.public, 2, 256)) {
        Err(ProvisionError::Capacity(_)) => {}
        other => panic!("expected a capacity refusal, got {other:?}"),
    }
    assert_eq!(provisioner.vms(), vec![request]);

    let vm_dir = provisioner.vm_dir_of(&request).expect("the VM's directory");
    // A node restart adopts the running VM.
    drop(provisioner);
    let provisioner = QemuProvisioner::open(settings(dir.path(), catalog)).unwrap();
    assert_eq!(provisioner.vms(), vec![request]);
    assert_eq!(provisioner.status(&request), VmStatus::Running);

    // Ending the lease leaves no process and no disk.
    provisioner.terminate(&request).unwrap();
    assert!(provisioner.vms().is_empty());
    assert!(!vm_dir.exists());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!qemu_running(&vm_dir));
}

#[test]
fn a_vm_killed_from_outside_is_reported_failed_and_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let Some((catalog, image)) = setup(dir.path()) else {
        return;
    };
    let who = customer(dir.path());
    let mut settings = settings(dir.path(), catalog);
    settings.ports = 23_200..=23_299;
    let provisioner = QemuProvisioner::open(settings).unwrap();
    let request = Pubkey::new_unique();
    provisioner
        .provision(&request, &spec(image, who.public, 1, 128))
        .expect("the VM boots");
    let vm_dir = provisioner.vm_dir_of(&request).unwrap();
    let pid: i32 = std::fs::read_to_string(vm_dir.join("qemu.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the test's own QEMU child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while provisioner.status(&request) != VmStatus::Failed {
        assert!(
            std::time::Instant::now() < deadline,
            "the death went unnoticed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A failed VM is not booted again for the same lease.
    assert!(provisioner
        .provision(&request, &spec(image, who.public, 1, 128))
        .is_err());
    provisioner.terminate(&request).unwrap();
    assert!(!vm_dir.exists());
}

#[test]
fn a_vm_that_stops_answering_fails_after_its_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let Some((catalog, image)) = setup(dir.path()) else {
        return;
    };
    let who = customer(dir.path());
    let mut settings = settings(dir.path(), catalog);
    settings.ports = 23_300..=23_399;
    settings.unhealthy_grace = Duration::from_secs(2);
    let provisioner = QemuProvisioner::open(settings).unwrap();
    let request = Pubkey::new_unique();
    provisioner
        .provision(&request, &spec(image, who.public, 1, 128))
        .expect("the VM boots");
    assert_eq!(provisioner.status(&request), VmStatus::Running);
    // Freeze the guest (its QEMU stays alive): QMP says it is not running.
    let socket = provisioner.vm_dir_of(&request).unwrap().join("qmp.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    use std::io::{BufRead, Write};
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    for command in ["qmp_capabilities", "stop"] {
        writeln!(stream, "{{\"execute\":\"{command}\"}}").unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    // QEMU serves one QMP client at a time: leave it to the node.
    drop(reader);
    drop(stream);
    // Still within its grace period: running.
    assert_eq!(provisioner.status(&request), VmStatus::Running);
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(provisioner.status(&request), VmStatus::Failed);
    provisioner.terminate(&request).unwrap();
}

/// A tenant with a root shell in its guest reaches nothing of the host:
/// not a service on the host's loopback (where the node's APIs and the
/// Solana RPC listen), not a neighbour VM's forwarded SSH port, not the
/// outside. The VM is only reachable with the host key its endpoint pins;
/// its QEMU runs under seccomp (and, as root, under its own account in a
/// chroot); connections held open to its port by someone else do not make
/// it look failed.
#[test]
fn a_guest_reaches_nothing_of_its_host_and_is_pinned_and_confined() {
    let dir = tempfile::tempdir().unwrap();
    let Some((catalog, image)) = setup(dir.path()) else {
        return;
    };
    let who = customer(dir.path());
    let mut settings = settings(dir.path(), catalog);
    settings.ports = 23_400..=23_499;
    settings.unhealthy_grace = Duration::from_secs(1);
    let provisioner = QemuProvisioner::open(settings).unwrap();
    let (a, b) = (Pubkey::new_unique(), Pubkey::new_unique());
    let endpoint_a = provisioner
        .provision(&a, &spec(image, who.public, 1, 128))
        .expect("VM A boots");
    let endpoint_b = provisioner
        .provision(&b, &spec(image, who.public, 1, 128))
        .expect("VM B boots");
    let parsed_b = dagger_client::endpoint::VmEndpoint::parse(&endpoint_b.0).unwrap();

    // A service on the host's loopback, counting who reaches it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let probe = |target: &str| {
        format!(
            "if echo x | nc -w 3 {target} >/dev/null 2>&1; then echo OPEN; else echo CLOSED; fi"
        )
    };
    let script = [
        probe(&format!("10.0.2.2 {host_port}")),
        probe(&format!("10.0.2.2 {}", parsed_b.port)),
        probe("10.0.2.3 53"),
        probe("169.254.169.254 80"),
        probe("1.1.1.1 443"),
    ]
    .join("; ");
    let out = ssh(&endpoint_a.0, &who.key_file, &script);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec!["CLOSED"; 5],
        "what the guest reached: {text}"
    );
    assert!(
        listener.accept().is_err(),
        "the host's loopback service was reached from the guest"
    );

    // Only the pinned host key is trusted: another key for the same
    // address is refused before anything runs.
    let parsed_a = dagger_client::endpoint::VmEndpoint::parse(&endpoint_a.0).unwrap();
    assert!(parsed_a.host_key.is_some(), "{endpoint_a:?}");
    let wrong = format!(
        "[{}]:{} {}",
        parsed_a.host,
        parsed_a.port,
        dagger_client::ssh::format_public_key(&[9u8; 32])
    );
    let refused = ssh_pinned(&parsed_a, &wrong, &who.key_file, "true");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Host key verification failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Each VM has a host key of its own.
    assert_ne!(parsed_a.host_key, parsed_b.host_key);

    // QEMU is confined.
    let vm_dir = provisioner.vm_dir_of(&a).unwrap();
    let pid = std::fs::read_to_string(vm_dir.join("qemu.pid")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    assert!(status.contains("Seccomp:\t2"), "{status}");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && provisioner.confinement().user.is_some() {
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert!(
            !uid_line.split_whitespace().skip(1).any(|u| u == "0"),
            "{uid_line}"
        );
        let root = std::fs::read_link(format!("/proc/{}/root", pid.trim())).unwrap();
        assert_eq!(root, vm_dir);
    }
    use std::os::unix::fs::PermissionsExt;
    for file in ["", "disk.qcow2"] {
        let mode = std::fs::metadata(vm_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{file} is readable by others: {mode:o}");
    }

    // Someone holding connections to B's forwarded port cannot get B
    // declared failed (health does not rest on that port).
    let held: Vec<std::net::TcpStream> = (0..16)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", parsed_b.port)).ok())
        .collect();
    assert!(!held.is_empty());
    assert_eq!(provisioner.status(&b), VmStatus::Running);
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(provisioner.status(&b), VmStatus::Running);
    drop(held);

    provisioner.terminate(&a).unwrap();
    provisioner.terminate(&b).unwrap();
    assert!(provisioner.vms().is_empty());
}

/// The host key the node writes is one dropbear reads: `dropbearkey -y`
/// derives the same public key from it.
#[test]
fn the_generated_host_key_is_a_dropbear_key() {
    let dropbearkey = Path::new("/usr/bin/dropbearkey");
    if !dropbearkey.exists() {
        if std::env::var_os("CI").is_some() {
            panic!("dropbearkey is missing; .ci/run installs dropbear-bin");
        }
        eprintln!("skipping: dropbearkey is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    let public = key.verifying_key().to_bytes();
    let file = dir.path().join("host_key");
    std::fs::write(
        &file,
        dagger_node::provisioner::qemu::dropbear_ed25519_key(&key.to_bytes(), &public),
    )
    .unwrap();
    let out = Command::new(dropbearkey)
        .arg("-y")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("ssh-ed25519 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(dagger_client::ssh::parse_public_key(line), Ok(public));
}

/// Waits until `check` holds, or panics saying `what`.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A pool keeps a booted VM ready; a lease of its shape takes it (its
/// customer's key and a fresh host key go in through the agent), the pool
/// boots a replacement, pooled VMs count against the budget and give way
/// to a lease that needs the room, each lease gets a VM of its own, and
/// stopping the provisioner stops the pooled VMs.
#[test]
fn a_pool_hands_out_booted_vms_refills_and_counts_against_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let Some((catalog, image)) = setup(dir.path()) else {
        return;
    };
    let who = customer(dir.path());
    let mut settings = settings(dir.path(), catalog);
    settings.ports = 23_500..=23_599;
    // Room for three VMs of 128 MiB (QEMU's overhead included), or two and
    // one of 160 MiB.
    settings.max_memory_mib = 720;
    settings.pools = vec!["count=1,vcpus=1,memory=128,disk=1".parse().unwrap()];
    let provisioner = QemuProvisioner::open(settings).unwrap();
    let ready = |p: &QemuProvisioner| p.pools().first().map_or(0, |s| s.ready);
    wait_for("the pool boots a VM", Duration::from_secs(90), || {
        ready(&provisioner) == 1
    });
    let status = provisioner.pools();
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].target, status[0].vcpus), (1, 1));

    // A lease of the pool's shape takes the pooled VM.
    let first = Pubkey::new_unique();
    let started = std::time::Instant::now();
    let endpoint = provisioner
        .provision(&first, &spec(image, who.public, 1, 128))
        .expect("a pooled VM");
    eprintln!("pooled VM handed over in {:?}", started.elapsed());
    let first_dir = provisioner.vm_dir_of(&first).unwrap();
    assert!(
        first_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("pool-"),
        "{first_dir:?}"
    );
    let out = ssh(&endpoint.0, &who.key_file, "echo hello");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");

    // The pool boots a replacement; a second lease gets another VM.
    wait_for("the pool refills", Duration::from_secs(90), || {
        ready(&provisioner) == 1
    });
    let second = Pubkey::new_unique();
    let endpoint2 = provisioner
        .provision(&second, &spec(image, who.public, 1, 128))
        .expect("a second pooled VM");
    assert_ne!(provisioner.vm_dir_of(&second).unwrap(), first_dir);
    assert_ne!(
        endpoint, endpoint2,
        "each lease has its own port and host key"
    );

    // Budget 3 vCPUs: two leases hold 2, the refilled pooled VM the third;
    // a lease of another shape needing 1 vCPU more stops the pooled VM.
    wait_for("the pool refills again", Duration::from_secs(90), || {
        ready(&provisioner) == 1
    });
    let third = Pubkey::new_unique();
    provisioner
        .provision(&third, &spec(image, who.public, 1, 160))
        .expect("room is made by stopping the pooled VM");
    assert_eq!(ready(&provisioner), 0);
    std::thread::sleep(Duration::from_secs(2));
    let status = provisioner.pools();
    assert_eq!(
        (status[0].ready, status[0].booting),
        (0, 0),
        "no room for the pool while the leases hold the budget"
    );

    // Ending leases frees room: the pool fills again.
    for request in [first, second, third] {
        provisioner.terminate(&request).unwrap();
    }
    assert!(!first_dir.exists());
    wait_for(
        "the pool fills after leases end",
        Duration::from_secs(90),
        || ready(&provisioner) == 1,
    );
    let vms = dir.path().join("vms");
    drop(provisioner);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!qemu_running(&vms), "a pooled VM outlived its provisioner");
    assert_eq!(std::fs::read_dir(&vms).unwrap().count(), 0);
}

/// Two nodes on one host with the same port range (or anything else
/// holding a port) never hand out the same port: QEMU binds the forward
/// itself, and a refused port is skipped.
#[test]
fn concurrent_provisions_on_one_host_never_share_a_port() {
    let dir = tempfile::tempdir().unwrap();
    let Some((catalog, image)) = setup(dir.path()) else {
        return;
    };
    let who = customer(dir.path());
    // The range's first port is held by someone else.
    let _squatter = std::net::TcpListener::bind("127.0.0.1:23600").unwrap();
    let node = |name: &str| {
        let mut settings = settings(&dir.path().join(name), catalog.clone());
        settings.ports = 23_600..=23_602;
        QemuProvisioner::open(settings).unwrap()
    };
    let (a, b) = (node("a"), node("b"));
    let (ra, rb) = (Pubkey::new_unique(), Pubkey::new_unique());
    let (ea, eb) = std::thread::scope(|scope| {
        let ea = scope.spawn(|| a.provision(&ra, &spec(image, who.public, 1, 128)));
        let eb = scope.spawn(|| b.provision(&rb, &spec(image, who.public, 1, 128)));
        (ea.join().unwrap(), eb.join().unwrap())
    });
    let (ea, eb) = (ea.expect("node a's VM"), eb.expect("node b's VM"));
    let port = |e: &dagger_node::provisioner::Endpoint| {
        dagger_client::endpoint::VmEndpoint::parse(&e.0)
            .unwrap()
            .port
    };
    assert_ne!(port(&ea), port(&eb));
    assert!(![port(&ea), port(&eb)].contains(&23_600));
    for (endpoint, _) in [(&ea, &a), (&eb, &b)] {
        let out = ssh(&endpoint.0, &who.key_file, "true");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    a.terminate(&ra).unwrap();
    b.terminate(&rb).unwrap();
}

/// The Debian image boots from its root file system (a fresh layer per
/// VM, grown to the lease's disk), takes its keys from the agent and runs
/// apt; its boot time to SSH is printed.
#[test]
fn a_debian_vm_boots_with_apt_and_the_customers_key() {
    let dir = tempfile::tempdir().unwrap();
    let Some((catalog, _default)) = setup(dir.path()) else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("skipping: building the Debian image needs root");
        return;
    }
    let options = dagger_node::images::DebianImageOptions {
        cache_dir: Some(dagger_devnet::devnet::image_cache()),
        ..Default::default()
    };
    let image = dagger_node::images::build_debian(&options, &catalog, &|s| eprintln!("{s}"))
        .expect("the Debian image builds");
    assert!(image.manifest.rootfs.is_some());
    assert_eq!(catalog.find("debian").unwrap().id, image.id);
    let who = customer(dir.path());
    let mut settings = settings(dir.path(), catalog);
    settings.ports = 23_700..=23_799;
    let provisioner = QemuProvisioner::open(settings).unwrap();
    let request = Pubkey::new_unique();
    let mut spec = spec(image.id, who.public, 1, 256);
    spec.disk_gib = 2;
    let started = std::time::Instant::now();
    let endpoint = provisioner
        .provision(&request, &spec)
        .expect("the Debian VM boots");
    eprintln!(
        "Debian VM: SSH with its pinned key after {:?}",
        started.elapsed()
    );
    let out = ssh(
        &endpoint.0,
        &who.key_file,
        "apt-get --version | head -1; . /etc/os-release; echo $ID; df -k / | tail -1; cat /proc/1/comm",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("apt "), "{text}");
    assert_eq!(lines[1], "debian", "{text}");
    let root_kib: u64 = lines[2].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        root_kib > 1_500_000,
        "the root was grown to the 2 GiB disk: {text}"
    );
    assert_eq!(lines[3], "init", "{text}");
    // Too small a disk for the image's root is refused, not truncated.
    let mut small = spec;
    small.disk_gib = 0;
    assert!(provisioner
        .provision(&Pubkey::new_unique(), &small)
        .is_err());
    provisioner.terminate(&request).unwrap();
}
