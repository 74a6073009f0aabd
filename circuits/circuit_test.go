package circuits

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/test"

	"github.com/veil-project/veil/model"
	"github.com/veil-project/veil/pixels"
)

type spongeCircuit struct {
	In  []frontend.Variable
	Out frontend.Variable `gnark:",public"`
}

func (c *spongeCircuit) Define(api frontend.API) error {
	h, err := circuitSponge(api, DomainDigest, c.In)
	if err != nil {
		return err
	}
	api.AssertIsEqual(h, c.Out)
	return nil
}

// The in-circuit sponge must equal the native one, for lengths below, at
// and above one block.
func TestSpongeNativeMatchesCircuit(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 31} {
		in := make([]fr.Element, n)
		c := &spongeCircuit{In: make([]frontend.Variable, n)}
		a := &spongeCircuit{In: make([]frontend.Variable, n)}
		for i := range in {
			in[i].SetRandom()
			a.In[i] = in[i].BigInt(new(big.Int))
		}
		h := NativeSponge(DomainDigest, in)
		a.Out = h.BigInt(new(big.Int))
		if err := test.IsSolved(c, a, ecc.BN254.ScalarField()); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		bad := *a
		var one fr.Element
		one.SetOne()
		h.Add(&h, &one)
		bad.Out = h.BigInt(new(big.Int))
		if err := test.IsSolved(c, &bad, ecc.BN254.ScalarField()); err == nil {
			t.Fatalf("n=%d: a wrong digest was accepted", n)
		}
	}
	// Distinct lengths give distinct digests even for zero padding.
	a := NativeSponge(DomainDigest, make([]fr.Element, 1))
	b := NativeSponge(DomainDigest, make([]fr.Element, 2))
	if a.Equal(&b) {
		t.Fatal("length is not bound")
	}
}

func solve(t *testing.T, spec *Spec, a *Circuit) error {
	t.Helper()
	return test.IsSolved(NewCircuit(spec, len(a.Images)), a, ecc.BN254.ScalarField())
}

func TestCircuitAcceptsHonestWitness(t *testing.T) {
	m := tinyModel(1)
	spec, err := SpecOf(m)
	if err != nil {
		t.Fatal(err)
	}
	var salt fr.Element
	salt.SetUint64(12345)
	imgs := randomImages(3, 2)
	// Extremes: the bounds must hold for any image.
	var white pixels.Image
	for i := range white {
		white[i] = 255
	}
	imgs = append(imgs, white, pixels.Image{})
	a, outs, err := Assign(spec, m, salt, imgs)
	if err != nil {
		t.Fatal(err)
	}
	for k, img := range imgs {
		want, _ := m.Forward(img[:])
		for i := range want {
			if outs[k][i] != want[i] {
				t.Fatalf("Assign output %d/%d = %d, Forward gives %d", k, i, outs[k][i], want[i])
			}
		}
	}
	if err := solve(t, spec, a); err != nil {
		t.Fatalf("honest witness rejected: %v", err)
	}
}

func TestCircuitRejectsWrongWitness(t *testing.T) {
	m := tinyModel(2)
	spec, _ := SpecOf(m)
	var salt fr.Element
	salt.SetUint64(7)
	imgs := randomImages(4, 1)
	imgs[0][0], imgs[0][1] = 200, 100
	fresh := func() *Circuit {
		a, _, err := Assign(spec, m, salt, imgs)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	cases := map[string]func(a *Circuit){
		"output off by one": func(a *Circuit) {
			a.Outputs[0][3] = new(big.Int).Add(a.Outputs[0][3].(*big.Int), big.NewInt(1))
		},
		"negated output": func(a *Circuit) {
			var e fr.Element
			e.SetBigInt(a.Outputs[0][0].(*big.Int))
			e.Neg(&e)
			a.Outputs[0][0] = e.BigInt(new(big.Int))
		},
		"wrong commitment": func(a *Circuit) {
			a.Commitment = new(big.Int).Add(a.Commitment.(*big.Int), big.NewInt(1))
		},
		"wrong salt": func(a *Circuit) { a.Salt = big.NewInt(8) },
		"wrong digest": func(a *Circuit) {
			a.Digest = new(big.Int).Add(a.Digest.(*big.Int), big.NewInt(1))
		},
		"other image": func(a *Circuit) { a.Images[0][100] = 17 + a.Images[0][100].(int)%200 },
		"changed weight": func(a *Circuit) {
			a.Weights[5] = new(big.Int).Xor(a.Weights[5].(*big.Int), big.NewInt(1))
		},
		// Same packed value, so the same commitment, and outputs recomputed
		// with the altered weights, but weight 0 is out of its 8-bit range:
		// only the range check can catch it.
		"carry between packed weights": func(a *Circuit) {
			w0 := a.Weights[0].(*big.Int)
			w1 := a.Weights[1].(*big.Int)
			m2 := *m
			m2.Layers = append([]model.Layer(nil), m.Layers...)
			m2.Layers[0].W = append([]int32(nil), m.Layers[0].W...)
			var e fr.Element
			if w1.Sign() == 0 {
				a.Weights[1] = big.NewInt(1)
				e.SetBigInt(w0)
				e.Sub(&e, new(fr.Element).SetUint64(256))
				a.Weights[0] = e.BigInt(new(big.Int))
				m2.Layers[0].W[0] -= 256
				m2.Layers[0].W[1]++
			} else {
				a.Weights[0] = new(big.Int).Add(w0, big.NewInt(256))
				a.Weights[1] = new(big.Int).Sub(w1, big.NewInt(1))
				m2.Layers[0].W[0] += 256
				m2.Layers[0].W[1]--
			}
			img := imgs[0]
			y, _ := m2.Forward(img[:])
			y0, _ := m.Forward(img[:])
			if fmt.Sprint(y) == fmt.Sprint(y0) {
				t.Fatal("test image does not exercise weights 0 and 1")
			}
			for i, v := range y {
				a.Outputs[0][i] = FieldOf(v)
			}
		},
		"pixel out of range": func(a *Circuit) { a.Images[0][0] = 256 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := fresh()
			mutate(a)
			err := solve(t, spec, a)
			if err == nil {
				t.Fatal("accepted")
			}
			t.Logf("rejected: %.200v", err)
		})
	}
}

func TestConstraintCountTiny(t *testing.T) {
	m := tinyModel(1)
	spec, _ := SpecOf(m)
	for _, b := range []int{1, 2} {
		cs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, NewCircuit(spec, b))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tiny model, batch %d: %d constraints", b, cs.GetNbConstraints())
		if cs.GetNbConstraints() > 40000 {
			t.Fatalf("%d constraints", cs.GetNbConstraints())
		}
	}
}
