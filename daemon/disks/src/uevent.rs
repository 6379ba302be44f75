//! Kernel uevents for block devices, read straight from the kernel's
//! netlink multicast group (`NETLINK_KOBJECT_UEVENT`, group 1): no udev
//! daemon needed, and nothing but the kernel is believed.
//!
//! Any local process may send a datagram to this socket's port, so a
//! message counts only when it comes from port 0 (the kernel); udev's
//! re-broadcasts (group 2, `libudev` magic) are never joined. A uevent
//! only says "look again": what a disk is comes from sysfs
//! ([`crate::list_disks`]), never from the message.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType, sockopt};

/// The kernel's own uevent multicast group.
const KERNEL_GROUP: u32 = 1;
/// Receive buffer asked for: a burst (a USB hub with several sticks, a
/// partition table re-read) must not overflow it.
const RECV_BUFFER: usize = 1 << 20;
/// The kernel caps one uevent at 2 KiB of environment plus the header.
const DATAGRAM_MAX: usize = 8 << 10;

/// What happened to a block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UeventAction {
    /// A device appeared.
    Add,
    /// A device went away.
    Remove,
    /// A device changed (media inserted, a loop attached, resized).
    Change,
}

/// One kernel uevent about a block device (a whole disk or a partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUevent {
    /// What happened.
    pub action: UeventAction,
    /// Kernel name (`sdb`, `loop3`, `sdb1`).
    pub name: String,
}

/// A socket subscribed to the kernel's uevents.
#[derive(Debug)]
pub struct UeventSocket {
    fd: OwnedFd,
}

impl UeventSocket {
    /// Join the kernel's uevent group; `next` waits at most `poll` for a
    /// message, so its caller can notice it should stop.
    pub fn open(poll: Duration) -> io::Result<Self> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::KOBJECT_UEVENT),
        )?;
        // Port 0: the kernel assigns one; group 1: kernel messages only.
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, KERNEL_GROUP))?;
        // Best effort: the default buffer still works for a quiet machine.
        let _ = sockopt::set_socket_recv_buffer_size(&fd, RECV_BUFFER);
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(poll))?;
        Ok(Self { fd })
    }

    /// The next block-device uevent from the kernel; `None` when `poll`
    /// passed without one or the message was not one (another subsystem,
    /// another sender). `ENOBUFS` (messages were lost) is an error: the
    /// caller should look at every disk again.
    pub fn next(&self) -> io::Result<Option<BlockUevent>> {
        let mut buf = [0u8; DATAGRAM_MAX];
        let (len, _, from) = match rustix::net::recvfrom(&self.fd, &mut buf, RecvFlags::empty()) {
            Ok(received) => received,
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let from_kernel = from
            .and_then(|a| SocketAddrNetlink::try_from(a).ok())
            .is_some_and(|a| a.pid() == 0);
        if !from_kernel {
            tracing::debug!("uevent not from the kernel ignored");
            return Ok(None);
        }
        Ok(parse(buf.get(..len).unwrap_or(&buf)))
    }
}

