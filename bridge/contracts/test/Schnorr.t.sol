// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.24;

import {Base} from "./Base.sol";
import {Schnorr} from "../src/Schnorr.sol";
import {logGas} from "./Poseidon.t.sol";

/// The L1 Schnorr verifier against the Rust reference: the exit authorisations of
/// docs/vectors/state-v1.json (`exodus`), signed by the Rust signer, verify; every tampering an
/// attacker could try (another message, another key, a flipped challenge or response, the
/// other root of the key's decoding, a wrong encoding hint, a non-canonical scalar) does not.
contract SchnorrTest is Base {
    string internal json;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/../docs/vectors/state-v1.json"));
    }

    function _five(string memory key) internal view returns (uint256[5] memory out) {
        uint256[] memory v = vm.parseJsonUintArray(json, key);
        assertEq(v.length, 5, key);
        for (uint256 i = 0; i < 5; i++) {
            out[i] = v[i];
        }
    }

    function _four(string memory key) internal view returns (uint256[4] memory out) {
        uint256[] memory v = vm.parseJsonUintArray(json, key);
        assertEq(v.length, 4, key);
        for (uint256 i = 0; i < 4; i++) {
            out[i] = v[i];
        }
    }

    function _auth(uint256 i) internal view returns (uint256[5] memory w, Schnorr.Signature memory sig) {
        string memory at = string.concat(".exodus.authorisations[", vm.toString(i), "]");
        w = _five(string.concat(at, ".w"));
        sig.e = _four(string.concat(at, ".e"));
        sig.sLo = vm.parseJsonUint(json, string.concat(at, ".s_lo"));
        sig.sHi = vm.parseJsonUint(json, string.concat(at, ".s_hi"));
        sig.qx = _five(string.concat(at, ".qx"));
        sig.qy = _five(string.concat(at, ".qy"));
        sig.wR = _five(string.concat(at, ".w_r"));
    }

    function _message() internal view returns (uint256[4] memory) {
        return _four(".exodus.message_elements");
    }

    function testRustSignaturesVerify() public view {
        uint256[4] memory m = _message();
        for (uint256 i = 0; i < 2; i++) {
            (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(i);
            uint256 g = gasleft();
            bool ok = Schnorr.verify(w, m, sig);
            if (i == 0) logGas("gas: Schnorr verify", g - gasleft());
            assertTrue(ok, "Rust signature verifies on L1");
        }
    }

    function testOtherMessageFails() public view {
        uint256[4] memory m = _message();
        m[2] = (m[2] + 1) % Schnorr.P;
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        assertFalse(Schnorr.verify(w, m, sig), "another message");
    }

    function testOtherKeyFails() public view {
        (, Schnorr.Signature memory sig) = _auth(0);
        (uint256[5] memory wBob, Schnorr.Signature memory bob) = _auth(1);
        // Bob's key with Alice's signature, Bob's point hints (so the key checks pass).
        sig.qx = bob.qx;
        sig.qy = bob.qy;
        assertFalse(Schnorr.verify(wBob, _message(), sig), "another key");
    }

    function testFlippedChallengeOrResponseFails() public view {
        uint256[4] memory m = _message();
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        sig.e[0] ^= 1;
        assertFalse(Schnorr.verify(w, m, sig), "flipped e");
        (, sig) = _auth(0);
        sig.sLo ^= 1;
        assertFalse(Schnorr.verify(w, m, sig), "flipped s");
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
        assertFalse(Schnorr.verify(w, m, sig), "s + n");
        (, sig) = _auth(0);
        sig.e[1] += Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig), "e limb + p");
        (, sig) = _auth(0);
        w[0] += Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig), "key limb + p");
    }

    function testWrongKeyRootFails() public view {
        uint256[4] memory m = _message();
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        // The other root satisfies the curve equation but is a square: no qy can pass.
        sig.qx = _five(".exodus.authorisations[0].other_root_qx");
        assertFalse(Schnorr.verify(w, m, sig), "other root");
        (, sig) = _auth(0);
        sig.qx[0] = (sig.qx[0] + 1) % Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig), "qx off the curve");
        (, sig) = _auth(0);
        sig.qy[0] = (sig.qy[0] + 1) % Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig), "qy not a root of qx / 7");
    }

    function testWrongEncodingHintFails() public view {
        uint256[4] memory m = _message();
        (uint256[5] memory w, Schnorr.Signature memory sig) = _auth(0);
        sig.wR[4] = (sig.wR[4] + 1) % Schnorr.P;
        assertFalse(Schnorr.verify(w, m, sig), "wrong R encoding");
    }

    function testNeutralKeyFails() public view {
        (, Schnorr.Signature memory sig) = _auth(0);
        uint256[5] memory zero;
        assertFalse(Schnorr.verify(zero, _message(), sig), "neutral key");
    }
}
