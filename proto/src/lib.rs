//! gRPC API definitions (rollup.v1). Filled by the sequencer issue.
