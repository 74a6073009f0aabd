// Veil's encrypted network in Microsoft SEAL (through node-seal), run by
// `veil bench --peer seal` side by side with Veil's Lattigo evaluation.
//
// Usage: node peer.mjs input.json > output.json
//
// The input (written by package bench) holds the CKKS parameters, the two
// folded matrices of the model (784 -> M1 and M1 -> 10, the square between
// them), the test images and the float scores they must give. The script
// packs the images into blocks of `blockSize` slots exactly as Veil does
// (M1 zero slots, then the 784 pixels), evaluates the same diagonal-method
// matrix products (baby-step giant-step, then rotate-and-add), the square
// with relinearisation, one rescale right after it and a re-randomisation with
// a fresh public-key encryption of zero, and reports per-stage timings
// (median-ready lists of milliseconds), wire sizes and the error against
// the float scores.
//
// Differences that SEAL imposes (also listed in the Go result):
//   - the standard ring: N/2 complex slots instead of N real slots, so a
//     ciphertext holds half as many 1024-slot image blocks;
//   - no hoisted rotations in node-seal's API: each baby step is a full
//     rotation (key switching), where Lattigo hoists the decomposition;
//   - single-threaded WebAssembly, where Veil uses 1 or 2 goroutines;
//   - no flooding noise (SEAL has no call for it): re-randomisation is only
//     the addition of a fresh encryption of zero.
import { readFileSync } from 'node:fs'
import SEAL from 'node-seal'

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const pkg = JSON.parse(readFileSync(new URL('./node_modules/node-seal/package.json', import.meta.url), 'utf8'))
const seal = await SEAL()
const none = seal.ComprModeType.none

const N = 1 << input.logN
const parms = new seal.EncryptionParameters(seal.SchemeType.ckks)
parms.setPolyModulusDegree(N)
parms.setCoeffModulus(seal.CoeffModulus.Create(N, Int32Array.from([...input.logQ, ...input.logP])))
const context = new seal.SEALContext(parms, true, seal.SecLevelType.tc128)
if (!context.parametersSet()) {
  throw new Error('SEAL rejected the parameters')
}
const encoder = new seal.CKKSEncoder(context)
const evaluator = new seal.Evaluator(context)
const slots = encoder.slotCount()
const B = input.blockSize
const blocks = slots / B
const M1 = input.M1
const M2 = input.M2
const first = input.first
const last = input.last
const inScale = 2 ** input.inputScaleBits
const wScale = 2 ** input.weightScaleBits
const oScale = 2 ** input.outputWeightScaleBits
const images = input.images.slice(0, blocks)

// setDiag sets diagonal i (a rotation by i; negative = right) at block
// slot j of every block, as he/network.go does.
function setDiag (d, i, j, w) {
  let v = d.get(i)
  if (!v) {
    v = new Float64Array(slots)
    d.set(i, v)
  }
  for (let b = 0; b < slots; b += B) v[b + j] = w
}

const d1 = new Map()
for (let r = 0; r < first.rows; r++) {
  for (let p = 0; p < first.cols; p++) {
    const w = first.w[r * first.cols + p]
    if (w === 0) continue
    const delta = M1 + p - r
    setDiag(d1, delta % M1, r + M1 * Math.floor(delta / M1), w)
  }
}
const d2 = new Map()
for (let r = 0; r < last.rows; r++) {
  for (let c = 0; c < last.cols; c++) {
    const w = last.w[r * last.cols + c]
    if (w === 0) continue
    const delta = c - r
    if (delta >= 0) setDiag(d2, delta % M2, r + M2 * Math.floor(delta / M2), w)
    else setDiag(d2, delta, r, w)
  }
}

// A baby-step giant-step plan: diagonal i = n1*g + b is pre-rotated by
// -n1*g, so that sum_i d_i * rot_i(x) = sum_g rot_{n1 g}(sum_b d'_{g,b} * rot_b(x)).
function plan (diags, n1, scale) {
  const groups = new Map()
  const babies = new Set()
  for (const [i, v] of diags) {
    const g = Math.floor(i / n1)
    const b = i - g * n1
    const shift = g * n1
    const pre = new Float64Array(slots)
    for (let j = 0; j < slots; j++) pre[j] = v[(((j - shift) % slots) + slots) % slots]
    const pt = new seal.Plaintext()
    encoder.encode(pre, scale, pt)
    if (!groups.has(g)) groups.set(g, [])
    groups.get(g).push([b, pt])
    babies.add(b)
  }
  return { n1, groups, babies: [...babies].filter(b => b !== 0).sort((a, b) => a - b) }
}