/// A kernel uevent datagram (`ACTION@DEVPATH\0KEY=VALUE\0…`) about a block
/// device; `None` for anything else.
pub fn parse(datagram: &[u8]) -> Option<BlockUevent> {
    let mut fields = datagram.split(|&b| b == 0);
    // The header names the action and path; the same facts follow as keys.
    let header = fields.next()?;
    if !header.contains(&b'@') {
        return None;
    }
    let (mut action, mut subsystem, mut name) = (None, None, None);
    for field in fields {
        let Some(eq) = field.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&field[..eq], &field[eq + 1..]);
        match key {
            b"ACTION" => action = Some(value),
            b"SUBSYSTEM" => subsystem = Some(value),
            b"DEVNAME" => name = Some(value),
            _ => {}
        }
    }
    if subsystem? != b"block" {
        return None;
    }
    let action = match action? {
        b"add" => UeventAction::Add,
        b"remove" => UeventAction::Remove,
        b"change" => UeventAction::Change,
        _ => return None,
    };
    // DEVNAME is relative to /dev; a disk's is a bare kernel name.
    let name = std::str::from_utf8(name?).ok()?;
    let name = name.rsplit('/').next()?;
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    Some(BlockUevent {
        action,
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A local process sends a well-formed "disk added" straight to the
    /// watcher's port: delivered, but not believed.
    #[test]
    fn a_uevent_forged_by_a_local_process_is_ignored() {
        let watcher = UeventSocket::open(Duration::from_millis(200)).unwrap();
        let port = rustix::net::getsockname(&watcher.fd)
            .ok()
            .and_then(|a| SocketAddrNetlink::try_from(a).ok())
            .map(|a| a.pid())
            .unwrap();
        let forger = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::KOBJECT_UEVENT),
        )
        .unwrap();
        rustix::net::bind(&forger, &SocketAddrNetlink::new(0, 0)).unwrap();
        let forged = datagram(&["add@/x", "ACTION=add", "SUBSYSTEM=block", "DEVNAME=sdz"]);
        assert!(parse(&forged).is_some(), "the forgery is well formed");
        let to = SocketAddrNetlink::new(port, 0);
        let send = || {
            rustix::net::sendto(&forger, &forged, rustix::net::SendFlags::empty(), &to).unwrap();
        };
        send();
        assert_eq!(watcher.next().unwrap(), None);
        // It did arrive: the same datagram read raw names its sender.
        send();
        let mut buf = [0u8; 256];
        let (len, _, from) =
            rustix::net::recvfrom(&watcher.fd, &mut buf, RecvFlags::empty()).unwrap();
        assert_eq!(&buf[..len], &forged[..]);
        let sender = from
            .and_then(|a| SocketAddrNetlink::try_from(a).ok())
            .unwrap();
        assert_ne!(sender.pid(), 0);
    }

    fn datagram(fields: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in fields {
            out.extend_from_slice(f.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn a_block_uevent_gives_its_action_and_name() {
        let add = datagram(&[
            "add@/devices/virtual/block/loop7",
            "ACTION=add",
            "DEVPATH=/devices/virtual/block/loop7",
            "SUBSYSTEM=block",
            "MAJOR=7",
            "MINOR=7",
            "DEVNAME=loop7",
            "DEVTYPE=disk",
            "SEQNUM=4711",
        ]);
        assert_eq!(
            parse(&add),
            Some(BlockUevent {
                action: UeventAction::Add,
                name: "loop7".into()
            })
        );
        let change = datagram(&[
            "change@/devices/pci0000:00/usb1/block/sdb",
            "ACTION=change",
            "SUBSYSTEM=block",
            "DEVNAME=sdb",
            "DISK_MEDIA_CHANGE=1",
        ]);
        assert_eq!(parse(&change).map(|e| e.action), Some(UeventAction::Change));
    }

    #[test]
    fn other_subsystems_actions_and_hostile_names_are_ignored() {
        let net = datagram(&[
            "add@/devices/net/eth0",
            "ACTION=add",
            "SUBSYSTEM=net",
            "DEVNAME=eth0",
        ]);
        assert_eq!(parse(&net), None);
        let bind = datagram(&["bind@/x", "ACTION=bind", "SUBSYSTEM=block", "DEVNAME=sdb"]);
        assert_eq!(parse(&bind), None);
        // udev's re-broadcast format starts with a magic, not ACTION@PATH.
        assert_eq!(parse(b"libudev\0\xfe\xed\xca\xfe"), None);
        for name in ["", "a b", "x\u{7}", &"n".repeat(65)] {
            let odd = datagram(&[
                "add@/x",
                "ACTION=add",
                "SUBSYSTEM=block",
                &format!("DEVNAME={name}"),
            ]);
            assert_eq!(parse(&odd), None, "{name:?}");
        }
        // A path-like DEVNAME keeps only its last component.
        let nested = datagram(&[
            "add@/x",
            "ACTION=add",
            "SUBSYSTEM=block",
            "DEVNAME=../../etc/sdz",
        ]);
        assert_eq!(parse(&nested).map(|e| e.name), Some("sdz".into()));
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"add@/x\0ACTION=add"), None);
    }
}
