#!/usr/bin/env node
// Gas of Rollup.commitBatch on anvil (its default hardfork), for batches of 100, 1,000 and
// 10,000 payments, with the pubdata encodings of docs/BENCHMARKS.md. Deploys the committed
// artifacts (bridge/artifacts) on a fresh anvil, sends real transactions from anvil's first
// (unlocked) account, and prints a Markdown table of the receipts' gasUsed.
//
//   node bridge/scripts/gas-report.js        (scripts/gas-report.sh installs the tools first)
'use strict';
const { spawn } = require('child_process');
const net = require('net');
const path = require('path');
const { keccak256 } = require('js-sha3');

const BRIDGE = path.resolve(__dirname, '..');
const ANVIL = path.join(BRIDGE, 'node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil');
const art = (n) => require(path.join(BRIDGE, 'artifacts', `${n}.json`));

// ---------------------------------------------------------------- deterministic randomness
let rngState = 0x9e3779b97f4a7c15n;
function rand(n) { // uniform-ish in [0, n)
  rngState ^= rngState << 13n; rngState &= (1n << 64n) - 1n;
  rngState ^= rngState >> 7n;
  rngState ^= rngState << 17n; rngState &= (1n << 64n) - 1n;
  return Number(rngState % BigInt(n));
}
const le = (v, n) => { const b = Buffer.alloc(n); let x = BigInt(v); for (let i = 0; i < n; i++) { b[i] = Number(x & 0xffn); x >>= 8n; } return b; };

// ---------------------------------------------------------------- pubdata encodings
// Transfer op (SPEC 10): tag 2 | from LE32 | to LE32 | amount LE64 | fee LE64 = 25 bytes.
function transferOp(from, to, amount, fee) {
  return Buffer.concat([Buffer.from([2]), le(from, 4), le(to, 4), le(amount, 8), le(fee, 8)]);
}
// Payments among `agents` accounts (indices 1..agents), amounts up to 1 USD (6 decimals), fee 1..100.
function payments(n, agents) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const from = 1 + rand(agents);
    let to = 1 + rand(agents - 1); if (to >= from) to += 1;
    out.push({ from, to, amount: 1 + rand(1_000_000), fee: 1 + rand(100) });
  }
  return out;
}
const perTx = (ps) => Buffer.concat(ps.map((p) => transferOp(p.from, p.to, p.amount, p.fee)));
// Worst case: every byte non-zero (large indices and amounts).
function worstCase(n) {
  const b = Buffer.alloc(25 * n);
  for (let i = 0; i < b.length; i++) b[i] = 1 + rand(255);
  for (let i = 0; i < n; i++) b[25 * i] = 2;
  return b;
}
// Net state diff (docs/SPEC.md, "Pubdata per batch: net state diffs", proposed): one record per
// touched account, sorted by index: index LE32 | balance LE64 | nonce LE64 (20 bytes).
// Starting balances 1,000 USD; nonces start at 0.
function netDiff(ps) {
  const bal = new Map(); const nonce = new Map();
  const b = (i) => (bal.has(i) ? bal.get(i) : 1_000_000_000);
  for (const p of ps) {
    bal.set(p.from, b(p.from) - p.amount - p.fee);
    bal.set(p.to, b(p.to) + p.amount);
    bal.set(0, b(0) + p.fee);
    nonce.set(p.from, (nonce.get(p.from) || 0) + 1);
  }
  const idx = [...bal.keys()].sort((x, y) => x - y);
  return { blob: Buffer.concat(idx.map((i) => Buffer.concat([le(i, 4), le(bal.get(i), 8), le(nonce.get(i) || 0, 8)]))), touched: idx.length };
}

// ---------------------------------------------------------------- ABI and RPC
const word = (x) => BigInt(x).toString(16).padStart(64, '0');
const addrWord = (a) => a.slice(2).toLowerCase().padStart(64, '0');
const selector = (sig) => keccak256(sig).slice(0, 8);
const COMMIT = selector('commitBatch((uint64,bytes32,bytes32,bytes32,bytes32,bytes32,uint64,uint64,bytes32,bytes32),bytes)');

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer(); s.unref(); s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
let rpcUrl; let rpcId = 0;
async function rpc(method, params = []) {
  const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcId, method, params }) });
  const j = await res.json();
  if (j.error) throw new Error(`${method}: ${JSON.stringify(j.error)}`);
  return j.result;
}
async function send(from, to, data) {
  const hash = await rpc('eth_sendTransaction', [{ from, to, data, gas: '0x' + (30_000_000).toString(16) }]);
  for (let i = 0; i < 200; i++) {
    const r = await rpc('eth_getTransactionReceipt', [hash]);
    if (r) { if (r.status !== '0x1') throw new Error(`transaction ${hash} reverted`); return r; }
    await new Promise((ok) => setTimeout(ok, 25));
  }
  throw new Error('no receipt');
}
const calldataCost = (hex) => {
  const b = Buffer.from(hex.slice(2), 'hex'); let z = 0; for (const x of b) if (x === 0) z++;
  const nz = b.length - z;
  return { bytes: b.length, standard: 21000 + 4 * z + 16 * nz, floor: 21000 + 10 * (z + 4 * nz) };
};

