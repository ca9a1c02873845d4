#!/usr/bin/env bash
# Installs what an operator node needs to boot real VMs, from the host's
# Debian package sources (nothing else): QEMU (x86, with microvm and qboot),
# qemu-img, busybox-static, dropbear and cpio for the default image,
# debootstrap and e2fsprogs for the Debian image, the
# OpenSSH client for `dagger vm ssh`, headless chromium and chromedriver (the
# explorer's browser test), and the Debian cloud kernel, unpacked
# (not installed) under $DAGGER_KERNEL_DIR (default /opt/dagger/kernel).
#
# Debian 12 (bookworm) ships QEMU 7.2. Some images carry a newer qemu-utils
# from backports that conflicts with it; QEMU's packages are then installed
# at the default suite's version in one command (a downgrade of qemu-utils).
set -euo pipefail

KERNEL_DIR="${DAGGER_KERNEL_DIR:-/opt/dagger/kernel}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

candidate() { apt-cache policy "$1" | awk '/Candidate:/ { print $2 }'; }
# The version of the default suite (not backports) a package has.
suite_version() {
  apt-cache policy "$1" | awk '/^     [0-9]/ { print $1 }' | grep -v '~bpo' | head -1
}

install() {
  local v d
  v="$(suite_version qemu-system-x86)"
  d="$(suite_version qemu-system-data)"
  if [ -z "$v" ] || [ -z "$d" ]; then
    return 1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends --allow-downgrades \
    "qemu-system-x86=$v" "qemu-system-common=$v" "qemu-utils=$v" \
    "qemu-system-data=$d" busybox-static dropbear-bin cpio openssh-client debootstrap e2fsprogs \
    chromium chromium-driver
}

if ! install; then
  $SUDO apt-get update -qq
  install
fi

# The cloud kernel: the versioned package the meta-package depends on.
meta=linux-image-cloud-amd64
pkg="$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
if [ -z "$pkg" ]; then
  echo "cannot resolve the kernel package behind $meta" >&2
  exit 1
fi
version="${pkg#linux-image-}"
if [ ! -f "$KERNEL_DIR/boot/vmlinuz-$version" ]; then
  work="$(mktemp -d)"
  chmod 755 "$work"   # apt's download user writes here
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download -qq "$pkg")
  $SUDO mkdir -p "$KERNEL_DIR"
  $SUDO dpkg-deb -x "$work"/*.deb "$KERNEL_DIR"
fi
# The unprivileged account QEMU drops to when the node runs as root
# (`-runas`): a guest that escapes QEMU holds this uid, which can read
# neither the node's key nor other VMs' files.
VM_USER="${DAGGER_VM_USER:-dagger-vm}"
if ! id -u "$VM_USER" >/dev/null 2>&1; then
  $SUDO useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$VM_USER"
fi
echo "QEMU: $(qemu-system-x86_64 --version | head -1)"
echo "VM user: $VM_USER (uid $(id -u "$VM_USER"))"
echo "kernel: $KERNEL_DIR/boot/vmlinuz-$version (modules in $KERNEL_DIR/lib/modules/$version)"
