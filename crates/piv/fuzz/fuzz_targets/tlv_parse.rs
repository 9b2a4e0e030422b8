//! BER-TLV parsing: single objects, flat lists, lookups and nested trees.
//!
//! Besides "never panics": a tree that parses re-encodes (in the shortest length forms) to bytes
//! that parse to the same tree, and every top-level object `parse_all` finds is what `find`
//! returns for its tag first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_piv::tlv;

fuzz_target!(|data: &[u8]| {
    let _ = tlv::parse_tag(data);
    let _ = tlv::parse_length(data);

    if let Ok((first, rest)) = tlv::parse_one(data) {
        assert!(rest.len() + first.value.len() < data.len());
        if first.is_constructed() {
            let _ = first.children();
        }
    }

    if let Ok(all) = tlv::parse_all(data) {
        // The first few objects only: `find` reparses the whole list, and the fuzzer's time is
        // better spent elsewhere than on a quadratic check.
        for object in all.iter().take(8) {
            let first_with_tag = all.iter().find(|t| t.tag == object.tag).unwrap();
            assert_eq!(tlv::find(data, object.tag), Some(first_with_tag.value));
            if let Ok(children) = object.children() {
                for child in children.iter().take(8) {
                    let _ = tlv::find(object.value, child.tag);
                }
            }
        }
    }

    if let Ok(tree) = tlv::parse_tree(data) {
        let encoded: Vec<u8> = tree.iter().flat_map(tlv::Node::encode).collect();
        let again = tlv::parse_tree(&encoded).expect("a re-encoded tree parses");
        assert_eq!(again, tree);
        for node in &tree {
            let _ = node.tag();
        }
    }
});
