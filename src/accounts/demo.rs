//! The embedded demo account (`deploy/examples/snapshots/demo.yaml`): what `scopegate serve` runs
//! with no snapshot configured, and the fixture of many tests.

/// The embedded demo account snapshot (`deploy/examples/snapshots/demo.yaml`).
pub const DEMO_SNAPSHOT_YAML: &str = include_str!("../../deploy/examples/snapshots/demo.yaml");
