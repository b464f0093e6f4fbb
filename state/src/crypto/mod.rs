//! Native cryptography: the ECgFp5 group (Pornin, eprint 2022/274) and Schnorr signatures.

pub mod ecgfp5;
pub mod gfp5;
pub mod scalar;
pub mod schnorr;
