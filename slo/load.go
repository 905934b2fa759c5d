package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate/internal/yamlnode"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize caps the size of one definition file. Definition files are
// small; a huge one is a mistake (or an attack) that should fail clearly
// instead of eating the memory of a long-running service.
const MaxFileSize = 8 << 20

// maxDepth caps how deeply a document may nest. The schema is a handful of
// levels deep; anything far beyond is not a definition.
const maxDepth = 64

// Load reads definition files and validates them together.
//
// A path is a file (read whatever its extension), a directory (every *.yaml
// and *.yml below it, recursively, in lexical order, skipping directories
// whose name starts with '.'), or a glob. A file listed twice is read once.
// Each file may hold many YAML documents separated by ---, and a document
// may also be a list of documents (as OpenSLO examples are written).
// Documents are native (apiVersion: slogate.dev/v1), Sloth (version:
// prometheus/v1) or OpenSLO (apiVersion: openslo/v1).
//
// Load never stops at the first problem: the Diagnostics hold every error
// and warning of every file, sorted by file, line and column. The Set is
// never nil and holds every definition that was recognised, including
// those with errors, so that tools can count and list them; it must not be
// evaluated when Diagnostics.HasErrors().
func Load(paths ...string) (*Set, Diagnostics) {
	return load(osSource{}, LoadOptions{}, paths)
}

// LoadOptions are the settings of a load that no definition file carries.
type LoadOptions struct {
	// SlothPeriod is the SLO window of Sloth SLOs, whose specs have none
	// (Sloth's --default-slo-period); default DefaultWindow (30d).
	SlothPeriod time.Duration
}

// LoadWith is Load with options.
func LoadWith(opts LoadOptions, paths ...string) (*Set, Diagnostics) {
	return load(osSource{}, opts, paths)
}

// LoadFS is Load over a file system; paths are slash-separated and
// relative to its root, and diagnostics name files by those paths.
func LoadFS(fsys fs.FS, paths ...string) (*Set, Diagnostics) {
	return load(fsSource{fsys}, LoadOptions{}, paths)
}

// LoadBytes validates the content of one file named name (the name only
// appears in diagnostics).
func LoadBytes(name string, data []byte) (*Set, Diagnostics) {
	l := newLoader(LoadOptions{})
	l.file(name, data)
	return l.finish()
}

// source abstracts the OS file system (any path, absolute or relative, as
// given) and an fs.FS (slash paths), which differ in how they join and walk.
type source interface {
	stat(name string) (fs.FileInfo, error)
	glob(pattern string) ([]string, error)
	walk(root string, fn fs.WalkDirFunc) error
	open(name string) (io.ReadCloser, error)
	ext(name string) string
}

type osSource struct{}

func (osSource) stat(name string) (fs.FileInfo, error)       { return os.Stat(name) }
func (osSource) glob(pattern string) ([]string, error)       { return filepath.Glob(pattern) }
func (osSource) walk(root string, fn fs.WalkDirFunc) error   { return filepath.WalkDir(root, fn) }
func (osSource) open(name string) (io.ReadCloser, error)     { return os.Open(name) }
func (osSource) ext(name string) string                      { return filepath.Ext(name) }
func (s fsSource) stat(name string) (fs.FileInfo, error)     { return fs.Stat(s.fsys, name) }
func (s fsSource) glob(pattern string) ([]string, error)     { return fs.Glob(s.fsys, pattern) }
func (s fsSource) walk(root string, fn fs.WalkDirFunc) error { return fs.WalkDir(s.fsys, root, fn) }
func (s fsSource) open(name string) (io.ReadCloser, error)   { return s.fsys.Open(name) }
func (fsSource) ext(name string) string                      { return path.Ext(name) }

type fsSource struct{ fsys fs.FS }

func load(src source, opts LoadOptions, paths []string) (*Set, Diagnostics) {
	l := newLoader(opts)
	for _, name := range l.expand(src, paths) {
		data, err := readFile(src, name)
		if err != nil {
			l.diags = append(l.diags, Diagnostic{Pos: Pos{File: name}, Severity: LevelError, Message: err.Error()})
			continue
		}
		l.file(name, data)
	}
	return l.finish()
}

