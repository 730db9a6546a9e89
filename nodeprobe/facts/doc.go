// Package facts collects the facts of a Linux node that decide whether a
// DMTCP checkpoint taken elsewhere can be restored on it, gives them a
// stable short class id, and explains the differences between two nodes.
//
// Collect reads /proc, /sys, /etc and runs a few binaries (dmtcp_launch);
// Options.Root lets tests point it at a recorded fake tree. Class hashes only
// the facts that matter for restore. Diff and Compatible compare the facts of
// the node a checkpoint was taken on with the facts of a candidate node.
package facts
