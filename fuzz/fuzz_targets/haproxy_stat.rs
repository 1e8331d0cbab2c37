//! HAProxy's `show stat` CSV: parsed by its header names or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(servers) = kai_core::haproxy::parse_stat(text) {
            for server in servers {
                let _ = (server.in_rotation(), server.drained(), server.checked());
            }
        }
    }
});
