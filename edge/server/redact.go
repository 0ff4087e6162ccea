package server

import "strings"

// Logs never carry a lead's email or phone in full: enough is kept to tell
// two leads apart while reading a log, too little to contact anyone.

// redactEmail keeps the first character and the domain: j***@example.com.
func redactEmail(email string) string {
	if email == "" {
		return ""
	}
	local, domain, ok := strings.Cut(email, "@")
	if !ok || local == "" {
		return "***"
	}
	return string([]rune(local)[:1]) + "***@" + domain
}

// redactPhone keeps, of the number's plus and digits, the first six (the
// country and network code) and the last two: +97150***67. At least five
// digits are always hidden, so shorter numbers keep less.
func redactPhone(phone string) string {
	var r []rune
	for _, c := range phone {
		if c >= '0' && c <= '9' || c == '+' && len(r) == 0 {
			r = append(r, c)
		}
	}
	switch {
	case len(phone) == 0:
		return ""
	case len(r) < 8:
		return "***"
	default:
		keep := min(6, len(r)-7)
		return string(r[:keep]) + "***" + string(r[len(r)-2:])
	}
}
