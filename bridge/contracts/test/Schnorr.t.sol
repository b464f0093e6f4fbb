// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {ExodusVectors} from "./ExodusVectors.sol";
import {Schnorr} from "../src/Schnorr.sol";
import {Poseidon} from "../src/Poseidon.sol";
import {logGas} from "./Poseidon.t.sol";

/// The L1 Schnorr verifier against the Rust reference: the exit authorisations of
/// docs/vectors/state-v1.json (`exodus`), signed by the Rust signer, verify; every tampering an
/// attacker could try (another message, another key, a flipped challenge or response, the
/// other root of the key's decoding, a wrong encoding hint, a non-canonical scalar) does not.
contract SchnorrTest is ExodusVectors {
    function setUp() public override {
        _loadVectors();
    }

    function testRustSignaturesVerify() public view {
        uint256[4] memory m = _message();
        for (uint256 i = 0; i < _authCount(); i++) {
            (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(i);
            uint256 g = gasleft();
            bool ok = Schnorr.verify(w, m, sig, Poseidon.hashNoPad);
            if (i == 0) logGas("gas: Schnorr verify", g - gasleft());
            assertTrue(ok, "Rust signature verifies on L1");
        }
    }

    function testOtherMessageFails() public view {
        uint256[4] memory m = _message();
        m[2] = (m[2] + 1) % Schnorr.P;
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "another message");
    }

    function testOtherKeyFails() public view {
        (, Schnorr.Signature memory sig) = _auth(0);
        (uint256[5] memory wBob, Schnorr.Signature memory bob) = _auth(1);
        // Bob's key with Alice's signature, Bob's point hints (so the key checks pass).
        sig.qx = bob.qx;
        sig.qy = bob.qy;
        assertFalse(Schnorr.verify(wBob, _message(), sig, Poseidon.hashNoPad), "another key");
    }

    function testFlippedChallengeOrResponseFails() public view {
        uint256[4] memory m = _message();
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        sig.e[0] ^= 1;
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "flipped e");
        (, sig) = _auth(0);
        sig.sLo ^= 1;
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "flipped s");
    }

    function testNonCanonicalInputsFail() public view {
        uint256[4] memory m = _message();
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        // s + n: the same residue, refused as the Rust decoder refuses it.
        unchecked {
            uint256 lo = sig.sLo + Schnorr.N_LO;
            sig.sHi = sig.sHi + Schnorr.N_HI + (lo < sig.sLo ? 1 : 0);
            sig.sLo = lo;
        }
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "s + n");
        (, sig) = _auth(0);
        sig.e[1] += Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "e limb + p");
        (, sig) = _auth(0);
        w[0] += Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "key limb + p");
    }

    function testWrongKeyRootFails() public view {
        uint256[4] memory m = _message();
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        // The other root satisfies the curve equation but is a square: no qy can pass.
        sig.qx = _five(".exodus.authorisations[0].other_root_qx");
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "other root");
        (, sig) = _auth(0);
        sig.qx[0] = (sig.qx[0] + 1) % Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "qx off the curve");
        (, sig) = _auth(0);
        sig.qy[0] = (sig.qy[0] + 1) % Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "qy not a root of qx / 7");
    }

    function testWrongEncodingHintFails() public view {
        uint256[4] memory m = _message();
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        sig.wR[4] = (sig.wR[4] + 1) % Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig, Poseidon.hashNoPad), "wrong R encoding");
    }

    function testNeutralKeyFails() public view {
        (, Schnorr.Signature memory sig) = _auth(0);
        uint256[5] memory zero;
        assertFalse(Schnorr.verify(zero, _message(), sig, Poseidon.hashNoPad), "neutral key");
    }
}
