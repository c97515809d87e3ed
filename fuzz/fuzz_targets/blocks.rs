//! Every block parser on arbitrary bytes, sealed with a valid checksum of the kind chosen by
//! the first input byte so that the structure checks behind the checksum are reached.
#![no_main]

use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::era::format::BLOCK_KINDS;
use era_log_tools::pdata::array::ArrayBlockHeader;
use era_log_tools::pdata::btree::node::Node;
use era_log_tools::pdata::checksum::{seal, verify};
use era_log_tools::pdata::io::BLOCK_SIZE;
use era_log_tools::pdata::space_map::bitmap::get_code;
use era_log_tools::pdata::space_map::index::IndexBlock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut block = vec![0u8; BLOCK_SIZE];
    let n = rest.len().min(BLOCK_SIZE);
    block[..n].copy_from_slice(&rest[..n]);
    let loc = 7;
    let kind = BLOCK_KINDS[pick as usize % BLOCK_KINDS.len()];
    if pick & 0x80 == 0 {
        seal(&mut block, kind, loc);
    }
    for k in BLOCK_KINDS {
        let _ = verify(&block, k, loc);
    }
    let _ = Superblock::parse(&block, loc);
    for vs in [4, 8, 12, 16, 0, u32::MAX] {
        if let Ok(node) = Node::parse(&block, loc, vs) {
            for i in 0..node.len() {
                let _ = (node.key(i), node.value(i));
                if !node.is_leaf() {
                    let _ = node.child(i);
                }
            }
        }
        let _ = ArrayBlockHeader::parse(&block, loc, vs);
    }
    let index = IndexBlock::unpack(&block);
    assert_eq!(index.entries.len(), 255);
    for j in 0..16_320 {
        assert!(get_code(&block, j) <= 3);
    }
});
