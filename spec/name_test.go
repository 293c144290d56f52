package spec

import "testing"

func TestQuoteName(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"job-42", "job-42"},
		{"db/rows/7", "db/rows/7"},
		{"café", "café"},
		{"", `""`},
		{"two words", `"two words"`},
		{`"quoted"`, `"\"quoted\""`},
		{`back\slash`, `"back\\slash"`},
		{"clear\x1b[2J", `"clear\x1b[2J"`},
		{"row\nfake  EX", `"row\nfake  EX"`},
		{"tab\there", `"tab\there"`},
		{"rtl\u202etxt.exe", `"rtl\u202etxt.exe"`},
		{"bad\xffutf8", `"bad\xffutf8"`},
		{"nbsp\u00a0x", `"nbsp\u00a0x"`},
	} {
		if got := QuoteName(tc.name); got != tc.want {
			t.Errorf("QuoteName(%q) = %s, want %s", tc.name, got, tc.want)
		}
	}
}
