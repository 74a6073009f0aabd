package federated

import (
	"strings"
	"testing"
)

func defaultOptions() Options {
	return Options{Parties: 4, Split: "noniid", Majority: 0.9, Epochs: 50, LocalSteps: 100, Batch: 32, LR: 3e-3, Seed: 1, DPClip: 1, DPDelta: 1e-5}
}

// Options.Config fills the defaults `veil federated` documents and rejects
// bad settings.
func TestOptionsConfig(t *testing.T) {
	o := defaultOptions()
	c, split, err := o.Config(60000)
	if err != nil {
		t.Fatal(err)
	}
	if c.Threshold != 3 || c.MinUpdates != 3 || c.Rounds != RoundsForEpochs(c, 60000-ValidationSize, 50) || c.DP != nil || !strings.HasPrefix(o.TrainingID, "fl-") {
		t.Fatalf("config: %+v (training id %q)", c, o.TrainingID)
	}
	if split.Owners != 4 || !split.NonIID || split.Majority != 0.9 || split.Seed != 1 {
		t.Fatalf("split: %+v", split)
	}
	o.Rounds, o.DPNoise = 7, 1.1
	if c, _, err = o.Config(60000); err != nil || c.Rounds != 7 || c.DP == nil || c.DP.NoiseMultiplier != 1.1 {
		t.Fatalf("rounds and DP: %+v, %v", c, err)
	}
	for _, bad := range []struct {
		set  func(*Options)
		want string
	}{
		{func(o *Options) { o.Split = "diagonal" }, "--split"},
		{func(o *Options) { o.Parties = 1 }, "owners"},
		{func(o *Options) { o.Threshold = 9 }, "threshold"},
		{func(o *Options) { o.MinUpdates = 1 }, "min updates"},
	} {
		o := defaultOptions()
		bad.set(&o)
		if _, _, err := o.Config(60000); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("want an error mentioning %q, got %v", bad.want, err)
		}
	}
}

func TestParseOwnerKeysAndKeyNames(t *testing.T) {
	k := strings.Repeat("ab", 32)
	if pubs, err := ParseOwnerKeys([]string{k, " " + k}, 2); err != nil || len(pubs) != 2 {
		t.Fatalf("ParseOwnerKeys: %v %v", pubs, err)
	}
	if _, err := ParseOwnerKeys([]string{"zz"}, 1); err == nil || !strings.Contains(err.Error(), "--owner-keys") {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := ParseOwnerKeys([]string{k}, 4); err == nil || !strings.Contains(err.Error(), "1 keys for --parties 4") {
		t.Fatalf("wrong count: %v", err)
	}
	for _, bad := range []string{"", "../escape", `a\b`, ".hidden"} {
		if CheckKeyName(bad) == nil {
			t.Errorf("key name %q accepted", bad)
		}
	}
	dir := t.TempDir()
	a, created, err := PartyKey(dir, "owner0")
	if err != nil || !created {
		t.Fatalf("PartyKey: %v %v", created, err)
	}
	b, created, err := PartyKey(dir, "owner0")
	if err != nil || created || KeyInfoOf("owner0", a) != KeyInfoOf("owner0", b) || len(KeyInfoOf("owner0", a).PublicKey) != 64 {
		t.Fatalf("PartyKey again: %v %v", created, err)
	}
}
