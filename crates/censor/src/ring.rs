//! A `PACKET_MMAP` receive ring, `TPACKET_V3` (block-based): the kernel writes frames into
//! blocks of a ring shared with this process and hands a block over when it is full or when
//! its timeout passes; the bridge reads the frames in place and gives the block back. One
//! wake-up per block instead of one `recvmmsg` per 64 frames, no copy into a private buffer,
//! and frames forwarded straight out of the ring with `sendmmsg`.
//!
//! Contract: [`RxRing::next_block`] returns the oldest block the kernel has handed over, if
//! any, in ring order (so frames come out in arrival order); the [`Block`] gives the block
//! back to the kernel when dropped. The mapping is unmapped when the ring is dropped.
//! The `unsafe` here is the mapping and the reads of kernel-written headers; every offset
//! read from the ring is bounds-checked against the block before use.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

const SOL_PACKET: libc::c_int = 263;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_VERSION: libc::c_int = 10;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

/// `struct tpacket_req3` (linux/if_packet.h).
#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

// Offsets in `struct tpacket_block_desc` (version, offset_to_priv, then tpacket_hdr_v1).
const BD_STATUS: usize = 8;
const BD_NUM_PKTS: usize = 12;
const BD_FIRST: usize = 16;
const BD_LEN: usize = 20;
// Offsets in `struct tpacket3_hdr`.
const H_NEXT: usize = 0;
const H_SNAPLEN: usize = 12;
const H_LEN: usize = 16;
const H_MAC: usize = 24;
const H_SIZE: usize = 48;

/// Size and timeout of a receive ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block: a multiple of the page size; the largest frame it takes whole is
    /// this minus about 100 bytes of headers.
    pub block_size: u32,
    /// Blocks in the ring (ring memory = `block_size * block_nr`).
    pub block_nr: u32,
    /// Milliseconds after which the kernel hands over a block that is not full: the most a
    /// frame waits in the ring at low rates (and the added latency then).
    pub block_timeout_ms: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        // 64 MiB, as the recvmmsg path's socket buffer (`sys::DEFAULT_RCVBUF`). With 8 MiB
        // (32 blocks) the kernel dropped 25-35 % of a 300 000-frame blast at the ring while
        // the recvmmsg path with 64 MiB dropped none of it (BENCHMARKS.md).
        RingConfig { block_size: 1 << 18, block_nr: 256, block_timeout_ms: 1 }
    }
}

/// The mapped ring of one packet socket (which must outlive it; see `sys::PacketSocket`).
pub struct RxRing {
    map: *mut u8,
    len: usize,
    block_size: usize,
    block_nr: usize,
    /// The next block to look at.
    cur: Cell<usize>,
}

// SAFETY: the mapping is owned by this value; access is through &self on one thread at a time
// (RxRing is not Sync because of the Cell).
unsafe impl Send for RxRing {}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl RxRing {
    /// Sets `fd` (an AF_PACKET socket) to TPACKET_V3 with a receive ring and maps it.
    pub fn setup(fd: RawFd, cfg: RingConfig) -> io::Result<RxRing> {
        let page = 4096u32;
        if cfg.block_size < page || !cfg.block_size.is_multiple_of(page) || cfg.block_nr == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ring block size {} must be a multiple of {page} and the block count above 0",
                    cfg.block_size
                ),
            ));
        }
        let frame_size = 2048u32.min(cfg.block_size);
        let req = TpacketReq3 {
            block_size: cfg.block_size,
            block_nr: cfg.block_nr,
            frame_size,
            frame_nr: (cfg.block_size / frame_size) * cfg.block_nr,
            retire_blk_tov: cfg.block_timeout_ms.max(1),
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        let len = cfg.block_size as usize * cfg.block_nr as usize;
        // SAFETY: setsockopt reads live values of the given sizes; mmap of a packet ring
        // returns a fresh shared mapping (or MAP_FAILED), owned by the RxRing from here on.
        unsafe {
            let v = TPACKET_V3;
            cvt(libc::setsockopt(
                fd,
                SOL_PACKET,
                PACKET_VERSION,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            ))?;
            cvt(libc::setsockopt(
                fd,
                SOL_PACKET,
                PACKET_RX_RING,
                (&req as *const TpacketReq3).cast(),
                std::mem::size_of::<TpacketReq3>() as u32,
            ))?;
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if map == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            Ok(RxRing {
                map: map.cast(),
                len,
                block_size: cfg.block_size as usize,
                block_nr: cfg.block_nr as usize,
                cur: Cell::new(0),
            })
        }
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: block < block_nr, so the descriptor is inside the mapping; the status word
        // is 4-aligned (blocks are page-aligned) and shared with the kernel, hence atomic.
        unsafe { &*(self.map.add(block * self.block_size + BD_STATUS) as *const AtomicU32) }
    }

    /// The oldest block the kernel has handed over, or `None` when the next one is still
    /// being filled.
    pub fn next_block(&self) -> Option<Block<'_>> {
        let b = self.cur.get();
        if self.status(b).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the block is inside the mapping and, while its status says USER, ours.
        let data = unsafe {
            std::slice::from_raw_parts(self.map.add(b * self.block_size), self.block_size)
        };
        Some(Block { ring: self, index: b, data })
    }

    /// Bytes mapped (for tests and reports).
    pub fn mapped_len(&self) -> usize {
        self.len
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: map/len are the mapping made in setup, unmapped once here.
        unsafe { libc::munmap(self.map.cast(), self.len) };
    }
}

