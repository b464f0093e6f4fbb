//! ECgFp5 (work in progress).
