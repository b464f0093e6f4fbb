//! Agent SDK and the `rollup` wallet. Filled by the sequencer issue.
