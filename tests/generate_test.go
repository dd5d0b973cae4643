package tests

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGenerateIsClean runs `make generate` on a copy of the working tree and
// checks that it changes nothing: the committed ocb and mdatagen output is what
// builder-config.yaml and the metadata.yaml files produce. `make test` passes
// the pinned ocb in FABRIC_OCB.
func TestGenerateIsClean(t *testing.T) {
	ocb := os.Getenv("FABRIC_OCB")
	if ocb == "" {
		t.Skip("FABRIC_OCB is not set: run `make test`")
	}
	if testing.Short() {
		t.Skip("regenerating takes about a minute")
	}
	root := repoRoot(t)
	files := trackedFiles(t, root)
	copyDir := t.TempDir()
	for _, rel := range files {
		copyFile(t, filepath.Join(root, rel), filepath.Join(copyDir, rel))
	}

	cmd := exec.Command("make", "-s", "generate", "OCB="+ocb)
	cmd.Dir = copyDir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "make generate:\n%s", out)

	known := map[string]bool{}
	for _, rel := range files {
		known[rel] = true
		want, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(copyDir, rel))
		if !assert.NoError(t, err, "make generate removed %s", rel) {
			continue
		}
		assert.True(t, bytes.Equal(want, got), "make generate changes %s: run `make generate` and commit the result", rel)
	}
	err = filepath.WalkDir(copyDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(copyDir, path)
		assert.True(t, known[rel], "make generate creates %s, which is not in the tree: run `make generate` and commit it", rel)
		return nil
	})
	require.NoError(t, err)
}

// trackedFiles lists the files git tracks plus the untracked ones it does not
// ignore, relative to root.
func trackedFiles(t *testing.T, root string) []string {
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	require.NoError(t, err, "git ls-files")
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, f)); err == nil { // deleted but not yet committed
			files = append(files, f)
		}
	}
	return files
}

func copyFile(t *testing.T, from, to string) {
	data, err := os.ReadFile(from)
	require.NoError(t, err)
	info, err := os.Stat(from)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(to), 0o755))
	require.NoError(t, os.WriteFile(to, data, info.Mode().Perm()))
}