/// One block handed over by the kernel; given back on drop.
pub struct Block<'a> {
    ring: &'a RxRing,
    index: usize,
    data: &'a [u8],
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]))
}

impl<'a> Block<'a> {
    /// The block's frames in arrival order: (bytes captured, length on the wire). A frame
    /// longer than what the block could take has `bytes.len() < wire length`.
    pub fn frames(&self) -> Frames<'a> {
        let d = self.data;
        let n = u32_at(d, BD_NUM_PKTS).unwrap_or(0);
        let first = u32_at(d, BD_FIRST).unwrap_or(0) as usize;
        let end = (u32_at(d, BD_LEN).unwrap_or(0) as usize).clamp(first.min(d.len()), d.len());
        Frames { data: &d[..end], at: first, left: n }
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        self.ring.status(self.index).store(TP_STATUS_KERNEL, Ordering::Release);
        self.ring.cur.set((self.index + 1) % self.ring.block_nr);
    }
}

/// Iterator over a block's frames.
pub struct Frames<'a> {
    data: &'a [u8],
    at: usize,
    left: u32,
}

impl<'a> Iterator for Frames<'a> {
    type Item = (&'a [u8], usize);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let d = self.data;
        let h = self.at;
        if h + H_SIZE > d.len() {
            self.left = 0;
            return None;
        }
        let next = u32_at(d, h + H_NEXT)? as usize;
        let snap = u32_at(d, h + H_SNAPLEN)? as usize;
        let wire = u32_at(d, h + H_LEN)? as usize;
        let mac = u16_at(d, h + H_MAC)? as usize;
        let frame = d.get(h + mac..h + mac + snap).unwrap_or(&[]);
        if next == 0 {
            self.left = 0;
        } else {
            self.at = h + next;
        }
        Some((frame, wire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(d: &mut [u8], off: usize, v: u32) {
        d[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// A block as the kernel lays it out: descriptor, then frames chained by next offsets.
    fn block(frames: &[(&[u8], u32)]) -> Vec<u8> {
        let mut d = vec![0u8; 4096];
        let first = 48usize;
        let mut at = first;
        for (i, (f, wire)) in frames.iter().enumerate() {
            let mac = 80usize;
            let next = (mac + f.len()).next_multiple_of(16);
            put(&mut d, at + H_NEXT, if i + 1 == frames.len() { 0 } else { next as u32 });
            put(&mut d, at + H_SNAPLEN, f.len() as u32);
            put(&mut d, at + H_LEN, *wire);
            d[at + H_MAC..at + H_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
            d[at + mac..at + mac + f.len()].copy_from_slice(f);
            at += next;
        }
        put(&mut d, BD_NUM_PKTS, frames.len() as u32);
        put(&mut d, BD_FIRST, first as u32);
        put(&mut d, BD_LEN, at as u32 + 128);
        d
    }

    fn frames(d: &[u8]) -> Vec<(Vec<u8>, usize)> {
        let n = u32_at(d, BD_NUM_PKTS).unwrap_or(0);
        let first = u32_at(d, BD_FIRST).unwrap_or(0) as usize;
        let end = (u32_at(d, BD_LEN).unwrap_or(0) as usize).clamp(first.min(d.len()), d.len());
        Frames { data: &d[..end], at: first, left: n }.map(|(f, w)| (f.to_vec(), w)).collect()
    }

    #[test]
    fn frames_come_out_in_order_with_their_wire_length() {
        let d = block(&[(b"first frame", 11), (b"second", 6), (b"cut", 1500)]);
        let got = frames(&d);
        assert_eq!(
            got,
            vec![(b"first frame".to_vec(), 11), (b"second".to_vec(), 6), (b"cut".to_vec(), 1500)]
        );
    }

    #[test]
    fn a_corrupt_block_never_reads_outside_itself() {
        let mut d = block(&[(b"a", 1), (b"b", 1)]);
        // Offsets pointing past the block: frames come out empty or stop, no panic.
        put(&mut d, 48 + H_NEXT, 100_000);
        put(&mut d, BD_NUM_PKTS, 1000);
        let got = frames(&d);
        assert!(got.len() <= 2);
        let mut d = block(&[(b"a", 1)]);
        d[48 + H_MAC..48 + H_MAC + 2].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert_eq!(frames(&d), vec![(Vec::new(), 1)]);
        put(&mut d, BD_FIRST, 5000);
        assert!(frames(&d).is_empty());
    }
}
