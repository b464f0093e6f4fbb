//! The node: gRPC service, ordering, blocks and batches, persistence. Filled by the sequencer issue.
