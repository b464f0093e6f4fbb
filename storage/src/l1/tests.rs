use super::L1Payout;
use crate::status::PriorityOpStatus;

#[test]
fn only_the_documented_op_transitions_are_allowed() {
    use PriorityOpStatus::*;
    let allowed = [
        (Seen, Confirmed),
        (Seen, Reorged),
        (Reorged, Seen),
        (Confirmed, Credited),
    ];
    for from in PriorityOpStatus::ALL {
        for to in PriorityOpStatus::ALL {
            assert_eq!(
                from.can_become(*to),
                allowed.contains(&(*from, *to)),
                "{from} -> {to}"
            );
        }
    }
}

#[test]
fn payouts_keep_their_stored_json_shape() {
    let doc = serde_json::json!([
        {"from": 5, "to": "0x00000000000000000000000000000000000000aa", "amount": 250}
    ]);
    let p: Vec<L1Payout> = match serde_json::from_value(doc.clone()) {
        Ok(p) => p,
        Err(e) => panic!("stored payouts do not decode: {e}"),
    };
    assert_eq!(p[0].to.0[19], 0xaa);
    assert_eq!(serde_json::to_value(&p).ok(), Some(doc));
}