function blockVector (vals, scale) {
  const v = new Float64Array(slots)
  for (let b = 0; b < slots; b += B) for (let k = 0; k < vals.length; k++) v[b + k] = vals[k]
  const pt = new seal.Plaintext()
  encoder.encode(v, scale, pt)
  return pt
}

const lt1 = plan(d1, input.n1First, wScale)
const lt2 = plan(d2, input.n1Last, oScale)
// As in Veil, the square is rescaled at once and the last matrix runs at
// the next level: its plaintexts are switched down to it.
for (const group of lt2.groups.values()) for (const [, pt] of group) evaluator.plainModSwitchToNextInplace(pt)
const b1 = blockVector(first.b, inScale * wScale)
// The last bias is encoded once the exact scale after the rescale is known.
let b2 = null
const sum1 = []
for (let s = B / 2; s >= M1; s /= 2) sum1.push(s)
const sum2 = []
for (let s = M1 / 2; s >= M2; s /= 2) sum2.push(s)

const steps = new Set()
for (const lt of [lt1, lt2]) {
  for (const b of lt.babies) steps.add(b)
  for (const g of lt.groups.keys()) if (g !== 0) steps.add(g * lt.n1)
}
for (const s of [...sum1, ...sum2]) steps.add(s)
const stepList = Int32Array.from([...steps].sort((a, b) => a - b))

function evalLinear (ct, lt) {
  const rot = new Map([[0, ct]])
  for (const b of lt.babies) {
    const c = new seal.Ciphertext()
    evaluator.rotateVector(ct, b, keys.galois, c)
    rot.set(b, c)
  }
  let result = null
  const tmp = new seal.Ciphertext()
  for (const [g, terms] of [...lt.groups].sort((a, b) => a[0] - b[0])) {
    let acc = null
    for (const [b, pt] of terms) {
      if (acc === null) {
        acc = new seal.Ciphertext()
        evaluator.multiplyPlain(rot.get(b), pt, acc)
      } else {
        evaluator.multiplyPlain(rot.get(b), pt, tmp)
        evaluator.addInplace(acc, tmp)
      }
    }
    if (g !== 0) evaluator.rotateVectorInplace(acc, g * lt.n1, keys.galois)
    if (result === null) result = acc
    else {
      evaluator.addInplace(result, acc)
      acc.delete()
    }
  }
  tmp.delete()
  for (const [b, c] of rot) if (b !== 0) c.delete()
  return result
}

function rotateAndAdd (ct, steps) {
  const tmp = new seal.Ciphertext()
  for (const s of steps) {
    evaluator.rotateVector(ct, s, keys.galois, tmp)
    evaluator.addInplace(ct, tmp)
  }
  tmp.delete()
}

// Client: keys in serialisable (seeded) form, as they would be uploaded;
// server: the same bytes loaded back.
let kgen, keys
function clientKeygen () {
  kgen = new seal.KeyGenerator(context)
  return {
    pk: kgen.createPublicKeySerializable().saveToArray(none),
    rlk: kgen.createRelinKeysSerializable().saveToArray(none),
    galois: kgen.createGaloisKeysSerializableWithSteps(stepList).saveToArray(none)
  }
}
function serverLoadKeys (wire) {
  const pk = new seal.PublicKey()
  pk.loadFromArray(context, wire.pk)
  const rlk = new seal.RelinKeys()
  rlk.loadFromArray(context, wire.rlk)
  const galois = new seal.GaloisKeys()
  galois.loadFromArray(context, wire.galois)
  return { pk, rlk, galois, encryptor: new seal.Encryptor(context, pk) }
}

const timings = {}
function record (name, ms) {
  if (!timings[name]) timings[name] = []
  timings[name].push(ms)
}
const now = () => performance.now()

let wireKeys
for (let rep = 0; rep <= input.keygenReps; rep++) {
  const t0 = now()
  const w = clientKeygen()
  const t1 = now()
  if (keys) {
    keys.pk.delete(); keys.rlk.delete(); keys.galois.delete(); keys.encryptor.delete()
  }
  keys = serverLoadKeys(w)
  const t2 = now()
  wireKeys = w
  if (rep > 0) {
    record('keygen', t1 - t0)
    record('load_keys', t2 - t1)
  }
}
const sk = kgen.secretKey()
const clientEncryptor = new seal.Encryptor(context, keys.pk, sk)
const decryptor = new seal.Decryptor(context, sk)

