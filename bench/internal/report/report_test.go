package report

import "testing"

func TestHelpers(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{HumanSize(2 << 30), "2 GiB"},
		{HumanSize(512 << 20), "512 MiB"},
		{HumanSize(1<<30 + 1), "1073741825 B"},
		{MiB(3 << 19), "1.5 MiB"},
		{F1(1.25), "1.2"},
		{F2(1.005), "1.00"},
		{F3(2), "2.000"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if Ratio(1, 0) != 0 || Ratio(1, -1) != 0 || Ratio(3, 2) != 1.5 {
		t.Error("Ratio")
	}
	v := []float64{3, 1, 2, 4}
	if Median(nil) != 0 || Median([]float64{5, 1, 3}) != 3 || Median(v) != 2.5 || v[0] != 3 {
		t.Error("Median")
	}
}
