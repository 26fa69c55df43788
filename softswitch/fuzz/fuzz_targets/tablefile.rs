//! Fuzzes the table file parser: any text gives tables or an error, and
//! tables that parse load into a switch.

#![no_main]

use beamer_softswitch::tablefile::TableFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(file) = TableFile::parse(text) {
        // A file that parses fits its own pipeline sizes.
        if file.params.bucket_entries() <= 1 << 16 {
            file.build().expect("a parsed file loads");
        }
    }
});
