//! Simulated agents that measure throughput and latency. Filled by the sequencer issue.
