//! Reading fields back out of a recorded signed transaction (RLP), to build its replacement.

use super::SubmitError;

/// Field `index` of a signed legacy transaction (2 = gas limit, 5 = data), to rebuild a
/// replacement.
pub(super) fn decode_field(raw: &[u8], index: usize) -> Result<Vec<u8>, SubmitError> {
    let bad = || SubmitError::Batch(0, "cannot decode a recorded transaction".into());
    // RLP list header.
    let (mut pos, _) = rlp_header(raw, 0).ok_or_else(bad)?;
    for field in 0..=index {
        let (start, len) = rlp_header(raw, pos).ok_or_else(bad)?;
        if field == index {
            return raw
                .get(start..start + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(bad);
        }
        pos = start + len;
    }
    Err(bad())
}

/// (payload start, payload length) of the RLP item at `pos` (lists: the start of their items).
fn rlp_header(raw: &[u8], pos: usize) -> Option<(usize, usize)> {
    let b = *raw.get(pos)?;
    let long = |base: u8| -> Option<(usize, usize)> {
        let n = (b - base) as usize;
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *raw.get(pos + 1 + i)? as usize;
        }
        Some((pos + 1 + n, len))
    };
    match b {
        0x00..=0x7f => Some((pos, 1)),
        0x80..=0xb7 => Some((pos + 1, (b - 0x80) as usize)),
        0xb8..=0xbf => long(0xb7),
        0xc0..=0xf7 => Some((pos + 1, (b - 0xc0) as usize)),
        _ => long(0xf7),
    }
}
