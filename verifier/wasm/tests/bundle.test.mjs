// The WebAssembly verifier on a segmented model's proof bundle: it verifies with the
// segments' keys in order, and a reordered, truncated, spliced or re-identified bundle
// does not. Run by scripts/test-wasm.sh:
//   ZKINFER_WASM_PKG  the package directory (target/wasm/pkg)
//   ZKINFER_BUNDLE    a segmented model directory: segments.json, segment-<i>/vk and
//                     bundle.json (attn_block in 3 segments)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = process.env.ZKINFER_WASM_PKG;
const dir = process.env.ZKINFER_BUNDLE;
assert.ok(pkg && dir, 'set ZKINFER_WASM_PKG and ZKINFER_BUNDLE (scripts/test-wasm.sh does)');

const zk = await import(join(pkg, 'zkinfer_verifier.js'));
zk.initSync({ module: readFileSync(join(pkg, 'zkinfer_verifier_bg.wasm')) });

const manifest = JSON.parse(readFileSync(join(dir, 'segments.json'), 'utf8'));
const vks = manifest.segments.map((s) => new Uint8Array(readFileSync(join(dir, s.dir, 'vk'))));
const text = readFileSync(join(dir, 'bundle.json'), 'utf8');
const bundle = JSON.parse(text);

test('a bundle verifies with its segments\' keys in order', () => {
  assert.ok(vks.length >= 3);
  assert.equal(zk.verify_bundle(vks, text), true);
  assert.equal(zk.verify_bundle(vks, text, bundle.model_id), true);
  assert.equal(zk.verify_bundle(vks, text, '0x' + '0'.repeat(64)), false);
  const report = JSON.parse(zk.verify_bundle_report(vks, text));
  assert.equal(report.valid, true);
  assert.equal(report.segments, vks.length);
  assert.equal(report.model_id, bundle.model_id);
  assert.deepEqual(report.output, bundle.proofs[bundle.proofs.length - 1].output.values);
  assert.equal(report.insecure_dev_srs, true);
});

test('reordered, dropped or spliced segments and another id do not verify', () => {
  const edit = (f) => {
    const b = structuredClone(bundle);
    f(b);
    return JSON.stringify(b);
  };
  const verdict = (t) => JSON.parse(zk.verify_bundle_report(vks, t));
  let r = verdict(edit((b) => { [b.proofs[1], b.proofs[2]] = [b.proofs[2], b.proofs[1]]; }));
  assert.equal(r.valid, false);
  r = verdict(edit((b) => { b.proofs.splice(1, 1); }));
  assert.equal(r.valid, false);
  assert.match(r.reason, /segments/);
  r = verdict(edit((b) => { b.proofs[2] = b.proofs[1]; }));
  assert.equal(r.valid, false);
  r = verdict(edit((b) => { b.model_id = '0x' + 'ab'.repeat(32); }));
  assert.equal(r.valid, false);
  // The keys out of order are another model.
  assert.equal(zk.verify_bundle([vks[0], vks[2], vks[1]], text), false);
  // An unreadable bundle throws, as the command line exits 2.
  assert.throws(() => zk.verify_bundle(vks, text.slice(0, 100)));
});
