//! The generator's committed P4Infos (`p4/v1model`, `p4/tna`) describe this
//! pipeline: `check_p4info` accepts them, binary and text, with the default
//! sizes. This is what the software switch and the controller do with them.

use beamer_pipeline::p4rt::p4runtime_proto::p4::config::v1::P4Info;
use beamer_pipeline::p4rt::p4runtime_proto::p4info_from_text;
use beamer_pipeline::p4rt::p4runtime_proto::prost::Message;
use beamer_pipeline::p4rt::{Pipeline, check_p4info};
use beamer_pipeline::{PipelineParams, Target};
use std::path::Path;

#[test]
fn committed_p4infos_pass_the_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../p4");
    for target in Target::ALL {
        let dir = root.join(target.name());
        let bin = std::fs::read(dir.join("p4info.bin"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let text = std::fs::read_to_string(dir.join("p4info.txt")).unwrap();
        let from_bin = P4Info::decode(bin.as_slice()).unwrap();
        let from_text = p4info_from_text(&text).unwrap();
        assert_eq!(from_bin, from_text, "{target}: binary and text differ");
        let checked = check_p4info(&from_bin).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(
            checked,
            Pipeline::new(PipelineParams::default(), target),
            "{target}"
        );
    }
}
