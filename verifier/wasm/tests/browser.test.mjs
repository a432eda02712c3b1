// The WebAssembly verifier in a browser: examples/web/index.html, served on loopback,
// verifies a proof in headless Chromium (Debian's package); the test reads the verdict
// from the page. Environment as for verify.test.mjs, plus ZKINFER_CHROMIUM (default
// /usr/bin/chromium).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { join, normalize, dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const pkg = process.env.ZKINFER_WASM_PKG;
const proofs = process.env.ZKINFER_PROOFS;
assert.ok(pkg && proofs, 'set ZKINFER_WASM_PKG and ZKINFER_PROOFS (scripts/test-wasm.sh does)');
const web = join(dirname(fileURLToPath(import.meta.url)), '../../../examples/web');
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

// / -> examples/web, /pkg/ -> the package, /proofs/ -> the proofs (and tampered copies).
const extra = new Map();
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  const file = path.startsWith('/pkg/') ? join(pkg, path.slice(5))
    : path.startsWith('/proofs/') ? join(proofs, path.slice(8))
    : join(web, path === '/' ? 'index.html' : path);
  try {
    const body = extra.get(path) ?? await readFile(file);
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.ZKINFER_CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-quic', '--no-first-run'],
});
after(async () => { await browser.close(); server.close(); });

async function verdict(model, proofUrl) {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/?vk=/proofs/${model}/vk&proof=${proofUrl}`);
    const out = page.locator('#verdict[data-verdict]');
    await out.waitFor({ timeout: 60_000 });
    return { verdict: await out.getAttribute('data-verdict'), text: await out.textContent() };
  } finally {
    await page.close();
  }
}

const models = readdirSync(proofs).sort();
const model = models[0];

for (const m of models) {
  test(`${m}: Chromium verifies the proof`, async () => {
    const r = await verdict(m, `/proofs/${m}/proof.json`);
    assert.equal(r.verdict, 'valid', r.text);
    const proof = JSON.parse(readFileSync(join(proofs, m, 'proof.json'), 'utf8'));
    assert.match(r.text, new RegExp(proof.model_id));
    assert.match(r.text, proof.output ? /\noutput \[/ : /\noutput hash 0x/);
  });
}

test(`${model}: Chromium rejects a tampered proof`, async () => {
  const proof = JSON.parse(readFileSync(join(proofs, model, 'proof.json'), 'utf8'));
  const i = proof.proof.length >> 1;
  proof.proof = proof.proof.slice(0, i) + (proof.proof[i] === '0' ? '1' : '0') + proof.proof.slice(i + 1);
  extra.set('/tampered.json', JSON.stringify(proof));
  const r = await verdict(model, '/tampered.json');
  assert.equal(r.verdict, 'invalid', r.text);
});
