package retrieval

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// FileName is the artifact's name in a model version's folder, beside
// model.onnx and metadata.json. A version without it serves from
// trending only.
const FileName = "retrieval.bin"

// The file is little-endian: the magic, the item count n, the n ids
// (uvarint length + bytes), then sections, each a one-byte tag:
//
//	'N' neighbours: per item, a uvarint count, then (int32 item, float32 weight) each
//	'L' liked neighbours: the same layout
//	'V' vectors: uvarint dim, then n×dim float32
//	'P' popularity: n float32
//	'T' trend: n float32
//	'R' liked rate: n float32
//
// and a final 'E'. Sections are optional; unknown tags are errors.
const magic = "RECSYS-RETRIEVAL-1\n"

// MaxItems bounds the catalogue a file may declare, so a corrupt header
// cannot make the reader allocate without limit.
const MaxItems = 50_000_000

// Write stores the index at path (through a temporary file renamed into
// place).
func (x *Index) Write(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = x.encode(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (x *Index) encode(w *bufio.Writer) error {
	n := len(x.Items)
	if err := x.check(); err != nil {
		return err
	}
	w.WriteString(magic)
	putUvarint(w, uint64(n))
	for _, id := range x.Items {
		putUvarint(w, uint64(len(id)))
		w.WriteString(id)
	}
	var b [8]byte
	f32 := func(v float32) {
		binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
		w.Write(b[:4])
	}
	for _, sec := range []struct {
		tag byte
		nbs [][]Neighbor
	}{{'N', x.Neighbors}, {'L', x.Liked}} {
		if sec.nbs == nil {
			continue
		}
		w.WriteByte(sec.tag)
		for _, nbs := range sec.nbs {
			putUvarint(w, uint64(len(nbs)))
			for _, nb := range nbs {
				binary.LittleEndian.PutUint32(b[:4], uint32(nb.Item))
				w.Write(b[:4])
				f32(nb.Weight)
			}
		}
	}
	if x.Vectors != nil {
		w.WriteByte('V')
		putUvarint(w, uint64(x.Dim))
		for _, v := range x.Vectors {
			f32(v)
		}
	}
	for _, sec := range []struct {
		tag byte
		v   []float32
	}{{'P', x.Popularity}, {'T', x.Trend}, {'R', x.LikedRate}} {
		if sec.v != nil {
			w.WriteByte(sec.tag)
			for _, v := range sec.v {
				f32(v)
			}
		}
	}
	return w.WriteByte('E')
}

// check reports an index whose parts do not fit its catalogue.
func (x *Index) check() error {
	n := len(x.Items)
	switch {
	case x.Neighbors != nil && len(x.Neighbors) != n, x.Liked != nil && len(x.Liked) != n:
		return fmt.Errorf("retrieval index: %d neighbour and %d liked-neighbour lists for %d items", len(x.Neighbors), len(x.Liked), n)
	case x.Vectors != nil && (x.Dim <= 0 || len(x.Vectors) != n*x.Dim):
		return fmt.Errorf("retrieval index: %d vector floats for %d items of dim %d", len(x.Vectors), n, x.Dim)
	case x.Popularity != nil && len(x.Popularity) != n, x.Trend != nil && len(x.Trend) != n, x.LikedRate != nil && len(x.LikedRate) != n:
		return fmt.Errorf("retrieval index: popularity, trend or liked rate is not one value per item (%d items)", n)
	}
	for _, lists := range [][][]Neighbor{x.Neighbors, x.Liked} {
		for j, nbs := range lists {
			for _, nb := range nbs {
				if nb.Item < 0 || int(nb.Item) >= n || !finite(nb.Weight) {
					return fmt.Errorf("retrieval index: item %d has neighbour %d (weight %v) outside the catalogue or not finite", j, nb.Item, nb.Weight)
				}
			}
		}
	}
	for _, s := range [][]float32{x.Vectors, x.Popularity, x.Trend, x.LikedRate} {
		for _, v := range s {
			if !finite(v) {
				return errors.New("retrieval index: a vector, popularity or trend value is not finite")
			}
		}
	}
	return nil
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// Read loads an index written by Write and checks it whole.
func Read(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	x, err := decode(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return x, nil
}

func decode(r *bufio.Reader) (*Index, error) {
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != magic {
		return nil, errors.New("not a retrieval index (bad magic)")
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > MaxItems {
		return nil, fmt.Errorf("item count %d: %v", n, err)
	}
	x := &Index{Items: make([]string, n)}
	for i := range x.Items {
		l, err := binary.ReadUvarint(r)
		if err != nil || l > 1<<16 {
			return nil, fmt.Errorf("item %d: bad id length", i)
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		x.Items[i] = string(b)
	}
	var b [4]byte
	u32 := func() (uint32, error) {
		_, err := io.ReadFull(r, b[:])
		return binary.LittleEndian.Uint32(b[:]), err
	}
	floats := func(k int) ([]float32, error) {
		out := make([]float32, k)
		for i := range out {
			v, err := u32()
			if err != nil {
				return nil, err
			}
			out[i] = math.Float32frombits(v)
		}
		return out, nil
	}
	for {
		tag, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("truncated: %w", err)
		}
		switch tag {
		case 'E':
			if err := x.check(); err != nil {
				return nil, err
			}
			return x, nil
		case 'N', 'L':
			lists := make([][]Neighbor, n)
			for j := range lists {
				k, err := binary.ReadUvarint(r)
				if err != nil || k > n {
					return nil, fmt.Errorf("item %d: bad neighbour count", j)
				}
				nbs := make([]Neighbor, k)
				for m := range nbs {
					it, err := u32()
					if err != nil {
						return nil, err
					}
					wt, err := u32()
					if err != nil {
						return nil, err
					}
					nbs[m] = Neighbor{Item: int32(it), Weight: math.Float32frombits(wt)}
				}
				lists[j] = nbs
			}
			if tag == 'N' {
				x.Neighbors = lists
			} else {
				x.Liked = lists
			}
		case 'V':
			d, err := binary.ReadUvarint(r)
			if err != nil || d == 0 || d > 4096 {
				return nil, fmt.Errorf("bad vector dim %d", d)
			}
			x.Dim = int(d)
			if x.Vectors, err = floats(int(n) * x.Dim); err != nil {
				return nil, err
			}
		case 'P':
			if x.Popularity, err = floats(int(n)); err != nil {
				return nil, err
			}
		case 'T':
			if x.Trend, err = floats(int(n)); err != nil {
				return nil, err
			}
		case 'R':
			if x.LikedRate, err = floats(int(n)); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown section %q", tag)
		}
	}
}

func putUvarint(w *bufio.Writer, v uint64) {
	var b [binary.MaxVarintLen64]byte
	w.Write(b[:binary.PutUvarint(b[:], v)])
}