async function main() {
  const port = await freePort();
  rpcUrl = `http://127.0.0.1:${port}`;
  const anvil = spawn(ANVIL, ['--port', String(port), '--silent'], { stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      try { await rpc('eth_chainId'); break; } catch (e) { if (i > 200) throw e; await new Promise((ok) => setTimeout(ok, 50)); }
    }
    const info = await rpc('anvil_nodeInfo');
    const version = await rpc('web3_clientVersion');
    const [me] = await rpc('eth_accounts');
    const deploy = async (name, args) => {
      const r = await send(me, null, art(name).bytecode + args.join(''));
      return r.contractAddress;
    };
    const token = await deploy('TestStablecoin', [addrWord(me)]);
    const verifier = await deploy('AttestationVerifier', [addrWord(me)]);
    const genesis = '0x' + keccak256('genesis');
    const rollup = await deploy('Rollup', [addrWord(token), addrWord(verifier), addrWord(me), addrWord(me), addrWord(me), genesis.slice(2), word(3 * 86400)]);

    let batch = 0; let root = genesis;
    async function commit(blob) {
      batch += 1;
      const newRoot = '0x' + keccak256(`root ${batch}`);
      const rnd = () => keccak256(`${batch} ${rand(1 << 30)}`); // non-zero 32-byte fields, like real digests
      const header = [word(batch), root.slice(2), newRoot.slice(2), rnd(), rnd(), rnd(), word(0), word(0), word(0), rnd()].join('');
      const padded = blob.toString('hex').padEnd(Math.ceil(blob.length / 32) * 64, '0');
      const data = '0x' + COMMIT + header + word(11 * 32) + word(blob.length) + padded;
      const r = await send(me, rollup, data);
      root = newRoot;
      return { gas: parseInt(r.gasUsed, 16), cd: calldataCost(data) };
    }
    await send(me, token, '0x' + selector('mint(address,uint256)') + addrWord(me) + word(10n ** 12n));
    await send(me, token, '0x' + selector('approve(address,uint256)') + addrWord(rollup) + word((1n << 256n) - 1n));
    const dep = () => send(me, rollup, '0x' + selector('deposit(uint32,uint64)') + word(7) + word(1_000_000));
    const firstDeposit = parseInt((await dep()).gasUsed, 16);
    const nextDeposit = parseInt((await dep()).gasUsed, 16);
    // Warm-up: the first commit pays for first-time storage of the counters.
    await commit(Buffer.alloc(0));
    const empty = await commit(Buffer.alloc(0));

    const rows = [];
    for (const n of [100, 1000, 10000]) {
      const ps = payments(n, 1000);
      const ps100 = payments(n, 100);
      const diff = netDiff(ps100);
      const cases = [
        ['per-transaction ops, 1,000 agents', perTx(ps), ''],
        ['per-transaction ops, worst case (no zero bytes)', worstCase(n), ''],
        ['net state diff, 100 agents', diff.blob, `${diff.touched} accounts touched`],
      ];
      for (const [what, blob, note] of cases) {
        const { gas, cd } = await commit(blob);
        rows.push({ n, what, bytes: blob.length, gas, perPayment: gas / n, floorBound: gas === cd.floor ? 'EIP-7623 floor (10 gas per token)' : 'standard (4/16 per byte) + execution', note });
      }
    }
    const lines = [];
    lines.push(`anvil: ${version}, hardfork: ${info.hardFork || info.hardfork || JSON.stringify(info.environment)}, chain id ${parseInt(await rpc('eth_chainId'), 16)}`);
    lines.push(`deposit: ${firstDeposit} gas (first ever), ${nextDeposit} gas (later ones)`);
    lines.push(`commitBatch with empty pubdata (steady state): ${empty.gas} gas`);
    lines.push('');
    lines.push('| payments | pubdata encoding | pubdata bytes | gas (receipt) | gas per payment | calldata pricing | note |');
    lines.push('|---:|---|---:|---:|---:|---|---|');
    for (const r of rows) {
      lines.push(`| ${r.n.toLocaleString('en-US')} | ${r.what} | ${r.bytes.toLocaleString('en-US')} | ${r.gas.toLocaleString('en-US')} | ${r.perPayment.toFixed(1)} | ${r.floorBound} | ${r.note} |`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    anvil.kill('SIGTERM');
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
