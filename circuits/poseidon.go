package circuits

import (
	"math/big"

	nativep2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
)

// permutation is the width-16 Poseidon2 permutation in the circuit: the
// same function as gnark's std/permutation/poseidon2 (and gnark-crypto's
// native one, see TestSpongeNativeMatchesCircuit), with one change in how
// it is arithmetised. In the partial rounds the state is kept as linear
// combinations whose coefficients (products of the internal matrix's
// diagonal) are large and whose length grows by one wire per round; gnark
// copies such a combination into three constraints per S-box. Here each
// partial-round S-box input, and each S-box input of the full round that
// follows the partial rounds, is first made a single wire (one equality
// constraint). That costs 73 constraints per permutation (555 -> 628) and
// cuts the large-coefficient terms that the MPC's phase-2 initialisation
// must multiply by about three quarters.
type permutation struct {
	api  frontend.API
	rk   [][]*big.Int
	diag []*big.Int
}

func newPermutation(api frontend.API) *permutation {
	p := nativep2.NewParameters(SpongeWidth, SpongeFullRounds, SpongePartialRounds)
	out := &permutation{api: api}
	for _, r := range p.RoundKeys {
		row := make([]*big.Int, len(r))
		for i := range r {
			row[i] = r[i].BigInt(new(big.Int))
		}
		out.rk = append(out.rk, row)
	}
	for i := range p.DiagM1 {
		out.diag = append(out.diag, p.DiagM1[i].BigInt(new(big.Int)))
	}
	return out
}

func (p *permutation) sbox(x frontend.Variable) frontend.Variable {
	x2 := p.api.Mul(x, x)
	x4 := p.api.Mul(x2, x2)
	return p.api.Mul(x4, x)
}

// matMulExternal multiplies by circ(2·M4, M4, M4, M4).
func (p *permutation) matMulExternal(s []frontend.Variable) {
	api := p.api
	for i := 0; i < len(s)/4; i++ {
		t0 := api.Add(s[4*i], s[4*i+1])
		t1 := api.Add(s[4*i+2], s[4*i+3])
		t2 := api.Add(api.Mul(s[4*i+1], 2), t1)
		t3 := api.Add(api.Mul(s[4*i+3], 2), t0)
		t4 := api.Add(api.Mul(t1, 4), t3)
		t5 := api.Add(api.Mul(t0, 4), t2)
		s[4*i], s[4*i+1], s[4*i+2], s[4*i+3] = api.Add(t3, t5), t5, api.Add(t2, t4), t4
	}
	var sum [4]frontend.Variable
	for k := range sum {
		sum[k] = 0
	}
	for i := 0; i < len(s)/4; i++ {
		for k := 0; k < 4; k++ {
			sum[k] = api.Add(sum[k], s[4*i+k])
		}
	}
	for i := 0; i < len(s)/4; i++ {
		for k := 0; k < 4; k++ {
			s[4*i+k] = api.Add(s[4*i+k], sum[k])
		}
	}
}

// matMulInternal: s_i <- diag_i·s_i + Σ s.
func (p *permutation) matMulInternal(s []frontend.Variable) {
	sum := p.api.Add(s[0], s[1], s[2:]...)
	for i := range s {
		s[i] = p.api.Add(p.api.Mul(s[i], p.diag[i]), sum)
	}
}

func (p *permutation) addRoundKey(round int, s []frontend.Variable) {
	for i, k := range p.rk[round] {
		s[i] = p.api.Add(s[i], k)
	}
}

func (p *permutation) permute(s []frontend.Variable) {
	rf := SpongeFullRounds / 2
	p.matMulExternal(s)
	for r := 0; r < rf; r++ {
		p.addRoundKey(r, s)
		for j := range s {
			s[j] = p.sbox(s[j])
		}
		p.matMulExternal(s)
	}
	for r := rf; r < rf+SpongePartialRounds; r++ {
		p.addRoundKey(r, s)
		s[0] = p.sbox(materialize(p.api, s[0]))
		p.matMulInternal(s)
	}
	for r := rf + SpongePartialRounds; r < SpongeFullRounds+SpongePartialRounds; r++ {
		p.addRoundKey(r, s)
		for j := range s {
			x := s[j]
			if r == rf+SpongePartialRounds {
				x = materialize(p.api, x)
			}
			s[j] = p.sbox(x)
		}
		p.matMulExternal(s)
	}
}
