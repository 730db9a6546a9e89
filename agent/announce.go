package agent

import (
	"bytes"
	"io"
	"os"
	"path/filepath"

	"github.com/slurm-dmtcp/slurm-dmtcp/proto"
)

// Announce tells where the step's coordinator is once it accepts connections: Serve calls it
// with the coordinator's address and the control socket.
type Announce func(kvs []proto.KV) error

// ReadyMessage announces on the plugin's ready pipe (the agent's fd 3), the pairs of extra
// (restore plan, folders for the tasks) after those of Serve.
func ReadyMessage(w io.Writer, extra []proto.KV) Announce {
	return func(kvs []proto.KV) error {
		return proto.WriteReady(w, append(append([]proto.KV{}, kvs...), extra...))
	}
}

// TasksFile announces in the runtime folder's proto.CoordReadyFile, which the task launchers
// of a step on one node wait for (proto.KeyCoordReady): the plugin had its ready message
// before the coordinator was up.
func TasksFile(runDir string) Announce {
	return func(kvs []proto.KV) error {
		var b bytes.Buffer
		if err := proto.WriteReady(&b, kvs); err != nil {
			return err
		}
		return writeFileAtomic(runDir, proto.CoordReadyFile, b.Bytes(), false)
	}
}

// tellTasksFailed writes why the coordinator is not there into proto.CoordReadyFile: the
// waiting task launchers print it and end their tasks.
func tellTasksFailed(runDir string, err error) error {
	var b bytes.Buffer
	_ = proto.WriteError(&b, err.Error())
	return writeFileAtomic(runDir, proto.CoordReadyFile, b.Bytes(), false)
}

// writeFileAtomic writes dir/name as a temporary file renamed into place (fsynced first when
// sync): a reader sees the whole file or none.
func writeFileAtomic(dir, name string, data []byte, sync bool) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}
