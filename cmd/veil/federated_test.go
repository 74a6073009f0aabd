package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// Bad flags of veil federated and its roles: one error line, exit 2.
func TestFederatedBadFlags(t *testing.T) {
	data := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"federated", "--split", "diagonal"}, "--split"},
		{[]string{"federated", "--shares", "equal"}, "--shares"},
		{[]string{"federated", "--parties", "1"}, "owners"},
		{[]string{"federated", "--threshold", "9"}, "threshold"},
		{[]string{"federated", "--min-updates", "1"}, "min updates"},
		{[]string{"federated", "aggregate"}, "--training-id"},
		{[]string{"federated", "aggregate", "--training-id", "t", "--owner-keys", "zz"}, "--owner-keys"},
		{[]string{"federated", "aggregate", "--training-id", "t", "--owner-keys", strings.Repeat("ab", 32)}, "1 keys for --parties 4"},
		{[]string{"federated", "party"}, "--training-id"},
		{[]string{"federated", "party", "--training-id", "t", "--index", "7"}, "--index"},
		{[]string{"federated", "key", "--name", "../escape"}, "key name"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"--data", data, "-q"}, c.args...), &stdout, &stderr)
		lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line mentioning %q", c.args, code, stderr.String(), c.want)
		}
	}
}

// veil federated key makes a key once and prints the same public key after.
func TestFederatedKey(t *testing.T) {
	data := t.TempDir()
	var a, b bytes.Buffer
	if code := run([]string{"--data", data, "-q", "federated", "key", "--name", "owner0"}, &a, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if code := run([]string{"--data", data, "-q", "federated", "key", "--name", "owner0", "--json"}, &b, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var v map[string]string
	if err := json.Unmarshal(b.Bytes(), &v); err != nil || strings.TrimSpace(a.String()) != v["public_key"] || len(v["public_key"]) != 64 {
		t.Fatalf("key: %q then %q (%v)", a.String(), b.String(), err)
	}
}
