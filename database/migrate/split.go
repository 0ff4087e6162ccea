package migrate

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Split cuts a SQL file into statements the way the Supabase CLI does before
// it records them in supabase_migrations.schema_migrations: on every `;` that
// is not inside a quoted string, a dollar-quoted body, a comment, parentheses
// or a BEGIN ATOMIC ... END body. Each statement keeps its own comments, loses
// its trailing semicolons and surrounding white space; empty ones are dropped.
// Recording the same text as `supabase db push` means either tool can apply
// the next migration after the other.
func Split(sql string) []string {
	var stmts []string
	start := 0
	emit := func(end int) {
		s := strings.TrimSpace(strings.TrimRight(sql[start:end], ";"))
		if s != "" {
			stmts = append(stmts, s)
		}
		start = end
	}
	depth := 0  // parentheses
	atomic := 0 // BEGIN ATOMIC bodies
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"':
			i = skipQuoted(sql, i, c)
			continue
		case c == '$':
			if end, ok := skipDollar(sql, i); ok {
				i = end
				continue
			}
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			if nl := strings.IndexByte(sql[i:], '\n'); nl >= 0 {
				i += nl + 1
			} else {
				i = len(sql)
			}
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			i = skipBlockComment(sql, i)
			continue
		case c == '\\':
			i += 2
			continue
		case c == '(':
			depth++
		case c == ')':
			if depth > 0 {
				depth--
			}
		case (c == 'a' || c == 'A') && isBeginAtomic(sql, i):
			atomic++
			i += len("atomic")
			continue
		case (c == 'e' || c == 'E') && atomic > 0 && depth == 0 && isWord(sql, i, "end"):
			atomic--
			i += len("end")
			continue
		case c == ';' && depth == 0 && atomic == 0:
			emit(i + 1)
		}
		i++
	}
	if start < len(sql) {
		emit(len(sql))
	}
	return stmts
}

// skipQuoted returns the index after a '...' or "..." token; a doubled quote
// stays inside.
func skipQuoted(sql string, i int, q byte) int {
	for j := i + 1; j < len(sql); j++ {
		if sql[j] != q {
			continue
		}
		if j+1 < len(sql) && sql[j+1] == q {
			j++
			continue
		}
		return j + 1
	}
	return len(sql)
}

// skipDollar returns the index after a $tag$ ... $tag$ body, or false when the
// `$` does not open one (a positional parameter such as $1).
func skipDollar(sql string, i int) (int, bool) {
	j := i + 1
	for j < len(sql) {
		r, w := utf8.DecodeRuneInString(sql[j:])
		if r == '$' {
			break
		}
		if !(unicode.IsLetter(r) || r == '_' || (j > i+1 && unicode.IsDigit(r))) {
			return 0, false
		}
		j += w
	}
	if j >= len(sql) {
		return 0, false
	}
	tag := sql[i : j+1]
	end := strings.Index(sql[j+1:], tag)
	if end < 0 {
		return len(sql), true
	}
	return j + 1 + end + len(tag), true
}

func skipBlockComment(sql string, i int) int {
	depth := 0
	for j := i; j < len(sql)-1; j++ {
		switch sql[j : j+2] {
		case "/*":
			depth++
			j++
		case "*/":
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(sql)
}

// isBeginAtomic reports whether the word at i is ATOMIC preceded by BEGIN.
func isBeginAtomic(sql string, i int) bool {
	if !isWord(sql, i, "atomic") {
		return false
	}
	before := strings.TrimRightFunc(sql[:i], unicode.IsSpace)
	return len(before) >= 5 && isWord(sql, len(before)-5, "begin")
}

// isWord reports whether word (case-insensitive) stands at i on its own.
func isWord(sql string, i int, word string) bool {
	end := i + len(word)
	if end > len(sql) || !strings.EqualFold(sql[i:end], word) {
		return false
	}
	if i > 0 && isIdentByte(sql[i-1]) {
		return false
	}
	return end == len(sql) || !isIdentByte(sql[end])
}

func isIdentByte(b byte) bool {
	return b == '_' || b == '$' || b >= 0x80 || ('0' <= b && b <= '9') || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z')
}
