// The WebAssembly verifier on a capability certificate: it states the proven count of
// its dataset, and an altered count, sample number, dataset or model id, or an omitted
// batch, does not verify. Run by scripts/test-wasm.sh:
//   ZKINFER_WASM_PKG     the package directory (target/wasm/pkg)
//   ZKINFER_CERTIFICATE  a certificate circuit's directory: vk and certificate.json
//                        (the digits MLP, 2 batches of 5 test images)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = process.env.ZKINFER_WASM_PKG;
const dir = process.env.ZKINFER_CERTIFICATE;
assert.ok(pkg && dir, 'set ZKINFER_WASM_PKG and ZKINFER_CERTIFICATE (scripts/test-wasm.sh does)');

const zk = await import(join(pkg, 'zkinfer_verifier.js'));
zk.initSync({ module: readFileSync(join(pkg, 'zkinfer_verifier_bg.wasm')) });

const vk = new Uint8Array(readFileSync(join(dir, 'vk')));
const text = readFileSync(join(dir, 'certificate.json'), 'utf8');
const cert = JSON.parse(text);

test('a certificate states the count its proofs prove', () => {
  assert.equal(zk.verify_certificate(vk, text), true);
  assert.equal(zk.verify_certificate(vk, text, cert.model_id), true);
  assert.equal(zk.verify_certificate(vk, text, '0x' + '0'.repeat(64)), false);
  const report = JSON.parse(zk.verify_certificate_report(vk, text));
  assert.equal(report.valid, true);
  assert.equal(report.samples, 10);
  assert.equal(report.correct, cert.correct);
  assert.equal(report.dataset, cert.dataset);
  assert.match(report.claim, new RegExp(`classifies ${cert.correct}/10 of dataset ${cert.dataset}`));
  assert.equal(report.insecure_dev_srs, true);
});

test('an altered count, dataset, sample number or id, or an omitted batch, does not verify', () => {
  const edit = (f) => {
    const c = structuredClone(cert);
    f(c);
    return JSON.stringify(c);
  };
  const verdict = (t) => JSON.parse(zk.verify_certificate_report(vk, t));
  for (const f of [
    (c) => { c.correct += 1; },
    (c) => { c.samples -= 1; },
    (c) => { c.dataset = '0x' + '11'.repeat(32); },
    (c) => { c.model_id = '0x' + 'ab'.repeat(32); },
    (c) => { c.proofs.pop(); },
    (c) => { [c.proofs[0], c.proofs[1]] = [c.proofs[1], c.proofs[0]]; },
  ]) {
    assert.equal(verdict(edit(f)).valid, false);
  }
  // An unreadable certificate throws, as the command line exits 2.
  assert.throws(() => zk.verify_certificate(vk, text.slice(0, 100)));
});
