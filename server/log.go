package server

import (
	"io"
	"log/slog"
)

// NewLogger is a server log on w: text, or JSON; at info level, or debug
// (every RPC).
func NewLogger(w io.Writer, debug, json bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	var h slog.Handler = slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	if json {
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	}
	return slog.New(h)
}
