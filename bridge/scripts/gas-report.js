#!/usr/bin/env node
// Gas of Rollup.commitBatch on anvil (its default hardfork), for batches of 100, 1,000 and
// 10,000 payments among 100 and among 1,000 agents. The L1 data of each batch is produced by the
// Rust code itself (`cargo run -p rollup-bridge --example gas-blobs`: real signed payments
// applied by the state-transition function, the state diff the node publishes, and the
// per-transaction ops for comparison); this script deploys the committed artifacts
// (bridge/artifacts) on a fresh anvil, commits every blob with a real transaction from anvil's
// first (unlocked) account, and prints a Markdown table of the receipts' gasUsed.
//
//   node bridge/scripts/gas-report.js BLOBS.json     (scripts/gas-report.sh does both steps)
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
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
// Worst case of per-transaction ops (SPEC 10, 25 bytes per transfer): every byte non-zero
// (large indices and amounts). Synthetic: no real batch looks like this.
function worstCase(n) {
  const b = Buffer.alloc(25 * n);
  for (let i = 0; i < b.length; i++) b[i] = 1 + rand(255);
  for (let i = 0; i < n; i++) b[25 * i] = 2;
  return b;
}

// ---------------------------------------------------------------- ABI and RPC
const word = (x) => BigInt(x).toString(16).padStart(64, '0');
const addrWord = (a) => a.slice(2).toLowerCase().padStart(64, '0');
const selector = (sig) => keccak256(sig).slice(0, 8);
// commitBatch(BatchHeader, bytes pubdata, bytes payouts) with BatchHeader = (batchNumber, newRoot,
// payoutRoot, nextPriorityOp, timestamp) (SPEC 15.3): five static words, then the offsets of
// `pubdata` and `payouts`. The batches here pay nothing out: no payouts, payout root zero.
const COMMIT = selector('commitBatch((uint64,bytes32,bytes32,uint64,uint64),bytes,bytes)');

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
  if (!process.argv[2]) throw new Error('usage: gas-report.js BLOBS.json (see scripts/gas-report.sh)');
  const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  if (input.version !== 1) throw new Error(`unknown blobs version ${input.version}`);
  const hexBuf = (h) => Buffer.from(h.slice(2), 'hex');
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
    const permutation = await deploy('PoseidonPermutation', []);
    const rollup = await deploy('Rollup', [addrWord(token), addrWord(verifier), addrWord(me), addrWord(me), addrWord(me), genesis.slice(2), word(3 * 86400), addrWord(permutation)]);

    let batch = 0;
    async function commit(blob) {
      batch += 1;
      const newRoot = '0x' + keccak256(`root ${batch}`);
      const payoutRoot = word(0); // payoutRoot(n, empty list)
      // The batch time must lie in [lastCommittedTimestamp, block.timestamp]: the latest block's
      // time is, since anvil's blocks never go back in time.
      const latest = await rpc('eth_getBlockByNumber', ['latest', false]);
      // Consumes no priority op (nextPriorityOp = 0): the deposits above are not overdue.
      const header = [word(batch), newRoot.slice(2), payoutRoot, word(0), word(BigInt(latest.timestamp))].join('');
      const padded = blob.toString('hex').padEnd(Math.ceil(blob.length / 32) * 64, '0');
      const payoutsAt = 7 * 32 + 32 + padded.length / 2;
      const data = '0x' + COMMIT + header + word(7 * 32) + word(payoutsAt) + word(blob.length) + padded + word(0);
      const r = await send(me, rollup, data);
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
      for (const c of input.cases.filter((x) => x.payments === n)) {
        const cases = [
          ['per-transaction ops (SPEC 10)', hexBuf(c.ops), ''],
          ['**state diff (SPEC 10.4)**', hexBuf(c.diff), `${c.records} accounts in the diff`],
        ];
        for (const [what, blob, note] of cases) {
          const { gas, cd } = await commit(blob);
          rows.push({ n, agents: c.agents.toLocaleString('en-US'), what, bytes: blob.length, gas, perPayment: gas / n, floorBound: gas === cd.floor ? 'EIP-7623 floor (10 gas per token)' : 'standard (4/16 per byte) + execution', note });
        }
      }
      const { gas, cd } = await commit(worstCase(n));
      rows.push({ n, agents: '-', what: 'per-transaction ops, worst case (no zero bytes)', bytes: 25 * n, gas, perPayment: gas / n, floorBound: gas === cd.floor ? 'EIP-7623 floor (10 gas per token)' : 'standard (4/16 per byte) + execution', note: 'synthetic' });
    }
    const lines = [];
    lines.push(`anvil: ${version}, hardfork: ${info.hardFork || info.hardfork || JSON.stringify(info.environment)}, chain id ${parseInt(await rpc('eth_chainId'), 16)}`);
    lines.push(`deposit: ${firstDeposit} gas (first ever), ${nextDeposit} gas (later ones)`);
    lines.push(`commitBatch with empty pubdata (steady state): ${empty.gas} gas`);
    lines.push('');
    lines.push('| payments | agents | L1 data (`pubdata`) | bytes | gas (receipt) | gas per payment | calldata pricing | note |');
    lines.push('|---:|---:|---|---:|---:|---:|---|---|');
    for (const r of rows) {
      lines.push(`| ${r.n.toLocaleString('en-US')} | ${r.agents} | ${r.what} | ${r.bytes.toLocaleString('en-US')} | ${r.gas.toLocaleString('en-US')} | ${r.perPayment.toFixed(1)} | ${r.floorBound} | ${r.note} |`);
    }
    // Streams (issue 14): the net state diffs of a minute of 1,000 streams ticking 10 times a
    // second, settled once per batch; gas per tick = all the minute's commits / its ticks.
    if (input.streams) {
      lines.push('');
      lines.push('| streams | payees | ticks in the minute | batch every | batches | diff bytes per batch | gas per batch (receipt) | gas for the minute | gas per tick |');
      lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const c of input.streams) {
        let gas = 0; let bytes = 0;
        for (const d of c.diffs) { const r = await commit(hexBuf(d)); gas += r.gas; bytes += hexBuf(d).length; }
        const n = c.diffs.length;
        lines.push(`| ${c.streams.toLocaleString('en-US')} | ${c.payees} | ${c.ticks.toLocaleString('en-US')} | ${c.batch_secs} s | ${n} | ${Math.round(bytes / n).toLocaleString('en-US')} | ${Math.round(gas / n).toLocaleString('en-US')} | ${gas.toLocaleString('en-US')} | ${(gas / c.ticks).toFixed(2)} |`);
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    anvil.kill('SIGTERM');
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
