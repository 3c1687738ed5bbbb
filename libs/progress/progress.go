// Package progress draws a progress bar for long work: a redrawn line on a
// terminal, a line per tenth elsewhere (CI logs).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar reports progress of work of a known total size. Its methods are safe
// for concurrent use.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	label    string
	unit     string
	total    int64
	done     int64
	start    time.Time
	lastDraw time.Time
	lastTen  int64
}

// New starts a bar for total units (0 when unknown) written to w.
func New(w io.Writer, label, unit string, total int64) *Bar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	return &Bar{w: w, tty: tty, label: label, unit: unit, total: total, start: time.Now(), lastTen: -1}
}

// Add records n more units done.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	now := time.Now()
	if b.tty {
		if now.Sub(b.lastDraw) >= 100*time.Millisecond {
			b.lastDraw = now
			fmt.Fprintf(b.w, "\r%s", b.line())
		}
		return
	}
	if b.total > 0 {
		if ten := b.done * 10 / b.total; ten != b.lastTen {
			b.lastTen = ten
			fmt.Fprintln(b.w, b.line())
		}
	}
}

// Done finishes the bar with a final line.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty {
		fmt.Fprintf(b.w, "\r%s\n", b.line())
	} else if b.total == 0 || b.lastTen != 10 {
		fmt.Fprintln(b.w, b.line())
	}
}

func (b *Bar) line() string {
	elapsed := time.Since(b.start)
	rate := float64(b.done) / max(elapsed.Seconds(), 1e-9)
	if b.total <= 0 {
		return fmt.Sprintf("%s %d %s (%.0f %s/s)", b.label, b.done, b.unit, rate, b.unit)
	}
	frac := min(float64(b.done)/float64(b.total), 1)
	const width = 30
	fill := int(frac * width)
	return fmt.Sprintf("%s [%s%s] %3.0f%% %d/%d %s (%.0f %s/s, %s)", b.label,
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), frac*100, b.done, b.total, b.unit, rate, b.unit, elapsed.Round(100*time.Millisecond))
}
