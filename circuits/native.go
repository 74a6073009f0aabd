package circuits

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

// PackBits is the capacity of one packed field element: items (weights,
// biases, pixels) are laid side by side, little-endian, without splitting
// an item, in at most 248 bits, so 31 eight-bit weights or pixels share one
// element. 248 < 253 keeps every packed element below p, so packing is
// injective once each item is range-checked to its width.
const PackBits = 248

// packPlan groups items of the given widths into field elements; it returns
// the [start, end) item ranges of every element.
func packPlan(widths []int) [][2]int {
	var plan [][2]int
	start, used := 0, 0
	for i, w := range widths {
		if used+w > PackBits {
			plan = append(plan, [2]int{start, i})
			start, used = i, 0
		}
		used += w
	}
	if start < len(widths) {
		plan = append(plan, [2]int{start, len(widths)})
	}
	return plan
}

// packNative packs unsigned items.
func packNative(items []uint64, widths []int) []fr.Element {
	plan := packPlan(widths)
	out := make([]fr.Element, len(plan))
	for e, r := range plan {
		acc := new(big.Int)
		pos := uint(0)
		for i := r[0]; i < r[1]; i++ {
			acc.Or(acc, new(big.Int).Lsh(new(big.Int).SetUint64(items[i]), pos))
			pos += uint(widths[i])
		}
		out[e].SetBigInt(acc)
	}
	return out
}

// modelItems returns the weights and biases of m as unsigned values (offset
// by 2^(bits-1)) with their widths, in layer order, weights row-major.
func modelItems(m *model.Model) (w []uint64, ww []int, b []uint64, bw []int) {
	for _, l := range m.Layers {
		if l.Kind != model.KindDense {
			continue
		}
		for _, x := range l.W {
			w = append(w, uint64(int64(x)+int64(1)<<(l.WeightBits-1)))
			ww = append(ww, l.WeightBits)
		}
		for _, x := range l.B {
			b = append(b, uint64(x+int64(1)<<(l.BiasBits-1)))
			bw = append(bw, l.BiasBits)
		}
	}
	return
}

// specElement maps the spec ID into the field (its first 31 bytes).
func specElement(s *Spec) fr.Element {
	id := s.ID()
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes(id[:31]))
	return e
}

// Commit computes the model commitment outside the circuit:
// Sponge(DomainCommitment; spec ID, salt, packed weights, packed biases).
func Commit(m *model.Model, salt fr.Element) (fr.Element, error) {
	spec, err := SpecOf(m)
	if err != nil {
		return fr.Element{}, err
	}
	w, ww, b, bw := modelItems(m)
	in := []fr.Element{specElement(spec), salt}
	in = append(in, packNative(w, ww)...)
	in = append(in, packNative(b, bw)...)
	return NativeSponge(DomainCommitment, in), nil
}

// pixelWidths is 784 eights.
func pixelWidths() []int {
	w := make([]int, pixels.Count)
	for i := range w {
		w[i] = model.InputBits
	}
	return w
}

// ChallengeDigest hashes the challenge images, in order:
// Sponge(DomainDigest; packed pixels of image 0, of image 1, ...), each
// image starting a new element.
func ChallengeDigest(images []pixels.Image) fr.Element {
	var in []fr.Element
	pw := pixelWidths()
	items := make([]uint64, pixels.Count)
	for _, img := range images {
		for i, p := range img {
			items[i] = uint64(p)
		}
		in = append(in, packNative(items, pw)...)
	}
	return NativeSponge(DomainDigest, in)
}

// Assign builds the full witness (public and secret) for m, salt and the
// challenge images, and returns the outputs the model gives them.
func Assign(spec *Spec, m *model.Model, salt fr.Element, images []pixels.Image) (*Circuit, [][]int64, error) {
	ms, err := SpecOf(m)
	if err != nil {
		return nil, nil, err
	}
	if !ms.Equal(spec) {
		return nil, nil, errors.New("assign: the model does not match the circuit's architecture descriptor")
	}
	if len(images) == 0 {
		return nil, nil, errors.New("assign: no images")
	}
	c := NewCircuit(spec, len(images))
	com, err := Commit(m, salt)
	if err != nil {
		return nil, nil, err
	}
	c.Commitment = com.BigInt(new(big.Int))
	d := ChallengeDigest(images)
	c.Digest = d.BigInt(new(big.Int))
	c.Salt = salt.BigInt(new(big.Int))
	w, _, b, _ := modelItems(m)
	for i := range w {
		c.Weights[i] = new(big.Int).SetUint64(w[i])
	}
	for i := range b {
		c.Biases[i] = new(big.Int).SetUint64(b[i])
	}
	outs := make([][]int64, len(images))
	for k, img := range images {
		for i, p := range img {
			c.Images[k][i] = int(p)
		}
		y, err := m.Forward(img[:])
		if err != nil {
			return nil, nil, fmt.Errorf("assign: %w", err)
		}
		outs[k] = y
		for i, v := range y {
			c.Outputs[k][i] = FieldOf(v)
		}
	}
	return c, outs, nil
}

// FieldOf maps a signed integer to the field: negative values become p-|v|.
func FieldOf(v int64) *big.Int {
	var e fr.Element
	e.SetInt64(v)
	return e.BigInt(new(big.Int))
}
