package benchstatconnector // import "github.com/otelcol-fabric/otelcol-fabric/connectors/benchstatconnector"

import (
	"context"
	"encoding/json"
	"fmt"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// Storage layout: one entry per run ("run/<runKey>": the escaped service
// and run id), and an index of the runs (their keys) and the
// baseline-branch run ids of each service. A state written before runs
// were keyed by service ("run/<id>") is rewritten at start.
const (
	indexKey  = "index"
	runPrefix = "run/"
)

type index struct {
	Seq       uint64              `json:"seq"`
	Runs      []string            `json:"runs"`
	Baselines map[string][]string `json:"baselines"`
}

// persist writes the runs that changed, the index, and deletes the evicted
// runs, in one batch. Called with c.mu held.
func (c *core) persist(ctx context.Context, changed map[string]bool, evicted []string) {
	ix := index{Seq: c.seq, Baselines: c.baselines}
	for key := range c.runs {
		ix.Runs = append(ix.Runs, key)
	}
	raw, err := json.Marshal(ix)
	if err != nil {
		c.logStorageError("write", err)
		return
	}
	ops := []*storage.Operation{storage.SetOperation(indexKey, raw)}
	for id := range changed {
		r, ok := c.runs[id]
		if !ok {
			continue
		}
		b, err := json.Marshal(r)
		if err != nil {
			c.logStorageError("write", err)
			return
		}
		ops = append(ops, storage.SetOperation(runPrefix+id, b))
	}
	for _, id := range evicted {
		ops = append(ops, storage.DeleteOperation(runPrefix+id))
	}
	c.logStorageError("write", c.client.Batch(ctx, ops...))
}

// load reads the state back at start. A run that cannot be read is
// skipped (and counted); the others are kept.
func (c *core) load(ctx context.Context) error {
	raw, err := c.client.Get(ctx, indexKey)
	if err != nil {
		return fmt.Errorf("benchstat: storage: reading the index: %w", err)
	}
	if raw == nil {
		return nil
	}
	var ix index
	if err := json.Unmarshal(raw, &ix); err != nil {
		c.logStorageError("read", fmt.Errorf("the index is not valid JSON, starting empty: %w", err))
		return nil
	}
	c.seq = ix.Seq
	rewritten := map[string]bool{}
	var stale []string
	for _, entry := range ix.Runs {
		b, err := c.client.Get(ctx, runPrefix+entry)
		if err != nil || b == nil {
			c.logStorageError("read", fmt.Errorf("run %q: %w", entry, err))
			continue
		}
		var r run
		if err := json.Unmarshal(b, &r); err != nil || r.Series == nil {
			c.logStorageError("read", fmt.Errorf("run %q is not valid JSON: %w", entry, err))
			continue
		}
		key := r.key()
		if key != entry { // written under the run id alone
			rewritten[key] = true
			stale = append(stale, entry)
		}
		c.runs[key] = &r
	}
	for svc, l := range ix.Baselines {
		var kept []string
		for _, id := range l {
			if _, ok := c.runs[runKey(svc, id)]; ok {
				kept = append(kept, id)
			}
		}
		if len(kept) > 0 {
			c.baselines[svc] = kept
		}
	}
	evicted := c.evict(ctx, nil) // max_runs may have been lowered
	if len(stale) > 0 || len(evicted) > 0 {
		// Delete what was evicted from storage too: otherwise the entries
		// would stay there, unlisted, for good.
		c.persist(ctx, rewritten, append(stale, evicted...))
	}
	return nil
}
