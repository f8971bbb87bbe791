//go:build !linux

package mailstore

// Without O_TMPFILE the default FS has no unnamed files (UnnamedFS); a
// test FS that has them gets the safe choice.
func linkNeedsInodeSync(string) bool { return true }