// Pack the images: block b holds image b at slots M1..M1+783.
const packed = new Float64Array(slots)
images.forEach((img, b) => {
  for (let p = 0; p < img.length; p++) packed[b * B + M1 + p] = img[p] / 256
})

let inWire, outWire, scores
for (let rep = 0; rep <= input.reps; rep++) {
  const mark = {}
  let t = now()
  const stage = (name) => { const u = now(); mark[name] = u - t; t = u }
  // Client: encode, encrypt (seeded), serialise.
  const t0 = now()
  const pt = new seal.Plaintext()
  encoder.encode(packed, inScale, pt)
  const ser = clientEncryptor.encryptSymmetricSerializable(pt)
  inWire = ser.saveToArray(none)
  ser.delete(); pt.delete()
  const tEnc = now() - t0
  // Server: load, evaluate, serialise.
  const t1 = now()
  const ct = new seal.Ciphertext()
  ct.loadFromArray(context, inWire)
  const t2 = now()
  t = t2
  const h = evalLinear(ct, lt1)
  stage('matrix1')
  rotateAndAdd(h, sum1)
  evaluator.addPlainInplace(h, b1)
  stage('sum1')
  evaluator.squareInplace(h)
  evaluator.relinearizeInplace(h, keys.rlk)
  stage('square')
  evaluator.rescaleToNextInplace(h)
  stage('rescale')
  const out = evalLinear(h, lt2)
  stage('matrix2')
  rotateAndAdd(out, sum2)
  if (b2 === null) {
    b2 = blockVector(last.b, out.scale())
    evaluator.plainModSwitchToNextInplace(b2)
  }
  evaluator.addPlainInplace(out, b2)
  stage('sum2')
  const zero = new seal.Ciphertext()
  keys.encryptor.encryptZero(zero)
  evaluator.cipherModSwitchToInplace(zero, out.parmsId())
  zero.setScale(out.scale())
  evaluator.addInplace(out, zero)
  stage('rerandomize')
  const tEval = now() - t2
  outWire = out.saveToArray(none)
  const tServer = now() - t1
  ct.delete(); h.delete(); out.delete(); zero.delete()
  // Client: load, decrypt, decode.
  const t3 = now()
  const back = new seal.Ciphertext()
  back.loadFromArray(context, outWire)
  const dpt = new seal.Plaintext()
  decryptor.decrypt(back, dpt)
  const vals = encoder.decodeFloat64(dpt)
  back.delete(); dpt.delete()
  const tDec = now() - t3
  scores = images.map((_, b) => Array.from(vals.slice(b * B, b * B + last.rows)))
  if (rep === 0) continue
  record('encrypt', tEnc)
  record('evaluate', tEval)
  for (const [k, v] of Object.entries(mark)) record('evaluate/' + k, v)
  record('decrypt', tDec)
  record('end_to_end', tEnc + tServer + tDec)
}

let maxAbsError = 0
let agree = 0
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0)
scores.forEach((s, i) => {
  const want = input.expected[i]
  for (let j = 0; j < want.length; j++) maxAbsError = Math.max(maxAbsError, Math.abs(s[j] - want[j]))
  if (argmax(s) === argmax(want)) agree++
})

const zstd = seal.ComprModeType.zstd
const gkFull = keys.galois.saveToArray(none).length
const gkZstd = kgen.createGaloisKeysSerializableWithSteps(stepList).saveToArray(zstd).length
process.stdout.write(JSON.stringify({
  node: process.version,
  node_seal: pkg.version,
  slots,
  blocks,
  images: images.length,
  rotation_keys: stepList.length,
  baby_steps: [lt1.babies.length, lt2.babies.length],
  giant_steps: [lt1.groups.size - 1, lt2.groups.size - 1],
  timings,
  sizes: {
    evaluation_keys: wireKeys.pk.length + wireKeys.rlk.length + wireKeys.galois.length,
    galois_keys: wireKeys.galois.length,
    galois_keys_expanded: gkFull,
    galois_keys_zstd: gkZstd,
    input_ciphertext: inWire.length,
    output_ciphertext: outWire.length
  },
  max_abs_error: maxAbsError,
  agreement: agree / images.length,
  scores
}) + '\n')
