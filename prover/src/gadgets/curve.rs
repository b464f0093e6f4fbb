//! ECgFp5 curve gates (in progress).
