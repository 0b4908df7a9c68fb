package api

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/sparkplace/sparkplace/submit"
)

func runsAt(minutes ...int) []runItem {
	var out []runItem
	for _, m := range minutes {
		out = append(out, runItem{ID: fmt.Sprintf("run%02d", m), CreatedAt: time.Date(2026, 11, 30, 10, m, 0, 0, time.UTC)})
	}
	return out
}

func ids(items []runItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

// TestPagesAreStableUnderInserts: a run started between two pages neither repeats an item nor hides one,
// and a token only works with the filters it was made for.
func TestPagesAreStableUnderInserts(t *testing.T) {
	const path = "/virtualclusters/vc/jobruns"
	q := url.Values{"maxResults": {"2"}, "states": {"RUNNING"}}
	items := runsAt(5, 4, 3, 2, 1)
	page, next, err := paginate(items, path, q)
	if err != nil || !slices.Equal(ids(page), []string{"run05", "run04"}) || next == "" {
		t.Fatalf("first page %v, next %q, %v", ids(page), next, err)
	}
	items = append(runsAt(6), items...) // a run starts between the pages
	q.Set("nextToken", next)
	page, next, err = paginate(items, path, q)
	if err != nil || !slices.Equal(ids(page), []string{"run03", "run02"}) {
		t.Fatalf("second page %v, %v; want run03 run02", ids(page), err)
	}
	q.Set("nextToken", next)
	if page, next, err = paginate(items, path, q); err != nil || !slices.Equal(ids(page), []string{"run01"}) || next != "" {
		t.Errorf("last page %v, next %q, %v", ids(page), next, err)
	}

	other := url.Values{"maxResults": {"2"}, "states": {"FAILED"}, "nextToken": {q.Get("nextToken")}}
	if _, _, err := paginate(items, path, other); err == nil {
		t.Error("a token made for states=RUNNING was accepted for states=FAILED")
	}
	for _, bad := range []string{"0", "1001", "ten"} {
		if _, _, err := paginate(items, path, url.Values{"maxResults": {bad}}); err == nil {
			t.Errorf("maxResults=%s accepted", bad)
		}
	}
	if _, _, err := paginate(items, path, url.Values{"nextToken": {"12"}}); err == nil {
		t.Error("a bare offset was accepted as a token")
	}
}

func TestCheckStates(t *testing.T) {
	known := []string{string(submit.StateRunning), string(submit.StateFailed)}
	if err := checkStates([]string{"RUNNING"}, known); err != nil {
		t.Errorf("RUNNING refused: %v", err)
	}
	if err := checkStates([]string{"RUNING"}, known); err == nil {
		t.Error("a misspelt state was accepted (it would list nothing)")
	}
}
