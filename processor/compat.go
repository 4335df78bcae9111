package processor

import "context"

// This file keeps the pre-rename API compiling until /work/api-renames.sh
// moves its callers (Lookup becomes Query and QueryResult; Assigned
// returns Tasks); the script then deletes it and renames AssignedTasks to
// Assigned. Nothing new may use it.

// Lookup is the old name of QueryResult.
//
// Deprecated: use QueryResult.
type Lookup = QueryResult

// Lookup is the old name of Query.
//
// Deprecated: use Query, or Get.
func (p *Processor) Lookup(ctx context.Context, store string, key []byte) (QueryResult, error) {
	return p.Query(ctx, store, key)
}

// Assigned returns the input partitions assigned to this instance, sorted.
//
// Deprecated: use AssignedTasks (renamed Assigned by the script).
func (p *Processor) Assigned() []int32 { return p.AssignedTasks().Partitions() }
