package federated

import (
	"fmt"
	"slices"

	"github.com/veil-project/veil/he"
)

// Decryption with redundancy. Each owner in the aggregate sends one share
// per t-subset of the aggregate's owners that contains it. Every subset
// whose members all answered is decrypted, and the results must agree: a
// wrong share from up to N−t owners changes every subset it is in, and at
// least one answered subset (all-honest) does not contain it, so the round
// is refused rather than recorded. With fewer than t+1 owners answering
// there is a single subset and no redundancy; the weight and check slots
// (update.go) still catch a share that is random, stale, of another
// ciphertext or under another key, but not one crafted to shift only the
// model's slots.

// subsets returns the t-subsets of members (ascending) that contain
// owner (or all of them when owner < 0), in lexicographic order.
func subsets(members []int, t, owner int) [][]int {
	var out [][]int
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == t {
			if owner < 0 || slices.Contains(cur, owner) {
				out = append(out, slices.Clone(cur))
			}
			return
		}
		for i := start; i < len(members); i++ {
			rec(i+1, append(cur, members[i]))
		}
	}
	rec(0, nil)
	return out
}

// points maps owner indexes to Shamir points (owner o holds point o+1).
func points(owners []int) []uint64 {
	p := make([]uint64, len(owners))
	for i, o := range owners {
		p[i] = uint64(o + 1)
	}
	return p
}

// decryptAll decrypts the aggregate with every complete subset and checks
// that they agree. It returns the first decryption, the subsets used and
// the decryptors (owners who took part in a complete subset).
func decryptAll(key *he.CollectiveKey, agg *he.VectorCiphertext, owners []int, t int, byOwner map[int][]*he.DecryptionShare, n int) ([]float64, [][]int, []int, error) {
	var results [][]float64
	var used [][]int
	decryptors := map[int]bool{}
	for _, sub := range subsets(owners, t, -1) {
		pts := points(sub)
		var shares []*he.DecryptionShare
		for _, o := range sub {
			for _, s := range byOwner[o] {
				if slices.Equal(s.Subset, pts) {
					shares = append(shares, s)
					break
				}
			}
		}
		if len(shares) != len(sub) {
			continue // a member did not answer
		}
		vals, err := key.Decrypt(agg, shares, n)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("decrypt with owners %v: %w", sub, err)
		}
		results = append(results, vals)
		used = append(used, sub)
		for _, o := range sub {
			decryptors[o] = true
		}
	}
	if len(results) == 0 {
		return nil, nil, nil, fmt.Errorf("no %d owners of %v answered with their decryption shares", t, owners)
	}
	for i := 1; i < len(results); i++ {
		if d := agree(results[0], results[i]); !(d <= agreeTolerance) {
			return nil, nil, nil, fmt.Errorf("%w: owners %v and owners %v decrypt the aggregate to values %.3g apart: a decryption share is wrong (an owner in one set and not the other sent it)",
				errCheck, used[0], used[i], d)
		}
	}
	var dec []int
	for o := range decryptors {
		dec = append(dec, o)
	}
	slices.Sort(dec)
	return results[0], used, dec, nil
}
