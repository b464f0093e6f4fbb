// The explorer in a real headless browser (Debian's chromium driven by puppeteer-core): it
// renders fast, fetches nothing from outside the node, shows a payment made during the test, a
// batch reaching `finalized`, clear pages for unknown or malformed ids, and its DOM stays bounded
// while it follows the live devnet. Started by interop/explorer/run.sh, which runs the devnet.
//
// Environment:
//   EXPLORER_URL      the node's HTTP base, e.g. http://127.0.0.1:18080
//   ROLLUP_BIN        the `rollup` wallet; ROLLUP_ENDPOINT its gRPC endpoint
//   PAYER_KEY         a funded, registered key file; PAYEE the account it pays
//   CHROMIUM          the browser (default /usr/bin/chromium)
//   SCREENSHOT        where to save the overview once a batch is finalized (optional)
//   FINALIZED_TIMEOUT_S  how long a batch may take to reach `finalized` (default 420)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import puppeteer from 'puppeteer-core';

const run = promisify(execFile);
const base = process.env.EXPLORER_URL || 'http://127.0.0.1:8080';
const origin = new URL(base).origin;
const finalizedTimeout = Number(process.env.FINALIZED_TIMEOUT_S || 420) * 1000;
const t0 = Date.now();
const log = (...a) => console.log(`[explorer-test +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

function fail(msg) {
  throw new Error(msg);
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Root in CI containers: chromium's sandbox needs user namespaces that containers lack.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  defaultViewport: { width: 1360, height: 900 },
});

let exitCode = 1;
try {
  const page = await browser.newPage();
  const problems = [];
  const foreign = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    // A CSP violation or a script error shows up as a console error.
    if (m.type() === 'error' && !/404|400|Failed to load resource/.test(m.text())) problems.push('console: ' + m.text());
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:')) foreign.push(u);
  });

  // 1. First render: the overview with the head block, timed from navigation start.
  const started = Date.now();
  const resp = await page.goto(base + '/explorer', { waitUntil: 'domcontentloaded', timeout: 15000 });
  if (!resp.ok()) fail('GET /explorer: ' + resp.status());
  const csp = resp.headers()['content-security-policy'] || '';
  if (!csp.includes("default-src 'none'") || !csp.includes("connect-src 'self'")) fail('CSP header: ' + csp);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 10000 });
  const wallMs = Date.now() - started;
  const firstRenderMs = Number(await page.$eval('body', (b) => b.dataset.firstRenderMs));
  const head = await page.$eval('#head-block', (e) => Number(e.textContent.replace(/,/g, '')));
  log(`first render: ${firstRenderMs} ms after navigation start (wall ${wallMs} ms); head block ${head}`);
  if (!(firstRenderMs < 1000)) fail(`first render took ${firstRenderMs} ms (budget 1000 ms)`);
  await page.waitForFunction(() => document.querySelectorAll('#home-blocks tr').length > 0, { timeout: 10000 });

  // 2. A payment made now appears in the payer's history, then on its own page.
  const payer = JSON.parse(await (await import('node:fs/promises')).readFile(process.env.PAYER_KEY, 'utf8'));
  // The devnet's demo agent pays from the same key every few seconds: a payment that lost the
  // nonce race (BAD_NONCE, exit status 3) is signed again with the next nonce.
  let receipt = null;
  for (let attempt = 1; receipt === null; attempt++) {
    try {
      const { stdout } = await run(process.env.ROLLUP_BIN, ['--json', 'pay', '--key', process.env.PAYER_KEY,
        '--to', String(process.env.PAYEE), '--amount', '4242', '--fee', '1'], { env: process.env, timeout: 30000 });
      receipt = JSON.parse(stdout.trim().split('\n').pop());
    } catch (e) {
      if (attempt >= 5) fail('payment failed 5 times: ' + e.message);
      log(`payment attempt ${attempt} failed (${(e.stdout || e.message).trim()}); again`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  if (receipt.status !== 'accepted') fail('payment not accepted: ' + JSON.stringify(receipt));
  const txId = receipt.tx_id;
  log(`paid 4242 from account ${payer.account_index} to ${process.env.PAYEE}: ${txId}`);
  await page.goto(`${base}/explorer#/account/${payer.account_index}`);
  await page.waitForSelector(`#account tr[data-tx-id="${txId}"], tr[data-tx-id="${txId}"]`, { timeout: 15000 });
  log('the payment is in the account\'s history');
  await page.click(`tr[data-tx-id="${txId}"] a[href^="#/tx/"]`);
  await page.waitForSelector(`#tx[data-tx-id="${txId}"]`, { timeout: 10000 });
  const amount = await page.$eval('#tx', (e) => e.textContent);
  if (!amount.includes('4,242')) fail('the transaction page does not show the amount: ' + amount);
  log('the payment\'s page shows it');

  // 3. Clear pages for what does not exist or does not parse.
  for (const [hash, code] of [
    ['#/tx/0x' + '00'.repeat(32), 'UNKNOWN_TRANSACTION'],
    ['#/account/4000000000', 'UNKNOWN_ACCOUNT'],
    ['#/block/999999999', 'UNKNOWN_BLOCK'],
    ['#/batch/999999999', 'UNKNOWN_BATCH'],
    ['#/tx/nonsense', 'MALFORMED'],
    ['#/account/-1', 'MALFORMED'],
    ['#/no/such/page', 'UNKNOWN_PAGE'],
  ]) {
    await page.goto(`${base}/explorer${hash}`);
    await page.waitForSelector(`.notfound[data-problem="${code}"]`, { timeout: 10000 });
  }
  log('unknown and malformed ids get a clear page');

  // 4. A batch reaches `finalized` on the overview, following the live devnet; the DOM stays
  // bounded meanwhile (lists are replaced; the bridge feed keeps its last 50 events).
  await page.goto(`${base}/explorer#/`);
  await page.waitForSelector('body[data-ready="1"]');
  const nodesAtStart = await page.evaluate(() => document.getElementsByTagName('*').length);
  const cdp = await page.createCDPSession();
  const heapNow = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    return (await page.metrics()).JSHeapUsedSize;
  };
  const heapAtStart = await heapNow();
  const seen = new Set();
  const deadline = Date.now() + finalizedTimeout;
  let finalized = null;
  let maxNodes = nodesAtStart;
  while (Date.now() < deadline) {
    const rows = await page.$$eval('#home-batches tr', (rs) => rs.map((r) => [r.dataset.batch, r.dataset.status]));
    for (const [n, s] of rows) {
      if (!seen.has(n + s)) { seen.add(n + s); log(`batch ${n} on screen: ${s}`); }
      if (s === 'finalized' && finalized === null) finalized = n;
    }
    maxNodes = Math.max(maxNodes, await page.evaluate(() => document.getElementsByTagName('*').length));
    if (finalized !== null) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (finalized === null) fail(`no batch reached finalized on screen within ${finalizedTimeout / 1000} s`);
  await page.waitForFunction(() => document.querySelectorAll('#events li[data-kind="batch_finalized"]').length > 0,
    { timeout: 15000 });
  log(`batch ${finalized} is finalized on the overview; batch_finalized arrived on the live feed`);
  const events = await page.$$eval('#events li[data-event]', (l) => l.length);
  if (events > 50) fail(`the live feed keeps ${events} events (bound 50)`);
  log(`DOM elements: ${nodesAtStart} at start, at most ${maxNodes} while following the devnet; ${events} events kept`);
  if (maxNodes > 2500) fail(`the overview grew to ${maxNodes} elements`);
  const heap = await heapNow();
  const mib = (b) => (b / 1048576).toFixed(2) + ' MiB';
  log(`JS heap in use after GC: ${mib(heapAtStart)} before following the devnet, ${mib(heap)} after`);
  if (heap > heapAtStart + 2 * 1048576) fail(`the page's heap grew from ${mib(heapAtStart)} to ${mib(heap)}`);
  if (process.env.SCREENSHOT) {
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: false });
    log('screenshot: ' + process.env.SCREENSHOT);
  }

  // 5. The finalized batch's page shows its L1 commit and finalize transactions.
  await page.goto(`${base}/explorer#/batch/${finalized}`);
  await page.waitForSelector(`#batch-status.st-finalized`, { timeout: 10000 });
  const text = await page.$eval('main', (m) => m.textContent);
  const l1 = text.match(/L1 commit\s*0x[0-9a-f]{8}.*L1 finalize\s*0x[0-9a-f]{8}/s);
  if (!l1) fail('the batch page does not show its L1 transactions: ' + text);
  log(`batch ${finalized} page shows its L1 commit and finalize transactions`);

  if (foreign.length) fail('requests outside the node: ' + foreign.join(', '));
  if (problems.length) fail('browser errors:\n  ' + problems.join('\n  '));
  log('ok');
  exitCode = 0;
} catch (e) {
  console.error('[explorer-test] FAILED:', e.message);
} finally {
  await browser.close();
}
process.exit(exitCode);
