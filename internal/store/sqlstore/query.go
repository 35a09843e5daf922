package sqlstore

import (
	"strconv"
	"strings"
)

// query builds a SELECT whose WHERE clause holds only the filters that are
// set: the form ($1 = ” OR col = $1) would keep the planner from using an
// index.
type query struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// where adds a condition (built with arg).
func (q *query) where(cond string) { q.conds = append(q.conds, cond) }

// eq adds col = v when v is not empty.
func (q *query) eq(col, v string) {
	if v != "" {
		q.where(col + " = " + q.arg(v))
	}
}

// after adds the keyset condition of a page: the rows after (key, id) in
// ascending order, or before it when desc.
func (q *query) after(keyCol, key, idCol, id string, desc bool) {
	op := " > "
	if desc {
		op = " < "
	}
	q.where("(" + keyCol + ", " + idCol + ")" + op + "(" + q.arg(key) + ", " + q.arg(id) + ")")
}

// sql is the statement: SELECT cols FROM table WHERE ... ORDER BY order
// LIMIT n (n <= 0: no limit).
func (q *query) sql(cols, table, order string, limit int) string {
	var b strings.Builder
	b.WriteString("SELECT " + cols + " FROM " + table)
	if len(q.conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(q.conds, " AND "))
	}
	b.WriteString(" ORDER BY " + order)
	if limit > 0 {
		b.WriteString(" LIMIT " + strconv.Itoa(limit))
	}
	return b.String()
}
