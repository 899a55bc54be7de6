package migration

import (
	"encoding/xml"
	"fmt"
	"strings"
)

type domainDisks struct {
	Disks []struct {
		Type   string `xml:"type,attr"`
		Device string `xml:"device,attr"`
		Driver struct {
			Cache string `xml:"cache,attr"`
		} `xml:"driver"`
		Source struct {
			File     string `xml:"file,attr"`
			Dev      string `xml:"dev,attr"`
			Protocol string `xml:"protocol,attr"`
			Name     string `xml:"name,attr"`
		} `xml:"source"`
		Target struct {
			Dev string `xml:"dev,attr"`
		} `xml:"target"`
		ReadOnly *struct{} `xml:"readonly"`
	} `xml:"devices>disk"`
}

// checkSafe returns why migrating a domain with this XML could corrupt data,
// or nothing. vmha's VMs live on shared storage (cluster file systems,
// shared LVs), where a host-side write cache is the danger: pages the
// source still caches are not on disk when the target starts reading. That
// is libvirt's own rule too (only cache=none and cache=directsync are safe;
// no cache attribute means QEMU's default, writeback), but libvirt applies it
// only when it recognises the storage as shared, and it does not recognise
// a shared LV or an OCFS2/GFS2 mount it cannot see from the source. So vmha
// applies it to every writable disk. Read-only disks and CD-ROMs hold no
// dirty pages; Ceph RBD bypasses the host page cache.
func checkSafe(domainXML string) ([]string, error) {
	var d domainDisks
	if err := xml.Unmarshal([]byte(domainXML), &d); err != nil {
		return nil, fmt.Errorf("parse domain XML for the safety check: %w", err)
	}
	var reasons []string
	for _, disk := range d.Disks {
		if disk.ReadOnly != nil || disk.Device == "cdrom" || disk.Device == "floppy" {
			continue
		}
		if disk.Type == "network" && disk.Source.Protocol == "rbd" {
			continue
		}
		cache := disk.Driver.Cache
		if cache == "none" || cache == "directsync" {
			continue
		}
		if cache == "" {
			cache = "default (writeback)"
		}
		src := disk.Source.File
		if src == "" {
			src = disk.Source.Dev
		}
		if src == "" {
			src = disk.Source.Name
		}
		reasons = append(reasons, fmt.Sprintf("disk %s (%s) uses cache=%s; only none or directsync are safe to migrate", disk.Target.Dev, src, cache))
	}
	return reasons, nil
}

func joinReasons(r []string) string { return strings.Join(r, "; ") }