// expand turns paths, directories and globs into the list of files to read,
// reporting paths that match nothing.
func (l *loader) expand(src source, paths []string) []string {
	var files []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			files = append(files, name)
		}
	}
	fail := func(p, format string, args ...any) {
		l.diags = append(l.diags, Diagnostic{Pos: Pos{File: p}, Severity: LevelError, Message: fmt.Sprintf(format, args...)})
	}
	for _, p := range paths {
		candidates := []string{p}
		if strings.ContainsAny(p, "*?[") {
			matches, err := src.glob(p)
			if err != nil {
				fail(p, "invalid glob pattern: %v", err)
				continue
			}
			if len(matches) == 0 {
				fail(p, "no file matches the pattern")
				continue
			}
			candidates = matches
		}
		for _, c := range candidates {
			info, err := src.stat(c)
			if err != nil {
				fail(c, "%s", describeOpenError(err))
				continue
			}
			if !info.IsDir() {
				add(c)
				continue
			}
			found := false
			err = src.walk(c, func(name string, e fs.DirEntry, err error) error {
				if err != nil {
					fail(name, "%s", describeOpenError(err))
					return nil
				}
				if e.IsDir() {
					if name != c && strings.HasPrefix(e.Name(), ".") {
						return fs.SkipDir
					}
					return nil
				}
				if ext := strings.ToLower(src.ext(name)); ext == ".yaml" || ext == ".yml" {
					found = true
					add(name)
				}
				return nil
			})
			if err != nil {
				fail(c, "%s", describeOpenError(err))
			}
			if !found {
				l.diags = append(l.diags, Diagnostic{Pos: Pos{File: c}, Severity: LevelWarning,
					Message: "no definition files (*.yaml, *.yml) in this directory"})
			}
		}
	}
	return files
}

// describeOpenError drops the path that os errors repeat, since the
// diagnostic already starts with it.
func describeOpenError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "no such file or directory"
	}
	return err.Error()
}

func readFile(src source, name string) ([]byte, error) {
	f, err := src.open(name)
	if err != nil {
		return nil, errors.New(describeOpenError(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %s", describeOpenError(err))
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is larger than %d MiB; definition files are expected to be small", MaxFileSize>>20)
	}
	return data, nil
}

// yamlLineRE extracts the line of a yaml.v3 syntax error message.
var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// file decodes every document of one file. A syntax error ends the file
// (the YAML parser cannot resynchronise), but the documents before it are
// still checked.
func (l *loader) file(name string, data []byte) {
	d := &decoder{file: name, diags: &l.diags}
	l.decoders = append(l.decoders, d)
	if len(data) > MaxFileSize {
		d.errorf(nil, "file is larger than %d MiB; definition files are expected to be small", MaxFileSize>>20)
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	documents := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			if documents == 0 {
				// Not an error (a placeholder file is legitimate), but a
				// file truncated by a failed copy looks just like this, and
				// reloading it drops every definition it held.
				d.warnf(nil, "the file holds no definitions")
			}
			return
		}
		if err != nil {
			l.syntaxError(name, data, err)
			return
		}
		if len(doc.Content) == 0 || yamlnode.IsNull(doc.Content[0]) {
			continue
		}
		documents++
		root := doc.Content[0]
		if deep := tooDeep(root, 0); deep != nil {
			d.errorf(deep, "the document nests deeper than %d levels", maxDepth)
			continue
		}
		l.document(d, root)
	}
}

func (l *loader) syntaxError(name string, data []byte, err error) {
	line, col, msg := 1, 1, err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		msg = m[2]
		if m[1] != "" {
			if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
				line = n
			}
		} else if bl, bc, what, ok := yamlnode.BadByte(data); ok {
			// yaml.v3 reports bytes it cannot read without a position.
			line, col, msg = bl, bc, what
		}
	}
	l.diags = append(l.diags, Diagnostic{Pos: Pos{File: name, Line: line, Col: col}, Severity: LevelError,
		Message: "invalid YAML: " + msg})
}

