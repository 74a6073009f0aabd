package main

import (
	"encoding/json"
	"io"
	"reflect"

	"github.com/spf13/cobra"
)

// result is what a command prints: itself as JSON with --json, else its
// text form. Every command's output goes through printResult (the pattern
// of rekor-cli's format.WrapCmd), so that no command branches on --json.
type result interface {
	WriteText(w io.Writer) error
}

// withResult makes run the body of cmd and adds --json. What run returns is
// printed even when run also fails (e.g. results written before a
// validation error), so that the error line explains a printed result.
func withResult(cmd *cobra.Command, run func(cmd *cobra.Command, args []string) (result, error)) *cobra.Command {
	cmd.Flags().Bool("json", false, "print the result as JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		res, err := run(cmd, args)
		if v := reflect.ValueOf(res); res != nil && !(v.Kind() == reflect.Pointer && v.IsNil()) {
			if perr := printResult(cmd.OutOrStdout(), jsonOutput(cmd), res); perr != nil && err == nil {
				err = perr
			}
		}
		return err
	}
	return cmd
}

// jsonOutput tells whether the command was asked for JSON.
func jsonOutput(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

func printResult(w io.Writer, asJSON bool, res result) error {
	if !asJSON {
		return res.WriteText(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// textFunc is a result whose text form is computed on the spot; its JSON
// form is Value.
type textFunc struct {
	Value any
	text  func(w io.Writer) error
}

func (t textFunc) WriteText(w io.Writer) error { return t.text(w) }

// MarshalJSON encodes the value alone.
func (t textFunc) MarshalJSON() ([]byte, error) { return json.Marshal(t.Value) }
