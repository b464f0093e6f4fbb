//! GF(p^5) arithmetic in circuits (in progress).
