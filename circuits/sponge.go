package circuits

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	nativep2 "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
)

// The hash is a sponge over the Poseidon2 permutation of width 16 with the
// official HorizenLabs BN254 constants (8 full rounds, 57 partial rounds),
// the same permutation family that gnark's std/hash/poseidon2 uses at width
// 2. Rate 15, capacity 1: one capacity element of 254 bits gives about 127
// bits of generic collision and preimage security, and a permutation of
// (8·16 + 57)·3 = 555 R1CS constraints absorbs 15 elements, about 37
// constraints per element instead of about 186 for the width-2
// Merkle–Damgård hasher. The weight hash dominates the circuit, so this is
// the main saving of the design.
const (
	SpongeWidth         = 16
	SpongeRate          = 15
	SpongeFullRounds    = 8
	SpongePartialRounds = 57
)

// Hash domains. Each is hashed together with the input length into the
// initial capacity element, so inputs of different kinds or lengths never
// collide by construction (fixed-length sponge, no padding needed).
const (
	DomainCommitment = "veil/model-commitment/v1"
	DomainDigest     = "veil/challenge-digest/v1"
)

// tagElement derives the initial capacity element for a domain and an input
// length: the first 31 bytes of SHA-256(domain || 0 || len) as an integer.
func tagElement(domain string, n int) fr.Element {
	h := sha256.New()
	h.Write([]byte(domain))
	h.Write([]byte{0})
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(n))
	h.Write(l[:])
	sum := h.Sum(nil)
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes(sum[:31]))
	return e
}

// NativeSponge hashes in under domain outside the circuit.
func NativeSponge(domain string, in []fr.Element) fr.Element {
	perm := nativep2.NewPermutation(SpongeWidth, SpongeFullRounds, SpongePartialRounds)
	var st [SpongeWidth]fr.Element
	st[SpongeWidth-1] = tagElement(domain, len(in))
	for i := 0; i == 0 || i < len(in); i += SpongeRate {
		for k := 0; k < SpongeRate && i+k < len(in); k++ {
			st[k].Add(&st[k], &in[i+k])
		}
		if err := perm.Permutation(st[:]); err != nil {
			panic(fmt.Sprintf("poseidon2: %v", err)) // the width is a constant
		}
	}
	return st[0]
}

// circuitSponge is NativeSponge inside the circuit. Inputs should be single
// wires (see materialize): the permutation's first linear layer mixes all
// inputs into every S-box, so long linear combinations would be copied into
// every S-box constraint.
func circuitSponge(api frontend.API, domain string, in []frontend.Variable) (frontend.Variable, error) {
	perm := newPermutation(api)
	st := make([]frontend.Variable, SpongeWidth)
	for i := range st {
		st[i] = 0
	}
	tag := tagElement(domain, len(in))
	st[SpongeWidth-1] = tag.BigInt(new(big.Int))
	for i := 0; i == 0 || i < len(in); i += SpongeRate {
		for k := 0; k < SpongeRate && i+k < len(in); k++ {
			st[k] = api.Add(st[k], in[i+k])
		}
		perm.permute(st)
	}
	return st[0], nil
}
