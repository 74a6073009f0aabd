package federated

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/veil-project/veil/dataset"
	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
	"github.com/veil-project/veil/zk"
)

// Parameters of a float network as one vector: every dense layer's weights
// (row-major) then its biases, in layer order (the order of
// training.AdamState).

// NumParams returns the number of weights and biases of f.
func NumParams(f *model.Float) int {
	n := 0
	for _, l := range f.Layers {
		n += len(l.W) + len(l.B)
	}
	return n
}

// Flatten returns f's parameters as one vector.
func Flatten(f *model.Float) []float64 {
	v := make([]float64, 0, NumParams(f))
	for _, l := range f.Layers {
		v = append(v, l.W...)
		v = append(v, l.B...)
	}
	return v
}

// Unflatten returns a copy of f with its parameters replaced by v.
func Unflatten(f *model.Float, v []float64) (*model.Float, error) {
	if len(v) != NumParams(f) {
		return nil, fmt.Errorf("unflatten: %d values for %d parameters", len(v), NumParams(f))
	}
	out := &model.Float{Layers: make([]model.FloatLayer, len(f.Layers))}
	for i, l := range f.Layers {
		nl := l
		nl.W = append([]float64(nil), v[:len(l.W)]...)
		v = v[len(l.W):]
		nl.B = append([]float64(nil), v[:len(l.B)]...)
		v = v[len(l.B):]
		out.Layers[i] = nl
	}
	return out, nil
}

// splitParams cuts a flat parameter vector of f into per-parameter slices
// (the order of training.AdamState and training.Control).
func splitParams(f *model.Float, v []float64) [][]float64 {
	var out [][]float64
	for _, l := range f.Layers {
		if l.Kind != model.KindDense {
			continue
		}
		out = append(out, v[:len(l.W)], v[len(l.W):len(l.W)+len(l.B)])
		v = v[len(l.W)+len(l.B):]
	}
	return out
}

// ModelDigest is the SHA-256 of a float network (layer kinds, sizes and
// the bits of every parameter): the round models' names on the ledger.
func ModelDigest(f *model.Float) [32]byte {
	h := sha256.New()
	h.Write([]byte("veil/federated/model\x00"))
	var b [8]byte
	for _, l := range f.Layers {
		h.Write([]byte(l.Kind))
		h.Write([]byte{0})
		binary.BigEndian.PutUint32(b[:4], uint32(l.In))
		binary.BigEndian.PutUint32(b[4:], uint32(l.Out))
		h.Write(b[:])
		for _, x := range l.W {
			binary.BigEndian.PutUint64(b[:], math.Float64bits(x))
			h.Write(b[:])
		}
		for _, x := range l.B {
			binary.BigEndian.PutUint64(b[:], math.Float64bits(x))
			h.Write(b[:])
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// ModelBytes encodes a float network for transport (its digest is
// ModelDigest of the decoded network).
func ModelBytes(f *model.Float) []byte {
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(f.Layers)))
	for _, l := range f.Layers {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(l.Kind)))
		buf = append(buf, l.Kind...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(l.In))
		buf = binary.BigEndian.AppendUint32(buf, uint32(l.Out))
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(l.W)))
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(l.B)))
		for _, x := range l.W {
			buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(x))
		}
		for _, x := range l.B {
			buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(x))
		}
	}
	return buf
}

// maxModelParams bounds a decoded network.
const maxModelParams = 1 << 22

// ParseModel decodes ModelBytes, checking that it has the architecture
// arch and finite parameters.
func ParseModel(b []byte, arch model.Architecture) (*model.Float, error) {
	bad := func(format string, a ...any) error { return fmt.Errorf("parse model: "+format, a...) }
	u32 := func() (int, error) {
		if len(b) < 4 {
			return 0, errors.New("truncated")
		}
		v := binary.BigEndian.Uint32(b)
		b = b[4:]
		if v > maxModelParams {
			return 0, fmt.Errorf("count %d too large", v)
		}
		return int(v), nil
	}
	n, err := u32()
	if err != nil {
		return nil, bad("%v", err)
	}
	if n != len(arch) {
		return nil, bad("%d layers, want %d", n, len(arch))
	}
	f := &model.Float{}
	in := pixels.Count
	for i := range n {
		kl, err := u32()
		if err != nil || kl > len(b) || kl > 16 {
			return nil, bad("layer %d: bad kind", i)
		}
		kind := model.Kind(b[:kl])
		b = b[kl:]
		var dims [4]int
		for j := range dims {
			if dims[j], err = u32(); err != nil {
				return nil, bad("layer %d: %v", i, err)
			}
		}
		spec := arch[i]
		out := spec.Out
		if spec.Kind == model.KindSquare {
			out = in
		}
		wantW, wantB := 0, 0
		if spec.Kind == model.KindDense {
			wantW, wantB = in*out, out
		}
		if kind != spec.Kind || dims[0] != in || dims[1] != out || dims[2] != wantW || dims[3] != wantB {
			return nil, bad("layer %d is %s %d→%d with %d+%d parameters, want %s %d→%d", i, kind, dims[0], dims[1], dims[2], dims[3], spec.Kind, in, out)
		}
		if len(b) < 8*(wantW+wantB) {
			return nil, bad("layer %d: truncated", i)
		}
		l := model.FloatLayer{Kind: kind, In: in, Out: out}
		read := func(k int) ([]float64, error) {
			if k == 0 {
				return nil, nil
			}
			v := make([]float64, k)
			for j := range v {
				v[j] = math.Float64frombits(binary.BigEndian.Uint64(b))
				b = b[8:]
				if math.IsNaN(v[j]) || math.IsInf(v[j], 0) {
					return nil, bad("layer %d: parameter %d is not finite", i, j)
				}
			}
			return v, nil
		}
		if l.W, err = read(wantW); err != nil {
			return nil, err
		}
		if l.B, err = read(wantB); err != nil {
			return nil, err
		}
		f.Layers = append(f.Layers, l)
		in = out
	}
	if len(b) != 0 {
		return nil, bad("%d trailing bytes", len(b))
	}
	return f, nil
}

// QuantizeOptions are the fixed-point settings of `veil train`: 8-bit
// weights, 14-bit activations, calibrated on up to 5000 images.
var QuantizeOptions = model.QuantizeOptions{WeightBits: 8, ActivationBits: 14}

// Quantize turns a round's float model into the fixed-point model that
// would be served, calibrated on the public validation set.
func Quantize(f *model.Float, name string, validation *dataset.Set) (*model.Model, error) {
	n := min(5000, validation.Len())
	if n == 0 {
		return nil, errors.New("quantize: empty validation set")
	}
	opt := QuantizeOptions
	opt.Calibration = make([][]uint8, n)
	for i := range opt.Calibration {
		opt.Calibration[i] = validation.Images[i][:]
	}
	return model.Quantize(f, name, opt)
}

// Commit returns the Poseidon2 commitment (zk.Commit) of the quantised model.
func Commit(f *model.Float, name string, validation *dataset.Set, salt zk.Salt) (zk.Commitment, *model.Model, error) {
	m, err := Quantize(f, name, validation)
	if err != nil {
		return zk.Commitment{}, nil, err
	}
	c, err := zk.Commit(m, salt)
	if err != nil {
		return zk.Commitment{}, nil, err
	}
	return c, m, nil
}
