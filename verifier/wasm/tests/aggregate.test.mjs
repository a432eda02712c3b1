// The WebAssembly verifier on an aggregated proof (mlp_tiny in 2 segments folded into one
// proof): it verifies with the segments' keys and the aggregation key, pinned by its
// aggregate id, and an edited output, digest, accumulator, proof or id does not.
// Run by scripts/test-wasm.sh:
//   ZKINFER_WASM_PKG   the package directory (target/wasm/pkg)
//   ZKINFER_AGGREGATE  tests/fixtures/aggregate (scripts/make-aggregate-fixture.sh):
//                      m/segment-<i>/vk, m/aggregate/vk and aggregate.json
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = process.env.ZKINFER_WASM_PKG;
const dir = process.env.ZKINFER_AGGREGATE;
assert.ok(pkg && dir, 'set ZKINFER_WASM_PKG and ZKINFER_AGGREGATE (scripts/test-wasm.sh does)');

const zk = await import(join(pkg, 'zkinfer_verifier.js'));
zk.initSync({ module: readFileSync(join(pkg, 'zkinfer_verifier_bg.wasm')) });

const read = (p) => new Uint8Array(readFileSync(join(dir, p)));
const vks = [read('m/segment-0/vk'), read('m/segment-1/vk')];
const avk = read('m/aggregate/vk');
const text = readFileSync(join(dir, 'aggregate.json'), 'utf8');
const agg = JSON.parse(text);
// Reading the aggregation key takes seconds in wasm (halo2's FFT tables for 2^21 rows):
// the keys are read once, every verdict below reuses them.
const verifier = new zk.AggregateVerifier(vks, avk);

test('an aggregated proof verifies with its keys, pinned by its aggregate id', () => {
  assert.equal(zk.verify_aggregate(vks, avk, text), true);
  assert.equal(verifier.aggregate_id, agg.aggregate_id);
  assert.equal(verifier.verify(text, agg.aggregate_id), true);
  // The model id it folds is not the aggregate id: pinning by it refuses.
  assert.equal(verifier.verify(text, agg.model_id), false);
  const report = JSON.parse(verifier.report(text));
  assert.equal(report.valid, true, report.reason);
  assert.equal(report.segments, 2);
  assert.equal(report.model_id, agg.model_id);
  assert.equal(report.aggregate_id, agg.aggregate_id);
  assert.deepEqual(report.output, agg.statements[1].output.values);
  assert.equal(report.insecure_dev_srs, true);
});

test('an edited output, digest, accumulator, proof or id, or keys out of order, do not verify', () => {
  const edit = (f) => {
    const a = structuredClone(agg);
    f(a);
    return JSON.stringify(a);
  };
  const verdict = (t) => JSON.parse(verifier.report(t));
  const bump = (h) => '0x' + (BigInt(h) + 1n).toString(16).padStart(64, '0');
  let r = verdict(edit((a) => {
    const s = a.statements[1];
    s.instances[s.instances.length - 1] = bump(s.instances[s.instances.length - 1]);
  }));
  assert.equal(r.valid, false);
  assert.match(r.reason, /is not the proven public output/);
  // The stated output edited with its public value: not the digest's statement.
  r = verdict(edit((a) => {
    const s = a.statements[1];
    s.instances[s.instances.length - 1] = bump(s.instances[s.instances.length - 1]);
    s.output.values[s.output.values.length - 1] += 2 ** -s.output.scale;
  }));
  assert.equal(r.valid, false);
  assert.match(r.reason, /digest/);
  r = verdict(edit((a) => { a.digest = bump(a.digest); }));
  assert.equal(r.valid, false);
  r = verdict(edit((a) => { a.accumulator[0] = bump(a.accumulator[0]); }));
  assert.equal(r.valid, false);
  r = verdict(edit((a) => { a.proof = a.proof + '00'; }));
  assert.equal(r.valid, false);
  assert.match(r.reason, /after its end/);
  r = verdict(edit((a) => {
    const i = a.proof.length >> 1;
    a.proof = a.proof.slice(0, i) + (a.proof[i] === '0' ? '1' : '0') + a.proof.slice(i + 1);
  }));
  assert.equal(r.valid, false);
  r = verdict(edit((a) => { a.statements.pop(); }));
  assert.equal(r.valid, false);
  r = verdict(edit((a) => { a.aggregate_id = '0x' + 'ab'.repeat(32); }));
  assert.equal(r.valid, false);
  assert.equal(new zk.AggregateVerifier([vks[1], vks[0]], avk).verify(text), false);
  // Unreadable keys or proof throw, as the command line exits 2.
  assert.throws(() => new zk.AggregateVerifier(vks, avk.slice(0, 100)));
  assert.throws(() => new zk.AggregateVerifier([], avk));
  assert.throws(() => verifier.verify(text.slice(0, 100)));
});
