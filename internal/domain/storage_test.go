package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestPlaceChain(t *testing.T) {
	all := []Storage{
		{ID: "1", Name: "big", ZoneID: "z", Enabled: true, Free: 900},
		{ID: "2", Name: "fast", ZoneID: "z", Enabled: true, Tag: "ssd", Free: 100},
		{ID: "3", Name: "off", ZoneID: "z", Enabled: false, Tag: "ssd", Free: 5000},
		{ID: "4", Name: "other-zone", ZoneID: "y", Enabled: true, Free: 9000},
		{ID: "5", Name: "a-tie", ZoneID: "z", Enabled: true, Free: 900},
	}
	cases := []struct {
		name, zone, tag, want, errHas string
		list                          []Storage
	}{
		{name: "most free in the zone, ties by name", zone: "z", want: "a-tie", list: all},
		{name: "the tag wins over free space", zone: "z", tag: "ssd", want: "fast", list: all},
		{name: "disabled storages receive nothing", zone: "z", tag: "ssd", want: "fast", list: all},
		{name: "unknown tag", zone: "z", tag: "hdd", errHas: `storage tag "hdd"`, list: all},
		{name: "other zones do not count", zone: "y", want: "other-zone", list: all},
		{name: "no storage in the zone", zone: "x", errHas: "has no backup storage", list: all},
		{name: "all disabled", zone: "z", errHas: "disabled", list: []Storage{all[2]}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := PlaceChain(c.list, c.zone, "zone-"+c.zone, c.tag)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) || !errors.Is(err, ErrConflict) {
					t.Fatalf("got %+v, %v; want a conflict containing %q", got, err, c.errHas)
				}
				return
			}
			if err != nil || got.Name != c.want {
				t.Fatalf("got %q, %v; want %q", got.Name, err, c.want)
			}
		})
	}
}

func TestValidateStoragePath(t *testing.T) {
	for _, ok := range []string{"/mnt/nfs", "/var/lib/knib/storage", "/a"} {
		if err := ValidateStoragePath("path", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "relative/dir", "./x", "/mnt/../etc", "/mnt/x/..", "/mnt//x", "/mnt/x/", "/", "/mnt/\nx", "/mnt/./x"} {
		if err := ValidateStoragePath("path", bad); err == nil || !IsInvalid(err) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
	if err := ValidateStorageTag("tag", "ssd-1.a_b"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"a b", "x/y", "é", strings.Repeat("a", 65)} {
		if err := ValidateStorageTag("tag", bad); err == nil {
			t.Errorf("tag %q accepted", bad)
		}
	}
}
