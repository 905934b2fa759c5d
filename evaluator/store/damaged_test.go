package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDamagedFileIsAnError: bbolt panics on some damaged files (a freelist
// or branch page overwritten); Open must turn that into the same clean
// error as a file that is no database at all, naming the file and what to
// do, and never take the process down.
func TestDamagedFileIsAnError(t *testing.T) {
	damages := []struct {
		name   string
		damage func(t *testing.T, data []byte, pageSize int)
	}{
		{"both meta pages overwritten", func(t *testing.T, data []byte, pageSize int) {
			overwrite(t, data, 0, 2*pageSize)
		}},
		{"root page overwritten", func(t *testing.T, data []byte, pageSize int) {
			// Meta page 0 names the root bucket's page (its pgid is the
			// first field of the root bucket, at offset 16+16 of the
			// page: page header, magic, version, page size, flags).
			root := binary.LittleEndian.Uint64(data[16+16 : 16+24])
			overwrite(t, data, int(root)*pageSize, pageSize)
		}},
		{"every data page overwritten", func(t *testing.T, data []byte, pageSize int) {
			overwrite(t, data, 2*pageSize, len(data)-2*pageSize)
		}},
	}
	for _, tt := range damages {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				if err := s.CreateRun(newRun(fmt.Sprintf("exp-%d", i), time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC))); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, FileName)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, data, int(binary.LittleEndian.Uint32(data[16+8:16+12])))
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged file succeeded")
			}
			for _, want := range []string{"storage.path " + dir, file, "the file is not a slogate database, or it is damaged", "move it aside"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func overwrite(t *testing.T, data []byte, off, n int) {
	t.Helper()
	if off+n > len(data) || off < 0 {
		t.Fatalf("damage at %d+%d outside the file of %d bytes", off, n, len(data))
	}
	for i := off; i < off+n; i++ {
		data[i] = byte(0xA5 ^ i)
	}
}

// TestFlippedBytesNeverCrashReads: bbolt does not checksum data pages, so
// flipped bytes in leaf pages reach the decoder, or make bbolt read out of
// its map (SIGSEGV, once a "fatal error: fault" that one GET of a run
// turned into a dead server). Every read must end in a value or an error,
// and the check must find the damage the reads met.
func TestFlippedBytesNeverCrashReads(t *testing.T) {
	for _, stride := range []int{53, 211, 997, 4099} {
		t.Run(fmt.Sprintf("every %dth byte", stride), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for i := range 30 {
				at := time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC)
				r := newRun(fmt.Sprintf("exp-%d", i), at)
				if err := s.CreateRun(r); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.ID)
				for j := range 10 {
					if err := s.UpdateRun(r, entry(at.Add(time.Duration(j)*time.Second), "pass", "ok", 0.001)); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, FileName)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			pageSize := int(binary.LittleEndian.Uint32(data[16+8 : 16+12]))
			for i := 2 * pageSize; i < len(data); i += stride {
				data[i] ^= 0xFF
			}
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{})
			if err != nil {
				return // refused at the door: fine
			}
			defer s.Close()
			var failed []error
			for _, f := range []ListFilter{{}, {Active: true}} {
				if _, err := s.ListRuns(f); err != nil {
					failed = append(failed, err)
				}
			}
			for _, id := range ids {
				if _, err := s.GetRun(id); err != nil {
					failed = append(failed, err)
				}
			}
			// The background check reports whatever a read trips over.
			err = s.Check(context.Background())
			if err != nil && !errors.Is(err, ErrDamaged) {
				t.Errorf("Check = %v, want nil or ErrDamaged", err)
			}
			if len(failed) > 0 && err == nil {
				t.Errorf("Check found no damage, but %d reads failed, the first with: %v", len(failed), failed[0])
			}
		})
	}
}

// TestTruncatedFile: a file cut short (a full disk during a copy, a restore
// gone wrong) is refused at start or reported by the check, naming the file
// and what to do; bbolt reading past its end (SIGBUS) once killed Open.
func TestTruncatedFile(t *testing.T) {
	cuts := []struct {
		name string
		size func(pageSize, pages int) int // pages: in use, from the meta pages
	}{
		{"shorter than two pages", func(ps, _ int) int { return ps * 3 / 2 }},
		{"a quarter of its pages", func(ps, n int) int { return n / 4 * ps }},
		{"half of its pages", func(ps, n int) int { return n / 2 * ps }},
	}
	for _, tt := range cuts {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fillStore(t, s, 0, 30)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, FileName)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			pageSize := int(binary.LittleEndian.Uint32(data[16+8 : 16+12]))
			// The high water mark of each meta page: header, magic,
			// version, page size, flags, root bucket, freelist, then it.
			pages := max(binary.LittleEndian.Uint64(data[56:]), binary.LittleEndian.Uint64(data[pageSize+56:]))
			if err := os.WriteFile(file, data[:tt.size(pageSize, int(pages))], 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{})
			if err == nil {
				defer s.Close()
				if err = s.Check(context.Background()); !errors.Is(err, ErrDamaged) {
					t.Fatalf("Open succeeded and Check = %v, want ErrDamaged", err)
				}
			}
			for _, want := range []string{file, "the file is not a slogate database, or it is damaged", "move it aside"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}
