// The WebAssembly verifier in Node: every shared model's proof verifies, tampered proofs
// and keys do not. Run by scripts/test-wasm.sh, which builds the package and the proofs:
//   ZKINFER_WASM_PKG  the package directory (target/wasm/pkg)
//   ZKINFER_PROOFS    a directory of MODEL/{vk,proof.json}, one per shared model (and
//                     mlp_tiny-hashed, whose weights, input and output are hashed, and
//                     mlp_tiny-ptau, set up from a snarkjs powers-of-tau file)
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
    // The model id pins the key: required, it verifies; another one, it does not.
    assert.equal(zk.verify(vk, JSON.stringify(proof), proof.model_id), true);
    assert.equal(zk.verify(vk, JSON.stringify(proof), '0x' + '0'.repeat(64)), false);
    // Every key but the ceremony's is the development SRS's, and says so.
    assert.equal(report.srs_fingerprint, zk.srs_fingerprint(vk));
    const dev = model !== 'mlp_tiny-ptau';
    assert.equal(report.insecure_dev_srs, dev);
    assert.equal(report.warning !== undefined, dev);
    if (dev) assert.match(report.warning, /forge/);

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

// The key's KZG points start after magic, version, header length, header and k.
function pointsAt(vk) {
  const headerLen = vk.readUInt32LE(12);
  return 16 + headerLen + 4;
}

test('a key whose KZG points were replaced is refused, or is another model id', () => {
  const { vk, proof } = load('mlp_tiny');
  const at = pointsAt(vk);
  // g2 and s·g2 replaced by the G2 identity: the pairing check would accept anything.
  const broken = Buffer.from(vk);
  broken.fill(0, at + 64, at + 64 + 256);
  assert.throws(() => zk.verify(broken, JSON.stringify(proof)), /KZG point/);
  // s·g2 of another ceremony (the ptau key's): a usable key, but not the pinned model.
  const other = load('mlp_tiny-ptau').vk;
  const swapped = Buffer.from(vk);
  other.copy(swapped, at + 64 + 128, pointsAt(other) + 64 + 128, pointsAt(other) + 64 + 256);
  assert.notEqual(zk.model_id(swapped), proof.model_id);
  assert.equal(zk.verify(swapped, JSON.stringify(proof), proof.model_id), false);
  const relabelled = { ...proof, model_id: zk.model_id(swapped) };
  assert.equal(zk.verify(swapped, JSON.stringify(relabelled)), false);
  const r = JSON.parse(zk.verify_report(swapped, JSON.stringify(proof), proof.model_id));
  assert.match(r.reason, /not the required/);
});

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
