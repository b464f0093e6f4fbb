#!/usr/bin/env node
// Compiles bridge/contracts/src/*.sol with the pinned solc-js into one JSON artifact per
// deployable contract (abi, bytecode, deployedBytecode, compiler and settings). The output is
// deterministic (sorted keys, fixed settings, sources named relative to bridge/), so
// scripts/check-artifacts.sh can rebuild into a temporary folder and diff.
//
//   node bridge/scripts/build.js [out_dir]      (default: bridge/artifacts)
'use strict';
const fs = require('fs');
const path = require('path');

const BRIDGE = path.resolve(__dirname, '..');
const solc = require(path.join(BRIDGE, 'node_modules', 'solc'));
const SRC = 'contracts/src';
const OUT = path.resolve(process.argv[2] || path.join(BRIDGE, 'artifacts'));
// The contracts the Rust client deploys or talks to.
const EXPORT = ['Rollup', 'PoseidonPermutation', 'AttestationVerifier', 'TestStablecoin', 'IVerifier', 'IERC20'];

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'prague',
  // No metadata hash in the bytecode (as in foundry.toml): a code hash is a function of the code
  // alone, so ExodusVerifier can pin PoseidonPermutation's.
  metadata: { bytecodeHash: 'none', appendCBOR: false },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

const sources = {};
for (const f of fs.readdirSync(path.join(BRIDGE, SRC)).filter((f) => f.endsWith('.sol')).sort()) {
  sources[`${SRC}/${f}`] = { content: fs.readFileSync(path.join(BRIDGE, SRC, f), 'utf8') };
}
const input = { language: 'Solidity', sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input), {
  import: (p) => {
    try { return { contents: fs.readFileSync(path.join(BRIDGE, p), 'utf8') }; } catch (e) { return { error: String(e) }; }
  },
}));
let failed = false;
for (const e of output.errors || []) {
  process.stderr.write(e.formattedMessage || e.message);
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);

function sorted(v) {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]));
  }
  return v;
}

fs.mkdirSync(OUT, { recursive: true });
for (const [sourceName, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (!EXPORT.includes(name)) continue;
    const artifact = {
      contractName: name,
      sourceName,
      compiler: { name: 'solc-js', version: solc.version(), settings: sorted({ optimizer: SETTINGS.optimizer, evmVersion: SETTINGS.evmVersion, metadata: SETTINGS.metadata }) },
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(OUT, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
  }
}
