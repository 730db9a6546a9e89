package slurm

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkMap1000Nodes parses scontrol show node -o of 1000 nodes in 4 classes and groups
// them (the map command without the scontrol call).
func BenchmarkMap1000Nodes(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&sb, "NodeName=cn%04d Arch=x86_64 CoresPerSocket=32 AvailableFeatures=ib,dmtcp_c-%010x ActiveFeatures=ib,dmtcp_c-%010x "+
			"NodeHostName=cn%04d OS=Linux 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 State=IDLE Partitions=batch\n", i, i%4, i%4, i)
	}
	out := sb.String()
	for b.Loop() {
		nodes, err := ParseNodes(out)
		if err != nil {
			b.Fatal(err)
		}
		if m := BuildMap(nodes, nil); len(m.Group) != 4 {
			b.Fatalf("%d groups", len(m.Group))
		}
	}
}
