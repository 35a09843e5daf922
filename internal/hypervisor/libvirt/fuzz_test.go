package lv

import (
	"testing"

	"libvirt.org/go/libvirtxml"
)

// FuzzDomainXML: a domain definition from libvirt (which a guest's owner
// can shape) never panics the reading of its disks and backing chains.
func FuzzDomainXML(f *testing.F) {
	f.Add(`<domain type="qemu"><name>a</name><uuid>11111111-2222-4333-8444-555555555555</uuid><devices>
<disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="/top.qcow2"/>
<backingStore type="file"><format type="qcow2"/><source file="/base.qcow2"/><backingStore/></backingStore>
<target dev="vda" bus="virtio"/></disk>
<disk type="network" device="disk"><source protocol="nbd" name="x"><host name="h"/></source><target dev="vdb"/></disk>
</devices></domain>`)
	f.Add(`<domain><devices><disk><backingStore><backingStore><backingStore/></backingStore></backingStore></disk></devices></domain>`)
	f.Add(`<domain`)
	f.Fuzz(func(t *testing.T, doc string) {
		var x libvirtxml.Domain
		if err := x.Unmarshal(doc); err != nil || x.Devices == nil {
			return
		}
		for _, d := range x.Devices.Disks {
			disk, bs := diskFromXML(d)
			chain, _ := chainFromXML(bs)
			if len(chain) > 0 && disk.Target == "" && d.Target != nil && d.Target.Dev != "" {
				t.Fatalf("lost the target of %+v", d.Target)
			}
		}
	})
}
