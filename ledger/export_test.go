package ledger

// SetBeforeCommit installs the crash-simulation hook (tests only).
func SetBeforeCommit(o *Options, f func() error) { o.beforeCommit = f }

// SetNoSync makes the store skip fsync (tests only).
func SetNoSync(o *Options) { o.noSync = true }