// tooDeep returns the first node nested deeper than maxDepth. Aliases are
// not followed, so cycles cannot make it loop.
func tooDeep(n *yaml.Node, depth int) *yaml.Node {
	if depth > maxDepth {
		return n
	}
	for _, c := range n.Content {
		if deep := tooDeep(c, depth+1); deep != nil {
			return deep
		}
	}
	return nil
}

// Formats a document can be written in.
const (
	slothVersion   = "prometheus/v1"
	openSLOVersion = "openslo/v1"
	// Sloth's Kubernetes resource.
	slothAPIVersion = "sloth.slok.dev/v1"
	slothKind       = "PrometheusServiceLevel"
	// Sloth's burn-rate windows of one SLO period.
	slothAlertWindowsKind = "AlertWindows"
)

// document dispatches one document on its version.
func (l *loader) document(d *decoder, root *yaml.Node) {
	root = d.resolve(root)
	switch {
	case root == nil:
		return
	case root.Kind == yaml.SequenceNode:
		// A list of documents, as in OpenSLO's examples.
		for _, item := range root.Content {
			if item = d.resolve(item); item != nil && item.Kind == yaml.SequenceNode {
				d.errorf(item, "expected a definition (a mapping), got a list")
				continue
			}
			l.document(d, item)
		}
		return
	case root.Kind != yaml.MappingNode:
		d.errorf(root, "expected a definition (a mapping with apiVersion and kind), got %s", yamlnode.Describe(root))
		return
	}
	if v := peek(d, root, "version"); v != nil && peek(d, root, "apiVersion") == nil {
		if v.Kind != yaml.ScalarNode || v.Value != slothVersion {
			d.errorf(v, "unsupported version %s: slogate reads Sloth specs of version %q", yamlnode.Describe(v), slothVersion)
			return
		}
		l.sloth(d, root)
		return
	}
	av := peek(d, root, "apiVersion")
	switch {
	case av == nil:
		d.errorf(root, "apiVersion is required (%s, %s), or version: %s for a Sloth spec", APIVersion, openSLOVersion, slothVersion)
	case av.Kind != yaml.ScalarNode:
		d.errorf(av, "apiVersion: expected a string, got %s", yamlnode.Describe(av))
	case av.Value == APIVersion:
		l.native(d, root)
	case av.Value == openSLOVersion:
		l.openSLO(d, root)
	case av.Value == pyrraAPIVersion:
		l.pyrra(d, root)
	case av.Value == slothAPIVersion:
		switch k := peek(d, root, "kind"); {
		case k != nil && k.Kind == yaml.ScalarNode && k.Value == slothKind:
			l.slothCRD(d, root)
		case k != nil && k.Kind == yaml.ScalarNode && k.Value == slothAlertWindowsKind:
			l.slothAlertWindows(d, root)
		case k == nil:
			d.errorf(root, "kind is required: %s (Sloth's SLO resource)", slothKind)
		default:
			d.errorf(k, "kind %s: slogate reads %s and %s of %s", yamlnode.Describe(k), slothKind, slothAlertWindowsKind, slothAPIVersion)
		}
	case av.Value == openSLOv1alphaVersion:
		l.openSLOv1alpha(d, root)
	case strings.HasPrefix(av.Value, "openslo/"):
		d.errorf(av, "unsupported OpenSLO version %q: slogate reads %s and %s", av.Value, openSLOVersion, openSLOv1alphaVersion)
	default:
		d.errorf(av, "unknown apiVersion %q: slogate reads %s, %s, %s, Sloth specs (version: %s), Sloth's %s and Pyrra's %s%s",
			av.Value, APIVersion, openSLOVersion, openSLOv1alphaVersion, slothVersion, slothAPIVersion, pyrraAPIVersion,
			didYouMean(av.Value, []string{APIVersion, openSLOVersion, openSLOv1alphaVersion, slothAPIVersion, pyrraAPIVersion}))
	}
}

// peek returns the value of key in a mapping without checking the others.
func peek(d *decoder, m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return d.resolve(m.Content[i+1])
		}
	}
	return nil
}
