package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Page sizes: a List without maxResults returns up to defaultPageSize items; more than maxPageSize is refused.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
	maxStates       = 10 // the model's bound on the states filter
)

// pageToken is what a nextToken stands for: the position after the last item returned (lists are ordered
// newest first, then by id) and the filters it was made for. Runs started between two pages sort before
// the position, so no item repeats or goes missing; a token used with other filters is refused.
type pageToken struct {
	CreatedAt time.Time `json:"c"`
	ID        string    `json:"i"`
	Filters   string    `json:"f"`
}

// listed is an item of a paginated list.
type listed interface{ position() (time.Time, string) }

// filterKey identifies a list request's filters: its query without the paging parameters.
func filterKey(path string, q url.Values) string {
	f := url.Values{}
	for k, v := range q {
		if k != "nextToken" && k != "maxResults" {
			f[k] = slices.Sorted(slices.Values(v))
		}
	}
	sum := sha256.Sum256([]byte(path + "?" + f.Encode()))
	return hex.EncodeToString(sum[:8])
}

// paginate pages items (already newest first) from the position nextToken names.
func paginate[T listed](items []T, path string, q url.Values) ([]T, string, error) {
	size := defaultPageSize
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return nil, "", validation("maxResults=%q must be a whole number from 1 to %d", v, maxPageSize)
		}
		size = n
	}
	filters := filterKey(path, q)
	start := 0
	if tok := q.Get("nextToken"); tok != "" {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		var pt pageToken
		if err != nil || json.Unmarshal(raw, &pt) != nil {
			return nil, "", validation("invalid nextToken")
		}
		if pt.Filters != filters {
			return nil, "", validation("nextToken was issued for a list with other filters")
		}
		start = len(items)
		for i, it := range items {
			c, id := it.position()
			if c.Before(pt.CreatedAt) || c.Equal(pt.CreatedAt) && id > pt.ID {
				start = i
				break
			}
		}
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		c, id := items[end-1].position()
		raw, _ := json.Marshal(pageToken{CreatedAt: c, ID: id, Filters: filters})
		next = base64.RawURLEncoding.EncodeToString(raw)
	}
	return items[start:end], next, nil
}
