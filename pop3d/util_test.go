package pop3d

import (
	"bufio"
	"io"
	"time"
)

func timeAfter(seconds int) <-chan time.Time { return time.After(time.Duration(seconds) * time.Second) }

func sleepMillis(ms int) { time.Sleep(time.Duration(ms) * time.Millisecond) }

func newReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
