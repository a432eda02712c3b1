// The WebAssembly verifier in Node: every shared model's proof verifies, tampered proofs
// and keys do not. Run by scripts/test-wasm.sh, which builds the package and the proofs:
//   ZKINFER_WASM_PKG  the package directory (target/wasm/pkg)
//   ZKINFER_PROOFS    a directory of MODEL/{vk,proof.json}, one per shared model (and
//                     mlp_tiny-hashed, whose weights, input and output are hashed)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const pkg = process.env.ZKINFER_WASM_PKG;
const proofs = process.env.ZKINFER_PROOFS;
assert.ok(pkg && proofs, 'set ZKINFER_WASM_PKG and ZKINFER_PROOFS (scripts/test-wasm.sh does)');

const zk = await import(join(pkg, 'zkinfer_verifier.js'));
zk.initSync({ module: readFileSync(join(pkg, 'zkinfer_verifier_bg.wasm')) });

const models = readdirSync(proofs).sort();
assert.ok(models.length > 0, `no proofs in ${proofs}`);

function load(model) {
  return {
    vk: readFileSync(join(proofs, model, 'vk')),
    proof: JSON.parse(readFileSync(join(proofs, model, 'proof.json'), 'utf8')),
  };
}

for (const model of models) {
  test(`${model}: the proof verifies, tampered ones do not`, () => {
    const { vk, proof } = load(model);
    assert.equal(zk.verify(vk, JSON.stringify(proof)), true);
    const report = JSON.parse(zk.verify_report(vk, JSON.stringify(proof)));
    assert.equal(report.valid, true);
    assert.equal(report.model_id, proof.model_id);
    if (proof.output) {
      assert.deepEqual(report.output, proof.output.values);
    } else {
      // A hashed statement: only hashes are public.
      assert.equal(report.output, null);
      assert.equal(report.input, null);
      assert.equal(report.output_hash, proof.instances[proof.instances.length - 1]);
      assert.equal(report.params_hash, proof.instances[0]);
    }
    assert.equal(zk.model_id(vk), proof.model_id);

    // One flipped hex digit in the middle of the proof bytes.
    const i = proof.proof.length >> 1;
    const flipped = { ...proof, proof: proof.proof.slice(0, i) + (proof.proof[i] === '0' ? '1' : '0') + proof.proof.slice(i + 1) };
    assert.equal(zk.verify(vk, JSON.stringify(flipped)), false);

    // Another public output, the stated output kept consistent with it.
    const last = proof.instances.length - 1;
    const bumped = structuredClone(proof);
    bumped.instances[last] = '0x' + (BigInt(proof.instances[last]) + 1n).toString(16).padStart(64, '0');
    if (proof.output) bumped.output.values[bumped.output.values.length - 1] += 2 ** -proof.output.scale;
    const r = JSON.parse(zk.verify_report(vk, JSON.stringify(bumped)));
    assert.equal(r.valid, false);
    assert.match(r.reason, /does not verify/);
  });
}

test('a proof checked against another model\'s key is invalid', () => {
  if (models.length < 2) return;
  const a = load(models[0]);
  const b = load(models[1]);
  assert.equal(zk.verify(b.vk, JSON.stringify(a.proof)), false);
});

test('unreadable keys and proof files throw instead of answering', () => {
  const { vk, proof } = load(models[0]);
  assert.throws(() => zk.verify(new Uint8Array([1, 2, 3]), JSON.stringify(proof)), /verifying key/);
  assert.throws(() => zk.verify(vk.subarray(0, vk.length >> 1), JSON.stringify(proof)), /verifying key/);
  assert.throws(() => zk.verify(vk, 'not json'), /proof file/);
  const other = { ...proof, version: 0 };
  assert.throws(() => zk.verify(vk, JSON.stringify(other)), /version/);
});
