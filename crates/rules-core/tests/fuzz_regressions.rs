//! Replays the fuzz targets' inputs that once found a crash (`fuzz/regressions/`)
//! and their seeds (`fuzz/seeds/`) through the same bodies `make fuzz` runs, so a
//! fixed crash stays fixed in `make test`.

#[path = "../fuzz/bodies.rs"]
mod bodies;

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let input = std::fs::read(&path).expect("read input");
            body(&input);
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn the_rule_target_handles_every_recorded_input() {
    assert!(replay("rule", bodies::rule) >= 2);
}

#[test]
fn the_event_target_handles_every_recorded_input() {
    assert!(replay("event", bodies::event) >= 3);
}

#[test]
fn the_template_target_handles_every_recorded_input() {
    assert!(replay("template", bodies::template) >= 5);
}
