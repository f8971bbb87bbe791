package tlsmode

import "testing"

func TestNames(t *testing.T) {
	for m, want := range map[Mode]string{None: "none", Optional: "starttls", Required: "starttls-required", Implicit: "implicit", 9: "tlsmode.Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}
