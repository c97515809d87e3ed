//! The on-disk structures of the disk log unpacked and packed again on every kernel image:
//! the round trip must give back the kernel's bytes.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::log::*;
use era_log_tools::log::edit::{build, NewLog};
use era_log_tools::log::format::bitmap::Bitmap;
use era_log_tools::log::format::geometry::{bitset_bytes, buf_size};
use era_log_tools::log::format::header::{Header, Padding, MAGIC};
use era_log_tools::log::image::{LogImage, ReadOptions};
use era_log_tools::log::restore::LogSpec;
use era_log_tools::pdata::io::{FileIo, MemIo, OpenMode};

#[test]
fn header_and_bitmap_round_trip_on_every_kernel_log_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for scenario in log_scenarios() {
        let m = manifest(&scenario);
        for img in m["images"].as_array().unwrap() {
            if img["disk"] != "log" {
                continue;
            }
            let file = img["file"].as_str().unwrap();
            let path = unpack(file, dir.path());
            let raw = std::fs::read(&path).unwrap();
            assert_eq!(
                raw.len() as u64,
                img["uncompressed_size_bytes"].as_u64().unwrap()
            );

            let h = Header::unpack(&raw).unwrap();
            assert_eq!(h.magic, MAGIC, "{file}");
            let mut packed = [0u8; 16];
            h.pack(&mut packed);
            assert_eq!(&packed, &raw[..16], "{file}: header");

            let nr = h.nr_regions;
            let bits = Bitmap::unpack(nr, &raw[1024..]).unwrap();
            let mut out = vec![0u8; bits.byte_len()];
            bits.pack(&mut out);
            assert_eq!(out.len() as u64, bitset_bytes(nr));
            assert_eq!(&out[..], &raw[1024..1024 + out.len()], "{file}: bitmap");
            // Independent count: bit r%8 of byte 1024 + r/8, 1 = clean.
            let clean = (0..nr as usize)
                .filter(|&r| raw[1024 + r / 8] >> (r % 8) & 1 == 1)
                .count() as u64;
            assert_eq!(bits.count_clean(), clean, "{file}");

            let io = FileIo::open(&path, OpenMode::ReadExclusive).unwrap();
            let image = LogImage::read(&io, &ReadOptions::strict(512)).unwrap();
            assert_eq!(image.buf_size(), buf_size(nr, 512));
            assert_eq!(Padding::of(&raw), Padding::Zero, "{file}");
            assert_eq!(image.count_bits(&io).unwrap().clean, clean, "{file}");
            // The dirty ranges as read in pieces, written the way log_restore writes them
            // over a header and bits of garbage (the bytes after the bits kept), give back
            // the kernel's buffer.
            let spec = LogSpec {
                version: h.version,
                nr_regions: nr,
                regions: nr,
                dirty: image.dirty_ranges(&io).collect(),
            };
            let new = NewLog {
                header: spec.header(),
                nr_regions: nr,
                edit: &spec,
            };
            let mut garbage = raw[..image.buf_size() as usize].to_vec();
            garbage[..16].fill(0x5A);
            garbage[1024..1024 + bitset_bytes(nr) as usize].fill(0x5A);
            let crc = crc32c::crc32c(&garbage);
            let again = build(&MemIo::from_bytes(garbage), image.buf_size(), &new, crc).unwrap();
            assert_eq!(
                again.as_slice(),
                &raw[..image.buf_size() as usize],
                "{file}"
            );
            n += 1;
        }
    }
    assert!(n >= 20);
}

#[test]
fn the_kernel_rounds_buf_size_to_the_sector_on_these_images() {
    // log-clean: 8192 regions = 1024 bytes of bits: the kernel's buffer is 2048 bytes, and
    // nothing after it was ever written.
    let dir = tempfile::tempdir().unwrap();
    let raw = std::fs::read(unpack("log-clean.log.img.gz", dir.path())).unwrap();
    assert_eq!(Header::unpack(&raw).unwrap(), Header::new(8192));
    assert_eq!(buf_size(8192, 512), 2048);
    assert!(raw[2048..].iter().all(|&b| b == 0));
}
