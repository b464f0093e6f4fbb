//! L1 contracts and client. Filled by the bridge issue.
